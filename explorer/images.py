"""Turning any user-supplied image into a clean RGB ``uint8`` array.

:func:`load_image` accepts a path, raw bytes, a ``PIL.Image.Image`` or a numpy
array and returns a new, C-contiguous ``[H, W, 3]`` ``uint8`` RGB array -- or
raises :class:`~explorer.errors.BadImageError` with a message meant for the
user. No other exception type escapes it: unexpected failures inside Pillow are
wrapped too.

Stated handling
---------------

Files (``str`` / ``os.PathLike``):

* The path must exist (else "... not found") and be a regular file (else
  "... is a directory" / "... is not a regular file"). A zero-byte file is
  refused as an "empty file"; a file larger than :data:`MAX_BYTES` is refused
  before it is read. Messages name the file by its base name only.

Decoding (files, bytes and PIL images):

* Decoding is done by Pillow, by *content*: the extension is ignored, so a PNG
  named ``.jpg`` loads fine. Only these formats are tried: PNG, JPEG (and MPO),
  GIF, BMP, TIFF, WebP, AVIF (when Pillow has it), PNM and ICO. Anything else
  -- e.g. a text file renamed ``.png`` -- is refused as "not an image Pillow
  can read (supported: ...)". PDF, SVG and HEIC files get a specific hint.
* Decompression bombs: the image is opened lazily and its declared size is
  checked *before* any pixel is decoded; more than :data:`MAX_PIXELS` pixels is
  refused, naming the size and the limit. Pillow's own bomb check
  (``DecompressionBombError``, and ``DecompressionBombWarning`` which is turned
  into an error locally) is also reported this way. Pillow's global settings
  (``MAX_IMAGE_PIXELS``, ``ImageFile.LOAD_TRUNCATED_IMAGES``) are never changed.
* Truncated or corrupt data (``OSError``, ``SyntaxError``, ``EOFError``,
  ``ValueError`` ... from Pillow) is refused as "the file is truncated or
  corrupt".
* Multi-frame images (animated GIF/WebP, multi-page TIFF): the first frame.
* The EXIF orientation tag is applied (``ImageOps.exif_transpose``); malformed
  EXIF data is ignored with a logged warning.
* Pillow warnings raised while decoding are logged, not printed.

Colour modes:

========================================  =====================================
mode                                      result
========================================  =====================================
``RGB``                                   as is (embedded ICC profiles ignored)
``RGBA``, ``LA``, ``PA``, ``RGBa``,       composited on a white background
``La``, any mode with ``transparency``
``P`` (palette)                           palette colours
``L``                                     grey repeated into R, G and B
``1`` (bilevel)                           black / white
``CMYK``, ``YCbCr``, ``RGBX``             Pillow's conversion to RGB
``I;16*``, ``I``, ``F`` (high depth)      stretched to 0..255 over the image's
                                          own min..max (non-finite values -> 0);
                                          a constant image keeps its value,
                                          clipped to 0..255
anything Pillow cannot convert to RGB     refused ("unsupported colour mode")
========================================  =====================================

numpy arrays:

* Shapes ``[H, W]``, ``[H, W, 1]`` (grey), ``[H, W, 3]`` (RGB) and
  ``[H, W, 4]`` (RGBA, composited on white). Any other shape is refused.
* dtypes: ``uint8`` as is; ``uint16`` stretched over the image's own
  min..max like 16-bit files (alpha of a ``uint16`` RGBA array is read over the
  full 0..65535 range); floating point must be finite and within ``[0, 1]``
  (scaled by 255, rounded). Any other dtype (``int64``, ``bool`` ...) is
  refused with a hint to convert it.

Size (every input, measured after decoding/orientation):

* Either side smaller than :data:`MIN_SIDE` is refused as too small to
  explain; a long side more than :data:`MAX_ASPECT` times the short side is
  refused as too elongated; more than :data:`MAX_PIXELS` pixels is refused.
  Messages give the measured ``WIDTHxHEIGHT``.

The output is always a new array: modifying it never affects the input.
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeAlias

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.errors import BadImageError

__all__ = [
    "MAX_ASPECT",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "ImageSource",
    "load_image",
    "to_grey",
]

logger = logging.getLogger(__name__)

MAX_PIXELS: int = 40_000_000
"""Images with more pixels than this are refused before their pixels are decoded."""

MAX_BYTES: int = 50 * 1024 * 1024
"""Files (or byte strings) larger than this are refused before being read."""

MIN_SIDE: int = 8
"""Images smaller than this on either side are refused as too small to explain."""

MAX_ASPECT: float = 20.0
"""Images whose long side exceeds this many times the short side are refused."""

ImageSource: TypeAlias = (
    str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image | np.ndarray
)
"""Everything :func:`load_image` accepts."""

# Formats Pillow may try, in order, with the name shown to users.
_FORMAT_NAMES: dict[str, str] = {
    "PNG": "PNG",
    "JPEG": "JPEG",
    "GIF": "GIF",
    "BMP": "BMP",
    "TIFF": "TIFF",
    "WEBP": "WebP",
    "AVIF": "AVIF",
    "PPM": "PNM",
    "ICO": "ICO",
}

# Leading bytes of formats we decode, to tell "corrupt PNG" from "not an image".
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

_HEIF_BRANDS: tuple[bytes, ...] = (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1")

_BOMB_PIXELS_RE = re.compile(r"\((\d+) pixels\)")
_BOMB_LIMIT_RE = re.compile(r"limit of (\d+) pixels")

# Modes whose samples exceed 8 bits (stretched over the image's own range).
_HIGH_DEPTH_MODES: frozenset[str] = frozenset({"I", "F"})

# Modes carrying an alpha channel (composited on white).
_ALPHA_MODES: frozenset[str] = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def _supported_formats() -> tuple[str, ...]:
    """Returns the Pillow format ids of :data:`_FORMAT_NAMES` this Pillow can open."""
    Image.init()
    return tuple(fmt for fmt in _FORMAT_NAMES if fmt in Image.OPEN)


def _supported_text() -> str:
    """Returns the user-facing list of supported formats, e.g. ``"PNG, JPEG, GIF"``."""
    return ", ".join(_FORMAT_NAMES[fmt] for fmt in _supported_formats())


def load_image(source: ImageSource) -> np.ndarray:
    """Loads a user-supplied image as a clean RGB ``uint8`` array.

    See the module docstring for the full handling of paths, formats, colour
    modes, numpy arrays and sizes.

    Args:
        source: A path (``str`` or ``os.PathLike``), the encoded file content
            (``bytes``, ``bytearray`` or ``memoryview``), a ``PIL.Image.Image``
            or a numpy array of shape ``[H, W]``, ``[H, W, 1]``, ``[H, W, 3]``
            or ``[H, W, 4]`` and dtype ``uint8``, ``uint16`` or float in
            ``[0, 1]``.

    Returns:
        A new C-contiguous ``[H, W, 3]`` ``uint8`` RGB array.

    Raises:
        BadImageError: The input cannot be used; the message says why.
    """
    try:
        if isinstance(source, np.ndarray):
            return _finalise(_array_to_rgb(source, "the supplied array"))
        if isinstance(source, Image.Image):
            return _finalise(_load_pil(source))
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _finalise(_load_bytes(bytes(source)))
        if isinstance(source, (str, os.PathLike)):
            return _finalise(_load_path(source))
    except BadImageError:
        raise
    except MemoryError as exc:
        raise BadImageError("the image is too large to load in the available memory") from exc
    except Exception as exc:
        logger.exception("unexpected failure while loading an image")
        raise BadImageError(f"the image could not be loaded ({type(exc).__name__}: {exc})") from exc
    raise BadImageError(
        f"cannot load an image from an object of type {type(source).__name__}; pass a file path, "
        "the file's bytes, a PIL image or a numpy array"
    )


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """Converts an RGB ``uint8`` image to grey with ITU-R BT.601 luma weights.

    ``Y = 0.299 R + 0.587 G + 0.114 B``, rounded to the nearest integer.

    Args:
        rgb: ``[H, W, 3]`` ``uint8`` array (as returned by :func:`load_image`).
            A ``[H, W]`` ``uint8`` array is taken as already grey and copied.

    Returns:
        A new ``[H, W]`` ``uint8`` array.

    Raises:
        BadImageError: ``rgb`` is not a ``uint8`` ``[H, W, 3]`` or ``[H, W]`` array.
    """
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8:
        raise BadImageError(f"to_grey expects a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 2:
        return np.array(arr, dtype=np.uint8, order="C", copy=True)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise BadImageError(f"to_grey expects an [H, W, 3] RGB image, got shape {tuple(arr.shape)}")
    weights = np.array([299, 587, 114], dtype=np.uint32)
    luma = (arr.astype(np.uint32) @ weights + 500) // 1000
    return np.ascontiguousarray(luma.astype(np.uint8))


# --------------------------------------------------------------------------- sources


def _load_path(source: str | os.PathLike[str]) -> np.ndarray:
    """Checks a path and decodes the file it names."""
    raw = os.fspath(source)
    text = os.fsdecode(raw)
    if not text:
        raise BadImageError("no image path was given (the path is empty)")
    path = Path(text)
    label = f"'{path.name or text}'"
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise BadImageError(f"image file {label} not found") from exc
    except NotADirectoryError as exc:
        raise BadImageError(
            f"image file {label} not found (a parent of it is not a folder)"
        ) from exc
    except PermissionError as exc:
        raise BadImageError(f"image file {label} cannot be accessed: permission denied") from exc
    except OSError as exc:
        raise BadImageError(
            f"image file {label} cannot be accessed: {exc.strerror or exc}"
        ) from exc
    if stat.S_ISDIR(info.st_mode):
        raise BadImageError(f"{label} is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise BadImageError(f"{label} is not a regular file")
    if info.st_size == 0:
        raise BadImageError(f"{label} is an empty file (0 bytes)")
    if info.st_size > MAX_BYTES:
        raise BadImageError(
            f"{label} is {_mib(info.st_size)}, larger than the {_mib(MAX_BYTES)} limit for image files"
        )
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after decoding
    except PermissionError as exc:
        raise BadImageError(f"image file {label} cannot be read: permission denied") from exc
    except OSError as exc:
        raise BadImageError(f"image file {label} cannot be read: {exc.strerror or exc}") from exc
    with handle:
        logger.debug("decoding image file %s (%d bytes)", path, info.st_size)
        return _decode(handle, label, what="file")


def _load_bytes(data: bytes) -> np.ndarray:
    """Decodes an image from its encoded bytes."""
    label = "the supplied image data"
    if not data:
        raise BadImageError(f"{label} is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise BadImageError(
            f"{label} is {_mib(len(data))}, larger than the {_mib(MAX_BYTES)} limit"
        )
    with io.BytesIO(data) as handle:
        return _decode(handle, label, what="data")


def _load_pil(image: Image.Image) -> np.ndarray:
    """Converts a caller's PIL image (first frame), leaving its frame position as found."""
    label = "the supplied PIL image"
    try:
        position = image.tell()
    except Exception:
        position = 0
    try:
        with _pillow_warnings_as_errors():
            _check_declared_size(image.size, label)
            try:
                if position != 0:
                    image.seek(0)
                return _pil_to_rgb(image, label)
            finally:
                if position != 0:
                    try:
                        image.seek(position)
                    except Exception:
                        logger.debug("could not restore frame %d of the caller's image", position)
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(label, exc) from exc
    except Exception as exc:
        raise BadImageError(f"{label} could not be decoded: {_detail(exc)}") from exc


