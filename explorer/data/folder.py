"""A user's own data as an ImageFolder: ``ROOT/train/<class>/*.png`` and ``ROOT/test/<class>/*.png``.

Class names are the sub-folder names, sorted (as torchvision's ``ImageFolder``). Every image is read with
:func:`explorer.images.load_image` (EXIF orientation, transparency, 16-bit handled) and resized to
``size`` (the model's input size) so the split fits in memory as one array. Part keypoints and object
masks, where the folder has them, come with it (:mod:`explorer.data.annotations`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes

from explorer.data.annotations import read_annotations
from explorer.data.base import ImageSet
from explorer.errors import ExplorerError
from explorer.images import load_image


def load_image_folder(root: str | Path, split: str, size: int | tuple[int, int] = 224) -> ImageSet:
    """Loads ``root/split`` as RGB uint8 images of ``size`` (a side, or height and width); an image
    already of that size is kept as it is."""
    height, width = (size, size) if isinstance(size, int) else size
    folder = Path(root) / split
    if not folder.is_dir():
        raise ExplorerError(f"{folder} is not a folder: expected {root}/{split}/<class>/<images>")
    class_names, _ = find_classes(str(folder))
    images, labels, names, original_sizes = [], [], [], []
    for label, name in enumerate(class_names):
        for path in sorted((folder / name).rglob("*")):
            if path.suffix.lower() in IMG_EXTENSIONS and path.is_file():
                rgb = load_image(path)
                names.append(path.relative_to(folder).as_posix())
                original_sizes.append(rgb.shape[:2])
                if rgb.shape[:2] != (height, width):
                    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
                images.append(rgb)
                labels.append(label)
    if not images:
        raise ExplorerError(f"no images found under {folder}")
    extras, part_names = read_annotations(root, split, names, original_sizes, (height, width))
    return ImageSet(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(class_names),
        name=Path(root).name,
        split=split,
        extras=extras,
        part_names=part_names,
    )
