"""Per-match robustness badges: a hand-weighted model built to be JPEG-sensitive flips to *fragile*
on the JPEG check, a flat match stays robust, a shift by one cell is followed, and pixels outside
the box cannot move a model whose cells see one pixel each."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.analysis.match_robustness import (
    MAX_CHANGE,
    PERTURBATIONS,
    jpeg,
    match_robustness,
    outside_box,
    shifted_right,
    with_noise,
)
from explorer.boxes import high_activation_box, upsample_map
from explorer.models.protopnet import ProtoPNet
from tests.conftest import tiny_spec

RED = (255, 0, 0)
GREY = 128


def colour_model(size: int = 16) -> ProtoPNet:
    """Identity backbone (a cell is a pixel), add-on ``sigmoid(relu(x))`` per channel, prototype 0
    the add-on output of a pure red pixel: similarity log(1e4) on pure red, less on anything else."""
    model = ProtoPNet(
        tiny_spec(backbone="identity", channels=3, classes=2, per_class=1, dim=3, size=size)
    )
    with torch.no_grad():
        for conv in (model.add_on[0], model.add_on[2]):
            conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            conv.bias.zero_()
        red = torch.sigmoid(torch.tensor([1.0, 0.0, 0.0]))
        model.prototype_vectors.copy_(torch.stack([red, torch.full((3,), 0.5)]).view(2, 3, 1, 1))
    return model.eval()


def box_of(size: int):
    return lambda cell_map: high_activation_box(upsample_map(cell_map, (size, size)))


def test_one_red_pixel_is_jpeg_fragile():
    image = np.full((16, 16, 3), GREY, dtype=np.uint8)
    image[5, 6] = RED  # JPEG subsamples colour 2 x 2: one pixel's red is smeared away
    (badge,) = match_robustness(colour_model(), image, [0], box_of(16))
    assert badge.score == pytest.approx(math.log(1e4), rel=1e-5)
    assert badge.cell == (5, 6)
    assert badge.check("jpeg").change > MAX_CHANGE and badge.check("jpeg").fragile
    assert badge.verdict == "fragile" and "jpeg" in badge.fragile_checks
    shift = badge.check("shift")  # an exact one-pixel shift: the match follows to the next cell
    assert (
        shift.cell == (5, 7) and shift.change == pytest.approx(0.0, abs=1e-6) and not shift.fragile
    )
    outside = badge.check("outside")  # cells see one pixel: noise outside the box cannot reach it
    assert outside.change == pytest.approx(0.0, abs=1e-6) and not outside.fragile


def test_a_flat_red_block_survives_jpeg():
    image = np.full((16, 16, 3), GREY, dtype=np.uint8)
    image[:8, :8] = RED  # one whole JPEG block: flat colour survives compression
    (badge,) = match_robustness(colour_model(), image, [0], box_of(16))
    assert not badge.check("jpeg").fragile
    assert badge.check("jpeg").change < MAX_CHANGE


def test_the_badge_lists_every_check_and_states_its_rule():
    image = np.full((16, 16, 3), GREY, dtype=np.uint8)
    image[:8, :8] = RED
    (badge,) = match_robustness(colour_model(), image, [0], box_of(16))
    record = badge.to_dict()
    assert list(record["checks"]) == [p.name for p in PERTURBATIONS]
    assert "20%" in record["rule"] and record["verdict"] in ("robust", "fragile")


def test_perturbations_by_hand():
    rng = np.random.default_rng(0)
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    moved = shifted_right(image, 2)
    np.testing.assert_array_equal(moved[:, 2:], image[:, :-2])
    np.testing.assert_array_equal(moved[:, :2], np.repeat(image[:, :1], 2, axis=1))
    where = outside_box((4, 6), (1, 3, 2, 5))
    assert where.sum() == 24 - 6
    noisy = with_noise(image, 0.5, rng, where)
    np.testing.assert_array_equal(noisy[1:3, 2:5], image[1:3, 2:5])  # the box is untouched
    assert (noisy[where] != image[where]).any()
    grey = np.full((16, 16, 1), 100, dtype=np.uint8)
    assert jpeg(grey).shape == (16, 16, 1)


def test_a_plateau_is_not_a_move_but_a_new_peak_is():
    from explorer.analysis.match_robustness import cells_off

    flat = np.zeros((6, 6))
    flat[:3, :3] = 9.0  # equal matches over a region: the expected cell is among them
    assert cells_off(flat, (2, 2)) == 0
    moved = np.ones((6, 6))
    moved[5, 5] = 9.0  # the only good match is four cells away
    assert cells_off(moved, (1, 1)) == 4
