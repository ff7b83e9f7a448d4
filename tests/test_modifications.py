"""Image modifications for "This Looks Like That, Because ...": reference exactness, the
disentangled set's one-attribute-only guarantees, grey images, identity and dose response."""

from __future__ import annotations

import itertools
import time

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance
from torchvision.transforms import functional as tvf

from explorer.analysis.modifications import (
    ALL_ATTRIBUTES,
    ATTRIBUTES,
    IDENTITY_STRENGTH,
    Modification,
    default_dose_strengths,
    disentangled_set,
    dose_response,
    identity_set,
    is_grey,
    reference_set,
    warp_shifts,
)
from explorer.data.synthetic import generate

# Lab tolerances (CIE L*a*b* units, measured with OpenCV's own float Lab conversion, an
# implementation independent of the module's): the uint8 rounding of the output moves a, b
# by at most ~0.85 and L by at most ~0.25 (measured on random and synthetic images).
AB_TOL = 1.0
L_TOL = 0.5
CHROMA_TOL = 1.5


def random_rgb(h: int = 37, w: int = 41, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def random_grey(h: int = 37, w: int = 41, seed: int = 1) -> np.ndarray:
    g = np.random.default_rng(seed).integers(0, 256, (h, w, 1), dtype=np.uint8)
    return np.repeat(g, 3, axis=2)


def moderate_rgb(h: int = 40, w: int = 48, seed: int = 2) -> np.ndarray:
    """Mid-lightness colours of low chroma (Lab L 45-65, chroma <= 18): every hue rotation of
    them stays inside the sRGB gamut."""
    rng = np.random.default_rng(seed)
    lab = np.empty((h, w, 3), np.float32)
    lab[..., 0] = rng.uniform(45, 65, (h, w))
    chroma = rng.uniform(0, 18, (h, w))
    angle = rng.uniform(0, 2 * np.pi, (h, w))
    lab[..., 1] = chroma * np.cos(angle)
    lab[..., 2] = chroma * np.sin(angle)
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).astype(np.float64)


def chroma(rgb: np.ndarray) -> np.ndarray:
    x = lab(rgb)
    return np.hypot(x[..., 1], x[..., 2])


@pytest.fixture(scope="module")
def synthetic_images() -> np.ndarray:
    return generate(2, "test", seed=3).images  # 12 images, 64x64, every class


def all_mods(size: tuple[int, int] = (64, 64), cell: float = 8.0) -> tuple[Modification, ...]:
    return reference_set() + disentangled_set(size, cell, brightness=0.8)


# --------------------------------------------------------------------------- sets and API


def test_reference_set_has_the_papers_five_plus_brightness_not_in_paper() -> None:
    mods = reference_set()
    assert tuple(m.name for m in mods) == (*ATTRIBUTES, "brightness")
    assert [m.in_paper for m in mods] == [True] * 5 + [False]
    assert all(m.mode == "reference" for m in mods)
    values = {m.name: m.strength for m in mods}
    assert values == {
        "hue": 0.1,
        "shape": 4.0,
        "texture": 4.0,
        "contrast": 0.45,
        "saturation": 0.7,
        "brightness": 0.8,
    }
    assert next(m for m in mods if m.name == "shape").param("frequency") == 0.05
    assert tuple(m.name for m in reference_set(brightness=None)) == ATTRIBUTES


