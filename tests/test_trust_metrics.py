"""Metrics of a model's prototypes with answers on paper: EvalProtoPNet's part vectors, consistency
and stability (the cancelling-differences case included), purity, background share, and the deletion
curve of a model whose whole evidence is one known pixel block."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.analysis.metrics.background import map_background_share
from explorer.analysis.metrics.consistency import consistency, part_rates
from explorer.analysis.metrics.deletion import (
    auc,
    batch_curves,
    evidence_map,
    evidence_order,
)
from explorer.analysis.metrics.parts import half_size, part_vectors, parts_in_box, peak_box
from explorer.analysis.metrics.purity import box_on_mask, class_purity, object_share
from explorer.analysis.metrics.stability import perturb, stability, stability_score, unchanged
from explorer.models.protopnet import ProtoPNet
from tests.conftest import tiny_spec

# --- part vectors ---------------------------------------------------------------------------------


def test_half_size_is_36_at_224_and_scales_with_the_input():
    assert half_size((224, 224)) == 36
    assert half_size((64, 64)) == 10  # 36 * 64 / 224 = 10.3
    assert half_size((448, 300)) == round(36 * 300 / 224)


def test_the_box_is_clipped_and_both_bounds_count_as_inside():
    assert peak_box((3, 60), 10, (64, 64)) == (0, 13, 50, 64)
    box = (20, 40, 30, 50)  # y0, y1, x0, x1: inclusive, as EvalProtoPNet's in_bbox
    keypoints = np.array([[50.0, 40.0], [51.0, 40.0], [30.0, 20.0], [30.9, 19.5]])
    visible = np.array([True, True, True, True])
    # (50, 40) on the corner: in; x 51: out; (30, 20): in; y 19.5 truncates to 19: out
    assert parts_in_box(keypoints, visible, box).tolist() == [True, False, True, False]
    assert parts_in_box(keypoints, np.array([False, True, True, True]), box).tolist() == [
        False, False, True, False,
    ]  # fmt: skip


def test_part_vectors_read_the_first_maximum_of_the_map():
    size = (64, 64)  # maps already at input size: the bicubic resize is the identity
    maps = np.zeros((1, 2, 64, 64), dtype=np.float32)
    maps[0, 0, 30, 40] = 1.0  # peak at y 30, x 40 -> box y 20..40, x 30..50
    maps[0, 1, 5, 5] = 1.0  # box y 0..15, x 0..15
    keypoints = np.array([[[50.0, 40.0], [10.0, 10.0], [41.0, 31.0]]])
    visible = np.ones((1, 3), dtype=bool)
    vectors = part_vectors(maps, keypoints, visible, size)
    assert vectors[0, 0].tolist() == [True, False, True]
    assert vectors[0, 1].tolist() == [False, True, False]


# --- consistency and stability on paper -------------------------------------------------------------


def test_consistency_by_hand():
    # prototype 0 (class 0) on the three class-0 images, prototype 1 (class 1) on the class-1 image
    vectors = np.zeros((4, 2, 2), dtype=bool)
    vectors[:3, 0] = [[1, 0], [1, 1], [0, 1]]
    visible = np.array([[1, 1], [1, 1], [1, 0], [1, 1]], dtype=bool)
    labels = np.array([0, 0, 0, 1])
    found = consistency(vectors, visible, labels, np.array([0, 1]))
    # part 0: in the box on 2 of the 3 images that show it; part 1: on 2 of the 2 that show it
    np.testing.assert_allclose(found.rates[0], [2 / 3, 1.0])
    np.testing.assert_allclose(found.rates[1], [0.0, 0.0])
    assert found.consistent.tolist() == [True, False]
    assert found.score == pytest.approx(50.0)
    assert found.images.tolist() == [3, 1]


def test_a_part_never_annotated_rates_zero_not_a_division_by_zero():
    rates = part_rates(np.zeros((2, 2), dtype=bool), np.array([[1, 0], [1, 0]], dtype=bool))
    np.testing.assert_array_equal(rates, [0.0, 0.0])


def test_exactly_the_threshold_is_consistent():
    vectors = np.array([[[1]], [[1]], [[1]], [[1]], [[0]]], dtype=bool)  # 4 of 5 = 0.8
    found = consistency(vectors, np.ones((5, 1), dtype=bool), np.zeros(5, int), np.array([0]))
    assert found.consistent.tolist() == [True]


def test_stability_by_hand_with_cancelling_differences():
    clean = np.zeros((4, 2, 2), dtype=bool)
    noisy = np.zeros_like(clean)
    clean[:3, 0] = [[1, 0], [1, 1], [0, 1]]
    noisy[:3, 0] = [[0, 1], [1, 1], [0, 1]]  # image 0: (1, 0) -> (0, 1), differences sum to 0
    labels = np.array([0, 0, 0, 1])
    per_prototype = stability(clean, noisy, labels, np.array([0, 1]))
    np.testing.assert_allclose(per_prototype, [2 / 3, 1.0])
    assert stability_score(per_prototype) == pytest.approx(100 * (2 / 3 + 1) / 2)
    # the naive reading the docstring warns of would call image 0 unchanged
    naive = (clean[0, 0].astype(int) - noisy[0, 0].astype(int)).sum() == 0
    assert naive and not unchanged(clean[0, 0], noisy[0, 0])


def test_the_noise_is_clipped_and_seeded():
    x = torch.zeros(2, 3, 8, 8)
    one = perturb(x, torch.Generator().manual_seed(3))
    two = perturb(x, torch.Generator().manual_seed(3))
    assert torch.equal(one, two)
    assert float(one.abs().max()) <= 0.25 and float(one.std()) > 0.1


# --- purity and background ----------------------------------------------------------------------------


def test_purity_and_object_share_by_hand():
    labels = np.array([[0, 0, 1, 0, 2], [1, 1, 1, 1, 1]])
    np.testing.assert_allclose(class_purity(labels, np.array([0, 1])), [0.6, 1.0])
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[:5] = 1  # the top half is the object
    assert box_on_mask(mask, (0, 4, 0, 10)) == 1.0
    assert box_on_mask(mask, (3, 7, 0, 10)) == 0.5
    masks = mask[None]
    images = np.zeros((1, 3), dtype=int)
    boxes = np.array([[[0, 4, 0, 10], [3, 7, 0, 10], [6, 10, 0, 10]]])  # on, half on (counts), off
    np.testing.assert_allclose(object_share(images, boxes, masks), [2 / 3])


def test_background_share_counts_mass_above_the_95th_percentile():
    cell_map = np.zeros((20, 20), dtype=np.float32)  # at input size: no resampling
    cell_map[0, :9] = 4.0  # off the object
    cell_map[10, :9] = 2.0  # on it
    mask = np.zeros((20, 20), dtype=np.uint8)
    mask[10] = 1  # row 10 is the object
    # 382 zeros: the 95th percentile (position 379.05 of 400, interpolated) is 0, so the mass is
    # 9 * 4 off the object and 9 * 2 on it
    assert map_background_share(cell_map, mask) == pytest.approx(36 / 54)
    cell_map[1, :2] = 1.0  # now 380 zeros: the percentile is 0.05 * 1 = 0.05
    assert map_background_share(cell_map, mask) == pytest.approx(
        (9 * 3.95 + 2 * 0.95) / (9 * 3.95 + 2 * 0.95 + 9 * 1.95)
    )
    assert map_background_share(np.ones((20, 20), np.float32), mask) == 0.0  # flat: no mass


# --- deletion / insertion: one known evidence block ---------------------------------------------------


def block_model() -> tuple[ProtoPNet, np.ndarray]:
    """Identity backbone, add-on ``sigmoid(relu(x))``, one grey channel, 8 x 8 cells = pixels.

    Prototype 0 (class 0) is the add-on output of a white pixel, sigmoid(1); class 0's logit is its
    similarity, class 1's is 0. The image is black but for a 2 x 2 white block: the whole evidence.
    """
    model = ProtoPNet(tiny_spec(backbone="identity", channels=1, classes=2, per_class=1, dim=1))
    with torch.no_grad():
        for conv in (model.add_on[0], model.add_on[2]):
            conv.weight.fill_(1.0)
            conv.bias.zero_()
        model.prototype_vectors.copy_(
            torch.tensor([[1 / (1 + math.exp(-1))], [0.5]]).view(2, 1, 1, 1)
        )
        model.class_weights.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    image = np.zeros((8, 8, 1), dtype=np.uint8)
    image[2:4, 5:7] = 255
    return model.eval(), image


def similarity(distance: float) -> float:
    return math.log((distance + 1) / (distance + 1e-4))


def test_deletion_of_a_one_block_model_by_hand():
    model, image = block_model()
    x = model.preprocess([image])
    with torch.no_grad():
        out = model(x)
    maps = out.similarity_maps[0].numpy()
    order = evidence_order(evidence_map(maps, model.class_weights.detach().numpy(), 0, (8, 8)))
    block = {2 * 8 + 5, 2 * 8 + 6, 3 * 8 + 5, 3 * 8 + 6}
    assert set(order[:4].tolist()) == block  # the evidence goes first

    def logits(batch: torch.Tensor) -> torch.Tensor:
        return model(batch).logits

    curves = batch_curves(logits, x, order[None], np.array([0]), steps=16)
    p_full = 1 / (1 + math.exp(-similarity(0.0)))
    white, black = 1 / (1 + math.exp(-1)), 0.5  # add-on outputs of a white and a black pixel
    p_none = 1 / (1 + math.exp(-similarity((white - black) ** 2)))
    # 64 pixels in 16 steps: step 1 deletes exactly the block; deleting black pixels changes nothing
    expected = [p_full] + [p_none] * 16
    np.testing.assert_allclose(curves["deletion"][0], expected, rtol=1e-5)
    assert auc(curves["deletion"])[0] == pytest.approx((p_full + p_none) / 32 + p_none * 15 / 16)
    random_order = np.random.default_rng(0).permutation(64)[None]
    random_curves = batch_curves(logits, x, random_order, np.array([0]), steps=16)
    assert auc(random_curves["deletion"])[0] > auc(curves["deletion"])[0]
    assert auc(curves["insertion"])[0] >= auc(random_curves["insertion"])[0]


def test_auc_of_a_constant_curve_is_the_constant():
    assert auc(np.full((1, 17), 0.3))[0] == pytest.approx(0.3)
    assert auc(np.array([[1.0, 0.0]]))[0] == pytest.approx(0.5)
