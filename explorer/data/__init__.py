"""Datasets: Fashion-MNIST (Debian package), ELPV (PyPI package), the two known-answer generators
(``synthetic``, A, and ``blobs``, B), A with a planted shortcut (``synthetic_marker``), ImageFolder."""

from __future__ import annotations

from pathlib import Path

from explorer.data.base import ImageSet
from explorer.data.sources import ArraySource, FolderSource, ImageSource

DATASETS = ("fashion_mnist", "elpv", "synthetic", "blobs", "synthetic_marker")
GENERATED = ("synthetic", "blobs", "synthetic_marker")
"""The generated data sets, which take a data seed: ``blobs@2`` is generator B's data seed 2."""


def load_split(name: str, split: str, size: tuple[int, int] | None = None) -> ImageSet:
    """Loads a split (``train`` or ``test``) of a named dataset, or of an ImageFolder path.

    ``size`` (height, width; default 224 x 224) is what an ImageFolder's images are resized to: the
    model's input size, so that a model and every analysis of it see images at the size it was
    trained on. A named dataset has its own size and ignores it.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    base, data_seed = parse_data_seed(name)
    if data_seed is not None:
        name = base
    if name == "fashion_mnist":
        from explorer.data.fashion_mnist import load_fashion_mnist

        return load_fashion_mnist(split)
    if name == "elpv":
        from explorer.data.elpv import load_elpv

        return load_elpv(split)
    if name == "synthetic":
        from explorer.data.synthetic import load_synthetic

        return load_synthetic(split, data_seed=data_seed or 0)
    if name == "synthetic_marker":
        from explorer.data.marker import load_synthetic_marker

        return load_synthetic_marker(split, data_seed=data_seed or 0)
    if name == "blobs":
        from explorer.data.blobs import load_blobs

        return load_blobs(split, data_seed=data_seed or 0)
    if Path(name).is_dir():
        from explorer.data.folder import load_image_folder

        return load_image_folder(name, split, size or (224, 224))
    raise ValueError(
        f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} or an ImageFolder path"
    )


def is_image_folder(name: str) -> bool:
    """Whether a data set name is an ImageFolder path (not a named or generated data set)."""
    return parse_data_seed(name)[0] not in DATASETS and Path(name).is_dir()


def split_source(name: str, split: str, size: tuple[int, int] | None = None) -> ImageSource:
    """Where a global pass reads a split: an ImageFolder file by file (unreadable files skipped and
    named by every engine alike), a named data set from memory (:mod:`explorer.data.sources`)."""
    if is_image_folder(name):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', not {split!r}")
        return FolderSource.list(name, split, size or (224, 224))
    data = load_split(name, split, size)
    return ArraySource(data.images, data.labels)


def parse_data_seed(name: str) -> tuple[str, int | None]:
    """``("blobs", 2)`` for ``"blobs@2"``; ``(name, None)`` for a name without a data seed.

    Raises:
        ValueError: a data seed on a data set that is not generated, or one that is not a
            non-negative whole number.
    """
    base, sep, seed = name.rpartition("@")
    if not sep or Path(name).is_dir():
        return name, None
    if base not in GENERATED:
        raise ValueError(
            f"{name!r}: only the generated data sets ({', '.join(GENERATED)}) take a data seed"
        )
    if not seed.isdigit():
        raise ValueError(f"{name!r}: the data seed after '@' must be a whole number >= 0")
    return base, int(seed)


def with_data_seed(name: str, data_seed: int) -> str:
    """The name of a generated data set at ``data_seed`` (``with_data_seed("blobs", 2)`` =
    ``"blobs@2"``; seed 0 is the plain name)."""
    base, _ = parse_data_seed(name)
    if base not in GENERATED:
        raise ValueError(
            f"{name!r}: only the generated data sets ({', '.join(GENERATED)}) take a data seed"
        )
    if data_seed < 0:
        raise ValueError(f"the data seed must be >= 0, not {data_seed}")
    return base if data_seed == 0 else f"{base}@{data_seed}"


__all__ = [
    "DATASETS",
    "GENERATED",
    "ImageSet",
    "ImageSource",
    "is_image_folder",
    "load_split",
    "parse_data_seed",
    "split_source",
    "with_data_seed",
]
