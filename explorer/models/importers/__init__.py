"""Importing prototype networks trained elsewhere into our model folder format, without executing any
code from their files.

Formats (:data:`IMPORTERS`): ``protopnet`` (the original code's whole pickled ``model.PPNet``, zip or
legacy format), ``protopnet-state-dict`` (its ``state_dict()``; the class identity must be stated) and
``cabrnet`` (a CaBRNet ProtoPNet folder). ``auto`` picks one from the file.

:func:`import_checkpoint` reads the checkpoint, rebuilds the network as our :class:`ProtoPNet` on the
equivalent torchvision backbone, finds the prototypes' sources (the original push folder, or the nearest
training patches of an ImageFolder, or none), writes the folder through a temporary directory (nothing is
written when the import fails), reloads it, and proves equality: the largest difference between the
written tensors and the checkpoint's own, and between our model's logits and an independent evaluation of
the checkpoint's own math on random inputs (:mod:`~explorer.models.importers.reference`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.data.base import ImageSet
from explorer.errors import CheckpointError, ExplorerError
from explorer.models.card import model_card_markdown
from explorer.models.checkpoint import load_model, save_model
from explorer.models.importers.cabrnet import CaBRNetFolder
from explorer.models.importers.network import (
    CLASS_IDENTITY_KEY,
    ImportedNetwork,
    Importer,
    ReadOptions,
    build_model,
    reference_forward,
)
from explorer.models.importers.protopnet_pickle import PPNET, ProtoPNetPickle
from explorer.models.importers.protopnet_state_dict import ProtoPNetStateDict
from explorer.models.importers.safe_pickle import TENSOR_GLOBALS, referenced_globals
from explorer.models.importers.sources import (
    NEAREST,
    PUSH,
    UNKNOWN,
    Progress,
    Sources,
    sources_from_data,
    sources_from_push_folder,
)
from explorer.models.preprocess import forward_batch_size
from explorer.models.protopnet import ProtoPNet
from explorer.spec import ModelSpec

IMPORTERS: dict[str, Importer] = {
    importer.name: importer
    for importer in (ProtoPNetPickle(), ProtoPNetStateDict(), CaBRNetFolder())
}
FORMATS = ("auto", *IMPORTERS, "pipnet")
PIPNET_SOURCES = (
    "none: PIP-Net has no push; its prototypes are shown by their top-k training patches"
)
CHECK_IMAGES = 2
CHECK_SEED = 0
TOLERANCE = 1e-6  # float64 logits, relative to the largest |logit| (at least 1)
EXAMPLES_PER_CLASS = 2
MAX_EXAMPLES = 200


@dataclass(frozen=True)
class ImportReport:
    """What an import found and how closely the written model reproduces the checkpoint.

    Attributes:
        format: the importer used.
        checkpoint: the checkpoint's file (or folder) name.
        sha256: its SHA-256 (of ``model_state.pth`` for a CaBRNet folder).
        folder: the written model folder.
        model_id: the new model's identifier.
        backbone: our backbone name; ``backbone_description`` says it in words.
        backbone_options: layout options beyond the named architecture (small or custom nets).
        add_on: the add-on's layers in words (``conv 512→256, ReLU, ...``).
        num_classes: ``C``.
        prototypes_per_class: how many prototypes each class has.
        activation: ``log`` or ``linear``; ``epsilon`` its ``ε``.
        input_size: ``(height, width)``; ``mean``/``std`` the normalisation.
        sources: ``push folder``, ``nearest training patch`` or ``unknown``; ``sources_detail`` where.
        max_tensor_difference: max |Δ| between every written tensor and the checkpoint's own.
        max_logit_difference: max |Δ logits| between our model and the reference evaluation of the
            checkpoint's math, both in float64, on ``check_images`` random inputs.
        max_score_difference: the same for the prototype scores (similarities).
        max_logit_difference_float32: the same in float32 (both sides in float32).
        check_images: how many random inputs the check used.
        notes: what was assumed or changed.
    """

    format: str
    checkpoint: str
    sha256: str
    folder: Path
    model_id: str
    backbone: str
    backbone_description: str
    backbone_options: dict[str, Any]
    add_on: tuple[str, ...]
    num_classes: int
    prototypes_per_class: tuple[int, ...]
    activation: str
    epsilon: float
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    sources: str
    sources_detail: str
    max_tensor_difference: float
    max_logit_difference: float
    max_score_difference: float
    max_logit_difference_float32: float
    check_images: int
    notes: tuple[str, ...] = field(default=())

    @property
    def num_prototypes(self) -> int:
        return sum(self.prototypes_per_class)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["folder"] = str(self.folder)
        data["num_prototypes"] = self.num_prototypes
        for key in ("add_on", "prototypes_per_class", "input_size", "mean", "std", "notes"):
            data[key] = list(data[key])
        return data

    def summary(self) -> list[str]:
        """Readable lines: what was found, and the equality check."""
        counts = np.asarray(self.prototypes_per_class)
        per_class = (
            f"{counts[0]} per class" if (counts == counts[0]).all()
            else f"{counts.min()}–{counts.max()} per class"
        )  # fmt: skip
        activation = {
            "log": f"log((d + 1) / (d + {self.epsilon:g}))",
            "linear": "−d (linear)",
            "pipnet": "PIP-Net presence: softmax over channels, max-pool, below 0.1 → 0",
        }[self.activation]
        lines = [
            f"imported {self.checkpoint} ({self.format}) into {self.folder}",
            f"architecture: {self.backbone_description}; add-on {', '.join(self.add_on) or 'none'}",
            f"prototypes: {self.num_prototypes} for {self.num_classes} classes ({per_class})",
            f"similarity: {activation}; input {self.input_size[0]}x{self.input_size[1]} RGB, "
            f"mean {list(self.mean)}, std {list(self.std)}",
            f"sources: {self.sources}"
            + (f" ({self.sources_detail})" if self.sources_detail else ""),
            f"equality: max |Δ tensor| = {self.max_tensor_difference:.3g}; on {self.check_images} random "
            f"inputs max |Δ logit| = {self.max_logit_difference:.3g} (float64), "
            f"{self.max_logit_difference_float32:.3g} (float32); max |Δ score| = "
            f"{self.max_score_difference:.3g}",
        ]
        return lines + [f"note: {n}" for n in self.notes]


def detect_format(path: Path) -> str:
    """The format of ``path``: a CaBRNet folder, a pickled ``PPNet``, or a state dict.

    Raises:
        CheckpointError: not a checkpoint (a folder of another kind, a corrupt or truncated file).
    """
    if path.is_dir():
        if IMPORTERS["cabrnet"].recognises(path):
            return "cabrnet"
        raise CheckpointError(
            f"{path.name} is a folder but not a CaBRNet checkpoint folder (model_arch.yml + "
            "model_state.pth)"
        )
    found = referenced_globals(path, path.name)
    if PPNET in found or not found <= TENSOR_GLOBALS:
        return "protopnet"  # its reader names anything unexpected
    return "protopnet-state-dict"


def _image_folder(data: str | Path | None, size: int) -> tuple[ImageSet | None, ImageSet | None]:
    """The train and test splits of ``--data`` at the model's input size (``None``s without)."""
    if data is None:
        return None, None
    from explorer.data.folder import load_image_folder

    try:
        train = load_image_folder(data, "train", size)
        test = load_image_folder(data, "test", size)
    except ExplorerError as error:
        raise CheckpointError(f"--data: {error}") from None
    if test.class_names != train.class_names:
        raise CheckpointError("--data: the train and test splits have different class folders")
    return train, test


