"""Upsampled activation maps and ProtoPNet's 95th-percentile boxes."""

from __future__ import annotations

import cv2
import numpy as np

BOX_PERCENTILE = 95.0


def upsample_map(cell_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic upsampling of a ``[h, w]`` cell map to ``(height, width)``, as ProtoPNet does."""
    height, width = size
    return cv2.resize(
        np.asarray(cell_map, dtype=np.float32), (width, height), interpolation=cv2.INTER_CUBIC
    )


def high_activation_box(
    activation: np.ndarray, percentile: float = BOX_PERCENTILE
) -> tuple[int, int, int, int]:
    """The tight box around pixels at or above the ``percentile`` of an upsampled map.

    Same semantics as ProtoPNet's ``find_high_activation_crop``: a pixel is in the mask when it is not
    below the threshold; returns ``(y0, y1, x0, x1)`` with exclusive upper bounds.
    """
    mask = activation >= np.percentile(activation, percentile)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def peak_region_box(
    activation: np.ndarray, percentile: float = BOX_PERCENTILE
) -> tuple[int, int, int, int]:
    """The tight box of the one connected region (8-connected) of pixels at or above the
    ``percentile`` that holds the map's maximum, ``(y0, y1, x0, x1)`` with exclusive upper bounds.

    :func:`high_activation_box` boxes every such pixel, so a map with two peaks (a marker in a corner
    and the object) gets one box spanning both. ProtoPDebug's cut-out extraction splits the mask into
    its connected regions (``cut_and_save_patches_contours``, external contours) and a reviewer
    judges each; this is the region of the peak.
    """
    mask = (activation >= np.percentile(activation, percentile)).astype(np.uint8)
    _, regions = cv2.connectedComponents(mask, connectivity=8)
    peak = np.unravel_index(int(np.argmax(activation)), activation.shape)
    rows, cols = np.nonzero(regions == regions[peak])
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
