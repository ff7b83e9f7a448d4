"""Image modifications for "This Looks Like That, Because ..." (Nauta et al., 2021).

A :class:`Modification` changes one visual characteristic of a whole image --
hue, shape, texture, contrast or saturation (:data:`ATTRIBUTES`), plus brightness,
which the reference code computes but the paper does not report. Every
modification works in memory on an RGB ``uint8`` ``[H, W, 3]`` image at its
native resolution (before any resize or normalisation), returns a *new* array of
the same shape and dtype, and is deterministic. At its no-op strength
(:attr:`Modification.is_identity`) it returns an exact copy of the input, so a
null modification gives a local importance of exactly zero.

Two sets are offered (``mode``):

Reference set (``mode="reference"``, :func:`reference_set`)
-----------------------------------------------------------

Exactly the public code's operations (M-Nauta/Explaining_Prototypes, see
``docs/method.md`` §3.1), done in memory: the reference round-trips every modified image
through a JPEG file, which adds compression noise; we do not.

=============  ============================================================  ==============
attribute      operation                                                     strength
=============  ============================================================  ==============
contrast       ``PIL.ImageEnhance.Contrast(img).enhance(f)``                 f = 0.45
saturation     ``PIL.ImageEnhance.Color(img).enhance(f)``                    f = 0.7
hue            ``torchvision.transforms.functional.adjust_hue(img, h)``      h = 0.1 (36°)
texture        ``cv2.fastNlMeansDenoisingColored(bgr, None, h, h, 7, 21)``   h = 4
shape          sine warp, ``shift(x) = int(A sin(π w x))``                   A = 4 px
                                                                             (w = 0.05)
brightness     ``PIL.ImageEnhance.Brightness(img).enhance(f)``               f = 0.8
               (``in_paper=False``)
=============  ============================================================  ==============

* *texture*: OpenCV's non-local means is given the image in **BGR** order,
  OpenCV's native order (what ``cv2.imread`` returns); it converts BGR to CIE
  Lab internally, so RGB order would give a slightly different result.
  ``h`` is used for both ``h`` and ``hColor``.
* *shape*: row ``i`` is rolled horizontally by ``shift(i)`` (``np.roll`` along
  the columns), then column ``j`` vertically by ``shift(j)``, with wrap-around;
  ``int`` truncates toward zero, so shifts lie in ``{-floor(A) .. floor(A)}``.
  The warp only permutes pixels, so each channel's multiset of values is kept.
  It is done with one fancy-indexing gather whose index arrays are cached per
  ``(H, W, A, w)``.
* The no-op strengths (contrast, saturation, brightness 1; hue 0; A = 0; h = 0)
  return a copy of the input. Pillow's ``enhance(1.0)`` is exact anyway, but
  ``adjust_hue(0)`` (an HSV round trip) and non-local means at ``h = 0`` are
  not, so identity is special-cased for every attribute.

Disentangled set (``mode="disentangled"``, :func:`disentangled_set`) -- ours
----------------------------------------------------------------------------

``docs/method.md`` §3.1 shows why the reference values are not comparable across
characteristics: blending toward grey at 0.45 also scales chroma by 0.45 and
removes most fine-texture energy, so "contrast" dominates raw importances.
These modifications each change **one** attribute and keep the others. They work
in CIE L*a*b* (sRGB, D65; converted in float64 numpy, without clipping, so that
out-of-gamut colours can be detected) and their strengths are tied to the
feature-cell size ``cell_size`` (native image pixels per feature cell, e.g.
``64 / 8 = 8`` for the synthetic model, ``28 / 7 = 4`` for Fashion-MNIST,
``300 / 7`` for a 224-px model with 7×7 features shown a 300-px image).

==========  ==================================================  =================  =======
attribute   operation                                           strength (units)   default
==========  ==================================================  =================  =======
contrast    ``L ← mean(L) + f (L − mean(L))``, a and b kept     f (factor)         0.6
saturation  ``(a, b) ← f (a, b)``, L kept                       f (factor)         0.7
hue         rotate ``(a, b)`` by θ, L and chroma ``|ab|`` kept  θ (degrees)        90
texture     ``L ← Gσ * L`` (+ mean restored), a and b kept      σ (feature cells)  0.5
shape       reference sine warp, A and period in cells          A (feature cells)  0.5
                                                                (period 1 cell)
brightness  ``L ← f L``, a and b kept (not in the set by        f (factor)         0.8
            default; ``in_paper=False``)
==========  ==================================================  =================  =======

Why these values (version 2 of the set, :data:`explorer.analysis.attribute_sets.SET_VERSIONS`):
they were chosen on the synthetic known-answer benchmark (docs/method.md §8) as the values at
which the relative reading names the class-defining attribute first for most prototypes, on the
train split of one model (seed 0), and then checked unchanged on models of other seeds and on the
test split.
What each one does:

* hue 90°: a quarter turn of the colour wheel, far from every original hue. On the benchmark
  it separated hue-defined prototypes from the others better than the half turn (180°) of
  version 1, which maps warm exactly onto cool. The reference 0.1 (36°) is small next to the
  warm/cool gap.
* shape: the reference sine warp with amplitude ½ cell and a period of **one** feature cell
  (``w = 2 / (period_cells · cell)``): at 64 px and cell 8 that is A = 4 px over an 8-px period,
  which bends outlines and corners inside every cell a prototype sees. With the coarse warp of
  version 1 (period 4 cells) every prototype lost about the same similarity, so shape was never a
  prototype's top attribute in any reading (measured, bench/README.md).
* texture σ = ½ cell: a Gaussian low-pass of the lightness that removes detail finer than a cell
  (at 64 px and σ = 4 px a 4-px stripe pattern keeps far below 1 % of its amplitude) and keeps the
  cell-scale layout. It blurs object outlines too; an edge-preserving filter cannot tell a
  low-contrast outline from a texture stripe of larger amplitude, so we accept that. Chroma detail
  is not touched.
* contrast 0.6 / saturation 0.7: moderate, so that these changes are not simply larger than the
  others (docs/method.md §3.1: at the reference settings contrast dominates because it is the
  largest change). Saturation 0.7 is the paper's value; contrast 0.6 acts on lightness only and
  keeps chroma.

Gamut: a colour with the target L*a*b* may lie outside sRGB. It is never clipped
per channel (that would change hue and chroma). Instead each pixel moves from an
in-gamut anchor toward its target only as far as the gamut allows (bisection):
for contrast, texture and brightness the anchor is the original pixel, so a and
b stay exact and only the lightness change is shortened; for hue and saturation
the anchor is the grey of the same lightness, so L and the new hue angle stay
exact and only the chroma is shortened. Hence:

* contrast, texture, brightness keep a and b up to the uint8 rounding of the
  output. Tolerance (tested): ``|Δa|, |Δb| ≤ 1`` L*a*b* unit per pixel; measured at
  most 0.85 (OpenCV's Lab) and about 0.15 on average, on random and synthetic
  images.
* saturation and hue keep L up to rounding. Tolerance (tested): ``|ΔL| ≤ 0.5`` per
  pixel (measured ≤ 0.25). Hue keeps the chroma magnitude within ±1.5 units
  wherever the rotated colour is in gamut; strongly saturated colours turned
  toward a smaller part of the gamut lose chroma (on the synthetic images 0.2 %
  of pixels at 180°, 1 % at 90°; most pixels of a uniformly random RGB image).

Grey images (``R = G = B``, the explorer's grey models): hue and saturation
modifications of both sets return an exact copy (:func:`is_grey`). The others
keep the image grey (the disentangled ones force ``a = b = 0``), except the
reference texture: OpenCV's NL-means denoises its own uint8 Lab, and the result
may differ slightly between channels.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageEnhance

logger = logging.getLogger(__name__)

ATTRIBUTES: tuple[str, ...] = ("hue", "shape", "texture", "contrast", "saturation")
"""The paper's five characteristics."""

