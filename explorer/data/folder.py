"""A user's own data as an ImageFolder: ``ROOT/train/<class>/*.png`` and ``ROOT/test/<class>/*.png``.

Class names are the sub-folder names, sorted (as torchvision's ``ImageFolder``). Every image is read with
:func:`explorer.images.load_image` (EXIF orientation, transparency, 16-bit handled) and resized to
``size`` (the model's input size) so the split fits in memory as one array. Part keypoints and object
masks, where the folder has them, come with it (:mod:`explorer.data.annotations`). A file that
cannot be read is skipped, named with its reason (:class:`explorer.data.sources.FolderSource` reads
the same files for the global passes, file by file).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from explorer.data.annotations import read_annotations
from explorer.data.base import ImageSet
from explorer.data.sources import FolderSource
from explorer.errors import BadImageError, ExplorerError

log = logging.getLogger(__name__)


def load_image_folder(root: str | Path, split: str, size: int | tuple[int, int] = 224) -> ImageSet:
    """Loads ``root/split`` as RGB uint8 images of ``size`` (a side, or height and width); an image
    already of that size is kept as it is. An unreadable file is skipped with a warning naming it and
    why, and listed in the result's ``skipped`` (every global pass skips the same files)."""
    source = FolderSource.list(root, split, size)
    images, names, original_sizes, labels, skipped = [], [], [], [], []
    for key, relative in enumerate(source.paths):
        try:
            rgb, original = source.read_one(key)
        except (BadImageError, OSError) as error:
            log.warning("skipping %s: %s", source.describe(key), error)
            skipped.append((source.describe(key), str(error)))
            continue
        images.append(rgb)
        names.append(relative)
        original_sizes.append(original)
        labels.append(source.labels[key])
    if not images:
        raise ExplorerError(
            f"no readable images under {source.folder}"
            + (
                f" ({len(skipped)} unreadable, the first: {skipped[0][0]}: {skipped[0][1]})"
                if skipped
                else ""
            )
        )
    extras, part_names = read_annotations(root, split, names, original_sizes, source.size)
    return ImageSet(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=source.class_names,
        name=Path(root).name,
        split=split,
        extras=extras,
        part_names=part_names,
        skipped=tuple(skipped),
    )
