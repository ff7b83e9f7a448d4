"""PIP-Net's training losses and steps with answers on paper (the public code's formulas), and a
tiny end-to-end run that writes a loadable folder with its sparsity recorded."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.models.checkpoint import load_model
from explorer.models.pipnet import PIPNet
from explorer.train.pipnet_losses import (
    align_loss,
    classification_loss,
    symmetric_align_loss,
    tanh_loss,
)
from explorer.train.pipnet_trainer import (
    shrink_weights,
    sparsity,
    train_pipnet,
    two_views,
)
from tests.conftest import tiny_pipnet_setup, tiny_spec


def test_alignment_is_zero_for_identical_votes_and_log_p_for_uniform_ones() -> None:
    one_hot = torch.zeros(2, 4, 3, 3)
    one_hot[:, 1] = 1.0
    assert align_loss(one_hot, one_hot).item() == pytest.approx(0.0, abs=1e-9)
    uniform = torch.full((2, 4, 3, 3), 0.25)
    assert align_loss(uniform, uniform).item() == pytest.approx(math.log(4))
    # votes for different prototypes: the dot product is 0, the loss -log(1e-12)
    other = torch.zeros(2, 4, 3, 3)
    other[:, 2] = 1.0
    assert align_loss(one_hot, other).item() == pytest.approx(-math.log(1e-12))
    # symmetrised with stopped gradients: the gradient reaches both inputs
    a = uniform.clone().requires_grad_(True)
    b = one_hot.clone().requires_grad_(True)
    symmetric_align_loss(a, b).backward()
    assert a.grad is not None and b.grad is not None


def test_tanh_loss_rewards_every_prototype_present_somewhere_in_the_batch() -> None:
    absent = torch.zeros(8, 3)
    assert tanh_loss(absent, absent).item() == pytest.approx(-math.log(1e-8))
    present = torch.zeros(8, 3)
    present[0] = 1.0  # each prototype fully present in one image of the batch
    assert tanh_loss(present, present).item() == pytest.approx(-math.log(math.tanh(1.0) + 1e-8))


def test_classification_loss_is_the_nll_of_log1p_of_squared_evidence() -> None:
    zeros = torch.zeros(2, 3)
    assert classification_loss(zeros, torch.tensor([0, 2]), 2.0).item() == pytest.approx(
        math.log(3)
    )
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    inputs = torch.log1p(logits**2)  # log 5, 0, 0
    expected = -(inputs[0, 0] - torch.logsumexp(inputs[0], dim=0))
    assert classification_loss(logits, torch.tensor([0]), 2.0).item() == pytest.approx(
        float(expected)
    )


def _pipnet(prototypes: int = 4) -> PIPNet:
    base = tiny_spec(
        backbone="identity", channels=3, classes=2, per_class=1, dim=prototypes, size=8
    )
    architecture = replace(
        base.architecture, family="pipnet", add_on_layout=(f"conv:{prototypes}",),
        prototype_classes=(0,) * prototypes,
    )  # fmt: skip
    return PIPNet(replace(base, architecture=architecture))


def test_shrinking_takes_1e_3_from_every_weight_and_never_goes_negative() -> None:
    model = _pipnet()
    with torch.no_grad():
        model.classification.weight.copy_(torch.tensor([[0.5, 0.0005, 0.0, 2.0], [1.0] * 4]))
    shrink_weights(model)
    expected = torch.tensor([[0.499, 0.0, 0.0, 1.999], [0.999] * 4])
    torch.testing.assert_close(model.classification.weight.detach(), expected)


def test_sparsity_counts_on_paper() -> None:
    model = _pipnet()
    with torch.no_grad():
        model.classification.weight.copy_(
            torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.5, 0.0]])
        )
    scores = torch.tensor([[0.9, 0.0, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0]])
    got = sparsity(model, scores)
    assert got["nonzero_weights"] == 3 / 8
    assert got["prototypes_used"] == 3  # prototype 3 weighs for no class
    assert got["prototypes_per_class"] == 1.5
    assert got["present_per_image"] == 1.0  # two present in the first image, none in the second
    # first image: logits (0.9, 0.15) → class 0, only prototype 0 contributes; second: no evidence
    assert got["local_size"] == 0.5
    assert got["abstained"] == 0.5


def test_two_views_share_the_flip_and_differ_by_a_translation() -> None:
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    same = two_views(x, 0, hflip=False, rng=np.random.default_rng(0))
    assert torch.equal(same[0], x) and torch.equal(same[1], x)
    one, two = two_views(x, 2, hflip=True, rng=np.random.default_rng(1))
    assert one.shape == two.shape == x.shape
    assert not torch.equal(one, two)


def test_a_tiny_run_writes_a_pipnet_folder_with_its_sparsity(tmp_path: Path) -> None:
    config, train, test = tiny_pipnet_setup()
    spec = train_pipnet(config, tmp_path / "m", train, test)
    bundle = load_model(tmp_path / "m")
    assert isinstance(bundle.model, PIPNet) and bundle.spec.architecture.family == "pipnet"
    assert set(spec.training["sparsity_test"]) >= {"nonzero_weights", "present_per_image"}
    assert spec.training["family"] == "pipnet" and "after_last_layer" in spec.accuracy
    weight = torch.relu(bundle.model.class_weights.detach())
    assert (bundle.model.class_weights.detach() >= 0).all()
    used = weight.amax(dim=0) > 0
    listed = np.asarray(bundle.spec.prototype_classes)
    assert (listed[used.numpy()] == weight.argmax(dim=0).numpy()[used.numpy()]).all()
    assert len(bundle.examples()) == 6
    card = (tmp_path / "m" / "README.md").read_text()
    assert "PIP-Net on `small_cnn`" in card and "present per image on average" in card


def test_the_trained_pipnet_reaches_its_recorded_accuracy_and_sparsity() -> None:
    from explorer.data.synthetic import load_synthetic
    from explorer.train.pipnet_trainer import presence_scores

    folder = Path(__file__).resolve().parents[1] / "weights" / "synthetic_pipnet"
    bundle = load_model(folder)
    test = load_synthetic("test")
    x = bundle.model.preprocess(test.images)
    with torch.inference_mode():
        logits = torch.cat([bundle.model(x[i : i + 200]).logits for i in range(0, len(x), 200)])
    accuracy = float((logits.argmax(dim=1).numpy() == test.labels).mean())
    assert accuracy == pytest.approx(bundle.spec.accuracy["after_last_layer"], abs=5e-5)
    assert accuracy >= 0.95
    measured = sparsity(bundle.model, presence_scores(bundle.model, x))
    assert measured == bundle.spec.training["sparsity_test"]
    assert measured["nonzero_weights"] < 0.30 and measured["present_per_image"] <= 10