ALL_ATTRIBUTES: tuple[str, ...] = (*ATTRIBUTES, "brightness")
"""The paper's five plus brightness (computed by the reference code, not in the paper)."""

MODES: tuple[str, ...] = ("reference", "disentangled")

IDENTITY_STRENGTH: dict[str, float] = {
    "hue": 0.0,
    "shape": 0.0,
    "texture": 0.0,
    "contrast": 1.0,
    "saturation": 1.0,
    "brightness": 1.0,
}
"""The no-op strength of each attribute (the same in both modes)."""

# Reference defaults (docs/method.md §3.1).
REF_HUE = 0.1
REF_CONTRAST = 0.45
REF_SATURATION = 0.7
REF_TEXTURE_H = 4.0
REF_SHAPE_AMPLITUDE = 4.0
REF_SHAPE_FREQUENCY = 0.05
REF_BRIGHTNESS = 0.8
NLM_TEMPLATE_WINDOW = 7
NLM_SEARCH_WINDOW = 21

# Disentangled defaults (ours, see the module docstring).
DIS_CONTRAST = 0.6
DIS_SATURATION = 0.7
DIS_HUE_DEGREES = 90.0
DIS_TEXTURE_SIGMA_CELLS = 0.5
DIS_SHAPE_AMPLITUDE_CELLS = 0.5
DIS_SHAPE_PERIOD_CELLS = 1.0
DIS_BRIGHTNESS = 0.8
SWIRL_WAVELENGTH_CELLS = 2.0
SWIRL_WAVES = 12

