"""Known-answer generator B (``explorer.data.blobs``): each class differs from the base in its one
attribute only, measured on the pixels; the specification's nuisances hold; ground truth recorded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer.data import blobs, load_split, parse_data_seed, with_data_seed
from explorer.data.base import ImageSet
from explorer.data.blobs import CLASS_NAMES, PARAMETER_FIELDS, generate, split_seed
from tests.known_answer_measure import measure_attributes

N_PER_CLASS = 24


@pytest.fixture(scope="module")
def data() -> ImageSet:
    return generate(N_PER_CLASS, "train", seed=100)


@pytest.fixture(scope="module")
def stats(data: ImageSet) -> dict[str, np.ndarray]:
    return measure_attributes(data)


def _of(data: ImageSet, values: np.ndarray, name: str) -> np.ndarray:
    return values[data.labels == CLASS_NAMES.index(name)]


def _others(name: str) -> list[str]:
    return [other for other in CLASS_NAMES if other != name]


def test_arrays_and_ground_truth_fields(data: ImageSet) -> None:
    n = N_PER_CLASS * len(CLASS_NAMES)
    assert data.images.shape == (n, 96, 96, 3) and data.images.dtype == np.uint8
    assert np.all(np.bincount(data.labels) == N_PER_CLASS)
    assert data.name == "blobs" and data.class_names == CLASS_NAMES
    assert data.extras["mask"].shape == (n, 96, 96)
    assert data.extras["keypoints"].shape == (n, 5, 2)
    assert data.extras["parameters"].dtype.names == PARAMETER_FIELDS
    # a subset slices the ground truth with the images
    part = data.subset(np.arange(5))
    assert part.extras["parameters"].tobytes() == data.extras["parameters"][:5].tobytes()


def test_the_same_arguments_give_the_same_bytes() -> None:
    a, b = generate(2, "test", seed=7), generate(2, "test", seed=7)
    assert np.array_equal(a.images, b.images)
    for key in a.extras:
        assert a.extras[key].tobytes() == b.extras[key].tobytes()
    assert not np.array_equal(a.images, generate(2, "test", seed=8).images)


def test_split_and_data_seeds_follow_the_specification() -> None:
    assert (split_seed("train"), split_seed("test")) == (100, 101)
    assert (split_seed("train", 2), split_seed("test", 2)) == (104, 105)
    small = blobs.load_blobs("test", data_seed=1, n_per_class=1)
    assert np.array_equal(small.images, generate(1, "test", seed=103).images)
    with pytest.raises(ValueError, match="split"):
        split_seed("val")


def test_data_seeds_in_data_set_names() -> None:
    assert parse_data_seed("blobs@3") == ("blobs", 3)
    assert parse_data_seed("synthetic") == ("synthetic", None)
    assert with_data_seed("blobs", 0) == "blobs" and with_data_seed("synthetic", 2) == "synthetic@2"
    for bad, message in (("elpv@1", "only the generated"), ("blobs@x", "whole number")):
        with pytest.raises(ValueError, match=message):
            load_split(bad, "test")
    a = load_split("synthetic@1", "test")
    assert not np.array_equal(a.images[:4], load_split("synthetic", "test").images[:4])


def test_hue_differs_in_the_hue_class_only(data: ImageSet, stats: dict) -> None:
    assert np.all((_of(data, stats["hue"], "hue") >= 245) & (_of(data, stats["hue"], "hue") <= 305))
    for name in _others("hue"):
        hue = _of(data, stats["hue"], name)
        assert np.all((hue >= 65) & (hue <= 115)), name


def test_saturation_differs_in_the_saturation_class_only(data: ImageSet, stats: dict) -> None:
    vivid = _of(data, stats["sat"], "saturation")
    for name in _others("saturation"):
        muted = _of(data, stats["sat"], name)
        assert vivid.min() > muted.max() + 0.2, name


def test_contrast_differs_in_the_contrast_class_only(data: ImageSet, stats: dict) -> None:
    high = _of(data, stats["contrast"], "contrast")
    for name in _others("contrast"):
        assert high.min() > _of(data, stats["contrast"], name).max() + 0.03, name
    # the background's lightness does not depend on the class (the object's does, for contrast)
    overall = stats["bg_luma"].mean()
    stderr = stats["bg_luma"].std() / math.sqrt(N_PER_CLASS)
    for name in CLASS_NAMES:
        assert abs(_of(data, stats["bg_luma"], name).mean() - overall) < 4 * stderr, name


def test_texture_differs_in_the_texture_class_only(data: ImageSet, stats: dict) -> None:
    dotted = _of(data, stats["lap"], "texture")
    for name in _others("texture"):
        assert dotted.min() > 1.5 * _of(data, stats["lap"], name).max(), name


def test_dots_keep_the_mean_colour(data: ImageSet) -> None:
    params = data.extras["parameters"]
    for i in np.flatnonzero(data.labels == CLASS_NAMES.index("texture"))[:8]:
        p = params[i]
        luma = p["object_luma"]
        inner = data.extras["mask"][i].astype(bool)
        grey = data.images[i][inner].astype(np.float64) @ [0.299, 0.587, 0.114] / 255.0
        vignette_and_noise = 0.08  # the vignette darkens by at most 20 % at the corners
        assert abs(grey.mean() - luma) < vignette_and_noise * luma


def test_shape_differs_in_the_shape_class_only_at_the_same_area(
    data: ImageSet, stats: dict
) -> None:
    lobed = _of(data, stats["solidity"], "shape")
    for name in _others("shape"):
        assert lobed.max() < _of(data, stats["solidity"], name).min() - 0.1, name
    # every blob has the area of the disc of its drawn equivalent radius (to rasterisation)
    disc = math.pi * data.extras["parameters"]["radius"] ** 2
    assert np.all(np.abs(stats["area"] / disc - 1.0) < 0.04)


def test_distractors_never_touch_the_object(data: ImageSet) -> None:
    params = data.extras["parameters"]
    seen = 0
    for i in range(len(data)):
        ys, xs = np.nonzero(data.extras["mask"][i])
        for d in (1, 2):
            x, y, r = (params[i][f"distractor_{d}_{key}"] for key in ("x", "y", "radius"))
            if np.isnan(x):
                continue
            seen += 1
            assert np.hypot(xs - x, ys - y).min() >= r + 1.0
    assert seen >= len(data) // 2  # 0-2 per image, most of them placed


def test_keypoints_lie_on_the_outline(data: ImageSet) -> None:
    keypoints = data.extras["keypoints"]
    for i in range(len(data)):
        mask = data.extras["mask"][i]
        cx, cy = keypoints[i, 0]
        assert mask[round(cy), round(cx)] == 1
        edge = mask.astype(bool) & ~np.all(
            [np.roll(mask, s, a) for s in (1, -1) for a in (0, 1)], axis=0
        )
        ey, ex = np.nonzero(edge)
        for x, y in keypoints[i, 1:]:
            assert np.hypot(ex - x, ey - y).min() <= 1.5


def test_a_colour_that_cannot_be_reached_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # deep blue at full saturation cannot be as light as the background ranges need
    monkeypatch.setattr(blobs, "HUE_CLASS", (238.0, 242.0))
    monkeypatch.setattr(blobs, "SAT_BASE", (0.95, 1.0))
    with pytest.raises(RuntimeError, match="cannot be reached"):
        generate(3, "train", seed=1)


def test_the_blobs_preset_trains_on_generator_b_at_96_px() -> None:
    from explorer.api import _train_config

    config = _train_config("blobs", None, None, "small_cnn", None, {}, data_seed=3)
    assert config.dataset == "blobs@3" and config.input_size == (96, 96)
    from explorer.errors import ExplorerError

    with pytest.raises(ExplorerError, match="generated data set"):
        _train_config("elpv", None, None, "small_cnn", None, {}, data_seed=1)
    with pytest.raises(ExplorerError, match="whole number"):
        _train_config("blobs", None, None, "small_cnn", None, {}, data_seed=-1)


# --- counterfactuals: one attribute drawn against the class ---------------------------------------

FLIP_RANGES = {
    "hue": (blobs.HUE_BASE, blobs.HUE_CLASS),
    "saturation": (blobs.SAT_BASE, blobs.SAT_CLASS),
}


@pytest.mark.parametrize("attribute", ["hue", "saturation", "contrast", "texture"])
def test_a_flipped_attribute_changes_the_object_only_and_keeps_every_other_draw(
    attribute: str,
) -> None:
    plain = generate(3, "test", seed=11)
    flipped = generate(3, "test", seed=11, flip=[attribute])
    assert np.array_equal(plain.labels, flipped.labels)
    outside = ~_covered(plain)
    assert np.array_equal(plain.images[outside], flipped.images[outside])  # background untouched
    exact = flipped.extras["exact"]
    assert exact.dtype == bool and exact.mean() > 0.7  # the rest: colours the spec never draws
    assert not np.array_equal(plain.images, flipped.images)
    p, f = plain.extras["parameters"], flipped.extras["parameters"]
    key = {"texture": "texture_amplitude"}.get(attribute, attribute)
    changed = [
        name for name in PARAMETER_FIELDS if not np.array_equal(p[name], f[name], equal_nan=True)
    ]
    assert set(changed) <= {key, "object_luma"}  # contrast moves the object's luma with it
    # every image now shows the other class's value: the base images the class one and back
    if attribute in FLIP_RANGES:
        base_range, class_range = FLIP_RANGES[attribute]
        own = plain.labels == CLASS_NAMES.index(attribute)
        assert np.all((f[key][own] >= base_range[0]) & (f[key][own] <= base_range[1]))
        assert np.all((f[key][~own] >= class_range[0]) & (f[key][~own] <= class_range[1]))


def _covered(data: ImageSet) -> np.ndarray:
    """Pixels an object's anti-aliased edge can reach (the mask grown by 2 px)."""
    import cv2

    grown = [cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)) for m in data.extras["mask"]]
    return np.stack(grown).astype(bool)


def test_flipping_the_shape_gives_the_base_class_a_lobed_outline_of_the_same_area() -> None:
    plain = generate(3, "test", seed=11)
    flipped = generate(3, "test", seed=11, flip=["shape"])
    own = plain.labels == CLASS_NAMES.index("shape")
    p, f = plain.extras["parameters"], flipped.extras["parameters"]
    assert np.all(f["lobe_amplitude"][own] == 0) and np.all(f["lobe_amplitude"][~own] > 0)
    areas = plain.extras["mask"].sum(axis=(1, 2)), flipped.extras["mask"].sum(axis=(1, 2))
    assert np.allclose(areas[0], areas[1], rtol=0.03)
    assert np.array_equal(p["hue"], f["hue"]) and np.array_equal(p["radius"], f["radius"])
