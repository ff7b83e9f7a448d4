"""Procedurally generated colour dataset whose classes each differ by ONE known attribute.

This is a known-answer benchmark for attribute explanations: every class except
``base`` is the base class with exactly one visual attribute changed, so an
explanation method can be scored on whether it names that attribute.

Each image shows one object (an ellipse, or a star for the ``shape`` class) on a
low-saturation background. Colours are set in HSV hue/saturation plus a target
*luma* ``Y = 0.299 R + 0.587 G + 0.114 B`` (all in ``[0, 1]``). The object colour
is ``hsv(h, s, 1)`` scaled to that luma. Scaling keeps the HSV hue and saturation
exactly, so hue, saturation and luminance can be set independently.

Class-defining attributes (the ``base`` value is used by every class that is not
defined by that attribute):

* **hue**: base cool (green to azure), hue U[120°, 200°]; ``hue`` class warm
  (red-orange to yellow), hue U[15°, 55°].
* **saturation**: base muted, HSV S U[0.35, 0.50]; ``saturation`` class vivid,
  HSV S U[0.85, 1.00].
* **contrast**: base ``|Y_obj - Y_bg|`` U[0.05, 0.11]; ``contrast`` class
  U[0.30, 0.40] (>= 0.25 where a dark background is clipped at 0.03).
* **texture**: base smooth flat fill; ``texture`` class fine stripes,
  ``fill * (1 + 0.3 * square_wave)`` with period size/16 px (4 px at 64 px),
  random orientation and phase (mean colour unchanged).
* **shape**: base ellipse, aspect ratio U[0.7, 1.0]; ``shape`` class a star with
  5-8 spikes, inner/outer radius ratio U[0.45, 0.60], the same aspect stretch and
  the same area as the ellipse it replaces (solidity ~0.55-0.75 vs ~0.97).

The hue ranges avoid pure red and blue on purpose: a vivid pure red or blue cannot
reach the object luma range below, and the object luma must not depend on the
class.

Nuisance factors are drawn from the same distribution for every class. Every
image draws every parameter, and the class only picks which value is used, so
no nuisance parameter depends on the class:

* object luma ``Y_obj`` U[0.28, 0.42]; background luma ``Y_obj ± contrast``
  (sign random, clipped to [0.03, 0.85]). Caveat, measured: the background's lightness therefore
  is *not* class-independent — only the contrast class has very dark or very bright backgrounds, and
  a model can (and the shipped one does) learn "extreme lightness" instead of contrast
  (docs/method.md §8, the known-answer benchmark);
* object semi-major radius U[0.14, 0.20] * size, aspect ratio U[0.7, 1.0],
  rotation U[0, 2π); the star has the same area as the ellipse;
* object centre uniform in the square that keeps the largest possible star
  (and so any object) at least 1.5 px inside the image;
* background hue U[0°, 360°), saturation U[0, 0.15], a linear gradient in a
  random direction of relative strength U[0, 0.08];
* global lighting factor U[0.85, 1.0] on the whole image;
* Gaussian pixel noise, sigma U[0.01, 0.025] (in [0, 1] units), per channel.

Edges are anti-aliased (``cv2.fillPoly`` on an 8x supersampled canvas, area-averaged
down), so the object alpha is its true pixel coverage.
Extras per image:

* ``keypoints``: float32 ``[N, 5, 2]`` (x, y) pixel coordinates of
  :data:`PART_NAMES`. The centre, and the points where the object's own
  (rotated) axes cross its outline: ``top`` is local -y, ``right`` local +x,
  ``bottom`` local +y, ``left`` local -x.
* ``object_box``: int32 ``[N, 4]`` tight box ``(x0, y0, x1, y1)`` of the
  object mask (alpha >= 0.5), with ``x1``/``y1`` exclusive (slice bounds).
* ``mask`` (only with ``with_masks=True``): uint8 ``[N, size, size]`` object
  mask (1 where alpha >= 0.5).

Every class is easy to tell apart by its attribute alone, so a small CNN should
reach >= 95 % test accuracy (a 4-block, 16-64 channel CNN trained 12 epochs on
the default train split reached 99 % on the test split). Generation is deterministic: the same
``(n_per_class, split, seed, size)`` gives byte-identical arrays.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

from explorer.data.base import ImageSet
from explorer.data.drawing import colour_with_luma, draw_classes, luma_reach, render_object

CLASS_NAMES: tuple[str, ...] = ("base", "hue", "saturation", "contrast", "texture", "shape")
DEFINING_ATTRIBUTE: dict[str, str | None] = {
    "base": None,
    "hue": "hue",
    "saturation": "saturation",
    "contrast": "contrast",
    "texture": "texture",
    "shape": "shape",
}
PART_NAMES: tuple[str, ...] = ("centre", "top", "right", "bottom", "left")

# Attribute ranges: (base value, value in the attribute's own class).
HUE_COOL: tuple[float, float] = (120.0, 200.0)
HUE_WARM: tuple[float, float] = (15.0, 55.0)
SAT_MUTED: tuple[float, float] = (0.35, 0.50)
SAT_VIVID: tuple[float, float] = (0.85, 1.00)
CONTRAST_LOW: tuple[float, float] = (0.05, 0.11)
CONTRAST_HIGH: tuple[float, float] = (0.30, 0.40)
TEXTURE_AMPLITUDE: float = 0.3
STAR_SPIKES: tuple[int, int] = (5, 8)
STAR_INNER_RATIO: tuple[float, float] = (0.45, 0.60)

# Nuisance ranges, the same for every class.
OBJECT_LUMA: tuple[float, float] = (0.28, 0.42)
BG_LUMA_LIMITS: tuple[float, float] = (0.03, 0.85)
RADIUS_FRAC: tuple[float, float] = (0.14, 0.20)
ASPECT: tuple[float, float] = (0.7, 1.0)
BG_SAT: tuple[float, float] = (0.0, 0.15)
GRADIENT: tuple[float, float] = (0.0, 0.08)
LIGHTING: tuple[float, float] = (0.85, 1.0)
NOISE_SIGMA: tuple[float, float] = (0.01, 0.025)

_DEFAULTS: dict[str, tuple[int, int]] = {"train": (400, 0), "test": (100, 1)}
_ELLIPSE_VERTICES = 72
_CHUNK = 256


def _max_star_extent(radius: float) -> float:
    """Largest outer radius a star can have when it matches an ellipse of semi-major ``radius``."""
    worst = min(
        n * STAR_INNER_RATIO[0] * math.sin(math.pi / n)
        for n in range(STAR_SPIKES[0], STAR_SPIKES[1] + 1)
    )
    return radius * math.sqrt(math.pi / worst)


def _local_polygon(
    is_star: bool, radius: float, aspect: float, spikes: int, inner: float
) -> np.ndarray:
    """Outline of the object in its own frame (centre at the origin, before rotation).

    Args:
        is_star: star (shape class) instead of an ellipse.
        radius: ellipse semi-major axis (along local x).
        aspect: ratio of the local y extent to the local x extent.
        spikes: number of star spikes.
        inner: ratio of the star's inner to outer radius.

    Returns:
        ``[V, 2]`` float64 vertices (x, y), the first one not repeated.
    """
    if is_star:
        outer = radius * math.sqrt(math.pi / (spikes * inner * math.sin(math.pi / spikes)))
        k = np.arange(2 * spikes)
        ang = -math.pi / 2 + k * math.pi / spikes  # one spike points to local "top"
        rad = np.where(k % 2 == 0, outer, outer * inner)
    else:
        ang = np.linspace(0.0, 2 * math.pi, _ELLIPSE_VERTICES, endpoint=False)
        rad = np.full(_ELLIPSE_VERTICES, radius)
    return np.stack([rad * np.cos(ang), aspect * rad * np.sin(ang)], -1)


def _ray_hits(poly: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Where rays from the origin leave a polygon that is star-shaped about the origin.

    Args:
        poly: ``[V, 2]`` vertices.
        dirs: ``[R, 2]`` unit directions.

    Returns:
        ``[R, 2]`` intersection points with the outline.
    """
    p = poly
    e = np.roll(poly, -1, axis=0) - poly  # [V, 2]
    u = dirs[:, None, :]  # [R, 1, 2]

    def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]

    denom = cross(u, e[None])  # [R, V]
    safe = np.where(np.abs(denom) < 1e-12, np.nan, denom)
    t = cross(p[None], e[None]) / safe
    s = cross(p[None], u) / safe
    valid = (s >= -1e-9) & (s <= 1 + 1e-9) & (t > 0)
    t = np.where(valid, t, np.inf)
    return dirs * t.min(axis=1)[:, None]


