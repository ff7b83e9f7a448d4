"""Pictures of "this looks like that" pairs and of prototypes (RGB uint8 arrays)."""

from __future__ import annotations

import numpy as np

from explorer.analysis.explanation import Explanation, PatchPair
from explorer.images import as_rgb
from explorer.viz.heatmaps import ACTIVATION_COLORMAP, overlay
from explorer.viz.overlays import draw_box, enlarge

DISPLAY_SIDE = 224
GAP = 8


def activation_picture(
    pixels: np.ndarray,
    activation: np.ndarray,
    box: tuple[int, int, int, int] | None,
    colormap: str = ACTIVATION_COLORMAP,
) -> np.ndarray:
    """An input-size image, enlarged for display, with an activation heatmap and its box."""
    size = pixels.shape[:2]
    picture = overlay(enlarge(as_rgb(pixels), DISPLAY_SIDE), activation, colormap=colormap)
    return draw_box(picture, box, size) if box is not None else picture


def boxed_picture(pixels: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """An input-size image enlarged for display, with a box."""
    picture = enlarge(as_rgb(pixels), DISPLAY_SIDE)
    return draw_box(picture, box, pixels.shape[:2]) if box is not None else picture


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two RGB pictures next to each other on white, top-aligned."""
    height = max(left.shape[0], right.shape[0])
    canvas = np.full((height, left.shape[1] + GAP + right.shape[1], 3), 255, dtype=np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] + GAP :] = right
    return canvas


def pair_picture(
    explanation: Explanation,
    pair: PatchPair,
    source: np.ndarray | None,
    colormap: str = ACTIVATION_COLORMAP,
) -> np.ndarray:
    """Left: the image with the prototype's activation and box. Right: the prototype's source
    training image with its box (when the model folder has it)."""
    left = activation_picture(explanation.pixels, pair.activation, pair.image_box, colormap)
    if source is None:
        return left
    return side_by_side(left, boxed_picture(source, pair.source_box))


SHORT_SCORE_NAMES = {"similarity": "sim", "presence": "presence"}  # captions' word for a score


def pair_caption(explanation: Explanation, pair: PatchPair) -> str:
    names = explanation.class_names
    return (
        f"P{pair.prototype} ({names[pair.prototype_class]}): "
        f"{SHORT_SCORE_NAMES.get(explanation.activations.score_name, 'score')} {pair.similarity:.2f} × "
        f"w {pair.weight:+.2f} = {pair.contribution:+.2f}"
    )


def crop(pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The box's pixels (model-input coordinates), as RGB."""
    y0, y1, x0, x1 = box
    return as_rgb(pixels)[y0:y1, x0:x1].copy()
