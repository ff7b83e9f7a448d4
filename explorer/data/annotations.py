"""Part keypoints and object masks for a user's ImageFolder: a plain CSV and PNG layout.

Beside ``ROOT/<split>/<class>/<image>``::

    ROOT/annotations/<split>/parts.csv                 image,part,x,y
    ROOT/annotations/<split>/masks/<class>/<stem>.png  0 = background, anything else = object

* ``parts.csv``: one row per visible part of an image; ``image`` is the path under
  ``ROOT/<split>`` (``cat/001.jpg``), ``part`` a name (the parts are the names in order of first
  appearance), ``x`` and ``y`` pixel coordinates in the *original* image (scaled with the image to
  the model's input size). A part without a row for an image is not visible there. Rows for images
  that do not exist are refused, naming the first.
* ``masks/``: one PNG per image, any size (resized to the image's, nearest neighbour). Either every
  image has one or the split has none.

Either file may be missing: the metrics that need it are then not measured, and say so. The
synthetic data sets carry the same annotations as arrays (``keypoints``, ``part_visible``, ``mask``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from explorer.errors import ExplorerError

PARTS_FILE = "parts.csv"
MASKS_FOLDER = "masks"
COLUMNS = ("image", "part", "x", "y")


def annotations_folder(root: str | Path, split: str) -> Path:
    return Path(root) / "annotations" / split


def read_parts(
    path: Path, images: list[str], original_sizes: list[tuple[int, int]], size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Reads ``parts.csv``.

    Args:
        path: the CSV file.
        images: every image's path under the split folder, in the split's order (``/`` separated).
        original_sizes: each image's ``(height, width)`` as stored.
        size: the model's input ``(height, width)``.

    Returns:
        ``keypoints [N, K, 2]`` (x, y at input size, NaN where not visible), ``visible [N, K]`` and
        the part names.

    Raises:
        ExplorerError: a missing column, a coordinate that is not a number, an unknown image.
    """
    index = {name: i for i, name in enumerate(images)}
    rows: list[tuple[int, str, float, float]] = []
    names: list[str] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ExplorerError(
                f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}"
            )
        for line, row in enumerate(reader, start=2):
            image = row["image"].strip().replace("\\", "/")
            if image not in index:
                raise ExplorerError(
                    f"{path} line {line}: no image {image!r} under the split folder"
                )
            try:
                x, y = float(row["x"]), float(row["y"])
            except ValueError:
                raise ExplorerError(f"{path} line {line}: x and y must be numbers") from None
            part = row["part"].strip()
            if part not in names:
                names.append(part)
            rows.append((index[image], part, x, y))
    keypoints = np.full((len(images), len(names), 2), np.nan, dtype=np.float32)
    height, width = size
    for i, part, x, y in rows:
        original_h, original_w = original_sizes[i]
        keypoints[i, names.index(part)] = (x * width / original_w, y * height / original_h)
    return keypoints, np.isfinite(keypoints).all(axis=-1), tuple(names)


def read_masks(folder: Path, images: list[str], size: tuple[int, int]) -> np.ndarray:
    """``[N, H, W]`` uint8 0/1 masks at input size, one PNG per image under ``folder``.

    Raises:
        ExplorerError: an image without a mask (naming it), or a file that is not an image.
    """
    height, width = size
    masks = np.zeros((len(images), height, width), dtype=np.uint8)
    for i, image in enumerate(images):
        path = folder / Path(image).with_suffix(".png")
        if not path.is_file():
            raise ExplorerError(
                f"{path} is missing: every image of the split needs a mask when {folder} exists"
            )
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise ExplorerError(f"{path} is not a readable PNG mask")
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
        masks[i] = mask > 0
    return masks


def read_annotations(
    root: str | Path,
    split: str,
    images: list[str],
    original_sizes: list[tuple[int, int]],
    size: tuple[int, int],
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """The extras (``keypoints``, ``part_visible``, ``mask``) and part names an ImageFolder's split
    has (empty when it has no ``annotations`` folder)."""
    folder = annotations_folder(root, split)
    extras: dict[str, np.ndarray] = {}
    names: tuple[str, ...] = ()
    if (folder / PARTS_FILE).is_file():
        keypoints, visible, names = read_parts(folder / PARTS_FILE, images, original_sizes, size)
        extras.update(keypoints=keypoints, part_visible=visible)
    if (folder / MASKS_FOLDER).is_dir():
        extras["mask"] = read_masks(folder / MASKS_FOLDER, images, size)
    return extras, names
