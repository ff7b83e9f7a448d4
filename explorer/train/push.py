"""Push (projection): replace each prototype by its nearest training patch of its own class."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from explorer.boxes import high_activation_box, upsample_map
from explorer.models.protopnet import ProtoPNet, similarity_from_distance, squared_distances


@dataclass
class _Nearest:
    """Running minimum per prototype over batches (the reduce of push's map/reduce)."""

    distance: np.ndarray  # [P]
    image: np.ndarray  # [P]
    row: np.ndarray  # [P]
    col: np.ndarray  # [P]
    vector: np.ndarray  # [P, D]

    @classmethod
    def empty(cls, num_prototypes: int, dim: int) -> _Nearest:
        return cls(
            distance=np.full(num_prototypes, np.inf),
            image=np.full(num_prototypes, -1),
            row=np.zeros(num_prototypes, dtype=int),
            col=np.zeros(num_prototypes, dtype=int),
            vector=np.zeros((num_prototypes, dim), dtype=np.float32),
        )


@torch.no_grad()
def push_prototypes(
    model: ProtoPNet,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor, int]],
    allowed_cells: np.ndarray | None = None,
) -> list[dict[str, object]]:
    """Projects every prototype onto the nearest feature patch of an image of its own class.

    Args:
        model: the network; its ``prototype_vectors`` are replaced in place.
        batches: ``(trunk_output, labels, first_index)`` over the *unaugmented* training split.
        allowed_cells: optional bool ``[N, h, w]`` over the split's feature cells: only these
            patches may become prototypes (e.g. cells on the object, from :func:`object_cells`).

    Returns:
        Per prototype: ``source_index``, ``cell`` and ``distance`` before projection.
    """
    model.eval()
    identity = model.prototype_class_identity  # [P, C]
    num_prototypes, dim = model.prototype_vectors.shape[:2]
    nearest = _Nearest.empty(num_prototypes, dim)
    prototypes = model.prototype_vectors.flatten(1)
    for trunk_output, labels, first in batches:
        features = model.add_on(model.features.tail(trunk_output))  # [B, D, h, w]
        distances = squared_distances(features, prototypes)  # [B, P, h, w]
        own = identity[:, labels].t().bool()  # [B, P]
        distances = torch.where(own[:, :, None, None], distances, torch.inf)
        if allowed_cells is not None:
            allowed = torch.from_numpy(allowed_cells[first : first + len(labels)])
            allowed = allowed.to(distances.device)
            distances = torch.where(allowed[:, None], distances, torch.inf)
        _, _, height, width = distances.shape
        flat = distances.permute(1, 0, 2, 3).reshape(num_prototypes, -1)  # [P, B*h*w]
        best, where = flat.min(dim=1)
        best, where = best.cpu(), where.cpu()
        improved = (best.numpy() < nearest.distance).nonzero()[0]
        for j in improved:
            b, rest = divmod(int(where[j]), height * width)
            r, c = divmod(rest, width)
            nearest.distance[j] = float(best[j])
            nearest.image[j] = first + b
            nearest.row[j], nearest.col[j] = r, c
            nearest.vector[j] = features[b, :, r, c].cpu().numpy()
    if (nearest.image < 0).any():
        missing = np.flatnonzero(nearest.image < 0).tolist()
        raise ValueError(f"no training image of their class for prototypes {missing}")
    model.prototype_vectors.copy_(torch.from_numpy(nearest.vector).view_as(model.prototype_vectors))
    return [
        {
            "source_index": int(nearest.image[j]),
            "cell": (int(nearest.row[j]), int(nearest.col[j])),
            "distance": float(nearest.distance[j]),
        }
        for j in range(num_prototypes)
    ]


ON_OBJECT_COVER = 0.5
"""A feature cell is *on the object* when the object mask covers at least this share of it."""


def object_cover(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """``[N, h, w]`` the share of each feature cell the object mask (``[N, H, W]``, 1 on the object)
    covers (area-averaged)."""
    height, width = grid
    return np.stack(
        [
            cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
            for m in masks
        ]
    )


def prototypes_on_object(
    masks: np.ndarray, grid: tuple[int, int], pushed: list[dict[str, object]]
) -> dict[str, float | int]:
    """How many pushed prototypes sit on cells at least :data:`ON_OBJECT_COVER` on the object.

    Args:
        masks: the training split's object masks ``[N, H, W]``.
        grid: the feature grid ``(h, w)``.
        pushed: :func:`push_prototypes`' records (``source_index``, ``cell``).
    """
    sources = [int(p["source_index"]) for p in pushed]  # type: ignore[call-overload]
    cover = object_cover(masks[sources], grid)
    shares = [float(cover[k][tuple(p["cell"])]) for k, p in enumerate(pushed)]  # type: ignore[arg-type]
    return {
        "on_object": sum(share >= ON_OBJECT_COVER for share in shares),
        "prototypes": len(pushed),
        "min_cover": ON_OBJECT_COVER,
    }


def object_cells(
    masks: np.ndarray, grid: tuple[int, int], min_cover: float = ON_OBJECT_COVER
) -> np.ndarray:
    """Feature cells mostly on the object: bool ``[N, h, w]`` where the area-averaged object mask
    (``[N, H, W]``, 1 on the object) covers at least ``min_cover`` of the cell's pixels."""
    height, width = grid
    cover = object_cover(masks, grid)
    allowed = cover >= min_cover
    empty = ~allowed.any(axis=(1, 2))
    if empty.any():  # tiny objects: allow the cells that cover most of them
        best = cover[empty].reshape(int(empty.sum()), -1).argmax(1)
        flat = allowed[empty].reshape(int(empty.sum()), -1)
        flat[np.arange(len(best)), best] = True
        allowed[empty] = flat.reshape(-1, height, width)
    return allowed


@torch.no_grad()
def self_activation_box(
    model: ProtoPNet, source_input: torch.Tensor, prototype: int
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The 95th-percentile box of a prototype on its source image (``[1, C, H, W]`` preprocessed).

    Returns:
        The box ``(y0, y1, x0, x1)`` in input pixels and the upsampled similarity map.
    """
    features = model.conv_features(source_input)
    distances = squared_distances(
        features, model.prototype_vectors[prototype : prototype + 1].flatten(1)
    )
    cell_map = similarity_from_distance(distances)[0, 0].float().cpu().numpy()
    upsampled = upsample_map(cell_map, tuple(source_input.shape[-2:]))
    return high_activation_box(upsampled), upsampled
