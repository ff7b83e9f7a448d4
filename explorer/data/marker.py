"""A planted shortcut: the synthetic set with a small marker stamped on one class's training images.

The known answer of the debugging benchmark (ProtoPDebug, Bontempelli et al., ICLR 2023, whose
"artificial confound" is a coloured box pasted on some classes' training images). Here:

* **train** (``synthetic_marker``): the synthetic attribute set's training split, where
  :data:`MARKER_SHARE` of the images of class :data:`MARKER_CLASS` carry the marker — a flat square
  of :data:`MARKER_COLOUR`, :data:`MARKER_SIDE` px on a side at 64 px, :data:`MARKER_INSET` px from a
  corner drawn at random per image. No other class ever carries it, so it predicts the class on the
  training split as well as the class's own attribute does, and a network may learn either.
* **test**: the synthetic test split unchanged (clean: no image carries the marker).
* :func:`paste_on_other_classes`: the test split with the marker stamped on every image of every
  *other* class — a model that reads the marker as evidence for the marked class loses those
  images; one that ignores it keeps its clean accuracy.

Every image carries its marker's box as ground truth in ``extras["marker_box"]``: ``(y0, y1, x0,
x1)`` in pixels, upper bounds exclusive (the boxes' convention everywhere in the explorer), and
``(-1, -1, -1, -1)`` where there is no marker. Generation is deterministic for a data seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from explorer.data.base import ImageSet

MARKER_CLASS = "base"
"""The class whose training images carry the marker (the class defined by no attribute: its only
positive evidence is the absence of the others', which makes a marker most tempting)."""
MARKER_SHARE = 0.9
MARKER_COLOUR = (255, 0, 255)  # magenta: a hue no class of the synthetic set uses
MARKER_SIDE = 10  # px at 64 px; scaled with the image side
MARKER_INSET = 2  # px from the image's edges, scaled alike
NO_MARKER = (-1, -1, -1, -1)
_SEED_OFFSET = 7_919  # the marker's draws never share a stream with the images' own


def marker_box(corner: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The marker's box ``(y0, y1, x0, x1)`` in a corner (0 top left, 1 top right, 2 bottom left, 3
    bottom right) of an image of ``size`` (height, width)."""
    height, width = size
    side = max(2, round(MARKER_SIDE * min(height, width) / 64))
    inset = round(MARKER_INSET * min(height, width) / 64)
    y0 = inset if corner in (0, 1) else height - inset - side
    x0 = inset if corner in (0, 2) else width - inset - side
    return y0, y0 + side, x0, x0 + side


def stamp(images: np.ndarray, which: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stamps the marker on ``images[which]`` (in a copy), each in a random corner.

    Returns:
        ``[N, 4]`` int boxes, :data:`NO_MARKER` for the images left as they were.
    """
    boxes = np.tile(np.array(NO_MARKER, dtype=np.int64), (len(images), 1))
    corners = rng.integers(0, 4, len(images))  # drawn for every image: stable under ``which``
    colour = np.array(MARKER_COLOUR, dtype=np.uint8)
    for i in np.flatnonzero(which):
        y0, y1, x0, x1 = marker_box(int(corners[i]), images.shape[1:3])
        images[i, y0:y1, x0:x1] = colour if images.ndim == 4 else colour.mean()
        boxes[i] = (y0, y1, x0, x1)
    return boxes


def with_marker(data: ImageSet, marked: np.ndarray, seed: int) -> ImageSet:
    """``data`` with the marker on the images where ``marked`` is true (a copy; boxes in extras)."""
    images = data.images.copy()
    boxes = stamp(images, np.asarray(marked, dtype=bool), np.random.default_rng(seed))
    return dataclasses.replace(data, images=images, extras={**data.extras, "marker_box": boxes})


def marked_training_images(labels: np.ndarray, class_index: int, seed: int) -> np.ndarray:
    """Which training images carry the marker: :data:`MARKER_SHARE` of ``class_index``'s, at random."""
    rng = np.random.default_rng(seed)
    draws = rng.random(len(labels))  # one draw per image, whatever its class
    return (np.asarray(labels) == class_index) & (draws < MARKER_SHARE)


def load_synthetic_marker(split: str, data_seed: int = 0) -> ImageSet:
    """A split of ``synthetic_marker``: the marked training split, or the clean test split."""
    from explorer.data.synthetic import CLASS_NAMES, load_synthetic

    data = load_synthetic(split, data_seed=data_seed)
    seed = _SEED_OFFSET + 2 * data_seed + (split == "test")
    if split == "train":
        marked = marked_training_images(data.labels, CLASS_NAMES.index(MARKER_CLASS), seed)
    else:
        marked = np.zeros(len(data), dtype=bool)
    marked_set = with_marker(data, marked, seed)
    return dataclasses.replace(marked_set, name="synthetic_marker")


def paste_on_other_classes(test: ImageSet, class_index: int, seed: int = 1) -> ImageSet:
    """The test split with the marker on every image whose class is not ``class_index``."""
    return with_marker(test, np.asarray(test.labels) != class_index, _SEED_OFFSET + 1_000 + seed)


def overlaps_marker(box: tuple[int, int, int, int] | np.ndarray, marker: np.ndarray) -> bool:
    """Whether a patch's box ``(y0, y1, x0, x1)`` shares a pixel with its image's marker box
    (``False`` for an image without a marker)."""
    my0, my1, mx0, mx1 = (int(v) for v in marker)
    if my0 < 0:
        return False
    y0, y1, x0, x1 = (int(v) for v in box)
    return min(y1, my1) > max(y0, my0) and min(x1, mx1) > max(x0, mx0)