# --------------------------------------------------------------------------- decoding


@contextmanager
def _pillow_warnings_as_errors() -> Iterator[None]:
    """Raises ``DecompressionBombWarning`` as an error and logs other warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        finally:
            for item in caught:
                logger.warning("while decoding an image: %s", item.message)


def _decode(handle: io.BufferedIOBase, label: str, what: str) -> np.ndarray:
    """Opens lazily, checks the declared size, then decodes ``handle``.

    Args:
        handle: Binary file object positioned anywhere (Pillow seeks to 0).
        label: How to name the image in messages, e.g. ``"'cat.png'"``.
        what: ``"file"`` or ``"data"``, for messages.

    Returns:
        ``[H, W, 3]`` ``uint8`` array.

    Raises:
        BadImageError: For every failure.
    """
    try:
        with _pillow_warnings_as_errors():
            try:
                image = Image.open(handle, formats=_supported_formats())
            except UnidentifiedImageError as exc:
                raise _unidentified_error(handle, label, what) from exc
            with image:
                _check_declared_size(image.size, label)
                return _pil_to_rgb(image, label)
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(label, exc) from exc
    except MemoryError as exc:
        raise BadImageError(f"{label} is too large to decode in the available memory") from exc
    except (
        OSError,
        SyntaxError,
        EOFError,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
    ) as exc:
        raise BadImageError(
            f"{label} could not be decoded: the {what} is truncated or corrupt ({_detail(exc)})"
        ) from exc
    except Exception as exc:
        raise BadImageError(f"{label} could not be decoded ({_detail(exc)})") from exc


def _unidentified_error(handle: io.BufferedIOBase, label: str, what: str) -> BadImageError:
    """Builds the message for data Pillow could not identify, sniffing its first bytes."""
    try:
        handle.seek(0)
        head = handle.read(1024)
    except Exception:
        head = b""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return BadImageError(
                f"{label} looks like a {name} {what} but could not be read: "
                f"the {what} is truncated or corrupt"
            )
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return BadImageError(
            f"{label} looks like a WebP {what} but could not be read: truncated or corrupt"
        )
    if head.startswith(b"%PDF"):
        return BadImageError(
            f"{label} is a PDF document, not an image; export the page as PNG or JPEG"
        )
    if b"<svg" in head.lower():
        return BadImageError(f"{label} is an SVG (vector) image; convert it to PNG first")
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return BadImageError(
            f"{label} is a HEIC/HEIF image, which is not supported; convert it to JPEG or PNG"
        )
    return BadImageError(
        f"{label} is not an image Pillow can read (supported: {_supported_text()})"
    )


def _bomb_error(label: str, exc: Exception) -> BadImageError:
    """Builds the message for Pillow's own decompression-bomb refusal."""
    text = str(exc)
    size_match = _BOMB_PIXELS_RE.search(text)
    limit_match = _BOMB_LIMIT_RE.search(text)
    size = f"{int(size_match.group(1)):,} pixels" if size_match else "too many pixels"
    # Pillow's limit (Image.MAX_IMAGE_PIXELS, or twice it for its hard error) may be
    # stricter than ours when the application lowered it; report the one that applies.
    limit = min(MAX_PIXELS, int(limit_match.group(1))) if limit_match else MAX_PIXELS
    return BadImageError(
        f"{label} declares an image of {size}, more than the {limit:,}-pixel limit "
        "(refused without decoding: possible decompression bomb)"
    )


