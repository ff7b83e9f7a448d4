"""Known-answer generator B ("blobs"): the second data set whose classes each differ by ONE attribute.

Written from ``docs/known_answer_b.md`` (the specification, committed before this code and before
any result on it), so that a configuration frozen on generator A (:mod:`explorer.data.synthetic`)
can be measured on data it was never tuned on. The design is A's — a ``base`` class plus one class
per attribute, each differing from the base in that attribute only, every nuisance drawn for every
image from the same distribution — and everything else differs on purpose:

* **96 px** images; the object is a **smooth blob**, ``r(θ) = R·(1 + a₂cos(2θ+φ₂) + a₃cos(3θ+φ₃))``
  with ``a₂, a₃`` U[0, 0.08]; the ``shape`` class adds one lobe term ``a_k·cos(kθ+φ_k)``,
  ``k ∈ {6..9}``, ``a_k`` U[0.18, 0.26] (a wavy outline); every blob is rescaled to the area of a
  disc of the drawn equivalent radius U[0.17, 0.26]·size.
* hue base U[70°, 110°] (yellow–green) → ``hue`` class U[250°, 300°] (violet–magenta); HSV
  saturation base U[0.28, 0.42] → ``saturation`` class U[0.72, 0.88].
* **luma**: background Y U[0.40, 0.55] for every class; object Y = background − contrast (the
  object is always the darker), contrast base U[0.04, 0.10] → ``contrast`` class U[0.18, 0.26].
* ``texture`` class: **dots**, a jittered 5-px grid of anti-aliased discs of radius 1.2 px, luma
  ×(1 ± 0.25) alternately bright and dark (a checkerboard over the grid), mean colour unchanged.
* background: **low-frequency coloured noise**, three octaves of Gaussian-smoothed white noise
  (σ = 24, 12, 6 px; weights 1, 0.5, 0.25), on luma (±0.06) and on hue (±30° around a hue drawn
  U[0°, 360°)), saturation U[0, 0.12].
* **0–2 distractors**: small plain discs (radius U[0.04, 0.07]·size) in background-like colours
  (its hue, saturation ≤ 0.12, luma within ±0.05 of its mean), never touching the object.
* **vignette** ``× (1 − v·(d/d_max)²)``, v U[0, 0.2], centre uniform in the middle half, ``d_max``
  half the image diagonal; **signal-dependent noise** σ = k·√value, k U[0.01, 0.02], per channel.
* seeds: train 100, test 101; data seed ``s`` uses 100 + 2s and 101 + 2s.

Details the specification left open, fixed here before any result: dot jitter U[−1, 1] px per dot
and axis; distractor places by rejection among 24 candidate centres drawn for every image (the
first candidate at least 2 px clear of the object's outline and of the other distractor is used;
a distractor with no free candidate is left out and recorded as absent); the noise octaves are each
scaled to unit standard deviation before weighting, and their sum to a largest magnitude of 1.

Every colour the generator asks for can be reached (the object colour is ``hsv(h, s, 1)`` scaled to
its luma, as in A): checked for every image, and a failure raises instead of clipping.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import cv2
import numpy as np

from explorer.data.base import ImageSet
from explorer.data.drawing import (
    FLIPPABLE,
    box_of,
    colour_with_luma,
    draw_classes,
    luma_reach,
    render_object,
)

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
SIZE = 96

# Attribute ranges: (base value, value in the attribute's own class).
HUE_BASE: tuple[float, float] = (70.0, 110.0)
HUE_CLASS: tuple[float, float] = (250.0, 300.0)
SAT_BASE: tuple[float, float] = (0.28, 0.42)
SAT_CLASS: tuple[float, float] = (0.72, 0.88)
CONTRAST_BASE: tuple[float, float] = (0.04, 0.10)
CONTRAST_CLASS: tuple[float, float] = (0.18, 0.26)
LOBES: tuple[int, int] = (6, 9)
LOBE_AMPLITUDE: tuple[float, float] = (0.18, 0.26)
DOT_RADIUS = 1.2
DOT_PITCH = 5.0
DOT_JITTER = 1.0
DOT_AMPLITUDE = 0.25

# Nuisance ranges, the same for every class.
BG_LUMA: tuple[float, float] = (0.40, 0.55)
LOW_HARMONIC: tuple[float, float] = (0.0, 0.08)
RADIUS_FRAC: tuple[float, float] = (0.17, 0.26)
BG_SAT: tuple[float, float] = (0.0, 0.12)
BG_LUMA_NOISE = 0.06
BG_HUE_NOISE = 30.0
NOISE_OCTAVES: tuple[tuple[float, float], ...] = ((24.0, 1.0), (12.0, 0.5), (6.0, 0.25))
DISTRACTORS: tuple[int, int] = (0, 2)
DISTRACTOR_RADIUS_FRAC: tuple[float, float] = (0.04, 0.07)
DISTRACTOR_LUMA = 0.05
DISTRACTOR_CANDIDATES = 24
DISTRACTOR_CLEARANCE = 2.0
VIGNETTE: tuple[float, float] = (0.0, 0.2)
NOISE_K: tuple[float, float] = (0.01, 0.02)

SPLIT_SEEDS: dict[str, int] = {"train": 100, "test": 101}
IMAGES_PER_CLASS: dict[str, int] = {"train": 400, "test": 100}
_VERTICES = 360
_MAX_GROWTH = 1.0 + 2 * LOW_HARMONIC[1] + LOBE_AMPLITUDE[1]  # largest r(θ) / R before rescaling

PARAMETER_FIELDS: tuple[str, ...] = (
    "hue", "saturation", "object_luma", "background_luma", "contrast", "contrast_sign",
    "radius", "a2", "a3", "phase2", "phase3", "lobes", "lobe_amplitude", "lobe_phase",
    "rotation", "centre_x", "centre_y", "texture_amplitude", "texture_phase_x", "texture_phase_y",
    "background_hue", "background_saturation", "background_seed", "distractors",
    "distractor_1_x", "distractor_1_y", "distractor_1_radius",
    "distractor_2_x", "distractor_2_y", "distractor_2_radius",
    "vignette", "vignette_x", "vignette_y", "noise_k",
)  # fmt: skip
"""The fields of ``extras["parameters"]`` (a structured array, one record per image): every value
the image was drawn with (a lobe count or amplitude of 0 and distractor places of NaN where absent)."""


def split_seed(split: str, data_seed: int = 0) -> int:
    """The generator seed of a split: train 100 + 2s, test 101 + 2s for data seed ``s``."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}")
    if data_seed < 0:
        raise ValueError(f"data seed must be >= 0, got {data_seed}")
    return SPLIT_SEEDS[split] + 2 * int(data_seed)


