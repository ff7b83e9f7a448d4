"""Boxes, crops and enlargements of RGB uint8 images."""

from __future__ import annotations

import cv2
import numpy as np

from explorer.images import as_rgb

BOX_COLOUR = (255, 221, 0)  # yellow: visible on grey, colour and dark images


def enlarge(image: np.ndarray, min_side: int = 224) -> np.ndarray:
    """Nearest-neighbour enlargement of a small image so its short side is at least ``min_side``."""
    factor = max(1, int(np.ceil(min_side / min(image.shape[:2]))))
    if factor == 1:
        return image
    return cv2.resize(
        image, (image.shape[1] * factor, image.shape[0] * factor), interpolation=cv2.INTER_NEAREST
    )


def draw_box(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    size: tuple[int, int],
    colour: tuple[int, int, int] = BOX_COLOUR,
) -> np.ndarray:
    """Draws a ``(y0, y1, x0, x1)`` box given in ``size`` (model-input) pixels onto an RGB copy."""
    out = as_rgb(image).copy()
    sy, sx = out.shape[0] / size[0], out.shape[1] / size[1]
    y0, y1, x0, x1 = box
    thickness = max(1, round(min(out.shape[:2]) / 112))
    cv2.rectangle(
        out,
        (int(x0 * sx), int(y0 * sy)),
        (max(int(x0 * sx), int(x1 * sx) - 1), max(int(y0 * sy), int(y1 * sy) - 1)),
        colour,
        thickness,
    )
    return out
