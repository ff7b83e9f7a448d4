"""Where an imported model's prototypes come from, so its folder is self-contained like a trained one.

Three cases, in this order of preference:

* **The original push folder** (``img/epoch-N/`` of the original code's output): per prototype ``j`` the
  whole source image ``prototype-img-original{j}.png`` (saved at ``img_size``) and the row ``j`` of
  ``bb{N}.npy`` (image index in the push set, ``y0, y1, x0, x1`` of the 95th-percentile box with exclusive
  upper bounds, and the class); the cell is where the prototype matches that image best.
* **An ImageFolder** (``--data``): each prototype's nearest training patch among images of its own class,
  found in one forward pass over the train split (the prototypes are never changed); the box is the
  95th-percentile box of the upsampled similarity map on that image, as the original push computes it.
* **Neither**: the sources are unknown. The folder then has no projection records (like a model that was
  never pushed; the app shows its prototypes without source patches) and says so in ``spec.json``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from explorer.boxes import high_activation_box, upsample_map
from explorer.data.base import ImageSet
from explorer.errors import BadImageError, CheckpointError
from explorer.images import load_image
from explorer.models.preprocess import forward_batch_size, to_model_pixels
from explorer.models.protopnet import ProtoPNet, squared_distances
from explorer.types import PrototypeRecord

PUSH = "push folder"
NEAREST = "nearest training patch"
UNKNOWN = "unknown"
MAX_BOX_BYTES = 256 * 1024**2

Progress = Callable[[Iterable[int]], Iterable[int]]


@dataclass
class Sources:
    """Prototype sources for the model folder.

    Attributes:
        kind: :data:`PUSH`, :data:`NEAREST` or :data:`UNKNOWN`.
        records: one per prototype (empty when unknown).
        images: stored file name → RGB uint8 image at model-input size.
        detail: where they came from (the push folder's epoch, the ImageFolder), for the report.
    """

    kind: str
    records: list[PrototypeRecord] = field(default_factory=list)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    detail: str = ""


def upsampled_box(cell_map: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The original push's box: the cell map upsampled to the input size, then the tight box around
    pixels not below the 95th percentile (``find_high_activation_crop``)."""
    return high_activation_box(upsample_map(cell_map, size))


@torch.no_grad()
def _distances(model: ProtoPNet, images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """float64 ``[B, P, h, w]`` squared distances of every prototype to every cell (computed where
    the model is, returned on the CPU)."""
    features = model.conv_features(model.preprocess(images))
    return squared_distances(features, model.prototype_vectors.flatten(1)).cpu()


def _find_epoch_dir(push_dir: Path, epoch: int | None) -> Path:
    if not push_dir.is_dir():
        raise CheckpointError(f"push folder {push_dir} does not exist")
    if any(re.match(r"^bb\d+\.npy$", p.name) for p in push_dir.iterdir()):
        return push_dir
    candidates = sorted(
        p for base in (push_dir, push_dir / "img") if base.is_dir()
        for p in base.iterdir() if p.is_dir() and re.match(r"^epoch-\d+$", p.name)
    )  # fmt: skip
    if epoch is not None:
        chosen = [p for p in candidates if p.name == f"epoch-{epoch}"]
        if chosen:
            return chosen[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise CheckpointError(
            f"push folder {push_dir.name} has no bb<N>.npy and no img/epoch-<N>/ folder"
        )
    raise CheckpointError(
        f"push folder {push_dir.name} holds several epochs ({', '.join(p.name for p in candidates)}); "
        "give the epoch-<N> folder of the checkpoint's push"
    )


def sources_from_push_folder(model: ProtoPNet, push_dir: Path, epoch: int | None = None) -> Sources:
    """Sources from the original push output (see the module docstring).

    Raises:
        CheckpointError: the folder, its ``bb<N>.npy`` or a prototype's source image is missing or does
            not belong to this checkpoint (row count, class, image size, box out of bounds).
    """
    folder = _find_epoch_dir(Path(push_dir), epoch)
    boxes = sorted(p for p in folder.iterdir() if re.match(r"^bb\d+\.npy$", p.name))
    if not boxes:
        raise CheckpointError(f"push folder {folder.name} lacks its bb<N>.npy (the push's boxes)")
    if len(boxes) > 1:
        raise CheckpointError(
            f"push folder {folder.name} holds several bb<N>.npy ({', '.join(p.name for p in boxes)})"
        )
    if boxes[0].stat().st_size > MAX_BOX_BYTES:
        raise CheckpointError(f"push folder {folder.name}: {boxes[0].name} is too large")
    try:
        rows = np.load(boxes[0], allow_pickle=False)
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"push folder {folder.name}: {boxes[0].name} is unreadable ({error})"
        ) from None
    classes = model.prototype_classes
    num_prototypes = len(classes)
    if (
        rows.ndim != 2
        or rows.shape[0] != num_prototypes
        or rows.shape[1] not in (5, 6)
        or not (np.issubdtype(rows.dtype, np.integer))
    ):
        raise CheckpointError(
            f"push folder {folder.name}: {boxes[0].name} is {list(rows.shape)} {rows.dtype}, the "
            f"checkpoint needs [{num_prototypes}, 6] integers (one row per prototype)"
        )
    height, width = model.spec.input_size
    missing = [
        j
        for j in range(num_prototypes)
        if not (folder / f"prototype-img-original{j}.png").is_file()
    ]
    if missing:
        shown = ", ".join(f"prototype-img-original{j}.png" for j in missing[:3])
        raise CheckpointError(
            f"push folder {folder.name} lacks {len(missing)} source images ({shown}"
            f"{' ...' if len(missing) > 3 else ''})"
        )
    by_image: dict[int, list[int]] = defaultdict(list)
    for j, row in enumerate(rows):
        index, y0, y1, x0, x1 = (int(v) for v in row[:5])
        if index < 0:
            raise CheckpointError(
                f"push folder {folder.name}: prototype {j} was never pushed (row -1)"
            )
        if rows.shape[1] == 6 and int(row[5]) >= 0 and int(row[5]) != int(classes[j]):
            raise CheckpointError(
                f"push folder {folder.name}: {boxes[0].name} gives prototype {j} a source of class "
                f"{int(row[5])}, but the checkpoint's prototype {j} belongs to class {int(classes[j])}"
            )
        if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
            raise CheckpointError(
                f"push folder {folder.name}: prototype {j}'s box {[y0, y1, x0, x1]} lies outside "
                f"the {height}x{width} input"
            )
        by_image[index].append(j)
    records: dict[int, PrototypeRecord] = {}
    images: dict[str, np.ndarray] = {}
    for index, members in sorted(by_image.items()):
        path = folder / f"prototype-img-original{members[0]}.png"
        try:
            image = load_image(path)
        except BadImageError as error:
            raise CheckpointError(f"push folder {folder.name}: {error}") from None
        if image.shape[:2] != (height, width):
            raise CheckpointError(
                f"push folder {folder.name}: {path.name} is {image.shape[1]}x{image.shape[0]}, the "
                f"checkpoint's input is {width}x{height}"
            )
        name = f"push{index}.png"
        images[name] = image
        distances = _distances(model, [image])[0]  # [P, h, w]
        grid_width = distances.shape[2]
        for j in members:
            cell = divmod(int(distances[j].flatten().argmin()), grid_width)
            y0, y1, x0, x1 = (int(v) for v in rows[j, 1:5])
            records[j] = PrototypeRecord(
                index=j, class_index=int(classes[j]), source_index=index, cell=cell,
                box=(y0, y1, x0, x1), source_file=name,
            )  # fmt: skip
    return Sources(PUSH, [records[j] for j in range(num_prototypes)], images, str(folder))


@torch.no_grad()
def sources_from_data(
    model: ProtoPNet, train: ImageSet, progress: Progress | None = None
) -> Sources:
    """Each prototype's nearest training patch among images of its class (prototypes unchanged).

    Raises:
        CheckpointError: a prototype's class has no training image.
    """
    classes = torch.from_numpy(np.asarray(model.prototype_classes))
    num_prototypes = len(classes)
    best = torch.full((num_prototypes,), torch.inf, dtype=torch.float64)
    where = torch.full((num_prototypes,), -1, dtype=torch.long)
    cells = torch.zeros((num_prototypes,), dtype=torch.long)
    labels = torch.from_numpy(train.labels)
    batch = forward_batch_size(model.spec, cap=64)
    starts: Iterable[int] = range(0, len(train), batch)
    grid_width = 1
    for start in progress(starts) if progress else starts:
        stop = min(start + batch, len(train))
        distances = _distances(model, train.images[start:stop])  # [B, P, h, w]
        grid_width = distances.shape[3]
        own = labels[start:stop, None] == classes[None, :]  # [B, P]
        distances = torch.where(own[:, :, None, None], distances, torch.inf)
        flat = distances.permute(1, 0, 2, 3).reshape(num_prototypes, -1)  # [P, B*h*w]
        value, position = flat.min(dim=1)
        better = value < best
        cell_count = distances.shape[2] * distances.shape[3]
        best = torch.where(better, value, best)
        where = torch.where(better, start + position // cell_count, where)
        cells = torch.where(better, position % cell_count, cells)
    if (where < 0).any():
        j = int(torch.nonzero(where < 0)[0, 0])
        raise CheckpointError(
            f"the ImageFolder's train split has no image of class {int(classes[j])} for prototype {j}"
        )
    records: dict[int, PrototypeRecord] = {}
    images: dict[str, np.ndarray] = {}
    for index in sorted(set(where.tolist())):
        members = torch.nonzero(where == index).flatten().tolist()
        pixels = to_model_pixels(train.images[index], model.spec)
        name = f"train{index}.png"
        images[name] = pixels
        maps = model.similarity(_distances(model, [pixels])[0]).float().numpy()  # [P, h, w]
        for j in members:
            cell = divmod(int(cells[j]), grid_width)
            records[j] = PrototypeRecord(
                index=j, class_index=int(classes[j]), source_index=int(index), cell=cell,
                box=upsampled_box(maps[j], model.spec.input_size), source_file=name,
            )  # fmt: skip
    return Sources(NEAREST, [records[j] for j in range(num_prototypes)], images, train.name)
