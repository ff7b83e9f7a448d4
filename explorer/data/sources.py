"""Where a global pass reads its images: a split held in memory, or an ImageFolder read file by file.

A pass names images by their *key*, the position in the source (for a folder: in its sorted file
listing, unreadable files included). :meth:`read` returns the images of some keys and, apart, the keys
it could not read with the reason, so an unreadable file is reported by its path and skipped by every
engine alike (:mod:`explorer.analysis.passes`); the split as :func:`explorer.data.load_split` gives it
holds the readable images in key order, so the *n*-th readable key is the split's image *n*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from explorer.errors import BadImageError, ExplorerError
from explorer.images import load_image

Failure = tuple[int, str]
"""``(key, reason)`` of an image a source could not read."""


class ImageSource(Protocol):
    """Images by key, with their labels."""

    labels: np.ndarray  # [N] class index of every key

    def __len__(self) -> int: ...

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of the images it reads (``[H, W]`` grey or ``[H, W, 3]``)."""
        ...

    def read(self, keys: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, list[Failure]]:
        """The images of ``keys`` that could be read, their keys, and the others with the reason."""
        ...

    def describe(self, key: int) -> str:
        """How a person finds the image of ``key`` (its path, or its place in the split)."""
        ...


@dataclass(frozen=True)
class ArraySource:
    """A split already in memory (the named data sets): every key reads."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def read(self, keys: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, list[Failure]]:
        keys = np.asarray(keys, dtype=np.int64)
        return list(self.images[keys]), keys, []

    def describe(self, key: int) -> str:
        return f"image {key}"


@dataclass(frozen=True)
class FolderSource:
    """``root/split/<class>/<images>`` read file by file at the model's input size (``size``: height,
    width), as :func:`explorer.data.folder.load_image_folder` reads it. Holds only paths: a distributed
    engine ships it to its workers, which read the files from storage they share."""

    folder: str
    paths: tuple[str, ...]  # relative to ``folder``, in key order
    labels: np.ndarray
    class_names: tuple[str, ...]
    size: tuple[int, int]

    @classmethod
    def list(cls, root: str | Path, split: str, size: int | tuple[int, int]) -> FolderSource:
        """Lists ``root/split`` (classes = sorted sub-folders, files sorted within each)."""
        # torchvision's listing rules, imported only here: a prediction never needs torchvision
        from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes

        height, width = (size, size) if isinstance(size, int) else size
        folder = Path(root) / split
        if not folder.is_dir():
            raise ExplorerError(
                f"{folder} is not a folder: expected {root}/{split}/<class>/<images>"
            )
        class_names, _ = find_classes(str(folder))
        paths, labels = [], []
        for label, name in enumerate(class_names):
            for path in sorted((folder / name).rglob("*")):
                if path.suffix.lower() in IMG_EXTENSIONS and path.is_file():
                    paths.append(path.relative_to(folder).as_posix())
                    labels.append(label)
        if not paths:
            raise ExplorerError(f"no images found under {folder}")
        return cls(
            folder=str(folder),
            paths=tuple(paths),
            labels=np.asarray(labels, dtype=np.int64),
            class_names=tuple(class_names),
            size=(height, width),
        )

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return (*self.size, 3)

    def read_one(self, key: int) -> tuple[np.ndarray, tuple[int, int]]:
        """The image of ``key`` at the input size, and its original ``(height, width)``.

        Raises:
            BadImageError: the file is unreadable, corrupt, or of unusable size.
        """
        rgb = load_image(Path(self.folder) / self.paths[key])
        original = rgb.shape[:2]
        height, width = self.size
        if original != (height, width):
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        return rgb, original

    def read(self, keys: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, list[Failure]]:
        images, read, failures = [], [], []
        for key in np.asarray(keys, dtype=np.int64).tolist():
            try:
                images.append(self.read_one(key)[0])
                read.append(key)
            except (BadImageError, OSError) as error:
                failures.append((key, str(error)))
        return images, np.asarray(read, dtype=np.int64), failures

    def describe(self, key: int) -> str:
        return str(Path(self.folder) / self.paths[key])


def readable_keys(size: int, failed: Sequence[int]) -> np.ndarray:
    """The keys of a source of ``size`` keys that read, in order: the split's images."""
    keep = np.ones(size, dtype=bool)
    keep[np.asarray(list(failed), dtype=np.int64)] = False
    return np.flatnonzero(keep)


__all__ = ["ArraySource", "Failure", "FolderSource", "ImageSource", "readable_keys"]