def generate(
    n_per_class: int,
    split: str,
    seed: int = 0,
    size: int = 64,
    *,
    with_masks: bool = False,
    flip: Collection[str] = (),
) -> ImageSet:
    """Generates the synthetic attribute dataset.

    Args:
        n_per_class: images per class.
        split: split name stored in the result (``train`` or ``test``).
        seed: seed for ``np.random.default_rng``; use different seeds for different splits.
        size: image side in pixels.
        with_masks: also return the object masks as ``extras["mask"]``.
        flip: attributes drawn against each image's class (exact counterfactuals, see
            :func:`explorer.data.drawing.draw_classes`): image ``i`` of a flipped set is image
            ``i`` with that attribute's other value and every other draw unchanged (a flipped
            ``contrast`` moves the background's luma, which is how A draws contrast). Colours
            beyond reach are clipped here as in every image of A; ``extras["exact"]`` marks the
            images whose object colour was reached exactly.

    Returns:
        An :class:`ImageSet` with ``[N, size, size, 3]`` uint8 RGB images, int64
        labels (a deterministic shuffle of ``n_per_class`` images per class), and
        ``keypoints`` / ``object_box`` (and maybe ``mask``) extras.

    Raises:
        ValueError: if ``n_per_class`` is negative, ``size`` is below 16 or ``flip`` names
            something other than an attribute.
    """
    draw = draw_classes(CLASS_NAMES, n_per_class, seed, size, min_size=16, flip=flip)
    rng, labels, cls, n, uniform = draw.rng, draw.labels, draw.cls, draw.n, draw.uniform

    # Every parameter is drawn for every image in a fixed order; the class only
    # selects which of the two attribute values is used.
    theta = rng.uniform(0.0, 2 * math.pi, n)
    radius = uniform(RADIUS_FRAC) * size
    aspect = uniform(ASPECT)
    spikes = rng.integers(STAR_SPIKES[0], STAR_SPIKES[1] + 1, n)
    inner = uniform(STAR_INNER_RATIO)
    margin = _max_star_extent(RADIUS_FRAC[1] * size) + 1.5
    cx = rng.uniform(margin, size - 1 - margin, n)
    cy = rng.uniform(margin, size - 1 - margin, n)
    hue = np.where(cls["hue"], uniform(HUE_WARM), uniform(HUE_COOL))
    sat = np.where(cls["saturation"], uniform(SAT_VIVID), uniform(SAT_MUTED))
    obj_luma = uniform(OBJECT_LUMA)
    contrast = np.where(cls["contrast"], uniform(CONTRAST_HIGH), uniform(CONTRAST_LOW))
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    bg_luma = np.clip(obj_luma + sign * contrast, *BG_LUMA_LIMITS)
    bg_hue = rng.uniform(0.0, 360.0, n)
    bg_sat = uniform(BG_SAT)
    grad_dir = rng.uniform(0.0, 2 * math.pi, n)
    grad_strength = uniform(GRADIENT)
    lighting = uniform(LIGHTING)
    tex_dir = rng.uniform(0.0, math.pi, n)
    tex_phase = rng.uniform(0.0, 2 * math.pi, n)
    tex_amp = np.where(cls["texture"], TEXTURE_AMPLITUDE, 0.0)
    noise_sigma = uniform(NOISE_SIGMA)

    obj_rgb = colour_with_luma(hue, sat, obj_luma)
    bg_rgb = colour_with_luma(bg_hue, bg_sat, bg_luma)
    period = max(3.0, size / 16.0)

    # Shapes, keypoints and boxes (per image, cv2 rasterisation).
    alpha = np.empty((n, size, size), np.uint8)
    keypoints = np.empty((n, len(PART_NAMES), 2), np.float32)
    boxes = np.empty((n, 4), np.int32)
    axis_dirs = np.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    for i in range(n):
        poly = _local_polygon(
            bool(cls["shape"][i]),
            float(radius[i]),
            float(aspect[i]),
            int(spikes[i]),
            float(inner[i]),
        )
        alpha[i], rot = render_object(poly, float(theta[i]), float(cx[i]), float(cy[i]), size)
        hits = _ray_hits(poly, axis_dirs) @ rot.T + np.array([cx[i], cy[i]])
        keypoints[i, 0] = (cx[i], cy[i])
        keypoints[i, 1:] = hits
        mask = alpha[i] >= 128
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)

    # Colour composition, vectorised in chunks.
    images = np.empty((n, size, size, 3), np.uint8)
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    xs = coords[None, None, :]
    ys = coords[None, :, None]
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, min(lo + _CHUNK, n))
        ramp = (
            np.cos(grad_dir[sl])[:, None, None] * xs + np.sin(grad_dir[sl])[:, None, None] * ys
        ) / (size / 2.0)
        bg = bg_rgb[sl, None, None, :] * (
            1.0 + grad_strength[sl, None, None, None] * ramp[..., None]
        )
        wave = np.sin(
            2
            * math.pi
            * (np.cos(tex_dir[sl])[:, None, None] * xs + np.sin(tex_dir[sl])[:, None, None] * ys)
            / period
            + tex_phase[sl, None, None]
        )
        stripes = np.where(wave >= 0.0, 1.0, -1.0)
        fill = obj_rgb[sl, None, None, :] * (
            1.0 + tex_amp[sl, None, None, None] * stripes[..., None]
        )
        a = alpha[sl, ..., None].astype(np.float64) / 255.0
        img = (bg * (1.0 - a) + fill * a) * lighting[sl, None, None, None]
        img += rng.standard_normal(img.shape) * noise_sigma[sl, None, None, None]
        images[sl] = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)

    extras: dict[str, np.ndarray] = {"keypoints": keypoints, "object_box": boxes}
    if with_masks:
        extras["mask"] = (alpha >= 128).astype(np.uint8)
    if flip:
        extras["exact"] = obj_luma * (1.0 + tex_amp) <= luma_reach(hue, sat)
    return ImageSet(
        images=images,
        labels=labels,
        class_names=CLASS_NAMES,
        name="synthetic",
        split=split,
        extras=extras,
        part_names=PART_NAMES,
    )


