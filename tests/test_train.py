"""A real (tiny) training run: stages, push, recorded spec, reproducibility."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.errors import ExplorerError
from explorer.models.checkpoint import ModelBundle, load_model
from explorer.train.push import object_cells, prototypes_on_object
from explorer.train.trainer import train
from tests.conftest import tiny_config

LOG_1E4 = math.log(1e4)


def assert_pushed(bundle: ModelBundle) -> None:
    """Every prototype scores log(1e4) at its recorded cell of its stored source image, and that
    source image belongs to the prototype's class."""
    for record in bundle.projection:
        with torch.no_grad():
            out = bundle.model(bundle.model.preprocess([bundle.source_image(record.index)]))
        score = out.similarity_maps[0, record.index, record.cell[0], record.cell[1]].item()
        assert score == pytest.approx(LOG_1E4, abs=1e-3), record
        assert out.scores[0, record.index].item() == pytest.approx(LOG_1E4, abs=1e-3)
        assert record.class_index == bundle.model.prototype_classes[record.index]


def test_pushed_prototypes_score_log_1e4_on_their_source(tiny_run) -> None:
    folder, _ = tiny_run
    assert_pushed(load_model(folder))


def test_push_sources_are_training_images_of_the_prototypes_class(tiny_run) -> None:
    folder, (train_set, _, _) = tiny_run
    bundle = load_model(folder)
    for record in bundle.projection:
        assert train_set.labels[record.source_index] == record.class_index
        stored = bundle.source_image(record.index)
        np.testing.assert_array_equal(stored, train_set.images[record.source_index])
        y0, y1, x0, x1 = record.box
        assert 0 <= y0 < y1 <= 32 and 0 <= x0 < x1 <= 32


def test_spec_records_config_accuracies_and_examples(tiny_run) -> None:
    folder, (_, test_set, spec) = tiny_run
    bundle = load_model(folder)
    assert bundle.spec.training["seed"] == 0
    assert bundle.spec.training["prototypes_per_class"] == 2
    assert set(bundle.spec.accuracy) >= {"before_push", "after_push", "after_last_layer"}
    assert all(0.0 <= v <= 1.0 for v in bundle.spec.accuracy.values())
    assert len(bundle.examples()) == len(test_set.class_names)
    assert bundle.spec == spec


def test_training_is_reproducible_with_its_seed(tiny_run, tmp_path: Path) -> None:
    folder, (train_set, test_set, _) = tiny_run
    again = tmp_path / "again"
    train(tiny_config(), again, train_set, test_set)
    first, second = load_model(folder).model.state_dict(), load_model(again).model.state_dict()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_object_cells_follow_the_mask_and_never_leave_an_image_without_a_cell() -> None:
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[0, :4, :4] = 1  # exactly the top-left cell of a 2x2 grid
    masks[1, 3, 3] = 1  # a one-pixel object: no cell is half covered
    cells = object_cells(masks, (2, 2))
    np.testing.assert_array_equal(cells[0], [[True, False], [False, False]])
    np.testing.assert_array_equal(cells[1], [[True, False], [False, False]])


def test_push_on_object_puts_every_prototype_on_its_source_object(tiny_run, tmp_path: Path) -> None:
    folder, (train_set, test_set, _) = tiny_run
    assert tiny_config().push_on_object  # the synthetic preset pushes on the object
    bundle = load_model(folder)
    assert_pushed(bundle)
    grid = (8, 8)  # 32 px input, two pools
    allowed = object_cells(train_set.extras["mask"], grid)
    for record in bundle.projection:
        assert allowed[record.source_index][record.cell], record
    with pytest.raises(ExplorerError, match="needs object masks"):  # before any training
        train(tiny_config(), tmp_path / "x", test_set, test_set)
    assert not (tmp_path / "x").exists()


def test_the_model_card_counts_the_prototypes_on_the_object(tiny_run, tmp_path: Path) -> None:
    folder, (train_set, test_set, spec) = tiny_run
    counts = spec.training["prototypes_on_object"]
    assert counts == {"on_object": spec.num_prototypes, "prototypes": spec.num_prototypes,
                      "min_cover": 0.5}  # fmt: skip
    assert (
        f"{spec.num_prototypes} of {spec.num_prototypes} were projected"
        in (folder / "README.md").read_text()
    )
    # without the on-object push the same data puts some prototypes on the background, and says so
    free = train(tiny_config().with_overrides(push_on_object=False), tmp_path / "free", train_set,
                 test_set)  # fmt: skip
    records = load_model(tmp_path / "free").projection
    allowed = object_cells(train_set.extras["mask"], (8, 8))
    on = sum(bool(allowed[r.source_index][r.cell]) for r in records)
    assert free.training["prototypes_on_object"]["on_object"] == on
    assert (
        f"{free.num_prototypes - on} sit on the background"
        in (tmp_path / "free" / "README.md").read_text()
    )


def test_prototypes_on_object_by_hand() -> None:
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[:, :, :4] = 1  # the left half of both images
    pushed = [{"source_index": 0, "cell": (0, 0)}, {"source_index": 1, "cell": (1, 1)}]
    assert prototypes_on_object(masks, (2, 2), pushed) == {
        "on_object": 1, "prototypes": 2, "min_cover": 0.5,
    }  # fmt: skip
