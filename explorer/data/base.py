"""The in-memory image set every dataset loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ImageSet:
    """A split of a dataset, held in memory as uint8 arrays.

    Attributes:
        images: ``[N, H, W]`` (grey) or ``[N, H, W, 3]`` (RGB) uint8 array.
        labels: ``[N]`` int64 class indices.
        class_names: one name per class index.
        name: dataset name (``fashion_mnist``, ``elpv``, ``synthetic``, or a folder name).
        split: ``train`` or ``test``.
        extras: optional per-image ground truth (e.g. keypoints of the synthetic set).
        part_names: what the parts of ``extras["keypoints"]`` are, in order (empty without).
        skipped: ``(path, reason)`` of every file of the split that could not be read (an
            ImageFolder's; the split holds the others).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str
    split: str
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    part_names: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> ImageSet:
        """Returns the images at ``indices`` (extras sliced alike)."""
        idx = np.asarray(indices)
        return ImageSet(
            images=self.images[idx],
            labels=self.labels[idx],
            class_names=self.class_names,
            name=self.name,
            split=self.split,
            extras={k: v[idx] for k, v in self.extras.items()},
            part_names=self.part_names,
            skipped=self.skipped,
        )
