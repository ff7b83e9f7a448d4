"""Colour maps, overlays and shared scales (numpy RGB)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from explorer.viz.heatmaps import (
    ACTIVATION_COLORMAP,
    ATTRIBUTION_COLORMAP,
    COLORMAPS,
    COLOUR_BLIND_SAFE,
    colormap_table,
    colourise,
    overlay,
    shared_scale,
)

RAMP = np.linspace(-2.0, 3.0, 12, dtype=np.float32).reshape(3, 4)


def test_names_and_tables() -> None:
    assert (ACTIVATION_COLORMAP, ATTRIBUTION_COLORMAP, COLOUR_BLIND_SAFE) == (
        "jet",
        "rdbu",
        "cividis",
    )
    assert set(COLORMAPS) == {"jet", "viridis", "cividis", "inferno", "rdbu"}
    for name in COLORMAPS:
        table = colormap_table(name)
        assert table.shape == (256, 3) and table.dtype == np.uint8
    # OpenCV's tables, converted from BGR to RGB: jet starts dark blue and ends dark red
    assert colormap_table("jet")[0].tolist() == [0, 0, 128]
    assert colormap_table("jet")[-1].tolist() == [128, 0, 0]
    cividis = cv2.applyColorMap(np.array([[0]], dtype=np.uint8), cv2.COLORMAP_CIVIDIS)[0, 0, ::-1]
    assert colormap_table("cividis")[0].tolist() == cividis.tolist()


def test_rdbu_is_blue_white_red() -> None:
    table = colormap_table("rdbu").astype(int)
    assert table[0].tolist() == [0x05, 0x30, 0x61]  # ColorBrewer's darkest blue
    assert table[-1].tolist() == [0x67, 0x00, 0x1F]  # ColorBrewer's darkest red
    assert table[0, 2] > table[0, 0] and table[-1, 0] > table[-1, 2]
    assert (table[127:129] >= 240).all()  # near-white in the middle
    signed = np.array([[-1.0, 0.0, 1.0]])
    colours = colourise(signed, "rdbu").astype(int)  # default scale is symmetric: 0 is white
    assert (colours[0, 1] >= 240).all()
    assert (
        colours[0, 0].tolist() == table[0].tolist() and colours[0, 2].tolist() == table[-1].tolist()
    )


@pytest.mark.parametrize("name", COLORMAPS)
def test_colourise_maps_vmin_to_first_and_vmax_to_last_colour(name: str) -> None:
    table = colormap_table(name)
    colours = colourise(RAMP, name, vmin=-1.0, vmax=2.0)
    assert colours.shape == (3, 4, 3) and colours.dtype == np.uint8
    values = np.array([[-1.0, 2.0, -5.0, 9.0]])
    out = colourise(values, name, vmin=-1.0, vmax=2.0)
    assert out[0, 0].tolist() == table[0].tolist()  # vmin
    assert out[0, 1].tolist() == table[-1].tolist()  # vmax
    assert out[0, 2].tolist() == table[0].tolist()  # clipped below
    assert out[0, 3].tolist() == table[-1].tolist()  # clipped above


def test_colourise_default_scale_is_the_data_range_for_sequential_maps() -> None:
    table = colormap_table("viridis")
    colours = colourise(RAMP, "viridis")
    assert colours[0, 0].tolist() == table[0].tolist()
    assert colours[-1, -1].tolist() == table[-1].tolist()


def test_colormap_names_are_case_insensitive() -> None:
    np.testing.assert_array_equal(colourise(RAMP, "JET"), colourise(RAMP, "jet"))
    np.testing.assert_array_equal(colourise(RAMP, "RdBu"), colourise(RAMP, "rdbu"))


def test_unknown_colormap_lists_the_supported_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown colormap 'hot'.*jet.*viridis.*cividis.*inferno.*rdbu"
    ):
        colourise(RAMP, "hot")
    with pytest.raises(ValueError, match="unknown colormap"):
        overlay(np.zeros((3, 4, 3), np.uint8), RAMP, "hot")


@pytest.mark.parametrize("constant", [0.0, 4.5, -2.0])
@pytest.mark.parametrize("name", ["jet", "cividis"])
def test_constant_map_gives_the_vmin_colour_without_nan(constant: float, name: str) -> None:
    values = np.full((5, 6), constant, dtype=np.float32)
    with np.errstate(all="raise"):  # no division by zero, no invalid operation
        colours = colourise(values, name)
    assert colours.dtype == np.uint8 and colours.shape == (5, 6, 3)
    assert (colours == colormap_table(name)[0]).all()
    same = colourise(values, name, vmin=constant, vmax=constant)
    assert (same == colormap_table(name)[0]).all()


def test_all_zero_map_on_the_diverging_map_is_white() -> None:
    colours = colourise(np.zeros((4, 4)), "rdbu")
    assert (colours == colormap_table("rdbu")[128]).all()


def test_non_finite_values_do_not_break_colourise() -> None:
    values = np.array([[np.nan, 0.0, 1.0, np.inf, -np.inf]])
    table = colormap_table("jet")
    colours = colourise(values)
    assert colours[0, 0].tolist() == table[0].tolist()
    assert (
        colours[0, 1].tolist() == table[0].tolist() and colours[0, 2].tolist() == table[-1].tolist()
    )
    assert (
        colours[0, 3].tolist() == table[-1].tolist() and colours[0, 4].tolist() == table[0].tolist()
    )


def test_colourise_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        colourise(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="vmax"):
        colourise(RAMP, vmin=1.0, vmax=0.0)


def test_overlay_of_a_grey_image_resizes_the_map() -> None:
    grey = np.full((32, 48), 200, dtype=np.uint8)
    small = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    out = overlay(grey, small, alpha=0.5)
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8
    resized = cv2.resize(small, (48, 32), interpolation=cv2.INTER_LINEAR)
    colours = colourise(resized).astype(np.float32)
    expected = np.clip(np.rint(0.5 * 200 + 0.5 * colours), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(overlay(grey[:, :, None], small), out)  # [H, W, 1] too


def test_overlay_alpha_extremes_and_rgb_image() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(3, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(overlay(image, RAMP, alpha=0.0), image)
    np.testing.assert_array_equal(
        overlay(image, RAMP, "viridis", alpha=1.0), colourise(RAMP, "viridis")
    )
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, RAMP, alpha=1.5)
    with pytest.raises(ValueError, match="uint8"):
        overlay(image.astype(np.float32), RAMP)


def test_overlay_of_constant_map_is_finite() -> None:
    out = overlay(np.zeros((8, 8, 3), np.uint8), np.zeros((2, 2)), "rdbu", alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)


def test_shared_scale() -> None:
    a = np.array([[-1.0, 0.5]])
    b = np.array([[0.2, 3.0, np.nan]])
    assert shared_scale([a, b], signed=False) == (-1.0, 3.0)
    assert shared_scale([a, b], signed=True) == (-3.0, 3.0)
    assert shared_scale([np.array([[-4.0, 1.0]])], signed=True) == (-4.0, 4.0)
    assert shared_scale([np.zeros((2, 2))], signed=True) == (-1.0, 1.0)  # zero stays at the centre
    assert shared_scale([np.zeros((2, 2))], signed=False) == (0.0, 0.0)
    with pytest.raises(ValueError, match="at least one map"):
        shared_scale([], signed=False)


def test_shared_scale_makes_maps_comparable() -> None:
    weak = np.array([[0.0, 1.0]])
    strong = np.array([[0.0, 4.0]])
    vmin, vmax = shared_scale([weak, strong], signed=False)
    # on its own scale the weak map's maximum is the last colour; on the shared one it is not
    assert colourise(weak)[0, 1].tolist() == colormap_table("jet")[-1].tolist()
    assert (
        colourise(weak, vmin=vmin, vmax=vmax)[0, 1].tolist() != colormap_table("jet")[-1].tolist()
    )
    assert (
        colourise(strong, vmin=vmin, vmax=vmax)[0, 1].tolist() == colormap_table("jet")[-1].tolist()
    )