def _check_declared_size(size: tuple[int, int], label: str) -> None:
    """Refuses, before decoding, images over :data:`MAX_PIXELS` or of unusable shape."""
    width, height = size
    _check_dimensions(width, height, label)


def _check_dimensions(width: int, height: int, label: str) -> None:
    """Applies the pixel-count, minimum-side and aspect-ratio limits.

    Raises:
        BadImageError: When a limit is exceeded; the message gives ``WxH``.
    """
    if width * height > MAX_PIXELS:
        raise BadImageError(
            f"{label} is {width}x{height} pixels ({width * height:,}), more than the "
            f"{MAX_PIXELS:,}-pixel limit; downscale it first"
        )
    if min(width, height) < MIN_SIDE:
        raise BadImageError(
            f"{label} is {width}x{height} pixels, too small to explain: "
            f"both sides must be at least {MIN_SIDE} pixels"
        )
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        raise BadImageError(
            f"{label} is {width}x{height} pixels, too elongated: aspect ratio {aspect:.1f}:1 "
            f"exceeds the {MAX_ASPECT:g}:1 limit"
        )


def _pil_to_rgb(image: Image.Image, label: str) -> np.ndarray:
    """Decodes the current frame of ``image`` and normalises it to RGB ``uint8``.

    Args:
        image: PIL image at the frame to use (size already checked).
        label: How to name the image in messages.

    Returns:
        ``[H, W, 3]`` ``uint8`` array (possibly not owning its data).
    """
    image.load()
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception as exc:
        logger.warning("ignoring unreadable EXIF orientation of %s: %s", label, exc)
        oriented = image
    if oriented is None:  # only with in_place=True; kept for type checkers
        oriented = image
    mode = oriented.mode
    logger.debug("%s: mode %s, size %dx%d", label, mode, *oriented.size)

    if mode in _HIGH_DEPTH_MODES or mode.startswith("I;16"):
        grey = _stretch_to_uint8(np.asarray(oriented))
        return np.repeat(grey[:, :, None], 3, axis=2)

    has_alpha = mode in _ALPHA_MODES or oriented.info.get("transparency") is not None
    try:
        if has_alpha:
            rgba = np.asarray(oriented if mode == "RGBA" else oriented.convert("RGBA"))
            return _composite_uint8(rgba)
        rgb = oriented if mode == "RGB" else oriented.convert("RGB")
    except ValueError as exc:
        raise BadImageError(
            f"{label} uses the unsupported colour mode {mode} ({_detail(exc)})"
        ) from exc
    return np.asarray(rgb)


