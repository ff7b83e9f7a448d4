"""Model folders: ``spec.json`` + ``model.safetensors`` + ``projection.json`` + stored images.

Loading never unpickles: tensors come from safetensors, metadata from JSON, images from PNG.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from explorer.errors import CheckpointError
from explorer.models.base import PrototypeModel
from explorer.models.families import build_model
from explorer.spec import ModelSpec
from explorer.types import PrototypeRecord

log = logging.getLogger(__name__)

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "model.safetensors"
PROJECTION_FILE = "projection.json"
SOURCES_DIR = "sources"
EXAMPLES_DIR = "examples"
MAX_WEIGHTS_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class ModelBundle:
    """A loaded model folder.

    Attributes:
        model: the network, in eval mode.
        spec: its specification.
        projection: one record per prototype (empty for a model that was never pushed).
        content_hash: 16 hex digits identifying weights and architecture (caches and labels key on it).
        folder: where it was loaded from.
    """

    model: PrototypeModel
    spec: ModelSpec
    projection: tuple[PrototypeRecord, ...]
    content_hash: str
    folder: Path

    def source_image(self, prototype: int) -> np.ndarray:
        """The stored source image (RGB uint8) of a prototype, at model-input size."""
        return read_png(self.folder / SOURCES_DIR / self.projection[prototype].source_file)

    def examples(self) -> list[Path]:
        """Bundled example images (from the test split), sorted by name."""
        folder = self.folder / EXAMPLES_DIR
        return sorted(folder.glob("*.png")) if folder.is_dir() else []


def example_class(path: Path, num_classes: int | None = None) -> int:
    """The true class of a bundled example, from its name ``<class index>_<slug>_<k>_test<i>.png``.

    Raises:
        CheckpointError: the name does not start with a class index (below ``num_classes``).
    """
    head = path.name.split("_", 1)[0]
    if not head.isdigit() or (num_classes is not None and int(head) >= num_classes):
        raise CheckpointError(
            f"{path.parent.parent.name}: example {path.name} does not start with a class index"
            + (f" (0..{num_classes - 1})" if num_classes else "")
        )
    return int(head)


def content_hash(folder: Path) -> str:
    """SHA-256 (first 16 hex digits) over the weights file and the spec's identity fields."""
    spec = ModelSpec.load(folder / SPEC_FILE)
    digest = hashlib.sha256()
    with open(folder / WEIGHTS_FILE, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(json.dumps(spec.identity(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def read_png(path: Path) -> np.ndarray:
    """Reads a stored PNG as RGB uint8."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CheckpointError(
            f"{path.parent.parent.name}: stored image {path.name} is missing or unreadable"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_png(path: Path, image: np.ndarray) -> None:
    """Writes a grey or RGB uint8 image as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    data = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), data):
        raise OSError(f"could not write {path}")


def save_model(
    model: PrototypeModel,
    folder: Path,
    projection: list[PrototypeRecord] | tuple[PrototypeRecord, ...] = (),
    source_images: dict[str, np.ndarray] | None = None,
    examples: dict[str, np.ndarray] | None = None,
) -> str:
    """Writes a model folder; returns its content hash.

    Args:
        model: the network (its ``spec`` is written as ``spec.json``).
        folder: destination, created if needed.
        projection: per-prototype push records.
        source_images: file name → image, for ``sources/``.
        examples: file name → image, for ``examples/``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    model.spec.save(folder / SPEC_FILE)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(
        state,
        str(folder / WEIGHTS_FILE),
        metadata={"format": "pt", "model_id": model.spec.model_id},
    )
    (folder / PROJECTION_FILE).write_text(
        json.dumps({"prototypes": [r.to_dict() for r in projection]}, indent=1) + "\n"
    )
    for name, image in (source_images or {}).items():
        write_png(folder / SOURCES_DIR / name, image)
    for name, image in (examples or {}).items():
        write_png(folder / EXAMPLES_DIR / name, image)
    return content_hash(folder)


def _read_projection(folder: Path, spec: ModelSpec) -> tuple[PrototypeRecord, ...]:
    path = folder / PROJECTION_FILE
    if not path.is_file():
        return ()
    try:
        records = [PrototypeRecord.from_dict(r) for r in json.loads(path.read_text())["prototypes"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise CheckpointError(f"{folder.name}: projection.json is malformed ({error})") from None
    if records and [r.index for r in records] != list(range(spec.num_prototypes)):
        raise CheckpointError(
            f"{folder.name}: projection.json must list prototypes 0..{spec.num_prototypes - 1} in order"
        )
    for record in records:
        if Path(record.source_file).name != record.source_file:
            raise CheckpointError(f"{folder.name}: projection.json names a file outside the folder")
    return tuple(records)


def _all_finite(tensor: torch.Tensor) -> bool:
    """Whether a CPU tensor holds no NaN or infinity.

    numpy where it has the dtype: it checks in one thread, where each of torch's reductions starts
    its thread pool (a model has hundreds of tensors, and on a busy 2-core machine those starts took
    seconds); torch for the dtypes numpy lacks (bfloat16, float8).
    """
    try:
        array = tensor.numpy()
    except TypeError:
        return bool(torch.isfinite(tensor).all())
    return bool(np.isfinite(array).all())


def check_state_fits(
    expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], where: str, hint: str = ""
) -> None:
    """Raises :class:`CheckpointError` unless ``state`` has exactly ``expected``'s keys and shapes
    (``where`` starts the message, ``hint`` ends it)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}weights do not match the spec's architecture "
            f"(missing: {missing[:3]}, unexpected: {unexpected[:3]}){hint}"
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(
                f"{where}tensor '{key}' has shape {tuple(tensor.shape)}, "
                f"the spec needs {tuple(expected[key].shape)}{hint}"
            )


@torch.inference_mode(False)
def load_model(folder: str | Path, device: torch.device | str = "cpu") -> ModelBundle:
    """Loads a model folder without executing any code from it, onto ``device`` (read and checked
    on the CPU first). Its tensors are ordinary ones even when it is first asked for inside
    ``torch.inference_mode()`` (gradient-based attributions need them later).

    Raises:
        CheckpointError: a file is missing, corrupt, or does not match the spec, with the reason.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"model folder {folder} does not exist")
    spec = ModelSpec.load(folder / SPEC_FILE)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{folder.name}: {WEIGHTS_FILE} is missing")
    if weights.stat().st_size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"{folder.name}: {WEIGHTS_FILE} is larger than 2 GiB")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{folder.name}: {WEIGHTS_FILE} is not a readable safetensors file ({error})"
        ) from None
    try:
        model = build_model(spec)
    except ValueError as error:
        raise CheckpointError(f"{folder.name}: {error}") from None
    check_state_fits(model.state_dict(), state, f"{folder.name}: ")
    for key, tensor in state.items():
        if tensor.is_floating_point() and not _all_finite(tensor):
            raise CheckpointError(f"{folder.name}: tensor '{key}' holds NaN or infinite values")
    model.load_state_dict(state)
    model.to(device).eval()
    return ModelBundle(
        model=model,
        spec=spec,
        projection=_read_projection(folder, spec),
        content_hash=content_hash(folder),
        folder=folder,
    )
