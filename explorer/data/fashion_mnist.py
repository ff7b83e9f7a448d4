"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (MIT licence).

``apt-get install dataset-fashion-mnist`` puts the IDX files in ``/usr/share/datasets/fashion-mnist/``.
Another location can be given with the ``FASHION_MNIST_DIR`` environment variable.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from explorer.data.base import ImageSet
from explorer.errors import ExplorerError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path: Path) -> np.ndarray:
    """Reads an unsigned-byte IDX file (gzip-compressed), as ``numpy`` from its header."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_fashion_mnist(split: str) -> ImageSet:
    """Loads the ``train`` (60,000) or ``test`` (10,000) split as 28x28 grey images."""
    folder = Path(os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR))
    images_file, labels_file = FILES[split]
    if not (folder / images_file).is_file():
        raise ExplorerError(
            f"Fashion-MNIST not found in {folder}: install it with "
            "'apt-get install dataset-fashion-mnist' (or set FASHION_MNIST_DIR)"
        )
    return ImageSet(
        images=_read_idx(folder / images_file).copy(),
        labels=_read_idx(folder / labels_file).astype(np.int64),
        class_names=CLASS_NAMES,
        name="fashion_mnist",
        split=split,
    )