def test_disentangled_set_names_defaults_and_options() -> None:
    mods = disentangled_set((64, 64), 8.0)
    assert tuple(m.name for m in mods) == ATTRIBUTES
    assert all(m.mode == "disentangled" and m.in_paper and not m.is_identity for m in mods)
    assert {m.name: m.strength for m in mods} == {
        "hue": 90.0,
        "shape": 0.5,
        "texture": 0.5,
        "contrast": 0.6,
        "saturation": 0.7,
    }
    assert mods[1].param("period_cells") == 1.0
    custom = {m.name: m for m in disentangled_set((64, 64), 8.0, contrast=0.5, brightness=0.9)}
    assert custom["contrast"].strength == 0.5
    assert not custom["brightness"].in_paper
    with pytest.raises(ValueError):
        disentangled_set((64, 64), 0.0)
    with pytest.raises(ValueError):
        disentangled_set((64, 64), 100.0)


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        Modification("sharpness", 1.0, "reference")
    with pytest.raises(ValueError):
        Modification("contrast", 0.5, "fancy")
    with pytest.raises(ValueError):
        Modification("hue", 0.7, "reference")
    with pytest.raises(ValueError):
        Modification("shape", 0.5, "disentangled")  # no cell_size
    with pytest.raises(ValueError):
        Modification("contrast", 0.5, "reference").apply(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        Modification("contrast", 0.5, "reference").apply(np.zeros((4, 4, 3), np.float32))


# --------------------------------------------------------------------------- identity


@pytest.mark.parametrize("mode", ["reference", "disentangled"])
def test_identity_settings_return_the_input_exactly(mode: str) -> None:
    img = random_rgb()
    mods = identity_set(mode)
    assert tuple(m.name for m in mods) == ALL_ATTRIBUTES
    for m in mods:
        assert m.is_identity
        out = m.apply(img)
        assert out is not img and not np.shares_memory(out, img)
        np.testing.assert_array_equal(out, img, err_msg=m.describe())


def test_identity_through_public_constructors() -> None:
    img = random_rgb()
    for m in (
        *reference_set(0.0, 1.0, 1.0, 0.0, 0.0, 0.05, 1.0),
        *disentangled_set(
            (37, 41),
            4.0,
            hue_degrees=0,
            contrast=1,
            saturation=1,
            texture_sigma_cells=0,
            shape_amplitude_cells=0,
            brightness=1,
        ),
    ):
        assert m.is_identity
        np.testing.assert_array_equal(m.apply(img), img, err_msg=m.describe())


# --------------------------------------------------------------------------- grey images


def test_is_grey() -> None:
    assert is_grey(random_grey())
    assert not is_grey(random_rgb())
    g = random_grey()
    g[3, 4, 2] ^= 1
    assert not is_grey(g)


@pytest.mark.parametrize("mode", ["reference", "disentangled"])
def test_hue_and_saturation_return_a_grey_image_unchanged(mode: str) -> None:
    grey = random_grey()
    for attribute in ("hue", "saturation"):
        for m in dose_response(attribute, mode, default_dose_strengths(attribute, mode)):
            np.testing.assert_array_equal(m.apply(grey), grey, err_msg=m.describe())


def test_reference_pillow_and_torchvision_are_exact_on_grey_too() -> None:
    """The grey special case changes nothing: the libraries themselves return the grey image."""
    grey = random_grey()
    np.testing.assert_array_equal(np.asarray(tvf.adjust_hue(Image.fromarray(grey), 0.1)), grey)
    np.testing.assert_array_equal(
        np.asarray(ImageEnhance.Color(Image.fromarray(grey)).enhance(0.7)), grey
    )


def test_other_modifications_keep_a_grey_image_grey() -> None:
    grey = random_grey()
    for m in all_mods((37, 41), 4.0):
        if m.name == "texture" and m.mode == "reference":
            continue  # OpenCV's NL-means works on its own uint8 Lab; not required to stay grey
        assert is_grey(m.apply(grey)), m.describe()


# --------------------------------------------------------------------------- reference exactness


def test_reference_contrast_saturation_brightness_equal_pillow() -> None:
    img = random_rgb()
    pil = Image.fromarray(img)
    for m in reference_set():
        if m.name == "contrast":
            expected = ImageEnhance.Contrast(pil).enhance(0.45)
        elif m.name == "saturation":
            expected = ImageEnhance.Color(pil).enhance(0.7)
        elif m.name == "brightness":
            expected = ImageEnhance.Brightness(pil).enhance(0.8)
        else:
            continue
        np.testing.assert_array_equal(m.apply(img), np.asarray(expected), err_msg=m.name)


def test_reference_hue_equals_torchvision_adjust_hue() -> None:
    img = random_rgb()
    for shift in (0.1, -0.25, 0.5):
        expected = np.asarray(tvf.adjust_hue(Image.fromarray(img), shift))
        np.testing.assert_array_equal(Modification("hue", shift, "reference").apply(img), expected)


def test_reference_texture_equals_opencv_nl_means_on_bgr() -> None:
    img = random_rgb(48, 40)
    bgr = np.ascontiguousarray(img[..., ::-1])
    expected = cv2.fastNlMeansDenoisingColored(
        bgr, None, h=4, hColor=4, templateWindowSize=7, searchWindowSize=21
    )[..., ::-1]
    out = next(m for m in reference_set() if m.name == "texture").apply(img)
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out, img)