_DOSE: dict[tuple[str, str], tuple[float, ...]] = {
    ("contrast", "reference"): (1.0, 0.8, 0.6, 0.45, 0.3),
    ("saturation", "reference"): (1.0, 0.85, 0.7, 0.5, 0.3),
    ("brightness", "reference"): (1.0, 0.9, 0.8, 0.65, 0.5),
    ("hue", "reference"): (0.0, 0.05, 0.1, 0.25, 0.5),
    ("texture", "reference"): (0.0, 2.0, 4.0, 8.0, 16.0),
    ("shape", "reference"): (0.0, 1.0, 2.0, 4.0, 8.0),
    ("contrast", "disentangled"): (1.0, 0.8, 0.6, 0.4, 0.2),
    ("saturation", "disentangled"): (1.0, 0.85, 0.7, 0.4, 0.0),
    ("brightness", "disentangled"): (1.0, 0.9, 0.8, 0.65, 0.5),
    ("hue", "disentangled"): (0.0, 45.0, 90.0, 135.0, 180.0),
    ("texture", "disentangled"): (0.0, 0.125, 0.25, 0.5, 1.0),
    ("shape", "disentangled"): (0.0, 0.125, 0.25, 0.5, 1.0),
}

# Pixels whose float RGB lies within this margin of [0, 1] count as in gamut: the
# final clip then moves them by less than half a uint8 level.
_GAMUT_EPS = 0.49 / 255.0
_BISECTION_STEPS = 10  # t to within 1e-3: < 0.15 Lab units on any chroma or L change


# --------------------------------------------------------------------------- public API


def is_grey(rgb: np.ndarray) -> bool:
    """Whether an RGB image is grey, i.e. ``R = G = B`` at every pixel.

    Args:
        rgb: ``[H, W, 3]`` array.

    Returns:
        True when all three channels are equal everywhere.
    """
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    )


def warp_shifts(n: int, amplitude: float, frequency: float) -> np.ndarray:
    """The shape warp's per-row (or per-column) shifts, ``int(A·sin(π·w·x))`` for ``x < n``.

    Args:
        n: number of rows (or columns).
        amplitude: ``A`` in pixels.
        frequency: ``w`` (cycles per 2 pixels: the period is ``2 / w`` pixels).

    Returns:
        int64 ``[n]`` shifts, truncated toward zero like Python's ``int``, so they lie in
        ``{-floor(|A|) .. floor(|A|)}``.
    """
    x = np.arange(n, dtype=np.float64)
    return np.trunc(amplitude * np.sin(np.pi * frequency * x)).astype(np.int64)


