"""Which annotated object parts fall inside a prototype's box on an image (EvalProtoPNet's part vector).

Huang et al., "Evaluation and Improvement of Interpretability for Self-Explainable Part-Prototype
Networks" (CVPR 2023; code ``hqhQAQ/EvalProtoPNet``, ``util/eval_interpretability.py``): the
prototype's activation map on an image is upsampled bicubically to the input size (``cv2.resize``,
``INTER_CUBIC``); the first location of its maximum (row-major) is the centre of a box of half size
36 px at 224 px input, ``(max(0, y - h), min(S, y + h), max(0, x - h), min(S, x + h))``; a part is
*in* the box when its keypoint ``(x, y)``, truncated to whole pixels, satisfies ``y0 <= y <= y1``
and ``x0 <= x <= x1`` (both ends included, as their ``in_bbox``). The result for one (prototype,
image) pair is a 0/1 vector over the parts: the *part vector* that consistency and stability read.

The half size scales with the input (``round(36 * side / 224)``: 10 px at 64 px), as METHOD.md
asks ("72 x 72 on 224, scaled proportionally").
"""

from __future__ import annotations

import numpy as np

from explorer.boxes import upsample_map

HALF_SIZE_AT_224 = 36


def half_size(input_size: tuple[int, int]) -> int:
    """The box's half size for an input of ``(height, width)``: 36 px at 224, scaled by the shorter
    side (at least 1 px)."""
    return max(1, round(HALF_SIZE_AT_224 * min(input_size) / 224))


def peak_location(cell_map: np.ndarray, input_size: tuple[int, int]) -> tuple[int, int]:
    """``(y, x)`` of the first maximum of the bicubically upsampled map (EvalProtoPNet's
    ``np.where(map == map.max())[0]`` pair)."""
    return first_maximum(upsample_map(cell_map, input_size))


def first_maximum(upsampled: np.ndarray) -> tuple[int, int]:
    """``(y, x)`` of the first maximum (row-major) of a map already at input size."""
    y, x = np.unravel_index(int(np.argmax(upsampled)), upsampled.shape)
    return int(y), int(x)


def peak_box(
    peak: tuple[int, int], half: int, input_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` around a peak, clipped to the image; both bounds *inclusive* (EvalProtoPNet
    compares with ``<=`` at both ends)."""
    (y, x), (height, width) = peak, input_size
    return max(0, y - half), min(height, y + half), max(0, x - half), min(width, x + half)


def parts_in_box(
    keypoints: np.ndarray, visible: np.ndarray, box: tuple[int, int, int, int]
) -> np.ndarray:
    """``[K]`` bool: which visible parts' keypoints lie in ``box`` (inclusive bounds).

    Args:
        keypoints: ``[K, 2]`` ``(x, y)`` pixel coordinates at model-input size (NaN where absent).
        visible: ``[K]`` bool, the parts annotated on this image.
        box: ``(y0, y1, x0, x1)`` from :func:`peak_box`.
    """
    y0, y1, x0, x1 = box
    points = np.nan_to_num(np.asarray(keypoints, dtype=np.float64), nan=-1.0)
    x = np.trunc(points[:, 0])
    y = np.trunc(points[:, 1])
    return np.asarray(visible, dtype=bool) & (y >= y0) & (y <= y1) & (x >= x0) & (x <= x1)


def part_vector(
    upsampled: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, half: int
) -> np.ndarray:
    """``[K]`` the part vector of one (image, prototype) pair from its map upsampled to the input."""
    box = peak_box(first_maximum(upsampled), half, upsampled.shape)
    return parts_in_box(keypoints, visible, box)


def part_vectors(
    maps: np.ndarray,
    keypoints: np.ndarray,
    visible: np.ndarray,
    input_size: tuple[int, int],
    half: int | None = None,
) -> np.ndarray:
    """The part vectors of many (image, prototype) pairs.

    Args:
        maps: ``[N, P, h, w]`` activation maps (higher = more active).
        keypoints: ``[N, K, 2]`` ``(x, y)`` at input size.
        visible: ``[N, K]`` bool.
        input_size: ``(H, W)`` the maps are upsampled to.
        half: the box's half size (default :func:`half_size`).

    Returns:
        ``[N, P, K]`` bool.
    """
    half = half_size(input_size) if half is None else half
    num_images, num_prototypes = maps.shape[:2]
    out = np.zeros((num_images, num_prototypes, keypoints.shape[1]), dtype=bool)
    for i in range(num_images):
        for j in range(num_prototypes):
            upsampled = upsample_map(maps[i, j], input_size)
            out[i, j] = part_vector(upsampled, keypoints[i], visible[i], half)
    return out
