"""Datasets: Fashion-MNIST (Debian package), ELPV (PyPI package), synthetic attributes, ImageFolder."""

from __future__ import annotations

from pathlib import Path

from explorer.data.base import ImageSet

DATASETS = ("fashion_mnist", "elpv", "synthetic")


def load_split(name: str, split: str, size: tuple[int, int] | None = None) -> ImageSet:
    """Loads a split (``train`` or ``test``) of a named dataset, or of an ImageFolder path.

    ``size`` (height, width; default 224 x 224) is what an ImageFolder's images are resized to: the
    model's input size, so that a model and every analysis of it see images at the size it was
    trained on. A named dataset has its own size and ignores it.
    """
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

        return load_image_folder(name, split, size or (224, 224))
    raise ValueError(
        f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} or an ImageFolder path"
    )


__all__ = ["DATASETS", "ImageSet", "load_split"]
