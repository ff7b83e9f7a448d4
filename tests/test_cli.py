"""The command line, run as a user would (a subprocess), on the shipped default model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.api import DEFAULT_MODEL, Explorer
from tests.conftest import SHIPPED_MODELS
from tests.corpus import bad_image_corpus

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "explorer", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard, not a timing: a cold cache on a busy machine is slow
    )


def first_example(model_id: str) -> Path:
    return Explorer().bundle(model_id).examples()[0]


def test_predict_prints_valid_json_for_the_default_model() -> None:
    result = run_cli("predict", str(first_example(DEFAULT_MODEL)))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model_id"] == DEFAULT_MODEL
    assert data["predicted_class"] in data["probabilities"]
    assert sum(data["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert len(data["top_prototypes"]) == 10
    contributions = [p["contribution"] for p in data["top_prototypes"]]
    assert contributions == sorted(contributions, reverse=True)


def test_models_lists_every_shipped_model() -> None:
    result = run_cli("models")
    assert result.returncode == 0, result.stderr
    ids = [m["model_id"] for m in json.loads(result.stdout)]
    assert set(SHIPPED_MODELS) <= set(ids)
    assert ids[0] == DEFAULT_MODEL


def test_bad_inputs_get_one_clear_line_and_status_2(tmp_path: Path) -> None:
    corpus = bad_image_corpus(tmp_path)
    for name in ("text.png", "truncated.png", "one_pixel.png", "huge.png"):
        path, expect = corpus[name]
        result = run_cli("predict", str(path), "--model", "fashion_mnist")
        assert result.returncode == 2, (name, result.stderr)
        assert result.stderr.startswith("error: ") and expect in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    missing = run_cli("predict", str(tmp_path / "nope.png"))
    assert missing.returncode == 2 and "not found" in missing.stderr
    unknown = run_cli("predict", str(first_example(DEFAULT_MODEL)), "--model", "no_such_model")
    assert unknown.returncode == 2 and "unknown model 'no_such_model'" in unknown.stderr


@pytest.mark.slow
@pytest.mark.parametrize("model_id", SHIPPED_MODELS)
def test_redundancy_prints_clusters_and_pruned_accuracy(model_id: str) -> None:
    result = run_cli("redundancy", "--model", model_id)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model_id"] == model_id
    spec = Explorer().bundle(model_id).spec
    recorded = spec.accuracy["after_last_layer"]
    scored = data["test_images_scored"]
    if scored == spec.dataset["test_images"]:  # every test image: the accuracy training recorded
        assert data["baseline_test_accuracy"] == pytest.approx(recorded, abs=1e-3)
    else:  # a shipped stratified sample: within four standard errors, and it says so
        assert "stratified sample" in data["accuracies_measured_on"]
        error = (recorded * (1 - recorded) / scored) ** 0.5
        assert abs(data["baseline_test_accuracy"] - recorded) <= 4 * error
    every = data["every_cluster_pruned_to_one"]
    assert every["prototypes_removed"] == sum(len(c["members"]) - 1 for c in data["clusters"])
    members = [m for cluster in data["clusters"] for m in cluster["members"]]
    assert len(members) == len(set(members))  # every prototype in at most one cluster
    for cluster in data["clusters"]:
        # within_distance is the *largest* pair; with average linkage only the merge heights
        # (averages) are bounded by the threshold, so a pair may lie a little above it
        assert len(cluster["members"]) >= 2 and 0 <= cluster["within_distance"] <= 1


def test_train_push_on_object_defaults_to_the_preset_and_can_be_switched_either_way() -> None:
    from explorer.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "--preset", "synthetic"]).push_on_object is None
    assert parser.parse_args(["train", "--push-on-object"]).push_on_object is True
    assert parser.parse_args(["train", "--no-push-on-object"]).push_on_object is False


def test_train_model_id_names_a_preset_model_too_and_a_bad_one_is_refused() -> None:
    """``--model-id`` was silently ignored with ``--preset`` (every blobs seed came out as
    ``blobs``); it is the model's id whichever way the data is given, and checked first."""
    from explorer.api import _train_config
    from explorer.errors import ExplorerError

    assert _train_config("blobs", None, "blobs-s3", "small_cnn", None, {}, 3).model_id == "blobs-s3"
    assert _train_config("blobs", None, None, "small_cnn", None, {}, 3).model_id == "blobs"
    for bad in ("", "../up", "a b", ".hidden", "x" * 65):
        with pytest.raises(ExplorerError, match=r"model id .* is not usable: 1 to 64"):
            _train_config("synthetic", None, bad, "small_cnn", None, {})


def test_the_pipnet_preset_trains_a_pipnet_and_refuses_protopnet_stages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from explorer.api import _train_config
    from explorer.cli import main
    from explorer.train.pipnet_trainer import PIPNetConfig

    config = _train_config("synthetic_pipnet", None, "p2", "small_cnn", None, {"seed": 2}, 1)
    assert isinstance(config, PIPNetConfig)
    assert (config.model_id, config.seed, config.dataset) == ("p2", 2, "synthetic@1")
    assert main(["train", "--preset", "synthetic_pipnet", "--joint-epochs", "3"]) == 2
    assert "has no joint_epochs (ProtoPNet's stages)" in capsys.readouterr().err
