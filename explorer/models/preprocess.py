"""Image → tensor, the one path every image takes into a model (training, push and inference alike)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from explorer.spec import ModelSpec


def to_model_pixels(image: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Converts one RGB ``[H, W, 3]`` or grey ``[H, W]`` uint8 image to the model's colour and size.

    Returns:
        uint8 ``[h, w, C]`` at the model's input size (grey repeated when a 3-channel net sees grey).
    """
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and (spec.grey_input or spec.channels == 1):
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    height, width = spec.input_size
    if image.shape[:2] != (height, width):
        shrinking = image.shape[0] > height or image.shape[1] > width
        image = cv2.resize(
            image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] != spec.channels:
        image = np.repeat(image, spec.channels, axis=2)
    return image


def preprocess(images: Sequence[np.ndarray] | np.ndarray, spec: ModelSpec) -> torch.Tensor:
    """Normalises a batch of uint8 images for the network.

    Args:
        images: RGB ``[H, W, 3]`` or grey ``[H, W]`` uint8 images (any sizes), or a stacked array.
        spec: the model's specification (size, colour, mean, std).

    Returns:
        float32 ``[B, C, h, w]``.
    """
    pixels = np.stack([to_model_pixels(np.asarray(im), spec) for im in images])  # [B, h, w, C]
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1)
    return (batch - mean) / std


FORWARD_BATCH_ELEMENTS = (
    4 * 3 * 224 * 224
)  # measured: 4 images per pass is fastest at 224 px on 2 cores


def forward_batch_size(spec: ModelSpec, cap: int = 512) -> int:
    """Images per forward pass for batched analyses: large batches of large inputs run slower per image
    on CPU caches (EfficientNet-Lite0 at 224 px: 11 ms/img at 4 per pass, 32 ms/img at 32), so the
    batch holds about as many input values as 4 images of 224 x 224 x 3."""
    values = spec.channels * spec.input_size[0] * spec.input_size[1]
    return max(1, min(cap, FORWARD_BATCH_ELEMENTS // values))
