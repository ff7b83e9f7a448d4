"""ProtoPNet's loss: CE + 0.8·Cluster − 0.08·Separation + 1e-4·L1 (Chen et al., 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from explorer.models.protopnet import ProtoPNet
from explorer.types import ModelOutput


@dataclass(frozen=True)
class LossWeights:
    """Coefficients of the loss terms (the paper's values by default)."""

    cross_entropy: float = 1.0
    cluster: float = 0.8
    separation: float = -0.08
    l1: float = 1e-4


def cluster_and_separation(
    min_distances: torch.Tensor, labels: torch.Tensor, identity: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over images of the min distance to any own-class (cluster) / other-class (separation)
    prototype.

    Args:
        min_distances: ``[B, P]``.
        labels: ``[B]``.
        identity: ``[P, C]`` prototype class identity.
    """
    own = identity[:, labels].t().bool()  # [B, P]
    inf = torch.full_like(min_distances, float("inf"))
    cluster = torch.where(own, min_distances, inf).amin(dim=1).mean()
    separation = torch.where(~own, min_distances, inf).amin(dim=1).mean()
    return cluster, separation


def off_class_l1(model: ProtoPNet) -> torch.Tensor:
    """L1 norm of the last-layer weights that connect prototypes to classes other than their own."""
    off = 1 - model.prototype_class_identity.t()  # [C, P]
    return (model.last_layer.weight * off).abs().sum()


def protopnet_loss(
    model: ProtoPNet, output: ModelOutput, labels: torch.Tensor, weights: LossWeights
) -> torch.Tensor:
    """The full ProtoPNet objective for one batch."""
    cluster, separation = cluster_and_separation(
        output.min_distances, labels, model.prototype_class_identity
    )
    return (
        weights.cross_entropy * F.cross_entropy(output.logits, labels)
        + weights.cluster * cluster
        + weights.separation * separation
        + weights.l1 * off_class_l1(model)
    )
