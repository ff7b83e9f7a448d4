"""ProtoPDebug retraining (explorer/train/debug.py): its two terms on paper, the plain fine-tuning
reproduced when nothing is labelled, lineage, the parent folder untouched, nothing half-written."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from explorer.analysis.cut_outs import CutOut, on_white_canvas, prototype_cut_outs
from explorer.errors import ExplorerError
from explorer.models.checkpoint import load_model
from explorer.models.protopnet import ProtoPNet
from explorer.train import debug
from explorer.train.config import TrainConfig
from explorer.train.debug import (
    Cancelled,
    DebugConfig,
    concept_similarities,
    debug_model,
    fine_tune,
    forgetting_loss,
    partial_folder,
    remembering_loss,
    start_run,
)
from tests.conftest import tiny_spec

LOG_1E8 = math.log(1e8)  # the forgetting term's similarity at distance 0 (ε = 1e-8)
QUICK = DebugConfig(warm_epochs=1, joint_epochs=1, last_epochs=2)


# --- the terms, on paper ---------------------------------------------------------------------------


def test_forgetting_is_zero_without_cut_outs_and_sums_the_prototypes_similarities() -> None:
    identity = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # P0, P1 of class 0; P2 of 1
    none = torch.zeros(0, 3)
    assert forgetting_loss(none, torch.zeros(0, dtype=torch.long), identity, False).item() == 0
    assert remembering_loss(none, torch.zeros(0, dtype=torch.long), identity).item() == 0
    s = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])  # two cut-outs, of classes 0 and 1
    classes = torch.tensor([0, 1])
    assert forgetting_loss(s, classes, identity, class_specific=False).item() == 6.0  # (6 + 6) / 2
    # class-specific: cut-out 0 counts P0 + P1 = 3, cut-out 1 counts P2 = 6
    assert forgetting_loss(s, classes, identity, class_specific=True).item() == 4.5
    assert remembering_loss(s, classes, identity).item() == 4.5  # always class-specific
    # it grows with similarity: a cut-out more like the prototypes costs more
    assert forgetting_loss(2 * s, classes, identity, False).item() == 12.0


def hand_model() -> ProtoPNet:
    """Identity backbone and add-on, D = 2: p0 = (0, 0) of class 0, p1 = (1, 1) of class 1."""
    model = ProtoPNet(tiny_spec()).eval()
    model.add_on = nn.Identity()
    with torch.no_grad():
        model.prototype_vectors.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1))
    return model


# Concept feature maps [N=2, D=2, h=1, w=2]. Concept 0: cells (0, 0) and (1, 0); concept 1: cells
# (3, 3) and (3, 3), far from both prototypes.
CONCEPTS = torch.tensor([[[[0.0, 1.0]], [[0.0, 0.0]]], [[[3.0, 3.0]], [[3.0, 3.0]]]])


def s(d: float, eps: float = 1e-8) -> float:
    return math.log((d + 1) / (d + eps))


def test_the_similarity_is_read_at_the_best_cell_or_at_the_centre() -> None:
    model = hand_model()
    best = concept_similarities(model, CONCEPTS, "all", 1e-8).double()
    # concept 0: p0 meets cell (0, 0) exactly, p1 is 1 from cell (1, 0); concept 1: 9 + 9, 4 + 4
    expected = torch.tensor([[LOG_1E8, s(1)], [s(18), s(8)]], dtype=torch.float64)
    assert torch.allclose(best, expected, rtol=1e-6)
    centre = concept_similarities(model, CONCEPTS, "center", 1e-4).double()  # cell (h//2, w//2)
    expected = torch.tensor([[s(1, 1e-4), s(1, 1e-4)], [s(18, 1e-4), s(8, 1e-4)]])
    assert torch.allclose(centre, expected.double(), rtol=1e-6)
    identity = model.prototype_class_identity
    near = forgetting_loss(best[:1], torch.tensor([0]), identity, False)
    far = forgetting_loss(best[1:], torch.tensor([0]), identity, False)
    assert near.item() == pytest.approx(LOG_1E8 + s(1), rel=1e-6) and near > far


def test_the_concept_images_leave_batch_norm_statistics_alone(random_model: ProtoPNet) -> None:
    model = random_model.train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    concepts = torch.rand(4, 3, 16, 16)
    concept_similarities(model, concepts, "all", 1e-8).sum().backward()
    after = {k: v for k, v in model.state_dict().items() if "running" in k}
    assert before and all(torch.equal(before[k], after[k]) for k in before)
    assert model.features.tail.training  # put back as it was
    assert model.prototype_vectors.grad is not None  # the term reaches the prototypes


def test_a_cut_out_is_pasted_at_its_own_size_on_a_white_canvas_of_the_input_size() -> None:
    crop = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    canvas = on_white_canvas(crop, (8, 8))
    assert canvas.shape == (8, 8, 3)
    assert (canvas[3:5, 2:5] == crop).all()
    mask = np.ones((8, 8), dtype=bool)
    mask[3:5, 2:5] = False
    assert (canvas[mask] == 255).all()
    big = on_white_canvas(np.zeros((12, 4), dtype=np.uint8), (8, 8))  # cut to the canvas
    assert big.shape == (8, 8) and (big[:, 2:6] == 0).all() and (big[:, :2] == 255).all()


def test_settings_out_of_range_are_refused_with_their_limits() -> None:
    with pytest.raises(ValueError, match="act_place must be one of"):
        DebugConfig(act_place="middle")
    with pytest.raises(ValueError, match="rounds must be from 1 to 20, not 0"):
        DebugConfig(rounds=0)
    with pytest.raises(ValueError, match="at least one warm-up or joint epoch"):
        DebugConfig(warm_epochs=0, joint_epochs=0)
    with pytest.raises(ValueError, match="warm_epochs must be a whole number"):
        DebugConfig(warm_epochs=2.5)  # type: ignore[arg-type]


# --- a run on the tiny trained model -------------------------------------------------------------


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def marker_cut_outs(folder: Path, prototype: int) -> list[CutOut]:
    return prototype_cut_outs(load_model(folder), prototype)


def test_without_labels_the_retrain_is_exactly_the_plain_fine_tuning(tiny_run, tmp_path) -> None:
    folder, (train_set, test_set, _) = tiny_run
    parent = load_model(folder)
    debug_model(parent, [], [], tmp_path / "a", "a", config=QUICK, train_set=train_set,
                test_set=test_set)  # fmt: skip
    config = TrainConfig.from_dict(parent.spec.training)
    model, data, _, rng = start_run(parent, QUICK, train_set, test_set, config.threads)
    fine_tune(model, config, QUICK, data, train_set, rng, extra_loss=None)
    retrained = load_model(tmp_path / "a").model.state_dict()
    plain = model.state_dict()
    assert retrained.keys() == plain.keys()
    assert all(torch.equal(retrained[k], plain[k]) for k in plain)
    # and the forgetting term does act: with a forbidden concept the weights differ
    debug_model(parent, marker_cut_outs(folder, 0), [], tmp_path / "b", "b", config=QUICK,
                train_set=train_set, test_set=test_set)  # fmt: skip
    forgot = load_model(tmp_path / "b").model.state_dict()
    assert not torch.equal(forgot["prototype_vectors"], plain["prototype_vectors"])


def test_the_lineage_is_recorded_and_the_parent_is_unchanged_byte_for_byte(
    tiny_run, tmp_path
) -> None:
    folder, (train_set, test_set, _) = tiny_run
    before = folder_digest(folder)
    parent = load_model(folder)
    forbidden = marker_cut_outs(folder, 1)
    labels = [{"id": 7, "prototype": 1, "verdict": "misleading", "reason": "marker or text"}]
    steps = []
    spec = debug_model(
        parent, forbidden, marker_cut_outs(folder, 2), tmp_path / "child", "child", labels,
        config=QUICK, train_set=train_set, test_set=test_set, progress=steps.append,
    )  # fmt: skip
    assert folder_digest(folder) == before
    lineage = load_model(tmp_path / "child").spec.lineage
    assert lineage == spec.lineage
    assert lineage["parent"] == {
        "model_id": parent.spec.model_id, "content_hash": parent.content_hash,
        "folder": str(folder), "training_minutes": parent.spec.training["minutes"],
    }  # fmt: skip
    assert lineage["labels"] == labels and lineage["config"] == QUICK.to_dict()
    assert [c["prototype"] for c in lineage["cut_outs"]["forbidden"]] == [1] * len(forbidden)
    assert lineage["cut_outs"]["remembered"][0]["prototype"] == 2
    assert spec.model_id == "child" and spec.accuracy["parent_after_last_layer"] > 0
    assert steps[-1].done == steps[-1].total and [s.done for s in steps] == sorted(
        s.done for s in steps
    )
    assert not partial_folder(tmp_path / "child").exists()


def test_an_interrupted_or_cancelled_retrain_leaves_no_folder(
    tiny_run, tmp_path, monkeypatch
) -> None:
    folder, (train_set, test_set, _) = tiny_run
    parent = load_model(folder)
    out = tmp_path / "child"
    with pytest.raises(Cancelled):
        debug_model(parent, [], [], out, "child", config=QUICK, train_set=train_set,
                    test_set=test_set, should_stop=lambda: True)  # fmt: skip
    real_save = debug.save_model

    def save_then_interrupt(model, where, *args):  # the folder is half-written when it stops
        real_save(model, where, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(debug, "save_model", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        debug_model(parent, [], [], out, "child", config=QUICK, train_set=train_set,
                    test_set=test_set)  # fmt: skip
    assert not out.exists() and not partial_folder(out).exists()
    assert list(tmp_path.iterdir()) == []


def test_a_taken_folder_and_a_pipnet_are_refused_before_any_training(tiny_run, tmp_path) -> None:
    folder, _ = tiny_run
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "spec.json").write_text("{}")
    with pytest.raises(ExplorerError, match="already exists; a retrain writes a new model folder"):
        debug_model(load_model(folder), [], [], taken, "x", config=QUICK)
    from explorer.api import WEIGHTS_DIR

    with pytest.raises(ExplorerError, match="is a PIP-Net: ProtoPDebug retrains ProtoPNets"):
        debug_model(load_model(WEIGHTS_DIR / "synthetic_pipnet"), [], [], tmp_path / "p", "p")


def test_the_cut_out_is_the_peak_region_not_the_box_around_every_high_pixel() -> None:
    from explorer.boxes import high_activation_box, peak_region_box

    activation = np.zeros((20, 20), dtype=np.float32)
    activation[1:4, 1:4] = 10.0  # the peak: a marker in a corner
    activation[12:18, 10:16] = 8.0  # a second region, the object
    activation[2, 2] = 11.0
    assert high_activation_box(activation, 90) == (1, 18, 1, 16)  # spans both
    assert peak_region_box(activation, 90) == (1, 4, 1, 4)