# --------------------------------------------------------------------------- shape warp


def loop_warp(img: np.ndarray, amplitude: float, frequency: float) -> np.ndarray:
    """The reference's description, literally: roll each row, then each column."""
    out = img.copy()

    def shift(x: int) -> int:
        return int(amplitude * np.sin(np.pi * frequency * x))

    for i in range(out.shape[0]):
        out[i, :] = np.roll(out[i, :], shift(i), axis=0)
    for j in range(out.shape[1]):
        out[:, j] = np.roll(out[:, j], shift(j), axis=0)
    return out


@pytest.mark.parametrize(("h", "w"), [(28, 28), (64, 64), (37, 53), (53, 37)])
def test_shape_warp_equals_row_then_column_rolls(h: int, w: int) -> None:
    img = random_rgb(h, w)
    for amplitude, frequency in ((4.0, 0.05), (2.5, 0.11), (7.0, 0.03)):
        m = Modification("shape", amplitude, "reference", params=(("frequency", frequency),))
        np.testing.assert_array_equal(m.apply(img), loop_warp(img, amplitude, frequency))


def test_shape_warp_preserves_each_channels_sorted_values() -> None:
    img = random_rgb(64, 64)
    for m in (reference_set()[1], disentangled_set((64, 64), 8.0)[1]):
        out = m.apply(img)
        assert not np.array_equal(out, img)
        for c in range(3):
            np.testing.assert_array_equal(
                np.sort(out[..., c], axis=None), np.sort(img[..., c], axis=None)
            )


def test_shape_warp_shifts_lie_within_the_amplitude() -> None:
    s = warp_shifts(300, 4.0, 0.05)
    assert s.dtype == np.int64
    assert set(np.unique(s).tolist()) <= set(range(-4, 5))
    assert s.min() == -4 and s.max() == 4
    assert np.abs(warp_shifts(300, 3.7, 0.05)).max() == 3  # int() truncates toward zero
    assert not warp_shifts(300, 0.0, 0.05).any()
    img = random_rgb()
    zero = Modification("shape", 0.0, "reference", params=(("frequency", 0.05),))
    np.testing.assert_array_equal(zero.apply(img), img)


def test_disentangled_shape_scales_with_the_cell_size() -> None:
    m = disentangled_set((300, 300), 300 / 7)[1]
    img = random_rgb(300, 300)
    cell = 300 / 7
    expected = loop_warp(img, 0.5 * cell, 2.0 / (1.0 * cell))
    np.testing.assert_array_equal(m.apply(img), expected)


# --------------------------------------------------------------------------- disentangled guarantees


@pytest.mark.parametrize("f", [0.3, 0.15, 1.5])
def test_disentangled_contrast_keeps_chroma(f: float, synthetic_images: np.ndarray) -> None:
    m = Modification("contrast", f, "disentangled")
    for img in (random_rgb(), moderate_rgb(), *synthetic_images[:6]):
        out = m.apply(img)
        before, after = lab(img), lab(out)
        assert np.abs(after[..., 1:] - before[..., 1:]).max() <= AB_TOL
        # ... while the lightness spread does change in the right direction
        spread = after[..., 0].std() / before[..., 0].std()
        assert spread < 1 if f < 1 else spread > 1