# --------------------------------------------------------------------------- arrays


def _array_to_rgb(array: np.ndarray, label: str) -> np.ndarray:
    """Validates and converts a numpy image to ``[H, W, 3]`` ``uint8``."""
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise BadImageError(
            f"{label} has shape {tuple(arr.shape)}; expected [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]"
        )
    height, width = int(arr.shape[0]), int(arr.shape[1])
    if height == 0 or width == 0:
        raise BadImageError(
            f"{label} is {width}x{height} pixels, too small to explain: "
            f"both sides must be at least {MIN_SIDE} pixels"
        )
    _check_dimensions(width, height, label)

    kind, itemsize = arr.dtype.kind, arr.dtype.itemsize
    colour, alpha = (arr[:, :, :3], arr[:, :, 3]) if arr.shape[2] == 4 else (arr, None)
    if kind == "u" and itemsize == 1:
        if alpha is not None:
            return _composite_uint8(arr)
        colour8 = colour
    elif kind == "u" and itemsize == 2:
        colour8 = _stretch_to_uint8(colour)
        if alpha is not None:
            return _composite(colour8, alpha.astype(np.float32) / np.float32(65535))
    elif kind == "f":
        if not np.all(np.isfinite(arr)):
            raise BadImageError(f"{label} contains NaN or infinite values")
        low, high = float(arr.min()), float(arr.max())
        if low < -1e-6 or high > 1 + 1e-6:
            raise BadImageError(
                f"{label} is a float array with values in [{low:g}, {high:g}]; float images must "
                "lie in [0, 1] (divide 8-bit values by 255)"
            )
        unit = np.clip(arr.astype(np.float32), 0.0, 1.0)
        colour8 = np.rint(unit[:, :, : colour.shape[2]] * 255).astype(np.uint8)
        if alpha is not None:
            return _composite(colour8, unit[:, :, 3])
    else:
        raise BadImageError(
            f"{label} has dtype {arr.dtype}; expected uint8, uint16 or float in [0, 1] "
            "(convert it, e.g. with .astype(np.uint8))"
        )
    if colour8.shape[2] == 1:
        return np.repeat(colour8, 3, axis=2)
    return np.array(colour8, dtype=np.uint8, order="C", copy=True)


