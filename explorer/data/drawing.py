"""Drawing shared by the known-answer generators: colours of a given hue, saturation and luma, and
anti-aliased objects rasterised from their outline."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])
"""Luma weights, ``Y = 0.299 R + 0.587 G + 0.114 B``."""

_SHIFT = 4  # sub-pixel bits for cv2.fillPoly
_SUPERSAMPLE = 8  # anti-aliasing by area-averaging an 8x rasterisation


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV to RGB conversion.

    Args:
        h: hues in degrees, any shape.
        s: saturations in ``[0, 1]``, same shape.
        v: values in ``[0, 1]``, same shape.

    Returns:
        ``[..., 3]`` float64 RGB in ``[0, 1]``.
    """
    hp = np.mod(h, 360.0) / 60.0
    c = v * s
    x = c * (1.0 - np.abs(np.mod(hp, 2.0) - 1.0))
    zero = np.zeros_like(c)
    sector = np.floor(hp).astype(np.int64) % 6
    candidates = np.stack(
        [
            np.stack([c, x, zero], -1),
            np.stack([x, c, zero], -1),
            np.stack([zero, c, x], -1),
            np.stack([zero, x, c], -1),
            np.stack([x, zero, c], -1),
            np.stack([c, zero, x], -1),
        ],
        0,
    )
    rgb = np.take_along_axis(candidates, sector[None, ..., None].repeat(3, -1), 0)[0]
    return rgb + (v - c)[..., None]


def luma_reach(h: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The largest luma a colour of HSV hue ``h`` and saturation ``s`` can have (at value 1)."""
    return hsv_to_rgb(h, s, np.ones_like(h)) @ LUMA


def colour_with_luma(h: np.ndarray, s: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """RGB colours with the given HSV hue and saturation and the given luma.

    The colour is ``hsv(h, s, 1)`` scaled to the luma, which keeps its hue and saturation exactly.

    Args:
        h: hues in degrees, ``[N]``.
        s: HSV saturations, ``[N]``.
        luma: target luma ``0.299 R + 0.587 G + 0.114 B``, ``[N]``.

    Returns:
        ``[N, 3]`` RGB. A channel goes above 1 only if the luma cannot be reached
        (:func:`luma_reach`).
    """
    unit = hsv_to_rgb(h, s, np.ones_like(h))
    return unit * (luma / (unit @ LUMA))[:, None]


def render_object(
    poly: np.ndarray, theta: float, cx: float, cy: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rotates and places a local outline and rasterises its anti-aliased mask.

    Coverage comes from an 8x supersampled fill averaged down (``cv2.fillPoly``'s own
    ``LINE_AA`` grows shapes by about half a pixel, which would shift the outline
    off the keypoints).

    Args:
        poly: ``[V, 2]`` local outline.
        theta: rotation in radians.
        cx: centre x in pixels.
        cy: centre y in pixels.
        size: image side in pixels.

    Returns:
        The ``[size, size]`` uint8 coverage (0-255) and the rotation matrix ``[2, 2]``.
    """
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    pts = poly @ rot.T + np.array([cx, cy])
    hi_res = (pts + 0.5) * _SUPERSAMPLE - 0.5  # pixel centres stay at integer coordinates
    fixed = np.round(hi_res * (1 << _SHIFT)).astype(np.int32)
    canvas = np.zeros((size * _SUPERSAMPLE, size * _SUPERSAMPLE), np.uint8)
    cv2.fillPoly(canvas, [fixed], 255, lineType=cv2.LINE_8, shift=_SHIFT)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA), rot


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box ``(x0, y0, x1, y1)`` of a boolean mask, ``x1``/``y1`` exclusive."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@dataclass(frozen=True)
class ClassDraw:
    """The opening every known-answer generator shares: the checks' outcome, the seeded generator,
    a deterministic shuffle of ``n_per_class`` labels per class and, per class, the images that
    show its value (its own images; with ``flip``, the others).

    Every parameter is then drawn for every image, in a fixed order, with :meth:`uniform` or
    :attr:`rng`; the class only selects which value is used (``np.where(cls["hue"], ...)``).
    """

    rng: np.random.Generator
    labels: np.ndarray
    cls: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        return len(self.labels)

    def uniform(self, bounds: tuple[float, float]) -> np.ndarray:
        """One value per image, uniform in ``bounds``."""
        return self.rng.uniform(bounds[0], bounds[1], self.n)


FLIPPABLE: tuple[str, ...] = ("hue", "saturation", "contrast", "texture", "shape")
"""The attributes a known-answer generator can draw against the class (``flip``)."""


def draw_classes(
    class_names: tuple[str, ...],
    n_per_class: int,
    seed: int,
    size: int,
    min_size: int,
    flip: Collection[str] = (),
) -> ClassDraw:
    """Checks a generator's arguments and draws its labels (see :class:`ClassDraw`).

    ``flip``: attributes whose value each image takes *against* its class (exact counterfactuals):
    ``cls[a]`` then selects the images that do *not* belong to class ``a``, so an image of that
    class shows the base value it drew and every other image the class value it drew. The labels
    and every draw stay the same.

    Raises:
        ValueError: a negative ``n_per_class``, a ``size`` below ``min_size``, or a ``flip`` entry
            that is not one of :data:`FLIPPABLE`.
    """
    unknown = sorted(set(flip) - set(FLIPPABLE))
    if unknown:
        raise ValueError(f"flip must name attributes among {', '.join(FLIPPABLE)}, got {unknown}")
    if n_per_class < 0:
        raise ValueError(f"n_per_class must be >= 0, got {n_per_class}")
    if size < min_size:
        raise ValueError(f"size must be >= {min_size}, got {size}")
    rng = np.random.default_rng(seed)
    n_classes = len(class_names)
    labels = rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class))
    shown = {
        name: (labels != i) if name in flip else (labels == i) for i, name in enumerate(class_names)
    }
    return ClassDraw(rng, labels, shown)
