"""Model folders: round trip, content hash, and refusal of corrupt or hostile checkpoints."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from explorer.errors import CheckpointError
from explorer.models.checkpoint import SPEC_FILE, WEIGHTS_FILE, content_hash, load_model, save_model
from explorer.models.protopnet import ProtoPNet


@pytest.fixture
def saved(random_model: ProtoPNet, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    save_model(random_model, folder)
    return folder


def test_round_trip_gives_identical_outputs(random_model: ProtoPNet, saved: Path) -> None:
    x = torch.randn(3, 3, 16, 16)
    loaded = load_model(saved)
    with torch.no_grad():
        a, b = random_model(x), loaded.model(x)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.similarity_maps, b.similarity_maps)
    assert loaded.spec == random_model.spec


def test_content_hash_is_stable_and_follows_the_weights(
    random_model: ProtoPNet, saved: Path, tmp_path: Path
) -> None:
    assert load_model(saved).content_hash == content_hash(saved)
    with torch.no_grad():
        random_model.last_layer.weight[0, 0] += 1
    other = tmp_path / "other"
    save_model(random_model, other)
    assert content_hash(other) != content_hash(saved)


def test_truncated_weights_are_refused(saved: Path) -> None:
    data = (saved / WEIGHTS_FILE).read_bytes()
    (saved / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(saved)


def test_weights_of_the_wrong_shape_are_refused(saved: Path) -> None:
    spec = json.loads((saved / SPEC_FILE).read_text())
    spec["architecture"]["prototypes_per_class"] = 3
    (saved / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match="shape"):
        load_model(saved)


class _Marker:
    """Unpickling this object would create a marker file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def test_a_pickle_in_place_of_the_weights_is_refused_and_never_executed(
    saved: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "executed"
    (saved / WEIGHTS_FILE).write_bytes(pickle.dumps(_Marker(str(marker))))
    with pytest.raises(CheckpointError):
        load_model(saved)
    assert not marker.exists()


def test_missing_weights_or_spec_are_named(saved: Path) -> None:
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing"):
        load_model(saved)
    (saved / SPEC_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"spec\.json is missing"):
        load_model(saved)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("class_names"), "class_names"),
        (lambda s: s.update(channels=7), "channels"),
        (lambda s: s.update(input_size=[0, 10**9]), "input_size"),
        (lambda s: s.update(std=[0.0, 1.0, 1.0]), "std"),
        (lambda s: s["architecture"].update(backbone="os.system"), "unknown backbone"),
        (lambda s: s["architecture"].update(prototype_dim=-1), "out of range"),
        (lambda s: s.update(mean="abc"), "mean"),
    ],
)
def test_absurd_or_missing_spec_fields_are_refused(saved: Path, edit, message: str) -> None:
    spec = json.loads((saved / SPEC_FILE).read_text())
    edit(spec)
    (saved / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(CheckpointError, match=message):
        load_model(saved)


def test_spec_that_is_not_json_is_refused(saved: Path) -> None:
    (saved / SPEC_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(saved)


def test_nan_weights_are_refused(random_model: ProtoPNet, tmp_path: Path) -> None:
    with torch.no_grad():
        random_model.last_layer.weight[0, 0] = float("nan")
    save_model(random_model, tmp_path / "nan")
    with pytest.raises(CheckpointError, match="NaN"):
        load_model(tmp_path / "nan")


def test_a_model_first_loaded_inside_inference_mode_still_takes_gradients(saved: Path) -> None:
    """A library user's first question may come inside ``torch.inference_mode()``: the model loaded
    then must not be made of inference tensors (Grad-CAM and training need gradients later)."""
    with torch.inference_mode():
        model = load_model(saved).model
    assert not any(p.is_inference() for p in model.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    model(x).logits.sum().backward()
    assert x.grad is not None
