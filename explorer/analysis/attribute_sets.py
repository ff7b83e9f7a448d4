"""Which modifications explain a model's matches: the reference set or our disentangled set, sized
for the model (cell size = native image pixels per feature cell)."""

from __future__ import annotations

import numpy as np
import torch

from explorer.analysis.modifications import Modification, disentangled_set, reference_set
from explorer.models.base import PrototypeModel
from explorer.models.device import model_device

MODES = ("reference", "disentangled")

SET_VERSIONS = {"reference": 1, "disentangled": 2}
"""Bumped whenever a set's default values change, so that stored global explanations computed with
the old values are not reused (disentangled 2: hue 90°, fine warp, texture σ ½ cell, contrast 0.6,
saturation 0.7, chosen on the known-answer benchmark)."""


def attributes_cache_name(mode: str, split: str) -> str:
    """The name a global explanation of ``mode`` over ``split`` is stored under in the model's cache."""
    if mode not in SET_VERSIONS:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    version = SET_VERSIONS[mode]
    return f"attributes_{mode}_{split}" if version == 1 else f"attributes_{mode}_v{version}_{split}"


def feature_grid(model: PrototypeModel) -> tuple[int, int]:
    """``(h, w)`` of the model's feature map (one forward pass of a blank input)."""
    height, width = model.spec.input_size
    blank = torch.zeros(1, model.spec.channels, height, width, device=model_device(model))
    with torch.inference_mode():
        maps = model(blank).similarity_maps
    return int(maps.shape[-2]), int(maps.shape[-1])


def cell_size(
    model: PrototypeModel, image_shape: tuple[int, ...], grid: tuple[int, int] | None = None
) -> float:
    """Native image pixels per feature cell for an image of ``image_shape`` (``[H, W, ...]``)."""
    grid = grid or feature_grid(model)
    return float(np.mean([image_shape[0] / grid[0], image_shape[1] / grid[1]]))


def modification_set(
    model: PrototypeModel,
    mode: str,
    image_shape: tuple[int, ...],
    grid: tuple[int, int] | None = None,
) -> tuple[Modification, ...]:
    """The modifications of ``mode`` for images of ``image_shape`` at native resolution.

    ``reference``: the paper's values (hue 0.1, contrast 0.45, saturation 0.7, NL-means h = 4, warp
    A = 4 px, w = 0.05) plus brightness 0.8, which the reference code computes but the paper does
    not report. ``disentangled``: ours, one attribute each, strengths tied to the cell size.
    """
    if mode == "reference":
        return reference_set()
    if mode == "disentangled":
        shape = (int(image_shape[0]), int(image_shape[1]))
        return disentangled_set(shape, cell_size(model, image_shape, grid))
    raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
