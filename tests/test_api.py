"""The Explorer facade on the shipped models: predictions, evidence, and awkward images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer.api import Explorer
from explorer.errors import BadImageError, UnknownModelError
from explorer.models.checkpoint import example_class
from tests.conftest import SHIPPED_MODELS
from tests.corpus import bad_image_corpus


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer()


@pytest.mark.parametrize("model_id", SHIPPED_MODELS)
def test_prediction_evidence_sums_to_the_logit(explorer: Explorer, model_id: str) -> None:
    bundle = explorer.bundle(model_id)
    example = bundle.examples()[0]
    p = explorer.predict(example, model_id=model_id, top_k=bundle.spec.num_prototypes)
    assert len(p.top_prototypes) == bundle.spec.num_prototypes
    total = sum(e.contribution for e in p.top_prototypes)
    assert total == pytest.approx(p.logits[p.predicted], abs=1e-4)
    for e in p.top_prototypes:
        assert e.contribution == pytest.approx(e.similarity * e.weight, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("model_id", SHIPPED_MODELS)
def test_bundled_examples_are_mostly_predicted_correctly(explorer: Explorer, model_id: str) -> None:
    bundle = explorer.bundle(model_id)
    examples = bundle.examples()
    assert len(examples) >= 2 * bundle.spec.num_classes - 2
    correct = [
        explorer.predict(path, model_id=model_id).predicted == example_class(path)
        for path in examples
    ]
    assert np.mean(correct) >= 0.6


def test_awkward_images_are_handled_or_refused_clearly(explorer: Explorer, tmp_path: Path) -> None:
    for path, expect in bad_image_corpus(tmp_path).values():
        if expect == "ok":
            p = explorer.predict(path, model_id="synthetic")
            assert sum(p.probabilities) == pytest.approx(1.0)
        else:
            with pytest.raises(BadImageError, match=expect):
                explorer.predict(path, model_id="synthetic")
    # after all that, the explorer still answers
    assert explorer.predict(explorer.bundle("synthetic").examples()[0], model_id="synthetic")


def test_unknown_model_is_named(explorer: Explorer) -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        explorer.bundle("nope")
    with pytest.raises(UnknownModelError):
        Explorer(default_model="nope")


def test_user_model_folder_can_be_added(tmp_path: Path, random_model) -> None:
    from explorer.models.checkpoint import save_model

    save_model(random_model, tmp_path / "mine")
    explorer = Explorer()
    info = explorer.add_model_folder(tmp_path / "mine")
    assert info.model_id == "tiny" and "tiny" in explorer.model_ids()
    image = np.full((40, 40, 3), 128, dtype=np.uint8)
    assert len(explorer.predict(image, model_id="tiny").probabilities) == 3


def test_a_second_folder_with_the_same_model_id_replaces_the_first_with_a_warning(
    tmp_path: Path, random_model, caplog: pytest.LogCaptureFixture
) -> None:
    from explorer.models.checkpoint import save_model

    save_model(random_model, tmp_path / "one")
    save_model(random_model, tmp_path / "two")
    explorer = Explorer(model_dirs=())
    explorer.add_model_folder(tmp_path / "one")
    explorer.add_model_folder(tmp_path / "one")  # the same folder again: nothing to say
    assert not [r for r in caplog.records if "replaces" in r.getMessage()]
    with caplog.at_level("WARNING", logger="explorer.api"):
        explorer.add_model_folder(tmp_path / "two")
    (warning,) = [r.getMessage() for r in caplog.records if "replaces" in r.getMessage()]
    assert "'tiny'" in warning and "two" in warning and "one" in warning
    assert explorer.model_info("tiny").folder == (tmp_path / "two").resolve()
