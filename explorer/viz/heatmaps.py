"""Colour-mapped heatmaps and overlays as RGB uint8 arrays (numpy and OpenCV; no gradio, no matplotlib).

Colormaps: ``"jet"``, ``"viridis"``, ``"cividis"`` and ``"inferno"`` come from OpenCV's ``applyColorMap``
tables; ``"rdbu"`` is the diverging ColorBrewer RdBu scheme (Cynthia Brewer, colorbrewer2.org, 11-class,
the same control points as matplotlib's ``RdBu``), ordered blue → white → red so that negative
attributions are blue and positive ones red, linearly interpolated to 256 entries.

Every colormap is a ``[256, 3]`` uint8 RGB table: ``vmin`` maps to entry 0 and ``vmax`` to entry 255.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import cv2
import numpy as np

from explorer.images import as_rgb

__all__ = [
    "ACTIVATION_COLORMAP",
    "ATTRIBUTION_COLORMAP",
    "COLORMAPS",
    "COLOUR_BLIND_SAFE",
    "colormap_table",
    "colourise",
    "overlay",
    "shared_scale",
]

ACTIVATION_COLORMAP = "jet"  # ProtoPNet's own overlays use jet
ATTRIBUTION_COLORMAP = "rdbu"  # signed, diverging: blue negative, white zero, red positive
COLOUR_BLIND_SAFE = "cividis"  # cv2.COLORMAP_CIVIDIS

_OPENCV_MAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "cividis": cv2.COLORMAP_CIVIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
}
# ColorBrewer RdBu, 11 classes, from blue (low) to red (high); the centre is ColorBrewer's #f7f7f7.
_RDBU_HEX: tuple[str, ...] = (
    "053061", "2166ac", "4393c3", "92c5de", "d1e5f0", "f7f7f7",
    "fddbc7", "f4a582", "d6604d", "b2182b", "67001f",
)  # fmt: skip
DIVERGING: frozenset[str] = frozenset({"rdbu"})
COLORMAPS: tuple[str, ...] = (*_OPENCV_MAPS, "rdbu")


def _normalise_name(colormap: str) -> str:
    name = str(colormap).lower()
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; supported: {', '.join(COLORMAPS)}")
    return name


@cache
def _table(name: str) -> np.ndarray:
    if name in _OPENCV_MAPS:
        ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
        bgr = cv2.applyColorMap(ramp, _OPENCV_MAPS[name])  # [256, 1, 3] BGR
        table = bgr[:, 0, ::-1]  # [256, 3] RGB
    else:
        points = np.array(
            [[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in _RDBU_HEX], dtype=np.float64
        )  # [11, 3]
        where = np.linspace(0.0, 1.0, len(points))
        t = np.linspace(0.0, 1.0, 256)
        table = np.stack([np.interp(t, where, points[:, c]) for c in range(3)], axis=1)
        table = np.rint(table)
    out = np.ascontiguousarray(table, dtype=np.uint8)
    out.flags.writeable = False
    return out


def colormap_table(colormap: str) -> np.ndarray:
    """The ``[256, 3]`` uint8 RGB table of a colormap (read-only); entry 0 is ``vmin``'s colour.

    Raises:
        ValueError: unknown colormap name (names are case-insensitive).
    """
    return _table(_normalise_name(colormap))


def _finite(values: np.ndarray) -> np.ndarray:
    flat = np.asarray(values, dtype=np.float64).ravel()
    return flat[np.isfinite(flat)]


def colourise(
    values: np.ndarray,
    colormap: str = ACTIVATION_COLORMAP,
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """Maps a ``[H, W]`` float array to colours.

    Args:
        values: ``[H, W]`` numbers; non-finite entries get the colour of ``vmin`` (NaN, −inf) or
            ``vmax`` (+inf).
        colormap: one of :data:`COLORMAPS` (case-insensitive).
        vmin: value shown with the map's first colour (default: the smallest finite value; for the
            diverging ``"rdbu"``, ``−max|values|`` so that zero is white).
        vmax: value shown with the map's last colour (default: the largest finite value; for
            ``"rdbu"``, ``+max|values|``). Values outside ``[vmin, vmax]`` are clipped.

    Returns:
        ``[H, W, 3]`` uint8 RGB. A constant map or ``vmin == vmax`` gives the colour of ``vmin``
        everywhere (no division by zero); an all-zero map with the default ``"rdbu"`` scale is white.

    Raises:
        ValueError: unknown colormap, ``values`` not 2-D, or ``vmax < vmin``.
    """
    name = _normalise_name(colormap)
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D [H, W] array, got shape {values.shape}")
    lo, hi = _default_scale(values, name, vmin, vmax)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"vmin and vmax must be finite, got {lo} and {hi}")
    if hi < lo:
        raise ValueError(f"vmax ({hi}) must not be smaller than vmin ({lo})")
    data = values.astype(np.float64)  # [H, W]
    if hi > lo:
        with np.errstate(invalid="ignore", over="ignore"):
            t = (data - lo) / (hi - lo)
        t = np.nan_to_num(t, nan=0.0, posinf=1.0, neginf=0.0)
    else:
        t = np.zeros_like(data)
    index = np.rint(np.clip(t, 0.0, 1.0) * 255.0).astype(np.intp)  # [H, W]
    return _table(name)[index]  # [H, W, 3]


def _default_scale(
    values: np.ndarray, name: str, vmin: float | None, vmax: float | None
) -> tuple[float, float]:
    if vmin is not None and vmax is not None:
        return float(vmin), float(vmax)
    finite = _finite(values)
    if name in DIVERGING:
        lo, hi = shared_scale([finite], signed=True)
    elif finite.size:
        lo, hi = float(finite.min()), float(finite.max())
    else:
        lo, hi = 0.0, 0.0
    return (lo if vmin is None else float(vmin)), (hi if vmax is None else float(vmax))


def overlay(
    image_rgb: np.ndarray,
    values: np.ndarray,
    colormap: str = ACTIVATION_COLORMAP,
    alpha: float = 0.5,
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """Blends a colour-mapped ``[h, w]`` map over an image: ``(1 − alpha)·image + alpha·colours``.

    Args:
        image_rgb: uint8 RGB ``[H, W, 3]`` or grey ``[H, W]`` / ``[H, W, 1]``.
        values: ``[h, w]`` map; resized bilinearly (OpenCV) to ``[H, W]`` when the sizes differ.
        colormap: see :func:`colourise`.
        alpha: weight of the colours, in ``[0, 1]``.
        vmin: see :func:`colourise` (default scale is taken from the resized map).
        vmax: see :func:`colourise`.

    Returns:
        ``[H, W, 3]`` uint8 RGB.

    Raises:
        ValueError: a non-uint8 or badly shaped image, ``alpha`` outside ``[0, 1]``, or any
            :func:`colourise` error.
    """
    image = as_rgb(image_rgb)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D [h, w] array, got shape {values.shape}")
    height, width = image.shape[:2]
    if values.shape != (height, width):
        values = cv2.resize(
            values.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
        )  # [H, W]
    colours = colourise(values, colormap, vmin, vmax).astype(np.float32)  # [H, W, 3]
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def shared_scale(maps: Sequence[np.ndarray], signed: bool) -> tuple[float, float]:
    """One ``(vmin, vmax)`` for several maps, so that their colours can be compared.

    Args:
        maps: the maps (any shapes); non-finite values are ignored.
        signed: True for signed maps (attributions): a range symmetric around 0,
            ``(−max|v|, +max|v|)``, so that zero gets a diverging map's centre colour; an all-zero set
            gives ``(−1, 1)`` for the same reason. False: ``(min, max)`` over all maps (``(0, 0)``
            when there are no finite values).

    Raises:
        ValueError: no maps given.
    """
    if len(maps) == 0:
        raise ValueError("shared_scale needs at least one map")
    finite = np.concatenate([_finite(m) for m in maps])
    if signed:
        peak = float(np.abs(finite).max()) if finite.size else 0.0
        if peak == 0.0:
            peak = 1.0
        return -peak, peak
    if finite.size == 0:
        return 0.0, 0.0
    return float(finite.min()), float(finite.max())
