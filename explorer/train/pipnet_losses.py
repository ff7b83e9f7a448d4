"""PIP-Net's training losses, as the public code computes them (github M-Nauta/PIPNet,
``pipnet/train.py``, ``calculate_loss`` and ``align_loss``; Nauta et al., CVPR 2023, §3.2).

Two augmented views of each image go through the network together; with ``z¹, z²`` the softmax
maps of the views (``[B, P, h, w]``, each cell a distribution over the ``P`` prototypes) and
``p¹, p²`` their max-pooled presence scores (``[B, P]``):

* **alignment** ``L_A = −mean_cells log(z¹_cell · sg(z²_cell) + 1e-12)``, symmetrised (each view
  against the other's *stopped-gradient* map, averaged): the same patch in two views votes for the
  same prototype;
* **tanh** ``L_T = −mean_p log(tanh(Σ_batch p_p) + 1e-8)``, averaged over the two views: every
  prototype is present somewhere in the batch (against collapse onto a few prototypes);
* **classification** ``L_C = NLL(log_softmax(log(1 + out^m)))`` over both views (``m`` the
  normalisation multiplier, 2), ``out`` the unthresholded logits: evidence grows the logit slowly.

Weights (the public code's): pretraining ``L_A·(epoch / pretrain_epochs) + 5·L_T``; training
``5·L_A + 2·L_T + 2·L_C``; its first epochs (the last layer alone) ``L_C`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

ALIGN_EPS = 1e-12
TANH_EPS = 1e-8


@dataclass(frozen=True)
class PIPNetLossWeights:
    """The training stage's coefficients (the public code's: 5, 2, 2)."""

    align: float = 5.0
    tanh: float = 2.0
    classification: float = 2.0


PRETRAIN_TANH = 5.0
"""The tanh loss weight during pretraining (the alignment weight ramps up with the epoch)."""


def align_loss(maps: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``−mean log(⟨maps_cell, target_cell⟩ + 1e-12)`` over all cells of all images; ``maps`` and
    ``target`` ``[B, P, h, w]`` (the caller detaches ``target``)."""
    a = maps.flatten(2).permute(0, 2, 1).flatten(end_dim=1)  # [B·h·w, P]
    b = target.flatten(2).permute(0, 2, 1).flatten(end_dim=1)
    return -torch.log((a * b).sum(dim=1) + ALIGN_EPS).mean()


def symmetric_align_loss(maps1: torch.Tensor, maps2: torch.Tensor) -> torch.Tensor:
    """Each view aligned to the other's stopped-gradient map, averaged."""
    return (align_loss(maps1, maps2.detach()) + align_loss(maps2, maps1.detach())) / 2


def tanh_loss(pooled1: torch.Tensor, pooled2: torch.Tensor) -> torch.Tensor:
    """``−mean_p log(tanh(Σ_batch pooled) + 1e-8)``, averaged over the two views."""
    one = torch.log(torch.tanh(pooled1.sum(dim=0)) + TANH_EPS).mean()
    two = torch.log(torch.tanh(pooled2.sum(dim=0)) + TANH_EPS).mean()
    return -(one + two) / 2


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, multiplier: float
) -> torch.Tensor:
    """NLL of ``log_softmax(log1p(logits ** multiplier))`` (``logits`` non-negative, unthresholded)."""
    return F.nll_loss(F.log_softmax(torch.log1p(logits**multiplier), dim=1), labels)


__all__ = [
    "PRETRAIN_TANH",
    "PIPNetLossWeights",
    "align_loss",
    "classification_loss",
    "symmetric_align_loss",
    "tanh_loss",
]
