"""Contributions: how much each prototype adds to each class's logit (similarity x weight)."""

from __future__ import annotations

import numpy as np


def contributions(scores: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``[C, P]`` contribution of prototype ``j`` to class ``c``: ``W[c, j] * s_j``.

    Each row sums to that class's logit (the last layer has no bias).

    Args:
        scores: ``[P]`` prototype scores of one image.
        weight: ``[C, P]`` last-layer weights.
    """
    return np.asarray(weight, dtype=np.float64) * np.asarray(scores, dtype=np.float64)[None, :]


def top_contributors(row: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest contributions in a ``[P]`` row, largest first (ties by index)."""
    order = np.lexsort((np.arange(len(row)), -row))
    return order[: max(0, k)]