def _dataset_entry(data: str | Path | None, train: ImageSet | None, test: ImageSet | None) -> dict:
    if train is None:
        return {}
    return {
        "name": str(Path(data).expanduser().resolve()),
        "train_images": len(train),
        **({"test_images": len(test)} if test is not None else {}),
    }


def _class_names(
    given: Sequence[str] | str | None, data: ImageSet | None, num_classes: int
) -> tuple[str, ...]:
    if isinstance(given, str):
        given = [n.strip() for n in given.split(",")]
    if given is not None:
        names = tuple(given)
        if len(names) != num_classes or not all(names) or len(set(names)) != len(names):
            raise CheckpointError(
                f"the class names must be {num_classes} distinct non-empty names, not {len(names)}"
            )
        return names
    if data is not None:
        if len(data.class_names) != num_classes:
            raise CheckpointError(
                f"the ImageFolder has {len(data.class_names)} classes, the checkpoint {num_classes}"
            )
        return data.class_names
    return tuple(f"class_{c}" for c in range(num_classes))


def _add_on_words(model: ProtoPNet) -> tuple[str, ...]:
    words = []
    for module in model.add_on:
        if isinstance(module, torch.nn.Conv2d):
            bias = "" if module.bias is not None else " (no bias)"
            words.append(f"conv {module.in_channels}→{module.out_channels}{bias}")
        else:
            words.append(type(module).__name__)
    return tuple(words)