def load_synthetic(
    split: str,
    n_per_class: int | None = None,
    size: int = 64,
    data_seed: int = 0,
    flip: Collection[str] = (),
) -> ImageSet:
    """Loads a split of the synthetic dataset with fixed defaults.

    ``train`` is 400 images per class from seed 0, ``test`` 100 per class from
    seed 1, so the splits never share an image; data seed ``s`` uses seeds 2s and 2s + 1.

    Args:
        split: ``train`` or ``test``.
        n_per_class: overrides the default number of images per class.
        size: image side in pixels.
        data_seed: which draw of the data set (0: the shipped model's).
        flip: attributes drawn against the class (the split's counterfactual twin, see
            :func:`generate`).

    Returns:
        The generated :class:`ImageSet`, with the object masks (``extras["mask"]``).

    Raises:
        ValueError: if ``split`` is not ``train`` or ``test``.
    """
    if split not in _DEFAULTS:
        raise ValueError(f"split must be one of {sorted(_DEFAULTS)}, got {split!r}")
    if data_seed < 0:
        raise ValueError(f"data seed must be >= 0, got {data_seed}")
    default_n, seed = _DEFAULTS[split]
    seed += 2 * int(data_seed)
    n = default_n if n_per_class is None else n_per_class
    return generate(n, split, seed=seed, size=size, with_masks=True, flip=flip)