def test_disentangled_contrast_scales_lightness_about_its_mean_in_gamut() -> None:
    img = moderate_rgb()
    before, after = lab(img), lab(Modification("contrast", 0.5, "disentangled").apply(img))
    mean = before[..., 0].mean()
    np.testing.assert_allclose(after[..., 0], mean + 0.5 * (before[..., 0] - mean), atol=L_TOL)


@pytest.mark.parametrize("f", [0.4, 0.0, 1.8])
def test_disentangled_saturation_keeps_lightness(f: float, synthetic_images: np.ndarray) -> None:
    m = Modification("saturation", f, "disentangled")
    for img in (random_rgb(), moderate_rgb(), *synthetic_images[:6]):
        before, after = lab(img), lab(m.apply(img))
        assert np.abs(after[..., 0] - before[..., 0]).max() <= L_TOL
    img = moderate_rgb()
    if f <= 1:
        np.testing.assert_allclose(chroma(m.apply(img)), f * chroma(img), atol=CHROMA_TOL)


@pytest.mark.parametrize("degrees", [45.0, 90.0, 180.0])
def test_disentangled_hue_keeps_lightness_and_chroma(degrees: float) -> None:
    m = Modification("hue", degrees, "disentangled")
    img = moderate_rgb()
    before, after = lab(img), lab(m.apply(img))
    assert np.abs(after[..., 0] - before[..., 0]).max() <= L_TOL
    assert np.abs(chroma(m.apply(img)) - chroma(img)).max() <= CHROMA_TOL
    # the hue angle turned by the requested amount where there is colour to turn
    coloured = chroma(img) > 8
    turn = np.angle((after[..., 1] + 1j * after[..., 2]) * (before[..., 1] - 1j * before[..., 2]))
    np.testing.assert_allclose(
        np.abs(np.rad2deg(turn[coloured])), abs(degrees), atol=12.0 if degrees < 180 else 15.0
    )


def test_disentangled_hue_out_of_gamut_keeps_lightness_and_only_lowers_chroma() -> None:
    img = random_rgb()  # uniformly random RGB: many vivid colours leave the gamut when turned
    out = Modification("hue", 180.0, "disentangled").apply(img)
    before, after = lab(img), lab(out)
    assert np.abs(after[..., 0] - before[..., 0]).max() <= L_TOL
    assert (chroma(out) - chroma(img)).max() <= CHROMA_TOL


def test_disentangled_hue_turns_warm_to_cool() -> None:
    warm = np.zeros((8, 8, 3), np.uint8)
    warm[...] = (200, 110, 40)  # orange
    out = disentangled_set((8, 8), 1.0, hue_degrees=180.0)[0].apply(warm)
    r, _, b = out[0, 0].astype(int)
    assert b > r  # now bluish


