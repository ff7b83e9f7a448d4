"""A generated corpus of awkward image files, shared by the library, CLI and app tests.

:data:`HOSTILE_IMAGES` is the one table of what each file is and what the explorer must do with it
(``handled``: explained like any image; ``refused``: a ``BadImageError`` whose message contains the
fragment). ``tests/test_hostile_inputs.py`` drives the library, the CLI and the app from it, and
:func:`readme_table` renders it for docs/reliability.md.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HANDLED = "handled"
REFUSED = "refused"


def png_declaring(path: Path, width: int, height: int) -> Path:
    """Writes a tiny valid-header PNG whose IHDR declares ``width`` x ``height`` (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def noise_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Incompressible random RGB pixels (so truncating a file cuts pixel data)."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _encoded(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def default_picture() -> np.ndarray:
    """The content of the handled files when no picture is given: 32x32, smooth colours."""
    y, x = np.mgrid[0:32, 0:32]
    return np.stack([x * 8, y * 8, (x + y) * 4], axis=2).astype(np.uint8)


def _rgba(path: Path, picture: np.ndarray) -> None:
    """The picture, opaque, inside a 4-pixel fully transparent border (composited on white)."""
    alpha = np.zeros(picture.shape[:2], dtype=np.uint8)
    alpha[4:-4, 4:-4] = 255
    Image.fromarray(np.dstack([picture, alpha]), mode="RGBA").save(path)


def _sixteen_bit(path: Path, picture: np.ndarray) -> None:
    grey = np.asarray(Image.fromarray(picture).convert("L"), dtype=np.uint16)
    Image.fromarray(grey * 257 // 2 + 1000).save(path)  # mode I;16, stretched back on loading


def _palette(path: Path, picture: np.ndarray) -> None:
    Image.fromarray(picture).quantize(64).save(path)  # mode P


def _animated_gif(path: Path, picture: np.ndarray) -> None:
    frames = [Image.fromarray(picture), Image.fromarray(255 - picture)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _exif_rotated(path: Path, picture: np.ndarray) -> None:
    """Stored turned 90° counter-clockwise, with EXIF orientation 6 (turn 90° clockwise to show)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(picture)).save(path, format="JPEG", exif=exif, quality=95)


def _cmyk(path: Path, picture: np.ndarray) -> None:
    Image.fromarray(picture).convert("CMYK").save(path, format="JPEG", quality=95)


@dataclass(frozen=True)
class Hostile:
    """One file of the corpus: what it is, the expected outcome, and how to write it.

    ``write(path, picture)`` writes the file; handled files show ``picture`` (an RGB ``uint8`` array),
    and ``lossless`` ones decode to exactly its pixels, so they must be explained exactly as it is.
    """

    description: str
    outcome: str  # HANDLED or REFUSED
    fragment: str  # what a refusal's message must contain (plain text, regex-safe); "" if handled
    write: Callable[[Path, np.ndarray], object]
    lossless: bool = False


HOSTILE_IMAGES: dict[str, Hostile] = {
    "empty.png": Hostile("zero-byte file", REFUSED, "empty", lambda p, _: p.write_bytes(b"")),
    "text.png": Hostile(
        "a text file renamed .png", REFUSED, "not an image",
        lambda p, _: p.write_text("this is text, not a picture"),
    ),
    "pdf_renamed.png": Hostile(
        "a PDF renamed .png", REFUSED, "PDF",
        lambda p, _: p.write_bytes(b"%PDF-1.7\n1 0 obj\n<<>>\n"),
    ),
    "truncated.png": Hostile(
        "PNG cut in half", REFUSED, "truncated",
        lambda p, _: p.write_bytes(_half(_encoded(Image.fromarray(noise_rgb(64, 64)), "PNG"))),
    ),
    "truncated.jpg": Hostile(
        "JPEG cut in half", REFUSED, "truncated",
        lambda p, _: p.write_bytes(
            _half(_encoded(Image.fromarray(noise_rgb(64, 64, seed=1)), "JPEG", quality=95))
        ),
    ),
    "huge.png": Hostile(
        "decompression bomb: a 69-byte PNG declaring 30000×30000", REFUSED, "pixel limit",
        lambda p, _: png_declaring(p, 30000, 30000),
    ),
    "over_limit.png": Hostile(
        "PNG declaring 8000×6000 (48 Mpx: under Pillow's bomb limit, over ours)", REFUSED,
        "pixel limit", lambda p, _: png_declaring(p, 8000, 6000),
    ),
    "one_pixel.png": Hostile(
        "1×1 image", REFUSED, "too small", lambda p, _: Image.new("RGB", (1, 1), (9, 9, 9)).save(p)
    ),
    "strip.png": Hostile(
        "10000×10 strip", REFUSED, "too elongated",
        lambda p, _: Image.new("RGB", (10000, 10), (90, 90, 90)).save(p),
    ),
    "sixteen_bit.png": Hostile("16-bit grey PNG", HANDLED, "", _sixteen_bit),
    "cmyk.jpg": Hostile("CMYK JPEG", HANDLED, "", _cmyk),
    "palette.png": Hostile("palette PNG (64 colours)", HANDLED, "", _palette),
    "rgba.png": Hostile("RGBA PNG (transparent border, on white)", HANDLED, "", _rgba),
    "animated.gif": Hostile("animated GIF (first frame)", HANDLED, "", _animated_gif),
    "exif_rotated.jpg": Hostile("JPEG with EXIF orientation 6", HANDLED, "", _exif_rotated),
    "scan.tiff": Hostile(
        "TIFF", HANDLED, "", lambda p, picture: Image.fromarray(picture).save(p), lossless=True
    ),
    "png_named.jpg": Hostile(
        "a valid PNG named .jpg", HANDLED, "",
        lambda p, picture: Image.fromarray(picture).save(p, format="PNG"), lossless=True,
    ),
}  # fmt: skip

EXPECTED: dict[str, str] = {name: item.outcome for name, item in HOSTILE_IMAGES.items()}
"""``name -> "handled" | "refused"``: the expectations every entry (library, CLI, app) is held to."""


def write_corpus(folder: Path, picture: np.ndarray | None = None) -> dict[str, Path]:
    """Writes every file of :data:`HOSTILE_IMAGES` into ``folder``; returns ``name -> path``.

    Args:
        picture: RGB ``uint8`` ``[H, W, 3]`` the handled files show (default :func:`default_picture`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    picture = default_picture() if picture is None else picture
    paths = {}
    for name, item in HOSTILE_IMAGES.items():
        item.write(folder / name, picture)
        paths[name] = folder / name
    return paths


def bad_image_corpus(folder: Path) -> dict[str, tuple[Path, str]]:
    """Writes the corpus; returns ``name -> (path, expectation)``, expectation ``ok`` or a fragment
    the refusal message must contain."""
    out = {}
    for name, path in write_corpus(folder).items():
        item = HOSTILE_IMAGES[name]
        out[name] = (path, "ok" if item.outcome == HANDLED else item.fragment)
    return out


def readme_table() -> str:
    """The corpus as a Markdown table (file, what it is, outcome, what the message names)."""
    rows = ["| file | what it is | outcome | the refusal names |", "|---|---|---|---|"]
    for name, item in HOSTILE_IMAGES.items():
        named = f"“{item.fragment}”" if item.fragment else "—"
        rows.append(f"| `{name}` | {item.description} | {item.outcome} | {named} |")
    return "\n".join(rows)
