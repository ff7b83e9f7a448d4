"""Deletion and insertion: is the model's own evidence where the model's decision comes from?

Petsiuk et al., "RISE: Randomized Input Sampling for Explanation of Black-box Models" (BMVC 2018,
§4.1, their ``CausalMetric``): pixels are taken away (deletion) or put back (insertion) in the order
of an importance map, most important first, and the probability of the explained class is read after
each step; the area under that curve over the fraction of pixels changed (trapezoid rule on
``[0, 1]``) is the score. Deletion: lower is better (the probability falls fast when the evidence
goes first); insertion: higher is better. Both beside the same curves for a *random* pixel order
(one seeded permutation per image), which is what an importance map has to beat.

Here:

* the importance map is the model's own evidence for its predicted class ``c``:
  ``E(y, x) = sum_j W[c, j] * U(s_j)(y, x)``, the last layer's weights times each prototype's
  similarity map upsampled bicubically to the input (where each prototype would add to the logit);
* a deleted pixel takes the value 0 of the *normalised* input in every channel (the data set's mean
  colour; RISE's ``torch.zeros_like`` substrate on its normalised tensors);
* insertion starts from the image blurred by a Gaussian of sigma = 1/16 of the shorter side (4 px at
  64 px, 14 px at 224; RISE's own ``gkern(11, 5)`` is sigma = 1 px, which at 64 px leaves the image
  nearly intact) and puts the original pixels back;
* ``steps`` equal steps (RISE moves ``side`` pixels a step, ``side`` steps in all; 16 steps read the
  same curve at 17 points, a trapezoid error well under the differences reported);
* the probability is the softmax of the logits at the explained class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from explorer.boxes import upsample_map

STEPS = 16
MAX_BATCH = 64
"""Images per forward pass of the curves (on 2 idle cores the shipped synthetic model ran 2.0-2.6 ms
per image at 32-64 and 2.9 ms at 512, and 4.9 against 9.4 ms while other jobs ran: small batches
stay in cache)."""
MODES = ("deletion", "insertion")


@dataclass(frozen=True)
class Curves:
    """Deletion and insertion curves of some images, by the evidence order and by a random one.

    Attributes:
        deletion: ``[N, steps + 1]`` probability of the explained class as evidence is removed.
        insertion: ``[N, steps + 1]`` as evidence is put back into the blurred image.
        random_deletion: ``[N, steps + 1]`` the same with a random pixel order.
        random_insertion: ``[N, steps + 1]``.
        images: ``[N]`` which images of the split were read.
        classes: ``[N]`` the class explained on each (the model's prediction on the clean image).
    """

    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    images: np.ndarray
    classes: np.ndarray

    @property
    def steps(self) -> int:
        return self.deletion.shape[1] - 1

    def auc(self, which: str) -> float:
        """Mean area under one family of curves (``deletion``, ``random_insertion``, ...)."""
        return float(auc(getattr(self, which)).mean()) if len(self.images) else float("nan")


def auc(curves: np.ndarray) -> np.ndarray:
    """Area under ``[..., steps + 1]`` curves sampled evenly on ``[0, 1]`` (trapezoid rule)."""
    values = np.asarray(curves, dtype=np.float64)
    steps = values.shape[-1] - 1
    return (values[..., 1:] + values[..., :-1]).sum(axis=-1) / (2 * steps)


def evidence_map(
    maps: np.ndarray, weight: np.ndarray, class_index: int, input_size: tuple[int, int]
) -> np.ndarray:
    """``[H, W]`` ``sum_j W[c, j] * U(s_j)``: the model's evidence for class ``c`` at each pixel.

    Args:
        maps: ``[P, h, w]`` one image's similarity maps.
        weight: ``[C, P]`` last-layer weights.
        class_index: the class explained.
        input_size: ``(H, W)``.
    """
    upsampled = np.stack([upsample_map(m, input_size) for m in maps]).astype(np.float64)
    return np.tensordot(np.asarray(weight, dtype=np.float64)[class_index], upsampled, axes=1)


def evidence_order(importance: np.ndarray) -> np.ndarray:
    """Flat pixel indices, most important first (ties in row-major order)."""
    return np.argsort(-np.asarray(importance).reshape(-1), kind="stable")


def blurred(x: torch.Tensor) -> torch.Tensor:
    """The insertion start: each image of ``[B, C, H, W]`` blurred, sigma = shorter side / 16."""
    sigma = min(x.shape[-2:]) / 16
    array = x.detach().cpu().numpy()
    out = np.empty_like(array)
    for b in range(array.shape[0]):
        for c in range(array.shape[1]):
            out[b, c] = cv2.GaussianBlur(array[b, c], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return torch.from_numpy(out).to(x.device)


def _ranks(orders: np.ndarray) -> np.ndarray:
    ranks = np.empty_like(orders)
    rows = np.arange(orders.shape[0])[:, None]
    ranks[rows, orders] = np.arange(orders.shape[1])[None, :]
    return ranks


def curve_inputs(
    x: torch.Tensor, start: torch.Tensor, finish: torch.Tensor, orders: np.ndarray, steps: int
) -> torch.Tensor:
    """``[B, steps + 1, C, H, W]``: at step ``t`` the first ``round(t * HW / steps)`` pixels of each
    image's order show ``finish``, the others ``start``.

    Deletion: ``start = x``, ``finish`` = the substrate; insertion: ``start`` = blurred, ``finish = x``.
    """
    batch, _, height, width = x.shape
    pixels = height * width
    counts = torch.tensor([round(t * pixels / steps) for t in range(steps + 1)])
    ranks = torch.from_numpy(_ranks(orders))  # [B, HW]
    changed = ranks[:, None, :] < counts[None, :, None]  # [B, S+1, HW]
    changed = changed.view(batch, steps + 1, 1, height, width).to(x.device)
    return torch.where(changed, finish[:, None], start[:, None])


def class_probability(
    forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, classes: torch.Tensor
) -> np.ndarray:
    """``[B, S]`` softmax probability of each image's class for ``[B, S, C, H, W]`` inputs."""
    batch, steps = inputs.shape[:2]
    flat = inputs.reshape(batch * steps, *inputs.shape[2:])
    out = []
    for first in range(0, len(flat), MAX_BATCH):
        out.append(torch.softmax(forward(flat[first : first + MAX_BATCH]).double(), dim=1))
    probs = torch.cat(out).view(batch, steps, -1)
    index = classes.view(batch, 1, 1).expand(batch, steps, 1).to(probs.device)
    return probs.gather(2, index)[..., 0].cpu().numpy()


def batch_curves(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    orders: np.ndarray,
    classes: np.ndarray,
    steps: int = STEPS,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves of one batch for given pixel orders.

    Args:
        forward: normalised batch -> logits.
        x: ``[B, C, H, W]`` normalised images.
        orders: ``[B, H * W]`` pixel order per image, first removed first.
        classes: ``[B]`` the class explained per image.
        steps: number of equal steps.
    """
    target = torch.as_tensor(classes, dtype=torch.long)
    substrate = torch.zeros_like(x)
    out = {}
    with torch.no_grad():
        out["deletion"] = class_probability(
            forward, curve_inputs(x, x, substrate, orders, steps), target
        )
        out["insertion"] = class_probability(
            forward, curve_inputs(x, blurred(x), x, orders, steps), target
        )
    return out
