"""ProtoPNet's forward math against answers worked out on paper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.analysis.evidence import contributions
from explorer.models.protopnet import (
    EPSILON,
    ProtoPNet,
    class_identity,
    similarity_from_distance,
    squared_distances,
)
from tests.conftest import tiny_spec

LOG_1E4 = math.log(1e4)


def hand_model() -> ProtoPNet:
    """Two classes, one prototype each, D = 2: p0 = (0, 0) of class 0, p1 = (1, 1) of class 1."""
    model = ProtoPNet(tiny_spec()).eval()
    with torch.no_grad():
        model.prototype_vectors.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1))
    return model


# Feature map [1, D=2, h=1, w=2]: cell (0, 0) = (0, 0) and cell (0, 1) = (1, 0).
FEATURES = torch.tensor([[[[0.0, 1.0]], [[0.0, 0.0]]]])


def test_similarity_at_distance_zero_is_log_1e4() -> None:
    assert similarity_from_distance(torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(
        LOG_1E4, abs=1e-12
    )


def test_similarity_is_positive_and_strictly_decreasing() -> None:
    d = torch.linspace(0, 100, 1001, dtype=torch.float64)
    s = similarity_from_distance(d)
    assert (s > 0).all() and (s.diff() < 0).all()
    assert s[10].item() == pytest.approx(math.log((1.0 + 1) / (1.0 + EPSILON)))


def test_distances_known_on_paper() -> None:
    d = squared_distances(FEATURES, torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    # p0 to cells: 0 and 1; p1 to cells: 2 and 1.
    assert d[0, :, 0, :].tolist() == [[0.0, 1.0], [2.0, 1.0]]


def test_distances_by_expansion_equal_direct_sum_and_never_negative() -> None:
    torch.manual_seed(1)
    z = torch.rand(3, 5, 4, 4)
    p = torch.rand(6, 5)
    direct = ((z[:, None] - p[None, :, :, None, None]) ** 2).sum(dim=2)
    expanded = squared_distances(z, p)
    torch.testing.assert_close(expanded, direct.double(), atol=1e-6, rtol=0)
    same = squared_distances(z, z[0, :, 1, 2][None])  # a prototype equal to a cell
    assert (same >= 0).all() and same[0, 0, 1, 2].item() == pytest.approx(0.0, abs=1e-12)


def test_head_scores_minimum_and_logits_known_on_paper() -> None:
    out = hand_model().head(FEATURES)
    s1 = math.log(2 / (1 + EPSILON))  # p1's nearest cell is at distance 1
    assert out.min_distances[0].tolist() == [0.0, 1.0]
    assert out.scores[0].tolist() == pytest.approx([LOG_1E4, s1], abs=1e-5)
    # last layer initialised +1 own class, -0.5 other class
    assert out.logits[0].tolist() == pytest.approx(
        [LOG_1E4 - 0.5 * s1, -0.5 * LOG_1E4 + s1], abs=1e-5
    )
    # the score is the maximum of the similarity map
    torch.testing.assert_close(out.similarity_maps.flatten(2).amax(2), out.scores)


def test_last_layer_initialisation_and_class_identity() -> None:
    identity = class_identity(num_classes=3, per_class=2)
    assert identity.argmax(1).tolist() == [0, 0, 1, 1, 2, 2]
    model = ProtoPNet(tiny_spec(classes=3, per_class=2))
    weight = model.last_layer.weight
    assert model.last_layer.bias is None
    assert weight.shape == (3, 6)
    assert set(weight[identity.t().bool()].tolist()) == {1.0}
    assert set(weight[~identity.t().bool()].tolist()) == {-0.5}


def test_add_on_ends_in_sigmoid_so_features_lie_in_unit_interval(random_model: ProtoPNet) -> None:
    z = random_model.conv_features(torch.randn(2, 3, 16, 16) * 10)
    assert isinstance(random_model.add_on[-1], torch.nn.Sigmoid)
    assert (z >= 0).all() and (z <= 1).all()


def test_contributions_sum_to_logits(random_model: ProtoPNet) -> None:
    torch.manual_seed(2)
    with torch.no_grad():
        random_model.last_layer.weight.normal_()
        out = random_model(torch.randn(4, 3, 16, 16))
    weight = random_model.last_layer.weight.detach().numpy()
    for b in range(4):
        c = contributions(out.scores[b].numpy(), weight)
        np.testing.assert_allclose(c.sum(axis=1), out.logits[b].numpy(), atol=1e-5)


def test_zeroing_a_prototype_column_moves_each_logit_by_its_contribution(
    random_model: ProtoPNet,
) -> None:
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        before = random_model(x)
        j = 3
        column = random_model.last_layer.weight[:, j].clone()
        random_model.last_layer.weight[:, j] = 0
        after = random_model(x)
    expected = -column[None, :] * before.scores[:, j : j + 1]  # [B, C]
    torch.testing.assert_close(after.logits - before.logits, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(after.scores, before.scores)