def _examples(test: ImageSet, spec: ModelSpec, per_class: int) -> dict[str, np.ndarray]:
    """The first test images of every class, named like a trained model's examples."""
    out: dict[str, np.ndarray] = {}
    per_class = max(1, min(per_class, MAX_EXAMPLES // max(1, len(test.class_names))))
    for c, name in enumerate(spec.class_names):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "class"
        for k, i in enumerate(np.flatnonzero(test.labels == c)[:per_class]):
            out[f"{c:02d}_{slug}_{k}_test{i}.png"] = test.images[i]
    return out


@torch.no_grad()
def _accuracy(model: ProtoPNet, test: ImageSet) -> float:
    """Test accuracy of the rebuilt model on an ImageFolder's test split (one forward pass)."""
    batch = forward_batch_size(model.spec, cap=64)
    correct = 0
    for start in range(0, len(test), batch):
        logits = model(model.preprocess(test.images[start : start + batch])).logits
        correct += int(
            (logits.argmax(dim=1).cpu().numpy() == test.labels[start : start + batch]).sum()
        )
    return correct / len(test)


def _sha256(path: Path) -> str:
    target = path / "model_state.pth" if path.is_dir() else path
    digest = hashlib.sha256()
    with open(target, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"{out} already exists; choose a new folder for the imported model")


@torch.no_grad()
def _equality(net: ImportedNetwork, folder: Path, count: int) -> dict[str, float]:
    """Reloads the written folder and compares it with the checkpoint's tensors and math."""
    bundle = load_model(folder)
    model = bundle.model
    state = model.state_dict()
    tensor_delta = 0.0
    for key, tensor in net.tensors.items():
        stored = tensor.to(state[key].dtype)
        if tensor.numel() and not torch.equal(state[key], stored):
            delta = float((state[key].double() - stored.double()).abs().max())
            tensor_delta = max(tensor_delta, delta if delta == delta else float("inf"))
    classes = torch.tensor(net.prototype_classes)
    if not torch.equal(state[CLASS_IDENTITY_KEY].argmax(dim=1), classes):
        raise CheckpointError(
            f"{net.where}: the written class identity differs from the checkpoint's"
        )
    generator = torch.Generator().manual_seed(CHECK_SEED)
    height, width = net.input_size
    x = torch.randn(count, 3, height, width, generator=generator)
    try:
        ours32 = model(x)
        ref32 = reference_forward(net, model, x, torch.float32)
        model.double()
        ours64 = model(x.double())
        ref64 = reference_forward(net, model, x, torch.float64)
    except (RuntimeError, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{net.where}: the network does not run on {height}x{width} inputs ({reason})"
        ) from None
    logit64 = float((ours64.logits - ref64[0]).abs().max())
    scale = max(1.0, float(ref64[0].abs().max()))
    result = {
        "max_tensor_difference": tensor_delta,
        "max_logit_difference": logit64,
        "max_score_difference": float((ours64.scores - ref64[2]).abs().max()),
        "max_logit_difference_float32": float(
            (ours32.logits.double() - ref32[0].double()).abs().max()
        ),
    }
    if tensor_delta > 0 or logit64 > TOLERANCE * scale:
        raise CheckpointError(
            f"{net.where}: the rebuilt network does not reproduce the checkpoint (max |Δ tensor| = "
            f"{tensor_delta:.3g}, max |Δ logit| = {logit64:.3g}); nothing was written"
        )
    return result


def _write_through_temporary(
    out: Path, write: Callable[[Path], dict[str, float]]
) -> dict[str, float]:
    """Runs ``write(folder)`` on a hidden temporary folder beside ``out`` (an explorer scanning the
    parent never sees it) and renames it into place once ``write`` (which checks what it wrote)
    returned; on any failure nothing is left, not even the parents it created."""
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()][::-1]
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    try:
        checks = write(temporary / "model")
        try:
            os.rename(temporary / "model", out)  # fails if ``out`` appeared meanwhile, not empty
        except OSError as error:
            raise CheckpointError(f"cannot create {out}: {error.strerror or error}") from None
        temporary.rmdir()
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return checks


def import_checkpoint(
    path: str | Path,
    out: str | Path,
    format: str = "auto",
    data: str | Path | None = None,
    push_dir: str | Path | None = None,
    class_names: Sequence[str] | str | None = None,
    model_id: str | None = None,
    class_identity: Any = None,
    input_size: int | None = None,
    activation: str | None = None,
    epsilon: float | None = None,
    examples_per_class: int = EXAMPLES_PER_CLASS,
    check_images: int = CHECK_IMAGES,
    progress: Progress | None = None,
    backbone: str | None = None,
    device: torch.device | str = "cpu",
) -> ImportReport:
    """Imports a checkpoint into a new model folder ``out``.

    Args:
        path: the checkpoint file (``protopnet``, ``protopnet-state-dict``) or folder (``cabrnet``).
        out: the new model folder (must not exist, or be empty).
        format: one of :data:`FORMATS`.
        data: an ImageFolder (``train/<class>/``, ``test/<class>/``): class names, the prototypes'
            nearest training patches when there is no push folder, examples from its test split, and
            the data set the app's data-wide analyses use.
        push_dir: the original code's push output (``img/``, or one ``img/epoch-N/`` folder).
        class_names: names for the classes (a list or ``"a,b,c"``); default the ImageFolder's, else
            ``class_0``, ``class_1``, ...
        model_id: the new model's id (default: ``out``'s name).
        class_identity: for a state dict: a file or list of one class per prototype, or
            ``"contiguous"``.
        input_size, activation, epsilon: for a state dict (and the input size of a CaBRNet folder),
            what the file does not state.
        examples_per_class: test images stored as examples per class (with ``data``; 0: none).
        check_images: random inputs of the equality check.
        progress: wraps the iteration over training batches of the nearest-patch search.
        backbone: for ``pipnet``: the public code's ``--net`` (``convnext_tiny_26``,
            ``convnext_tiny_13``, ``resnet50``); required, a checkpoint does not name it.
        device: where the data-wide steps run (the nearest training patches, the test accuracy);
            reading the file and the equality check with its own math stay on the CPU.

    Returns:
        What was found and the equality check.

    Raises:
        CheckpointError: the checkpoint is refused (unexpected content, corrupt, inconsistent), with the
            reason; nothing was executed and nothing was written.
    """
    path, out = Path(path).expanduser(), Path(out).expanduser()
    if format not in FORMATS:
        raise CheckpointError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    _check_out(out)
    if format == "pipnet":
        return _import_pipnet(
            path, out, backbone, data, class_names, model_id, input_size or 224,
            examples_per_class, check_images, device,
        )  # fmt: skip
    chosen = detect_format(path) if format == "auto" else format
    importer = IMPORTERS[chosen]
    options = ReadOptions(class_identity, input_size, activation, epsilon)
    net = importer.read(path, options)

    train, test = _image_folder(data, net.input_size[0])
    names = _class_names(class_names, train, net.num_classes)
    model_id = model_id or out.name
    sha = _sha256(path)
    counts = tuple(int(c) for c in np.bincount(net.prototype_classes, minlength=net.num_classes))
    spec = ModelSpec(
        model_id=model_id,
        title=f"{model_id} (imported ProtoPNet, {net.backbone.name})",
        description=(
            f"Imported from {net.where} ({importer.description}) with `python -m explorer import`; "
            "not trained here."
        ),
        architecture=net.architecture(),
        input_size=net.input_size,
        channels=3,
        mean=net.mean,
        std=net.std,
        class_names=names,
        dataset=_dataset_entry(data, train, test),
        training={"imported_from": net.where, "format": chosen, "sha256": sha},
    )
    try:
        model = build_model(net, spec)
    except (RuntimeError, ValueError, TypeError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{net.where}: cannot rebuild the network ({error})") from None

    model.to(device)  # the data-wide steps (nearest sources, test accuracy) run on the device
    if push_dir is not None:
        sources = sources_from_push_folder(model, Path(push_dir).expanduser(), net.epoch)
    elif train is not None:
        sources = sources_from_data(model, train, progress)
    else:
        sources = Sources(UNKNOWN)
    training = {**spec.training, "sources": sources.kind}
    if net.notes:
        training["notes"] = list(net.notes)
    if net.epoch is not None:
        training["epoch"] = net.epoch
    accuracy = {"test": round(_accuracy(model, test), 4)} if test is not None else {}
    model.cpu()  # the equality check against the checkpoint's own math runs on the CPU
    spec = ModelSpec(**{**spec.__dict__, "training": training, "accuracy": accuracy})
    model.spec = spec
    examples = _examples(test, spec, examples_per_class) if test and examples_per_class else {}

    def write(folder: Path) -> dict[str, float]:
        save_model(model, folder, sources.records, sources.images, examples)
        (folder / "README.md").write_text(model_card_markdown(spec))
        return _equality(net, folder, check_images)

    checks = _write_through_temporary(out, write)
    return ImportReport(
        format=chosen,
        checkpoint=net.where,
        sha256=sha,
        folder=out,
        model_id=model_id,
        backbone=net.backbone.name,
        backbone_description=net.backbone.description,
        backbone_options=dict(net.backbone.options),
        add_on=_add_on_words(model),
        num_classes=net.num_classes,
        prototypes_per_class=counts,
        activation=net.activation,
        epsilon=net.epsilon,
        input_size=net.input_size,
        mean=net.mean,
        std=net.std,
        sources=sources.kind,
        sources_detail=sources.detail,
        check_images=check_images,
        notes=tuple(net.notes),
        **checks,
    )


def _import_pipnet(
    path: Path,
    out: Path,
    backbone: str | None,
    data: str | Path | None,
    class_names: Sequence[str] | str | None,
    model_id: str | None,
    input_size: int,
    examples_per_class: int,
    check_images: int,
    device: torch.device | str = "cpu",
) -> ImportReport:
    """``import_checkpoint`` for a public PIP-Net checkpoint (see :mod:`.pipnet`)."""
    from explorer.models.importers.pipnet import (
        build_pipnet,
        pipnet_spec,
        public_logits,
        read_pipnet,
    )

    if backbone is None:
        raise CheckpointError(
            "a PIP-Net checkpoint does not name its backbone: give --backbone "
            "convnext_tiny_26, convnext_tiny_13 or resnet50 (the public code's --net)"
        )
    checkpoint = read_pipnet(path, backbone)
    train, test = _image_folder(data, input_size)
    names = _class_names(class_names, train, checkpoint.num_classes)
    model_id = model_id or out.name
    sha = _sha256(path)
    spec = pipnet_spec(checkpoint, model_id, names, input_size, path.name)
    training = {"imported_from": path.name, "format": "pipnet", "sha256": sha,
                "sources": "none", **({"notes": list(checkpoint.notes)} if checkpoint.notes else {})}  # fmt: skip
    spec = ModelSpec(**{**spec.__dict__, "dataset": _dataset_entry(data, train, test),
                        "training": training})  # fmt: skip
    try:
        model = build_pipnet(checkpoint, spec)
    except (RuntimeError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{path.name}: cannot rebuild the network ({error})") from None
    if test is not None:
        accuracy = {"test": round(_accuracy(model.to(device), test), 4)}
        model.cpu()  # the equality check against the public code's math runs on the CPU
        spec = ModelSpec(**{**spec.__dict__, "accuracy": accuracy})
        model.spec = spec
    examples = _examples(test, spec, examples_per_class) if test and examples_per_class else {}

    @torch.no_grad()
    def write(folder: Path) -> dict[str, float]:
        save_model(model, folder, (), None, examples)
        (folder / "README.md").write_text(model_card_markdown(spec))
        written = load_model(folder).model
        generator = torch.Generator().manual_seed(CHECK_SEED)
        x = torch.randn(check_images, 3, input_size, input_size, generator=generator)
        ours32 = written(x)
        reference32 = public_logits(checkpoint, written, x)
        written.double()
        ours64 = written(x.double()).logits
        reference64 = public_logits(checkpoint, written, x.double())
        logit64 = float((ours64 - reference64).abs().max())
        weight = checkpoint.state["classification.weight"]
        if logit64 > TOLERANCE * max(1.0, float(reference64.abs().max())):
            raise CheckpointError(
                f"{path.name}: the rebuilt network does not reproduce the checkpoint (max |Δ logit| "
                f"= {logit64:.3g}); nothing was written"
            )
        return {
            "max_tensor_difference": float(
                (written.class_weights.float() - torch.relu(weight).float()).abs().max()
            ),
            "max_logit_difference": logit64,
            "max_score_difference": 0.0,
            "max_logit_difference_float32": float(
                (ours32.logits.double() - reference32.double()).abs().max()
            ),
        }

    checks = _write_through_temporary(out, write)
    counts = tuple(
        int(c) for c in np.bincount(spec.prototype_classes, minlength=checkpoint.num_classes)
    )
    layout = spec.architecture.add_on_layout
    return ImportReport(
        format="pipnet",
        checkpoint=path.name,
        sha256=sha,
        folder=out,
        model_id=model_id,
        backbone=checkpoint.backbone,
        backbone_description=f"PIP-Net's {backbone} (torchvision definition, its stride changes)",
        backbone_options={},
        add_on=(
            *((f"conv →{layout[0].split(':')[1]}",) if layout else ()),
            "Softmax over channels",
        ),
        num_classes=checkpoint.num_classes,
        prototypes_per_class=counts,
        activation="pipnet",
        epsilon=0.0,
        input_size=(input_size, input_size),
        mean=spec.mean,
        std=spec.std,
        sources="none",
        sources_detail=PIPNET_SOURCES,
        check_images=check_images,
        notes=checkpoint.notes,
        **checks,
    )


__all__ = [
    "FORMATS",
    "IMPORTERS",
    "NEAREST",
    "PUSH",
    "UNKNOWN",
    "ImportReport",
    "detect_format",
    "import_checkpoint",
]