@dataclass(frozen=True)
class Modification:
    """One deterministic whole-image modification.

    Attributes:
        attribute: one of :data:`ATTRIBUTES` or ``"brightness"``.
        strength: the parameter; its meaning depends on the attribute and mode (see the
            module docstring): a factor for contrast/saturation/brightness (1 = no-op), the
            hue shift (fraction of the circle in ``reference``, degrees in
            ``disentangled``), the NL-means ``h`` (reference) or the Gaussian σ in feature
            cells (disentangled) for texture, the warp amplitude in pixels (reference) or
            in feature cells (disentangled) for shape.
        mode: ``"reference"`` or ``"disentangled"``.
        in_paper: False for brightness (computed by the reference code, not in the paper).
        params: extra fixed parameters as sorted ``(name, value)`` pairs: ``frequency``
            (reference shape, default 0.05); ``cell_size`` (disentangled shape and texture,
            required unless the strength is the no-op) and ``period_cells`` (disentangled
            shape, default 4); ``swirl`` (1: the disentangled shape is :func:`swirl_maps`' smooth
            area-keeping warp instead of the sine warp) with ``wavelength_cells`` (default 2) and
            ``seed`` (default 0).
    """

    attribute: str
    strength: float
    mode: str
    in_paper: bool = True
    params: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.attribute not in ALL_ATTRIBUTES:
            raise ValueError(
                f"unknown attribute {self.attribute!r}; expected one of {ALL_ATTRIBUTES}"
            )
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {MODES}")
        if not math.isfinite(self.strength):
            raise ValueError(f"strength must be finite, got {self.strength}")
        object.__setattr__(self, "strength", float(self.strength))
        object.__setattr__(
            self, "params", tuple(sorted((str(k), float(v)) for k, v in self.params))
        )
        a, s = self.attribute, self.strength
        if a in ("contrast", "saturation", "brightness") and s < 0:
            raise ValueError(f"{a} factor must be >= 0, got {s}")
        if a == "hue" and self.mode == "reference" and not -0.5 <= s <= 0.5:
            raise ValueError(f"reference hue shift must be in [-0.5, 0.5], got {s}")
        if a == "texture" and s < 0:
            raise ValueError(f"texture strength must be >= 0, got {s}")
        if a == "shape" and s < 0:
            raise ValueError(f"shape amplitude must be >= 0, got {s}")
        if self.mode == "disentangled" and a in ("shape", "texture") and not self.is_identity:
            cell = self.param("cell_size")
            if cell is None or not cell > 0:
                raise ValueError(f"disentangled {a} needs a positive cell_size in params")

    @property
    def name(self) -> str:
        """The attribute name (unique within a set)."""
        return self.attribute

    @property
    def is_identity(self) -> bool:
        """Whether the strength is the attribute's no-op value (then :meth:`apply` copies)."""
        return self.strength == IDENTITY_STRENGTH[self.attribute]

    def param(self, key: str, default: float | None = None) -> float | None:
        """Looks up an extra parameter.

        Args:
            key: parameter name.
            default: returned when the parameter is absent.

        Returns:
            The parameter's value, or ``default``.
        """
        for k, v in self.params:
            if k == key:
                return v
        return default

    def describe(self) -> str:
        """A short human-readable label, e.g. ``"contrast ×0.45 (reference)"``."""
        a, s = self.attribute, self.strength
        if a in ("contrast", "saturation", "brightness"):
            value = f"×{s:g}"
        elif a == "hue":
            value = f"{s * 360:+g}°" if self.mode == "reference" else f"{s:+g}°"
        elif a == "texture":
            value = f"h={s:g}" if self.mode == "reference" else f"σ={s:g} cells"
        elif self.param("swirl"):
            value = f"swirl A={s:g} cells"
        else:
            value = f"A={s:g} px" if self.mode == "reference" else f"A={s:g} cells"
        return f"{a} {value} ({self.mode})"

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Applies the modification.

        Args:
            rgb: RGB ``uint8`` ``[H, W, 3]`` image at native resolution.

        Returns:
            A new C-contiguous ``uint8`` ``[H, W, 3]`` array (an exact copy at the no-op
            strength, and for hue and saturation on a grey image).

        Raises:
            ValueError: if ``rgb`` is not a uint8 ``[H, W, 3]`` array.
        """
        rgb = _check_image(rgb)
        if self.is_identity:
            return rgb.copy()
        if self.attribute in ("hue", "saturation") and is_grey(rgb):
            return rgb.copy()
        if self.mode == "reference":
            out = _REFERENCE_OPS[self.attribute](self, rgb)
        else:
            out = _DISENTANGLED_OPS[self.attribute](self, rgb)
        # Pillow hands out read-only views and some ops return strided views: own the result.
        return np.require(out, np.uint8, ["C_CONTIGUOUS", "WRITEABLE", "OWNDATA"])


def reference_set(
    hue: float = REF_HUE,
    contrast: float = REF_CONTRAST,
    saturation: float = REF_SATURATION,
    texture_h: float = REF_TEXTURE_H,
    shape_amplitude: float = REF_SHAPE_AMPLITUDE,
    shape_frequency: float = REF_SHAPE_FREQUENCY,
    brightness: float | None = REF_BRIGHTNESS,
) -> tuple[Modification, ...]:
    """The reference code's modifications (docs/method.md §3.1), in :data:`ATTRIBUTES` order.

    Args:
        hue: hue shift as a fraction of the circle, in ``[-0.5, 0.5]``.
        contrast: ``ImageEnhance.Contrast`` factor.
        saturation: ``ImageEnhance.Color`` factor.
        texture_h: NL-means ``h`` (and ``hColor``); 0 is the no-op.
        shape_amplitude: sine-warp amplitude ``A`` in pixels.
        shape_frequency: sine-warp ``w``.
        brightness: ``ImageEnhance.Brightness`` factor, or None to leave brightness out.
            It is appended last with ``in_paper=False``.

    Returns:
        hue, shape, texture, contrast, saturation (and brightness) modifications.
    """
    mods = (
        Modification("hue", hue, "reference"),
        Modification(
            "shape", shape_amplitude, "reference", params=(("frequency", shape_frequency),)
        ),
        Modification("texture", texture_h, "reference"),
        Modification("contrast", contrast, "reference"),
        Modification("saturation", saturation, "reference"),
    )
    if brightness is not None:
        mods += (Modification("brightness", brightness, "reference", in_paper=False),)
    return mods


def disentangled_set(
    image_size: tuple[int, int],
    cell_size: float,
    *,
    hue_degrees: float = DIS_HUE_DEGREES,
    contrast: float = DIS_CONTRAST,
    saturation: float = DIS_SATURATION,
    texture_sigma_cells: float = DIS_TEXTURE_SIGMA_CELLS,
    shape_amplitude_cells: float = DIS_SHAPE_AMPLITUDE_CELLS,
    shape_period_cells: float = DIS_SHAPE_PERIOD_CELLS,
    brightness: float | None = None,
) -> tuple[Modification, ...]:
    """Our one-attribute-at-a-time modifications (see the module docstring), in
    :data:`ATTRIBUTES` order.

    Args:
        image_size: ``(H, W)`` of the native images the set is meant for; used to check
            ``cell_size`` and to log the pixel values the cell-relative strengths give.
        cell_size: native image pixels per feature cell (e.g. ``64 / 8`` for the synthetic
            model).
        hue_degrees: rotation of the ``(a, b)`` plane in degrees.
        contrast: factor on the lightness deviations from the image's mean lightness.
        saturation: factor on the chroma ``(a, b)``.
        texture_sigma_cells: Gaussian σ of the lightness smoothing, in feature cells.
        shape_amplitude_cells: sine-warp amplitude, in feature cells.
        shape_period_cells: sine-warp period, in feature cells.
        brightness: factor on the lightness, or None (the default) to leave it out; when
            given it is appended last with ``in_paper=False``.

    Returns:
        hue, shape, texture, contrast, saturation (and brightness) modifications.

    Raises:
        ValueError: on a non-positive image size or cell size, or a cell larger than the
            image.
    """
    h, w = (int(v) for v in image_size)
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if not cell_size > 0:
        raise ValueError(f"cell_size must be > 0, got {cell_size}")
    if cell_size > max(h, w):
        raise ValueError(f"cell_size {cell_size} is larger than the image {image_size}")
    if not shape_period_cells > 0:
        raise ValueError(f"shape_period_cells must be > 0, got {shape_period_cells}")
    cell = float(cell_size)
    logger.debug(
        "disentangled set for %dx%d, cell %.3g px: shape A=%.3g px period %.3g px, texture σ=%.3g px",
        h,
        w,
        cell,
        shape_amplitude_cells * cell,
        shape_period_cells * cell,
        texture_sigma_cells * cell,
    )
    mods = (
        Modification("hue", hue_degrees, "disentangled"),
        Modification(
            "shape",
            shape_amplitude_cells,
            "disentangled",
            params=(("cell_size", cell), ("period_cells", shape_period_cells)),
        ),
        Modification("texture", texture_sigma_cells, "disentangled", params=(("cell_size", cell),)),
        Modification("contrast", contrast, "disentangled"),
        Modification("saturation", saturation, "disentangled"),
    )
    if brightness is not None:
        mods += (Modification("brightness", brightness, "disentangled", in_paper=False),)
    return mods


def default_dose_strengths(attribute: str, mode: str) -> tuple[float, ...]:
    """Five strengths from the no-op to strong, including the set's default value.

    Args:
        attribute: one of :data:`ALL_ATTRIBUTES`.
        mode: ``"reference"`` or ``"disentangled"``.

    Returns:
        The strengths, no-op first, in the units of :attr:`Modification.strength`.

    Raises:
        ValueError: on an unknown attribute or mode.
    """
    try:
        return _DOSE[(attribute, mode)]
    except KeyError:
        raise ValueError(
            f"no dose strengths for attribute {attribute!r} in mode {mode!r}"
        ) from None


def dose_response(
    attribute: str, mode: str, strengths: Sequence[float], **context: Any
) -> tuple[Modification, ...]:
    """The same attribute at several strengths, the no-op first.

    Args:
        attribute: one of :data:`ALL_ATTRIBUTES`.
        mode: ``"reference"`` or ``"disentangled"``.
        strengths: strengths in the units of :attr:`Modification.strength`, kept in the given
            order; the no-op is put first (once) whether or not it is listed.
        **context: extra parameters: ``shape_frequency`` (reference shape, default 0.05);
            ``cell_size`` (disentangled shape and texture, required) and
            ``shape_period_cells`` (disentangled shape, default 1).

    Returns:
        The modifications, no-op first.

    Raises:
        ValueError: on an unknown attribute, mode or context key, or a missing cell_size.
    """
    allowed = {"shape_frequency", "cell_size", "shape_period_cells"}
    unknown = set(context) - allowed
    if unknown:
        raise ValueError(f"unknown context {sorted(unknown)}; allowed: {sorted(allowed)}")
    if attribute not in ALL_ATTRIBUTES:
        raise ValueError(f"unknown attribute {attribute!r}; expected one of {ALL_ATTRIBUTES}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    params: tuple[tuple[str, float], ...] = ()
    if attribute == "shape" and mode == "reference":
        params = (("frequency", float(context.get("shape_frequency", REF_SHAPE_FREQUENCY))),)
    elif attribute in ("shape", "texture") and mode == "disentangled":
        if "cell_size" not in context:
            raise ValueError(f"disentangled {attribute} needs cell_size=... in the context")
        params = (("cell_size", float(context["cell_size"])),)
        if attribute == "shape":
            period = float(context.get("shape_period_cells", DIS_SHAPE_PERIOD_CELLS))
            params += (("period_cells", period),)
    in_paper = attribute != "brightness"
    identity = IDENTITY_STRENGTH[attribute]
    values = [identity] + [float(s) for s in strengths if float(s) != identity]
    return tuple(Modification(attribute, s, mode, in_paper, params) for s in values)


def identity_set(mode: str = "reference") -> tuple[Modification, ...]:
    """Every attribute (brightness included, last) at its no-op strength.

    Args:
        mode: ``"reference"`` or ``"disentangled"``.

    Returns:
        Modifications whose :meth:`~Modification.apply` returns an exact copy.
    """
    return tuple(
        Modification(a, IDENTITY_STRENGTH[a], mode, in_paper=a != "brightness")
        for a in ALL_ATTRIBUTES
    )


# --------------------------------------------------------------------------- helpers


def _check_image(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] RGB image, got {rgb.dtype} {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"empty image {rgb.shape}")
    return np.ascontiguousarray(rgb)


@functools.lru_cache(maxsize=64)
def _warp_indices(
    height: int, width: int, amplitude: float, frequency: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gather indices equal to rolling every row, then every column (read-only, cached).

    Row roll: ``r[i, j] = x[i, (j - s_i) % W]``; column roll: ``y[i, j] = r[(i - s_j) % H, j]``.
    So ``y[i, j] = x[k, (j - s_k) % W]`` with ``k = (i - s_j) % H``.
    """
    s_rows = warp_shifts(height, amplitude, frequency)
    s_cols = warp_shifts(width, amplitude, frequency)
    i = np.arange(height)[:, None]
    j = np.arange(width)[None, :]
    k = (i - s_cols[None, :]) % height
    cols = (j - s_rows[k]) % width
    rows = np.broadcast_to(k, (height, width)).copy()
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def _sine_warp(rgb: np.ndarray, amplitude: float, frequency: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    rows, cols = _warp_indices(h, w, float(amplitude), float(frequency))
    return rgb[rows, cols]


# sRGB (D65) <-> CIE L*a*b*, float64, without clipping (out-of-gamut values stay visible).
_RGB2XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ2RGB = np.linalg.inv(_RGB2XYZ)
_WHITE = _RGB2XYZ.sum(axis=1)  # the white point of this matrix, so grey has a = b = 0
_DELTA = 6.0 / 29.0


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((np.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    return np.where(
        c <= 0.0031308, c * 12.92, 1.055 * np.maximum(c, 0.0031308) ** (1.0 / 2.4) - 0.055
    )


_UINT8_TO_LINEAR = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0)


def _uint8_to_lab(rgb: np.ndarray) -> np.ndarray:
    """L*a*b* (float64 ``[H, W, 3]``) of a uint8 sRGB image."""
    linear = _UINT8_TO_LINEAR[rgb]
    xyz = (linear.reshape(-1, 3) @ (_RGB2XYZ.T / _WHITE)).reshape(linear.shape)
    f = np.where(xyz > _DELTA**3, np.cbrt(xyz), xyz / (3 * _DELTA**2) + 4.0 / 29.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0))
    linear = (xyz.reshape(-1, 3) @ (_XYZ2RGB * _WHITE).T).reshape(xyz.shape)
    return _linear_to_srgb(linear)


def _in_gamut(rgb01: np.ndarray) -> np.ndarray:
    return ((rgb01 >= -_GAMUT_EPS) & (rgb01 <= 1.0 + _GAMUT_EPS)).all(axis=-1)


def _toward_in_gamut(anchor: np.ndarray, target: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] of ``anchor + t (target - anchor)`` (Lab) with the largest in-gamut t ≤ 1.

    ``anchor`` must be in gamut. Pixels whose target is in gamut get t = 1; the others
    get the largest in-gamut t found by bisection (always a tested in-gamut point).
    """
    rgb = _lab_to_rgb(target)
    out = ~_in_gamut(rgb)
    if out.any():
        a0, d = anchor[out], target[out] - anchor[out]
        lo = np.zeros(a0.shape[0])
        hi = np.ones(a0.shape[0])
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            ok = _in_gamut(_lab_to_rgb(a0 + mid[:, None] * d))
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        rgb[out] = _lab_to_rgb(a0 + lo[:, None] * d)
        logger.debug("gamut: %d of %d pixels shortened", int(out.sum()), out.size)
    return rgb


def _to_uint8(rgb01: np.ndarray, grey: bool) -> np.ndarray:
    if grey:
        rgb01 = np.repeat(rgb01.mean(axis=-1, keepdims=True), 3, axis=-1)
    return np.clip(np.rint(rgb01 * 255.0), 0, 255).astype(np.uint8)


def _lab_of(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    grey = is_grey(rgb)
    lab = _uint8_to_lab(rgb)
    if grey:
        lab[..., 1:] = 0.0
    return lab, grey


def _with_lightness(rgb: np.ndarray, new_l: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Replaces L by ``new_l(L)`` keeping a and b; shortens the change where out of gamut."""
    lab, grey = _lab_of(rgb)
    target = lab.copy()
    target[..., 0] = np.clip(new_l(lab[..., 0]), 0.0, 100.0)
    return _to_uint8(_toward_in_gamut(lab, target), grey)


def _with_chroma(
    rgb: np.ndarray, new_ab: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Replaces (a, b) by ``new_ab(a, b)`` keeping L; shortens the chroma where out of gamut."""
    lab, grey = _lab_of(rgb)
    target = lab.copy()
    target[..., 1], target[..., 2] = new_ab(lab[..., 1], lab[..., 2])
    anchor = lab.copy()
    anchor[..., 1:] = 0.0
    return _to_uint8(_toward_in_gamut(anchor, target), grey)


# --------------------------------------------------------------------------- reference ops


def _ref_contrast(m: Modification, rgb: np.ndarray) -> np.ndarray:
    return np.asarray(ImageEnhance.Contrast(Image.fromarray(rgb)).enhance(m.strength))


def _ref_saturation(m: Modification, rgb: np.ndarray) -> np.ndarray:
    return np.asarray(ImageEnhance.Color(Image.fromarray(rgb)).enhance(m.strength))


def _ref_brightness(m: Modification, rgb: np.ndarray) -> np.ndarray:
    return np.asarray(ImageEnhance.Brightness(Image.fromarray(rgb)).enhance(m.strength))


def _ref_hue(m: Modification, rgb: np.ndarray) -> np.ndarray:
    from torchvision.transforms import functional as tvf  # slow import, only when needed

    return np.asarray(tvf.adjust_hue(Image.fromarray(rgb), m.strength))


def _ref_texture(m: Modification, rgb: np.ndarray) -> np.ndarray:
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    h = m.strength
    out = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, NLM_TEMPLATE_WINDOW, NLM_SEARCH_WINDOW)
    return out[..., ::-1]


def _ref_shape(m: Modification, rgb: np.ndarray) -> np.ndarray:
    frequency = m.param("frequency", REF_SHAPE_FREQUENCY)
    return _sine_warp(rgb, m.strength, frequency)


# --------------------------------------------------------------------------- disentangled ops


def _dis_contrast(m: Modification, rgb: np.ndarray) -> np.ndarray:
    f = m.strength

    def new_l(lum: np.ndarray) -> np.ndarray:
        mean = lum.mean()
        return mean + f * (lum - mean)

    return _with_lightness(rgb, new_l)


def _dis_brightness(m: Modification, rgb: np.ndarray) -> np.ndarray:
    return _with_lightness(rgb, lambda lum: m.strength * lum)


def _dis_texture(m: Modification, rgb: np.ndarray) -> np.ndarray:
    sigma = m.strength * (m.param("cell_size") or 0.0)

    def new_l(lum: np.ndarray) -> np.ndarray:
        smooth = cv2.GaussianBlur(
            lum, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT
        )
        return smooth + (lum.mean() - smooth.mean())

    return _with_lightness(rgb, new_l)


def _dis_saturation(m: Modification, rgb: np.ndarray) -> np.ndarray:
    f = m.strength
    return _with_chroma(rgb, lambda a, b: (f * a, f * b))


def _dis_hue(m: Modification, rgb: np.ndarray) -> np.ndarray:
    theta = math.radians(m.strength)
    c, s = math.cos(theta), math.sin(theta)
    return _with_chroma(rgb, lambda a, b: (c * a - s * b, s * a + c * b))


@functools.lru_cache(maxsize=64)
def swirl_maps(
    height: int, width: int, amplitude: float, wavelength: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The swirl's sampling maps (read-only ``float32 [H, W]`` x and y, for ``cv2.remap``).

    The displacement is the curl of a random stream function ``ψ = Σ_k c_k sin(k·p + φ_k)`` of
    :data:`SWIRL_WAVES` plane waves, every ``|k| = 2π / wavelength`` (directions, phases and ``c_k``
    drawn from ``seed``): ``d = (∂ψ/∂y, −∂ψ/∂x)``, scaled to a root-mean-square length of
    ``amplitude`` pixels. A curl has no divergence, so the map keeps areas to first order, and with
    one wavelength it is smooth below that scale: outlines bend at the wavelength while a patch much
    smaller than it moves almost rigidly (local strain ≈ 2π·amplitude / wavelength).
    """
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, 2 * math.pi, SWIRL_WAVES)
    phase = rng.uniform(0.0, 2 * math.pi, SWIRL_WAVES)
    weight = rng.standard_normal(SWIRL_WAVES)
    k = 2 * math.pi / wavelength
    kx, ky = k * np.cos(angle), k * np.sin(angle)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    arg = x[..., None] * kx + y[..., None] * ky + phase  # [H, W, K]
    wave = weight * np.cos(arg)
    dx, dy = (wave * ky).sum(-1), -(wave * kx).sum(-1)  # (∂ψ/∂y, −∂ψ/∂x)
    rms = math.sqrt(float(np.mean(dx**2 + dy**2))) or 1.0
    map_x = (x + dx * (amplitude / rms)).astype(np.float32)
    map_y = (y + dy * (amplitude / rms)).astype(np.float32)
    map_x.flags.writeable = False
    map_y.flags.writeable = False
    return map_x, map_y


def _dis_swirl(m: Modification, rgb: np.ndarray) -> np.ndarray:
    cell = m.param("cell_size") or 0.0
    wavelength = (m.param("wavelength_cells", SWIRL_WAVELENGTH_CELLS) or 0.0) * cell
    seed = int(m.param("seed", 0) or 0)
    h, w = rgb.shape[:2]
    map_x, map_y = swirl_maps(h, w, m.strength * cell, wavelength, seed)
    # nearest: every output pixel is one input pixel, so colours and fine texture are not mixed
    return cv2.remap(rgb, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)


def _dis_shape(m: Modification, rgb: np.ndarray) -> np.ndarray:
    if m.param("swirl"):
        return _dis_swirl(m, rgb)
    cell = m.param("cell_size") or 0.0
    period_px = (m.param("period_cells", DIS_SHAPE_PERIOD_CELLS) or DIS_SHAPE_PERIOD_CELLS) * cell
    return _sine_warp(rgb, m.strength * cell, 2.0 / period_px)


_Op = Callable[[Modification, np.ndarray], np.ndarray]

_REFERENCE_OPS: dict[str, _Op] = {
    "contrast": _ref_contrast,
    "saturation": _ref_saturation,
    "brightness": _ref_brightness,
    "hue": _ref_hue,
    "texture": _ref_texture,
    "shape": _ref_shape,
}
_DISENTANGLED_OPS: dict[str, _Op] = {
    "contrast": _dis_contrast,
    "saturation": _dis_saturation,
    "brightness": _dis_brightness,
    "hue": _dis_hue,
    "texture": _dis_texture,
    "shape": _dis_shape,
}