def test_disentangled_texture_removes_fine_detail_keeps_chroma_and_mean() -> None:
    x = np.arange(64)
    stripes = np.where((x // 2) % 2 == 0, 150, 110).astype(np.uint8)  # 4-px period
    img = np.zeros((64, 64, 3), np.uint8)
    img[...] = np.stack([stripes, stripes - 20, stripes // 2], axis=-1)[None, :, :]
    m = disentangled_set((64, 64), 8.0)[2]  # σ = 4 px
    out = m.apply(img)
    before, after = lab(img), lab(out)
    assert after[..., 0].std() < 0.1 * before[..., 0].std()
    assert abs(after[..., 0].mean() - before[..., 0].mean()) < L_TOL
    assert np.abs(after[..., 1:] - before[..., 1:]).max() <= AB_TOL


def test_disentangled_texture_keeps_chroma_on_real_images(synthetic_images: np.ndarray) -> None:
    m = disentangled_set((64, 64), 8.0)[2]
    for img in (random_rgb(), *synthetic_images[:6]):
        assert np.abs(lab(m.apply(img))[..., 1:] - lab(img)[..., 1:]).max() <= AB_TOL


# --------------------------------------------------------------------------- general contract


@pytest.mark.parametrize(("h", "w"), [(28, 28), (64, 64), (300, 300), (31, 45)])
def test_every_modification_is_deterministic_and_shape_preserving(h: int, w: int) -> None:
    img = random_rgb(h, w, seed=h + w)
    frozen = img.copy()
    for m in all_mods((h, w), min(h, w) / 7):
        a, b = m.apply(img), m.apply(img)
        assert a.dtype == np.uint8 and a.shape == img.shape, m.describe()
        assert a.flags.c_contiguous and a.flags.writeable
        assert a is not img and not np.shares_memory(a, img)
        np.testing.assert_array_equal(a, b, err_msg=m.describe())
        assert not np.array_equal(a, img), m.describe()
    np.testing.assert_array_equal(img, frozen)  # input untouched


def test_non_contiguous_input_is_accepted() -> None:
    img = random_rgb(40, 40)
    view = img[::2, ::2]
    for m in all_mods((20, 20), 4.0):
        np.testing.assert_array_equal(m.apply(view), m.apply(view.copy()), err_msg=m.describe())


# --------------------------------------------------------------------------- dose response


@pytest.mark.parametrize("mode", ["reference", "disentangled"])
@pytest.mark.parametrize("attribute", ALL_ATTRIBUTES)
def test_default_dose_strengths_start_at_identity(attribute: str, mode: str) -> None:
    strengths = default_dose_strengths(attribute, mode)
    assert len(strengths) == 5 and strengths[0] == IDENTITY_STRENGTH[attribute]
    mods = dose_response(attribute, mode, strengths, cell_size=8.0)
    assert mods[0].is_identity
    assert [m.strength for m in mods] == list(strengths)
    assert all(m.name == attribute and m.mode == mode for m in mods)
    assert all(m.in_paper == (attribute != "brightness") for m in mods)


def test_dose_response_puts_identity_first_and_keeps_order() -> None:
    mods = dose_response("contrast", "reference", [0.3, 0.7, 1.0, 0.5])
    assert [m.strength for m in mods] == [1.0, 0.3, 0.7, 0.5]
    shape = dose_response("shape", "disentangled", [0.5], cell_size=4.0, shape_period_cells=3)
    assert shape[1].param("cell_size") == 4.0 and shape[1].param("period_cells") == 3.0
    with pytest.raises(ValueError):
        dose_response("texture", "disentangled", [0.25])  # needs cell_size
    with pytest.raises(ValueError):
        dose_response("contrast", "reference", [0.5], colour=1)


@pytest.mark.parametrize("mode", ["reference", "disentangled"])
def test_contrast_dose_response_is_monotone(mode: str, synthetic_images: np.ndarray) -> None:
    for img in (random_rgb(), synthetic_images[0], synthetic_images[5]):
        mods = dose_response("contrast", mode, default_dose_strengths("contrast", mode))
        change = [np.abs(m.apply(img).astype(int) - img).mean() for m in mods]
        assert change[0] == 0
        assert all(b > a for a, b in itertools.pairwise(change)), change


# --------------------------------------------------------------------------- timings (printed)


def test_print_timings() -> None:
    """Wall time per modification (best of 3), shown with ``pytest -s``; not asserted."""
    lines = []
    for size in (28, 300):
        img = random_rgb(size, size, seed=size)
        for m in reference_set() + disentangled_set((size, size), size / 7):
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                m.apply(img)
                best = min(best, time.perf_counter() - t0)
            lines.append(f"{size:>3}px  {m.describe():<36} {best * 1000:8.2f} ms")
    print("\nmodification timings (random colour image; best of 3):\n" + "\n".join(lines))
