"""Datasets: Fashion-MNIST (Debian package), ELPV (PyPI package), synthetic attributes, ImageFolder."""

from __future__ import annotations

from pathlib import Path

from explorer.data.base import ImageSet

DATASETS = ("fashion_mnist", "elpv", "synthetic")


def load_split(name: str, split: str) -> ImageSet:
    """Loads a split (``train`` or ``test``) of a named dataset, or of an ImageFolder path."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if name == "fashion_mnist":
        from explorer.data.fashion_mnist import load_fashion_mnist

        return load_fashion_mnist(split)
    if name == "elpv":
        from explorer.data.elpv import load_elpv

        return load_elpv(split)
    if name == "synthetic":
        from explorer.data.synthetic import load_synthetic

        return load_synthetic(split)
    if Path(name).is_dir():
        from explorer.data.folder import load_image_folder

        return load_image_folder(name, split)
    raise ValueError(
        f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} or an ImageFolder path"
    )


__all__ = ["DATASETS", "ImageSet", "load_split"]
