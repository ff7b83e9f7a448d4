"""Tests of :mod:`explorer.images`: every awkward input is loaded as documented or refused clearly."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from explorer import images
from explorer.errors import (
    BadImageError,
    CheckpointError,
    ExplorerError,
    UnknownModelError,
)
from explorer.images import load_image, to_grey
from tests.corpus import noise_rgb, png_declaring

RED = (255, 0, 0)
BLUE = (0, 0, 255)


# --------------------------------------------------------------------------- helpers


def _save(image: Image.Image, path: Path, **kwargs: Any) -> Path:
    image.save(path, **kwargs)
    return path


def _refuse(source: Any, *fragments: str) -> str:
    """Asserts ``load_image(source)`` raises BadImageError mentioning every fragment."""
    with pytest.raises(BadImageError) as info:
        load_image(source)
    message = str(info.value)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message
    return message


def _check_output(rgb: np.ndarray, height: int, width: int) -> None:
    assert rgb.shape == (height, width, 3)
    assert rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous and rgb.flags.writeable


# --------------------------------------------------------------------------- paths


def test_missing_path(tmp_path: Path) -> None:
    message = _refuse(tmp_path / "nope.png", "nope.png", "not found")
    assert str(tmp_path) not in message  # only the file name is shown


def test_directory(tmp_path: Path) -> None:
    _refuse(tmp_path, "is a directory")


def test_empty_path_string() -> None:
    _refuse("", "empty")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    _refuse(path, "empty.png", "empty file")


def test_file_over_byte_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("RGB", (16, 16)), tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_BYTES", 10)
    _refuse(path, "big.png", "limit")


def test_text_renamed_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello, this is not a picture\n" * 10)
    _refuse(path, "notes.png", "not an image pillow can read", "supported", "PNG", "JPEG")


def test_pdf_and_svg_get_hints(tmp_path: Path) -> None:
    pdf = tmp_path / "doc.png"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    _refuse(pdf, "PDF")
    svg = tmp_path / "logo.png"
    svg.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>\n')
    _refuse(svg, "SVG")


def test_truncated_png(tmp_path: Path) -> None:
    full = io.BytesIO()
    Image.fromarray(noise_rgb(64, 64)).save(full, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    _refuse(path, "cut.png", "truncated or corrupt")


def test_png_cut_inside_header(tmp_path: Path) -> None:
    full = io.BytesIO()
    Image.fromarray(noise_rgb(16, 16)).save(full, format="PNG")
    path = tmp_path / "stub.png"
    path.write_bytes(full.getvalue()[:20])
    _refuse(path, "stub.png", "PNG", "truncated or corrupt")


def test_truncated_jpeg(tmp_path: Path) -> None:
    full = io.BytesIO()
    Image.fromarray(noise_rgb(64, 64)).save(full, format="JPEG", quality=95)
    path = tmp_path / "cut.jpg"
    path.write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    _refuse(path, "cut.jpg", "truncated or corrupt")


# --------------------------------------------------------------------------- bombs


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def _boom(self: Image.Image) -> None:
        raise AssertionError("pixels must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", _boom)
    monkeypatch.setattr(Image.Image, "load", _boom)


def test_decompression_bomb_refused_by_pillow_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = png_declaring(tmp_path / "bomb.png", 30000, 30000)
    assert path.stat().st_size < 200
    _forbid_decoding(monkeypatch)
    start = time.perf_counter()
    _refuse(path, "bomb.png", "900,000,000 pixels", "40,000,000", "limit")
    assert time.perf_counter() - start < 1.0


def test_over_pixel_limit_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 48 Mpx: under Pillow's own warning threshold, over ours.
    path = png_declaring(tmp_path / "huge.png", 8000, 6000)
    _forbid_decoding(monkeypatch)
    start = time.perf_counter()
    _refuse(path, "huge.png", "8000x6000", "40,000,000", "limit")
    assert time.perf_counter() - start < 1.0


def test_pillow_bomb_warning_becomes_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("RGB", (40, 40)), tmp_path / "warn.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 px: warning, not error
    _refuse(path, "warn.png", "1,600 pixels", "1,000-pixel limit")


# --------------------------------------------------------------------------- formats and modes


def test_sixteen_bit_png_is_stretched(tmp_path: Path) -> None:
    values = np.linspace(1000, 3000, 16 * 16).round().astype(np.uint16).reshape(16, 16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    rgb = load_image(_save(image, tmp_path / "deep.png"))
    _check_output(rgb, 16, 16)
    expected = np.rint((values.astype(np.float64) - 1000) * 255 / 2000).astype(np.uint8)
    np.testing.assert_array_equal(rgb[:, :, 0], expected)
    np.testing.assert_array_equal(rgb[:, :, 0], rgb[:, :, 2])
    assert rgb.min() == 0 and rgb.max() == 255


@pytest.mark.parametrize(("value", "expected"), [(100, 100), (5000, 255)])
def test_sixteen_bit_constant_keeps_clipped_value(
    tmp_path: Path, value: int, expected: int
) -> None:
    image = Image.fromarray(np.full((16, 16), value, dtype=np.uint16))
    rgb = load_image(_save(image, tmp_path / "flat.png"))
    assert (rgb == expected).all()


def test_float_tiff_is_stretched(tmp_path: Path) -> None:
    values = np.linspace(-2.0, 6.0, 16 * 16, dtype=np.float32).reshape(16, 16)
    image = Image.fromarray(values)
    assert image.mode == "F"
    rgb = load_image(_save(image, tmp_path / "float.tif"))
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = _save(
        Image.new("CMYK", (16, 16), (0, 255, 255, 0)),
        tmp_path / "print.jpg",
        quality=95,
    )
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    rgb = load_image(path)
    _check_output(rgb, 16, 16)
    assert np.abs(rgb.astype(int) - RED).max() <= 10


def test_palette_png(tmp_path: Path) -> None:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (8, 0, 16, 16))
    rgb = load_image(_save(image, tmp_path / "pal.png"))
    assert tuple(rgb[0, 0]) == RED and tuple(rgb[0, 15]) == BLUE


def test_palette_png_with_transparency_goes_white(tmp_path: Path) -> None:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (8, 0, 16, 16))
    rgb = load_image(_save(image, tmp_path / "pal_t.png", transparency=0))
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[0, 15]) == BLUE


def test_rgba_png_composited_on_white(tmp_path: Path) -> None:
    pixels = np.zeros((8, 8, 4), dtype=np.uint8)
    pixels[...] = (10, 20, 30, 255)
    pixels[0, 0] = (10, 20, 30, 0)
    pixels[0, 1] = (0, 0, 0, 128)
    rgb = load_image(_save(Image.fromarray(pixels, "RGBA"), tmp_path / "alpha.png"))
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert tuple(rgb[0, 1]) == (127, 127, 127)
    assert tuple(rgb[5, 5]) == (10, 20, 30)


def test_la_and_one_bit_png(tmp_path: Path) -> None:
    la = Image.new("LA", (8, 8), (40, 255))
    la.putpixel((0, 0), (40, 0))
    rgb = load_image(_save(la, tmp_path / "la.png"))
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[1, 1]) == (40, 40, 40)
    bits = Image.new("1", (8, 8), 0)
    bits.putpixel((3, 3), 1)
    rgb = load_image(_save(bits, tmp_path / "bits.png"))
    assert tuple(rgb[3, 3]) == (255, 255, 255) and tuple(rgb[0, 0]) == (0, 0, 0)


def test_grey_png_is_repeated(tmp_path: Path) -> None:
    rgb = load_image(_save(Image.new("L", (8, 8), 77), tmp_path / "grey.png"))
    assert (rgb == 77).all()


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 2
    rgb = load_image(path)
    _check_output(rgb, 16, 16)
    assert np.abs(rgb.astype(int) - RED).max() <= 2


def test_multipage_tiff_uses_first_page(tmp_path: Path) -> None:
    pages = [Image.new("RGB", (16, 16), BLUE), Image.new("RGB", (16, 16), RED)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    assert (load_image(path) == BLUE).all()


def test_tiff(tmp_path: Path) -> None:
    pixels = noise_rgb(16, 24)
    rgb = load_image(_save(Image.fromarray(pixels), tmp_path / "scan.tiff"))
    np.testing.assert_array_equal(rgb, pixels)


def test_png_with_jpg_extension(tmp_path: Path) -> None:
    pixels = noise_rgb(12, 10)
    path = tmp_path / "actually_png.jpg"
    Image.fromarray(pixels).save(path, format="PNG")
    np.testing.assert_array_equal(load_image(path), pixels)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), RED)
    image.paste(BLUE, (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = _save(image, tmp_path / "phone.jpg", exif=exif, quality=95)
    rgb = load_image(path)
    _check_output(rgb, 40, 20)  # dimensions swapped
    assert np.abs(rgb[5, 10].astype(int) - RED).max() <= 10  # left edge went to the top
    assert np.abs(rgb[35, 10].astype(int) - BLUE).max() <= 10


def test_one_pixel_refused(tmp_path: Path) -> None:
    _refuse(
        _save(Image.new("RGB", (1, 1)), tmp_path / "dot.png"),
        "dot.png",
        "1x1",
        "too small",
    )


def test_strip_refused_for_aspect(tmp_path: Path) -> None:
    _refuse(
        _save(Image.new("RGB", (10000, 10)), tmp_path / "strip.png"),
        "10000x10",
        "aspect",
    )


def test_size_limits_are_inclusive(tmp_path: Path) -> None:
    rgb = load_image(_save(Image.new("RGB", (8 * 20, 8)), tmp_path / "edge.png"))
    _check_output(rgb, 8, 160)


# --------------------------------------------------------------------------- bytes and PIL


def test_bytes_input() -> None:
    pixels = noise_rgb(9, 11)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    np.testing.assert_array_equal(load_image(buffer.getvalue()), pixels)
    np.testing.assert_array_equal(load_image(bytearray(buffer.getvalue())), pixels)
    _refuse(b"", "empty")
    _refuse(b"definitely not an image", "not an image")


def test_pil_input_first_frame_and_position_restored(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as image:
        image.seek(1)
        rgb = load_image(image)
        assert image.tell() == 1
    assert np.abs(rgb.astype(int) - RED).max() <= 2


def test_pil_input_modes_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (load_image(Image.new("RGBA", (8, 8), (0, 0, 0, 0))) == 255).all()
    assert (load_image(Image.new("I;16", (8, 8), 9)) == 9).all()
    _refuse(Image.new("RGB", (4, 50)), "4x50", "too small")
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    _refuse(Image.new("RGB", (16, 16)), "16x16", "limit")


def test_unsupported_source_type() -> None:
    _refuse(12345, "int")
    _refuse(None, "NoneType")


# --------------------------------------------------------------------------- numpy


def test_numpy_uint8_kinds() -> None:
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    for array in (grey, grey[:, :, None]):
        rgb = load_image(array)
        _check_output(rgb, 8, 8)
        np.testing.assert_array_equal(rgb[:, :, 1], grey)
    colour = noise_rgb(8, 10)
    rgb = load_image(colour)
    np.testing.assert_array_equal(rgb, colour)
    assert not np.shares_memory(rgb, colour)
    rgba = np.concatenate([colour, np.zeros((8, 10, 1), np.uint8)], axis=2)
    rgba[0, 0, 3] = 255
    rgb = load_image(rgba)
    assert tuple(rgb[0, 0]) == tuple(colour[0, 0]) and (rgb[1:] == 255).all()


def test_numpy_output_is_new_and_contiguous() -> None:
    source = noise_rgb(10, 20)
    view = source[:, ::2]
    assert not view.flags.c_contiguous
    rgb = load_image(view)
    _check_output(rgb, 10, 10)
    rgb[...] = 0
    assert view.any()


def test_numpy_uint16_stretched() -> None:
    values = np.array([[1000, 3000]], dtype=np.uint16).repeat(8, axis=0).repeat(4, axis=1)
    rgb = load_image(values)
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
    rgba = np.zeros((8, 8, 4), dtype=np.uint16)
    rgba[..., :3] = 500
    rgba[..., 3] = 65535
    rgba[0, 0, 3] = 0
    out = load_image(rgba)
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[1, 1]) == (
        255,
        255,
        255,
    )  # constant 500 -> clipped


def test_numpy_float_unit_range() -> None:
    values = np.linspace(0.0, 1.0, 64).reshape(8, 8)
    rgb = load_image(values)
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255
    rgba = np.ones((8, 8, 4), dtype=np.float32)
    rgba[..., :3] = 0.0
    rgba[0, 0, 3] = 0.0
    out = load_image(rgba)
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[1, 1]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros((8, 8, 2), np.uint8), "shape"),
        (np.zeros((8, 8, 3, 1), np.uint8), "shape"),
        (np.zeros((8,), np.uint8), "shape"),
        (np.zeros((8, 8, 3), np.int64), "dtype"),
        (np.zeros((8, 8), bool), "dtype"),
        (np.full((8, 8), 255.0), "[0, 1]"),
        (np.full((8, 8), np.nan), "nan"),
        (np.zeros((0, 8, 3), np.uint8), "too small"),
        (np.zeros((4, 8, 3), np.uint8), "8x4"),
        (np.zeros((8, 400), np.uint8), "aspect"),
    ],
)
def test_numpy_refused(array: np.ndarray, fragment: str) -> None:
    _refuse(array, fragment)


# --------------------------------------------------------------------------- grey and errors


def test_to_grey_bt601() -> None:
    rgb = np.array([[RED, (0, 255, 0), BLUE, (255, 255, 255)]], dtype=np.uint8)
    grey = to_grey(rgb)
    assert grey.dtype == np.uint8 and grey.shape == (1, 4)
    assert grey.tolist() == [[76, 150, 29, 255]]
    noise = noise_rgb(16, 16)
    reference = cv2.cvtColor(noise, cv2.COLOR_RGB2GRAY)
    assert np.abs(to_grey(noise).astype(int) - reference).max() <= 1
    with pytest.raises(BadImageError):
        to_grey(np.zeros((4, 4, 4), np.uint8))


def test_error_hierarchy() -> None:
    assert issubclass(BadImageError, ExplorerError) and issubclass(BadImageError, ValueError)
    assert issubclass(CheckpointError, ValueError)
    error = UnknownModelError("no model named 'x'")
    assert isinstance(error, KeyError) and str(error) == "no model named 'x'"