def blob_radii(
    theta: np.ndarray,
    radius: float,
    a2: float,
    a3: float,
    phases: tuple[float, float, float],
    lobes: int,
    lobe_amplitude: float,
) -> np.ndarray:
    """``r(θ)`` of a blob of the area of a disc of ``radius`` (``lobe_amplitude`` 0: no lobes)."""  # fmt: skip
    phase2, phase3, phase_k = phases
    relative = 1.0 + a2 * np.cos(2 * theta + phase2) + a3 * np.cos(3 * theta + phase3)
    if lobe_amplitude:
        relative = relative + lobe_amplitude * np.cos(lobes * theta + phase_k)
    # area = ½∫r² dθ = π R² (1 + ½ Σ a²): rescale so that it is π radius²
    scale = radius / math.sqrt(1.0 + 0.5 * (a2**2 + a3**2 + lobe_amplitude**2))
    return scale * relative


def _noise_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency noise in [−1, 1]: octaves of smoothed white noise, each at unit spread."""
    total = np.zeros((size, size))
    for sigma, weight in NOISE_OCTAVES:
        white = rng.standard_normal((size, size))
        smooth = cv2.GaussianBlur(white, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        total += weight * (smooth - smooth.mean()) / max(float(smooth.std()), 1e-12)
    return total / max(float(np.abs(total).max()), 1e-12)


def _dots(size: int, phase: tuple[float, float], jitter: np.ndarray) -> np.ndarray:
    """Texture modulation in [−1, 1]: +coverage on bright dots, −coverage on dark ones.

    Dot ``(i, j)`` sits at ``phase + (j − 1, i − 1)·pitch + jitter[i, j]``; a pixel can only be
    covered by the dot of its own grid cell or of a neighbouring one (jitter + radius < pitch).
    """
    grid = np.arange(size, dtype=np.float64)
    x, y = np.meshgrid(grid, grid)
    near_j = np.rint((x - phase[0]) / DOT_PITCH).astype(np.int64) + 1
    near_i = np.rint((y - phase[1]) / DOT_PITCH).astype(np.int64) + 1
    count = jitter.shape[0]
    pattern = np.zeros((size, size))
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            i = np.clip(near_i + di, 0, count - 1)
            j = np.clip(near_j + dj, 0, count - 1)
            cx = phase[0] + (j - 1) * DOT_PITCH + jitter[i, j, 0]
            cy = phase[1] + (i - 1) * DOT_PITCH + jitter[i, j, 1]
            coverage = np.clip(DOT_RADIUS + 0.5 - np.hypot(x - cx, y - cy), 0.0, 1.0)
            pattern += np.where((i + j) % 2 == 0, 1.0, -1.0) * coverage
    return np.clip(pattern, -1.0, 1.0)


def _outline_distance(alpha: np.ndarray) -> np.ndarray:
    """Pixel distance to the object (0 on it)."""
    outside = (alpha < 128).astype(np.uint8)
    return cv2.distanceTransform(outside, cv2.DIST_L2, 5)


def generate(
    n_per_class: int,
    split: str,
    seed: int,
    size: int = SIZE,
    *,
    with_masks: bool = True,
    flip: Collection[str] = (),
) -> ImageSet:
    """Generates generator B's images (see the module docstring and docs/known_answer_b.md).

    Args:
        n_per_class: images per class.
        split: split name stored in the result.
        seed: seed for ``np.random.default_rng`` (:func:`split_seed` gives the specification's).
        size: image side in pixels (the specification's is 96).
        with_masks: also return the object masks as ``extras["mask"]``.
        flip: attributes drawn *against* each image's class (exact counterfactuals): an image
            of the attribute's class gets the base value it drew, every other image the class
            value it drew. Every draw and every label is the same as without ``flip`` (each
            parameter is drawn for every image, the class only selects), so image ``i`` of a
            flipped set is image ``i`` with that one attribute changed and nothing else, except
            where the outline changes the distractors' allowed places (``shape``). A flipped
            combination the specification never draws can miss its colour (a vivid violet cannot
            reach every luma): such images are drawn clipped and marked ``False`` in
            ``extras["exact"]`` instead of failing.

    Returns:
        An :class:`ImageSet` of ``[N, size, size, 3]`` uint8 RGB images with ``mask``, ``object_box``,
        ``keypoints`` and ``parameters`` extras; labels a deterministic shuffle.

    Raises:
        ValueError: a negative count, a size below 48, or a ``flip`` entry that is no attribute.
        RuntimeError: a drawn colour cannot be reached (a defect of the ranges, never clipped),
            without ``flip``.
    """
    draw = draw_classes(CLASS_NAMES, n_per_class, seed, size, min_size=48, flip=flip)
    rng, labels, cls, n, uniform = draw.rng, draw.labels, draw.cls, draw.n, draw.uniform

    # Every parameter is drawn for every image in a fixed order; the class only selects which value.
    radius = uniform(RADIUS_FRAC) * size
    a2, a3 = uniform(LOW_HARMONIC), uniform(LOW_HARMONIC)
    phase2, phase3 = rng.uniform(0, 2 * math.pi, n), rng.uniform(0, 2 * math.pi, n)
    lobes = rng.integers(LOBES[0], LOBES[1] + 1, n)
    lobe_amplitude = np.where(cls["shape"], uniform(LOBE_AMPLITUDE), 0.0)
    lobe_phase = rng.uniform(0, 2 * math.pi, n)
    rotation = rng.uniform(0, 2 * math.pi, n)
    margin = RADIUS_FRAC[1] * size * _MAX_GROWTH + 1.5
    cx = rng.uniform(margin, size - 1 - margin, n)
    cy = rng.uniform(margin, size - 1 - margin, n)
    hue = np.where(cls["hue"], uniform(HUE_CLASS), uniform(HUE_BASE))
    sat = np.where(cls["saturation"], uniform(SAT_CLASS), uniform(SAT_BASE))
    bg_luma = uniform(BG_LUMA)
    contrast = np.where(cls["contrast"], uniform(CONTRAST_CLASS), uniform(CONTRAST_BASE))
    obj_luma = bg_luma - contrast
    tex_amp = np.where(cls["texture"], DOT_AMPLITUDE, 0.0)
    tex_phase = rng.uniform(0, DOT_PITCH, (n, 2))
    bg_hue = rng.uniform(0.0, 360.0, n)
    bg_sat = uniform(BG_SAT)
    bg_seed = rng.integers(0, 2**31 - 1, n)
    n_distractors = rng.integers(DISTRACTORS[0], DISTRACTORS[1] + 1, n)
    d_radius = rng.uniform(*DISTRACTOR_RADIUS_FRAC, (n, 2)) * size
    d_candidates = rng.uniform(0, size - 1, (n, 2, DISTRACTOR_CANDIDATES, 2))
    d_sat = rng.uniform(0.0, BG_SAT[1], (n, 2))
    d_luma = rng.uniform(-DISTRACTOR_LUMA, DISTRACTOR_LUMA, (n, 2))
    vignette = uniform(VIGNETTE)
    v_centre = rng.uniform(size / 4, 3 * size / 4, (n, 2))
    noise_k = uniform(NOISE_K)

    reach = luma_reach(hue, sat)
    need = obj_luma * (1.0 + tex_amp)
    exact = need <= reach
    if not flip and not np.all(exact):
        worst = int(np.argmax(need - reach))
        raise RuntimeError(
            f"object colour of image {worst} cannot be reached: luma {need[worst]:.3f} needed, "
            f"{reach[worst]:.3f} possible at hue {hue[worst]:.0f}°, saturation {sat[worst]:.2f}"
        )
    obj_rgb = colour_with_luma(hue, sat, obj_luma)

    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), np.uint8)
    keypoints = np.empty((n, len(PART_NAMES), 2), np.float32)
    boxes = np.empty((n, 4), np.int32)
    distractor_places = np.full((n, 2, 3), np.nan)
    coords = np.arange(size, dtype=np.float64)
    angles = np.linspace(0.0, 2 * math.pi, _VERTICES, endpoint=False)
    axis_angles = np.array([-math.pi / 2, 0.0, math.pi / 2, math.pi])  # top, right, bottom, left
    for i in range(n):
        phases = (float(phase2[i]), float(phase3[i]), float(lobe_phase[i]))

        def radii(t: np.ndarray, i: int = i, phases: tuple = phases) -> np.ndarray:
            return blob_radii(
                t, float(radius[i]), float(a2[i]), float(a3[i]), phases, int(lobes[i]),
                float(lobe_amplitude[i]),
            )  # fmt: skip

        r = radii(angles)
        poly = np.stack([r * np.cos(angles), r * np.sin(angles)], -1)
        alpha, rot = render_object(poly, float(rotation[i]), float(cx[i]), float(cy[i]), size)
        mask = alpha >= 128
        masks[i] = mask
        boxes[i] = box_of(mask)
        ra = radii(axis_angles)
        local = np.stack([ra * np.cos(axis_angles), ra * np.sin(axis_angles)], -1)
        keypoints[i, 0] = (cx[i], cy[i])
        keypoints[i, 1:] = local @ rot.T + np.array([cx[i], cy[i]])

        # background: luma and hue noise around the drawn values
        field_rng = np.random.default_rng(int(bg_seed[i]))
        luma_noise, hue_noise = _noise_field(field_rng, size), _noise_field(field_rng, size)
        bg_y = bg_luma[i] + BG_LUMA_NOISE * luma_noise
        bg_h = bg_hue[i] + BG_HUE_NOISE * hue_noise
        flat_s = np.full(size * size, bg_sat[i])
        background = colour_with_luma(bg_h.ravel(), flat_s, bg_y.ravel()).reshape(size, size, 3)

        # distractors, never touching the object nor each other
        clear = _outline_distance(alpha)
        placed: list[tuple[float, float, float]] = []
        for d in range(int(n_distractors[i])):
            rad = float(d_radius[i, d])
            for x, y in d_candidates[i, d]:
                xi, yi = round(x), round(y)
                inside = rad <= x <= size - 1 - rad and rad <= y <= size - 1 - rad
                if not inside or clear[yi, xi] < rad + DISTRACTOR_CLEARANCE:
                    continue
                if any(math.hypot(x - px, y - py) < rad + pr + DISTRACTOR_CLEARANCE
                       for px, py, pr in placed):  # fmt: skip
                    continue
                placed.append((float(x), float(y), rad))
                distractor_places[i, d] = (x, y, rad)
                luma = bg_luma[i] + d_luma[i, d]
                colour = colour_with_luma(
                    np.array([bg_hue[i]]), np.array([d_sat[i, d]]), np.array([luma])
                )[0]
                dist = np.hypot(coords[None, :] - x, coords[:, None] - y)
                cover = np.clip(rad + 0.5 - dist, 0.0, 1.0)[..., None]
                background = background * (1 - cover) + colour * cover
                break

        dots = np.zeros((size, size))
        if tex_amp[i]:
            cells = math.ceil(size / DOT_PITCH) + 3
            jitter = np.random.default_rng(int(bg_seed[i]) + 1).uniform(
                -DOT_JITTER, DOT_JITTER, (cells, cells, 2)
            )
            dots = _dots(size, (float(tex_phase[i, 0]), float(tex_phase[i, 1])), jitter)
        fill = obj_rgb[i] * (1.0 + tex_amp[i] * dots)[..., None]
        a = (alpha.astype(np.float64) / 255.0)[..., None]
        img = background * (1.0 - a) + fill * a
        dist2 = (coords[None, :] - v_centre[i, 0]) ** 2 + (coords[:, None] - v_centre[i, 1]) ** 2
        img *= (1.0 - vignette[i] * dist2 / ((size / math.sqrt(2)) ** 2))[..., None]
        sigma = noise_k[i] * np.sqrt(np.clip(img, 0.0, None))
        img = img + rng.standard_normal(img.shape) * sigma
        images[i] = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)

    parameters = np.zeros(n, dtype=[(name, np.float64) for name in PARAMETER_FIELDS])
    columns = {
        "hue": hue, "saturation": sat, "object_luma": obj_luma, "background_luma": bg_luma,
        "contrast": contrast, "contrast_sign": np.full(n, -1.0), "radius": radius, "a2": a2,
        "a3": a3, "phase2": phase2, "phase3": phase3,
        "lobes": np.where(cls["shape"], lobes, 0), "lobe_amplitude": lobe_amplitude,
        "lobe_phase": lobe_phase, "rotation": rotation, "centre_x": cx, "centre_y": cy,
        "texture_amplitude": tex_amp, "texture_phase_x": tex_phase[:, 0],
        "texture_phase_y": tex_phase[:, 1], "background_hue": bg_hue,
        "background_saturation": bg_sat, "background_seed": bg_seed,
        "distractors": np.isfinite(distractor_places[:, :, 0]).sum(axis=1),
        "vignette": vignette, "vignette_x": v_centre[:, 0], "vignette_y": v_centre[:, 1],
        "noise_k": noise_k,
    }  # fmt: skip
    for d in range(2):
        for k, key in enumerate(("x", "y", "radius")):
            columns[f"distractor_{d + 1}_{key}"] = distractor_places[:, d, k]
    for name in PARAMETER_FIELDS:
        parameters[name] = columns[name]
    extras: dict[str, np.ndarray] = {
        "keypoints": keypoints, "object_box": boxes, "parameters": parameters,
    }  # fmt: skip
    if with_masks:
        extras["mask"] = masks
    if flip:
        extras["exact"] = exact
    return ImageSet(images, labels, CLASS_NAMES, "blobs", split, extras, PART_NAMES)


def load_blobs(
    split: str, data_seed: int = 0, n_per_class: int | None = None, flip: Collection[str] = ()
) -> ImageSet:
    """A split of generator B as the specification fixes it: 400 (train) or 100 (test) images per
    class at 96 px from :func:`split_seed`, with masks (``flip``: its counterfactual twin)."""
    seed = split_seed(split, data_seed)
    n = IMAGES_PER_CLASS[split] if n_per_class is None else n_per_class
    return generate(n, split, seed, flip=flip)


__all__ = ["CLASS_NAMES", "DEFINING_ATTRIBUTE", "FLIPPABLE", "generate", "load_blobs", "split_seed"]
