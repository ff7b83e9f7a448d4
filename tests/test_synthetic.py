"""Tests for the synthetic known-attribute dataset."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.data.base import ImageSet
from explorer.data.synthetic import (
    CLASS_NAMES,
    DEFINING_ATTRIBUTE,
    PART_NAMES,
    generate,
    load_synthetic,
)
from tests.known_answer_measure import measure_attributes

N_PER_CLASS = 40
SIZE = 64


@pytest.fixture(scope="module")
def data() -> ImageSet:
    """A small generated set with object masks."""
    return generate(N_PER_CLASS, "train", seed=0, size=SIZE, with_masks=True)


@pytest.fixture(scope="module")
def stats(data: ImageSet) -> dict[str, np.ndarray]:
    """Per-image measurements of every attribute, from pixels and the object mask."""
    return measure_attributes(data)


def _by_class(data: ImageSet, values: np.ndarray, name: str) -> np.ndarray:
    return values[data.labels == CLASS_NAMES.index(name)]


def test_constants() -> None:
    assert CLASS_NAMES == ("base", "hue", "saturation", "contrast", "texture", "shape")
    assert set(DEFINING_ATTRIBUTE) == set(CLASS_NAMES)
    assert DEFINING_ATTRIBUTE["base"] is None
    assert PART_NAMES == ("centre", "top", "right", "bottom", "left")


def test_shapes_and_dtypes(data: ImageSet) -> None:
    n = N_PER_CLASS * len(CLASS_NAMES)
    assert len(data) == n
    assert data.images.shape == (n, SIZE, SIZE, 3) and data.images.dtype == np.uint8
    assert data.labels.shape == (n,) and data.labels.dtype == np.int64
    assert data.class_names == CLASS_NAMES
    assert data.name == "synthetic" and data.split == "train"
    assert data.extras["keypoints"].shape == (n, 5, 2)
    assert data.extras["keypoints"].dtype == np.float32
    assert data.extras["object_box"].shape == (n, 4)
    assert data.extras["object_box"].dtype == np.int32
    assert data.extras["mask"].shape == (n, SIZE, SIZE)


def test_balanced_and_shuffled(data: ImageSet) -> None:
    counts = np.bincount(data.labels, minlength=len(CLASS_NAMES))
    assert np.all(counts == N_PER_CLASS)
    assert not np.all(np.diff(data.labels) >= 0)


def test_determinism() -> None:
    a = generate(5, "test", seed=3, size=32)
    b = generate(5, "test", seed=3, size=32)
    c = generate(5, "test", seed=4, size=32)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    for key in a.extras:
        assert np.array_equal(a.extras[key], b.extras[key])
    assert not np.array_equal(a.images, c.images)
    assert "mask" not in a.extras


def test_load_synthetic_splits() -> None:
    train = load_synthetic("train", n_per_class=3, size=32)
    test = load_synthetic("test", n_per_class=3, size=32)
    assert train.split == "train" and test.split == "test"
    assert not np.array_equal(train.images, test.images)
    assert np.array_equal(train.images, generate(3, "train", seed=0, size=32).images)
    with pytest.raises(ValueError):
        load_synthetic("val")


def test_keypoints_and_boxes(data: ImageSet) -> None:
    kp = data.extras["keypoints"]
    box = data.extras["object_box"]
    assert np.all((kp >= 0) & (kp <= SIZE - 1))
    assert np.all((box[:, 0] < box[:, 2]) & (box[:, 1] < box[:, 3]))
    assert np.all(box >= 0) and np.all(box[:, 2:] <= SIZE)
    # Object fully inside the image, with a background border.
    assert np.all(box[:, :2] >= 1) and np.all(box[:, 2:] <= SIZE - 1)
    cx, cy = kp[:, 0, 0], kp[:, 0, 1]
    assert np.all((cx >= box[:, 0]) & (cx < box[:, 2]) & (cy >= box[:, 1]) & (cy < box[:, 3]))
    # The box is the tight box of the mask.
    for m, b in zip(data.extras["mask"], box, strict=True):
        ys, xs = np.nonzero(m)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == tuple(b)


def test_part_keypoints_lie_on_the_outline(data: ImageSet) -> None:
    kp = data.extras["keypoints"].astype(np.float64)
    masks = data.extras["mask"]
    is_star = data.labels == CLASS_NAMES.index("shape")
    for i in range(len(data)):
        centre = kp[i, 0]
        assert masks[i, round(centre[1]), round(centre[0])] == 1
        ys, xs = np.nonzero(masks[i])
        for part in range(1, len(PART_NAMES)):
            inside = np.round(centre + 0.75 * (kp[i, part] - centre)).astype(int)
            assert masks[i, inside[1], inside[0]] == 1
            x, y = np.round(kp[i, part]).astype(int)
            if is_star[i]:
                # Thin spike tips cover under half a pixel, so allow a little slack.
                assert np.hypot(xs - kp[i, part, 0], ys - kp[i, part, 1]).min() <= 3.0
            else:
                window = masks[i, y - 1 : y + 2, x - 1 : x + 2]
                assert window.min() == 0 and window.max() == 1


def test_hue_class_is_warm_base_is_cool(data: ImageSet, stats: dict[str, np.ndarray]) -> None:
    warm = _by_class(data, stats["hue"], "hue")
    assert np.all((warm >= 5) & (warm <= 65))
    for name in ("base", "saturation", "contrast", "texture", "shape"):
        cool = _by_class(data, stats["hue"], name)
        assert np.all((cool >= 110) & (cool <= 210)), name


def test_saturation_only_differs_in_saturation_class(
    data: ImageSet, stats: dict[str, np.ndarray]
) -> None:
    base = _by_class(data, stats["sat"], "base")
    vivid = _by_class(data, stats["sat"], "saturation")
    assert vivid.min() > base.max() + 0.2
    for name in ("hue", "contrast", "texture", "shape"):
        other = _by_class(data, stats["sat"], name)
        assert abs(other.mean() - base.mean()) < 0.04, name


def test_contrast_only_differs_in_contrast_class(
    data: ImageSet, stats: dict[str, np.ndarray]
) -> None:
    base = _by_class(data, stats["contrast"], "base")
    high = _by_class(data, stats["contrast"], "contrast")
    assert high.min() > base.max() + 0.05
    assert high.mean() > 3 * base.mean()
    for name in ("hue", "saturation", "texture", "shape"):
        other = _by_class(data, stats["contrast"], name)
        assert abs(other.mean() - base.mean()) < 0.02, name


def test_texture_only_differs_in_texture_class(
    data: ImageSet, stats: dict[str, np.ndarray]
) -> None:
    base = _by_class(data, stats["lap"], "base")
    textured = _by_class(data, stats["lap"], "texture")
    assert textured.min() > 3 * base.max()
    for name in ("hue", "saturation", "contrast", "shape"):
        other = _by_class(data, stats["lap"], name)
        assert other.max() < textured.min(), name


def test_shape_only_differs_in_shape_class(data: ImageSet, stats: dict[str, np.ndarray]) -> None:
    star = _by_class(data, stats["solidity"], "shape")
    assert star.max() < 0.85
    for name in ("base", "hue", "saturation", "contrast", "texture"):
        round_ = _by_class(data, stats["solidity"], name)
        assert round_.min() > 0.9, name


def test_nuisance_factors_match_across_classes(
    data: ImageSet, stats: dict[str, np.ndarray]
) -> None:
    # Object area, object luma and position: every class mean is within a few
    # standard errors of the overall mean (no class-specific nuisance shift).
    for key in ("area", "obj_luma", "cx", "cy"):
        overall = stats[key].mean()
        stderr = stats[key].std() / np.sqrt(N_PER_CLASS)
        for name in CLASS_NAMES:
            mean = _by_class(data, stats[key], name).mean()
            assert abs(mean - overall) < 4 * stderr, (key, name)
    # Object size in particular: within 12 % of the overall mean area.
    for name in CLASS_NAMES:
        area = _by_class(data, stats["area"], name).mean()
        assert abs(area - stats["area"].mean()) < 0.12 * stats["area"].mean(), name