# --------------------------------------------------------------------------- pixels


def _stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """Maps high-depth samples onto 0..255 over their own finite min..max.

    A constant image keeps its value clipped to 0..255; non-finite samples
    become 0.

    Args:
        values: Array of any real dtype and shape.

    Returns:
        ``uint8`` array of the same shape.
    """
    data = values.astype(np.float64)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    valid = data if finite.all() else data[finite]
    low, high = float(valid.min()), float(valid.max())
    scaled = (data - low) * (255.0 / (high - low)) if high > low else np.clip(data, 0.0, 255.0)
    scaled = np.where(finite, scaled, 0.0)
    return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)


def _composite_uint8(rgba: np.ndarray) -> np.ndarray:
    """Composites an ``[H, W, 4]`` ``uint8`` RGBA array on white, exactly, in integers."""
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    if bool((alpha == 255).all()):
        return np.array(rgba[:, :, :3], dtype=np.uint8, order="C", copy=True)
    colour = rgba[:, :, :3].astype(np.uint16)
    out = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _composite(colour8: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composites ``uint8`` colour with a ``[0, 1]`` float alpha on white."""
    a = alpha.astype(np.float32)[:, :, None]
    out = colour8.astype(np.float32) * a + np.float32(255) * (1 - a)
    return np.rint(np.clip(out, 0, 255)).astype(np.uint8)


def _finalise(rgb: np.ndarray) -> np.ndarray:
    """Returns ``rgb`` as a writable, C-contiguous ``uint8`` array owning its data."""
    if (
        rgb.dtype == np.uint8
        and rgb.flags.c_contiguous
        and rgb.flags.writeable
        and rgb.flags.owndata
        and rgb.ndim == 3
        and rgb.shape[2] == 3
    ):
        return rgb
    out = np.array(rgb, dtype=np.uint8, order="C", copy=True)
    if out.ndim != 3 or out.shape[2] != 3:  # pragma: no cover - internal invariant
        raise BadImageError(f"internal error: decoded image has shape {out.shape}")
    return out


def _mib(size: int) -> str:
    """Formats a byte count in MiB for messages."""
    return f"{size / (1024 * 1024):.1f} MB"


def _detail(exc: BaseException) -> str:
    """Short description of an exception for a user message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 image as ``[H, W, 3]``: grey ``[H, W]`` or ``[H, W, 1]`` is repeated to three channels,
    RGB is returned as it is.

    Raises:
        ValueError: not uint8, or not one of those shapes.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)  # [H, W, 3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be [H, W, 3] RGB or [H, W] grey, got shape {image.shape}")
    return image
