"""Background share: how much of a prototype's activation lies outside the object.

For prototype ``p`` of class ``c`` and each test image of class ``c`` with an object mask ``M``, the
activation map upsampled to the input (bicubic, as every view), ``A``, and its mass above its own
95th percentile ``q`` (the region ProtoPNet draws its box around; a flat map carries no mass):

    share(p, image) = sum_{M = 0} max(A - q, 0) / sum max(A - q, 0)       (0 when A is flat)

and the prototype's background share is the mean over those images. A prototype that reads the
object has a share near 0, one that reads a corner marker or the backdrop a share near 1. Measured
against the mass above the map's *minimum*, every prototype of the shipped synthetic model read
0.64 to 0.97 (its 8 x 8 maps upsample smoothly over an image whose object covers 8 % of it); above
the 95th percentile they spread from 0.02 to 0.99 (docs/method.md §9). (A reading of "attention
outside the object" as in the debugging literature, e.g. Bontempelli et al., ICLR 2023, and Sacha
et al., AAAI 2024; the exact form here is ours.)
"""

from __future__ import annotations

import numpy as np

from explorer.boxes import BOX_PERCENTILE, upsample_map


def map_background_share(cell_map: np.ndarray, mask: np.ndarray) -> float:
    """One map's share of activation mass (above its 95th percentile) outside ``mask``."""
    return upsampled_background_share(upsample_map(cell_map, mask.shape), mask)


def upsampled_background_share(upsampled: np.ndarray, mask: np.ndarray) -> float:
    """:func:`map_background_share` of a map already at the mask's size."""
    upsampled = np.asarray(upsampled, dtype=np.float64)
    mass = np.maximum(upsampled - np.percentile(upsampled, BOX_PERCENTILE), 0.0)
    total = mass.sum()
    if total <= 0:
        return 0.0
    return float(mass[np.asarray(mask) == 0].sum() / total)


def background_share(
    maps: np.ndarray, masks: np.ndarray, labels: np.ndarray, prototype_classes: np.ndarray
) -> np.ndarray:
    """``[P]`` mean background share of each prototype over its class's images (NaN without any).

    Args:
        maps: ``[N, P, h, w]`` activation maps.
        masks: ``[N, H, W]`` object masks at input size.
        labels: ``[N]``.
        prototype_classes: ``[P]``.
    """
    out = np.full(maps.shape[1], np.nan)
    for p, cls in enumerate(np.asarray(prototype_classes)):
        own = np.flatnonzero(np.asarray(labels) == cls)
        if len(own):
            out[p] = float(np.mean([map_background_share(maps[i, p], masks[i]) for i in own]))
    return out
