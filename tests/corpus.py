"""A generated corpus of awkward image files, shared by the library, CLI and app tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


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


def bad_image_corpus(folder: Path) -> dict[str, tuple[Path, str]]:
    """Writes the corpus; returns ``name -> (path, expectation)``, expectation ``ok`` or a fragment
    the refusal message must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, str]] = {}

    def add(name: str, expect: str) -> Path:
        out[name] = (folder / name, expect)
        return folder / name

    add("text.png", "not an image").write_text("this is text, not a picture")
    add("empty.png", "empty").write_bytes(b"")
    png = io.BytesIO()
    Image.fromarray(noise_rgb(64, 64)).save(png, format="PNG")
    add("truncated.png", "truncated").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[8:24, 8:24, 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(add("rgba.png", "ok"))
    deep = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).astype(np.uint16)
    Image.fromarray(deep).save(add("sixteen_bit.png", "ok"))
    Image.new("RGB", (1, 1), (9, 9, 9)).save(add("one_pixel.png", "too small"))
    png_declaring(add("huge.png", "pixels"), 30000, 30000)
    return out
