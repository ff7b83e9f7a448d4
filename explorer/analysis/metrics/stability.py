"""Stability: does a prototype keep landing on the same parts when imperceptible noise is added?

Huang et al., CVPR 2023 (``evaluate_stability`` and ``perturb_img`` in ``hqhQAQ/EvalProtoPNet``):
Gaussian noise ``N(0, 0.2)``, clipped to ``[-0.25, 0.25]``, is added to the *normalised* input; for
prototype ``p`` of class ``c``, over the test images of class ``c``, the share of images whose part
vector (:mod:`explorer.analysis.metrics.parts`) is exactly unchanged. The model's score is the mean
over prototypes, x 100.

"Unchanged" is exact equality of the 0/1 vectors (``np.array_equal`` per image). A plain sum of
differences would call ``(1, 0) -> (0, 1)`` unchanged, the two differences cancelling; EvalProtoPNet
sums absolute differences, which is the same test as equality.
"""

from __future__ import annotations

import numpy as np
import torch

NOISE_STD = 0.2
NOISE_CLIP = 0.25


def perturb(
    x: torch.Tensor, generator: torch.Generator, std: float = NOISE_STD, clip: float = NOISE_CLIP
) -> torch.Tensor:
    """``x`` (normalised) plus Gaussian noise of ``std`` clipped to ``[-clip, clip]``."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).clamp_(-clip, clip)
    return x + noise.to(x.device)


def unchanged(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """``[...]`` bool: the part vectors (last axis) are exactly equal."""
    return np.all(np.asarray(clean, dtype=bool) == np.asarray(noisy, dtype=bool), axis=-1)


def stability(
    clean: np.ndarray, noisy: np.ndarray, labels: np.ndarray, prototype_classes: np.ndarray
) -> np.ndarray:
    """``[P]`` each prototype's share of its class's images with an unchanged part vector.

    Args:
        clean: ``[N, P, K]`` part vectors on the images.
        noisy: ``[N, P, K]`` part vectors on the same images with noise.
        labels: ``[N]`` true classes.
        prototype_classes: ``[P]``.
    """
    same = unchanged(clean, noisy)  # [N, P]
    out = np.full(same.shape[1], np.nan)
    for p, cls in enumerate(np.asarray(prototype_classes)):
        own = np.asarray(labels) == cls
        if own.any():
            out[p] = float(same[own, p].mean())
    return out


def stability_score(per_prototype: np.ndarray) -> float:
    """Mean over prototypes (those with images of their class), x 100."""
    values = per_prototype[~np.isnan(per_prototype)]
    return float(values.mean() * 100) if len(values) else float("nan")
