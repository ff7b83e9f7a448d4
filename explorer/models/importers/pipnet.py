"""PIP-Net checkpoints of the public code (github M-Nauta/PIPNet) in our terms, read without running
any code from the file.

The public code saves ``torch.save({"model_state_dict": ..., "optimizer_net_state_dict": ...,
["optimizer_classifier_state_dict": ...]}, path)`` of an ``nn.DataParallel(PIPNet)``, so every key
starts with ``module.`` (a checkpoint saved without DataParallel has none; both are read). It is
opened with ``torch.load(weights_only=True)``: tensors, numbers, strings and containers only, any
other global refused by torch before anything is built.

Key mapping (ours ← public): ``features.tail.X`` ← ``_net.X`` (ConvNeXt's ``features.*``, ResNet's
``conv1``/``layer*``), ``add_on.0.*`` ← ``_add_on.0.*`` (only with ``--num_features``),
``classification.weight`` / ``.bias`` / ``.normalization_multiplier`` ← ``_classification.*``;
``_multiplier`` (the same parameter registered twice) is checked equal and dropped. The optimiser
states are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional

from explorer.errors import CheckpointError
from explorer.models.checkpoint import check_state_fits
from explorer.models.pipnet import PRESENCE_THRESHOLD, PIPNet
from explorer.spec import ArchitectureSpec, ModelSpec

BACKBONES = {"convnext_tiny_26": "convnext_tiny_26", "convnext_tiny_13": "convnext_tiny_13",
             "resnet50": "resnet50_pipnet"}  # fmt: skip
"""The public code's ``--net`` names → our backbones."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREFIXES = {"_net.": "features.tail.", "_add_on.": "add_on.", "_classification.": "classification."}


@dataclass(frozen=True)
class PIPNetCheckpoint:
    """What a public PIP-Net checkpoint holds, mapped to our key names.

    Attributes:
        state: our ``state_dict`` keys → tensors (weights as saved; negative ones are kept here).
        backbone: our backbone name.
        num_classes, num_prototypes: from the last layer's ``[C, P]`` weight.
        bias: whether the last layer has a bias.
        add_on_conv: whether a 1x1 conv precedes the softmax (``--num_features``).
        notes: what was found and changed.
    """

    state: dict[str, torch.Tensor]
    backbone: str
    num_classes: int
    num_prototypes: int
    bias: bool
    add_on_conv: bool
    notes: tuple[str, ...]


def _load(path: Path) -> dict[str, Any]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"{path.name}: not a PIP-Net checkpoint torch can read safely ({first[:200]})"
        ) from None
    if isinstance(data, dict) and "model_state_dict" in data:
        data = data["model_state_dict"]
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    ):
        raise CheckpointError(
            f"{path.name}: expected a dict with 'model_state_dict' (the public code's "
            "torch.save) or a state dict of tensors"
        )
    return data


def read_pipnet(path: Path, backbone: str) -> PIPNetCheckpoint:
    """Reads and maps a public PIP-Net checkpoint.

    Raises:
        CheckpointError: unreadable, an unknown ``backbone``, unexpected keys, NaN weights, or a
            last layer that is not ``[C, P]``.
    """
    if backbone not in BACKBONES:
        raise CheckpointError(
            f"unknown PIP-Net backbone {backbone!r} (known: {', '.join(BACKBONES)})"
        )
    raw = _load(path)
    state: dict[str, torch.Tensor] = {}
    unexpected = []
    multiplier_twin = None
    for key, tensor in raw.items():
        key = key.removeprefix("module.")
        if key == "_multiplier":
            multiplier_twin = tensor
            continue
        prefix = next((p for p in PREFIXES if key.startswith(p)), None)
        if prefix is None:
            unexpected.append(key)
            continue
        state[PREFIXES[prefix] + key.removeprefix(prefix)] = tensor
    if unexpected:
        raise CheckpointError(
            f"{path.name}: not a PIP-Net state (unexpected keys {', '.join(unexpected[:3])})"
        )
    weight = state.get("classification.weight")
    if weight is None or weight.ndim != 2:
        raise CheckpointError(f"{path.name}: no PIP-Net last layer (_classification.weight [C, P])")
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path.name}: tensor '{key}' holds NaN or infinite values")
    notes = []
    multiplier = state.get("classification.normalization_multiplier")
    if multiplier is None:
        state["classification.normalization_multiplier"] = torch.full((1,), 2.0)
        notes.append("no normalization_multiplier stored: the public code's 2 assumed")
    elif multiplier_twin is not None and not torch.equal(multiplier_twin, multiplier):
        raise CheckpointError(
            f"{path.name}: _multiplier and its twin normalization_multiplier differ"
        )
    negative = int((weight < 0).sum())
    if negative:
        notes.append(
            f"{negative} negative class weights set to 0 (the forward's relu already ignores them)"
        )
    return PIPNetCheckpoint(
        state=state,
        backbone=BACKBONES[backbone],
        num_classes=int(weight.shape[0]),
        num_prototypes=int(weight.shape[1]),
        bias="classification.bias" in state,
        add_on_conv="add_on.0.weight" in state,
        notes=tuple(notes),
    )


def pipnet_spec(
    checkpoint: PIPNetCheckpoint,
    model_id: str,
    class_names: tuple[str, ...],
    input_size: int,
    where: str,
) -> ModelSpec:
    """Our spec for a checkpoint: ImageNet normalisation and a square input, as the public code."""
    weight = torch.relu(checkpoint.state["classification.weight"])
    classes = tuple(
        int(c) for c in weight.argmax(dim=0)
    )  # the class each prototype weighs most for
    layout = (f"conv:{checkpoint.num_prototypes}",) if checkpoint.add_on_conv else None
    return ModelSpec(
        model_id=model_id,
        title=f"{model_id} (imported PIP-Net, {checkpoint.backbone})",
        description=f"Imported from {where} (PIP-Net, public code) with `python -m explorer "
        "import --format pipnet`; not trained here.",
        architecture=ArchitectureSpec(
            backbone=checkpoint.backbone,
            prototypes_per_class=1,
            prototype_dim=checkpoint.num_prototypes,
            prototype_classes=classes,
            add_on_layout=layout,
            family="pipnet",
            bias=checkpoint.bias,
        ),
        input_size=(input_size, input_size),
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        class_names=class_names,
    )


def build_pipnet(checkpoint: PIPNetCheckpoint, spec: ModelSpec) -> PIPNet:
    """Our network with the checkpoint's tensors (negative class weights clamped to 0)."""
    try:
        model = PIPNet(spec)
    except ValueError as error:
        raise CheckpointError(f"{error}; is --backbone right?") from None
    expected = model.state_dict()
    state = dict(checkpoint.state)
    state["_class_identity"] = expected["_class_identity"]
    check_state_fits(
        expected, state, f"a PIP-Net on {spec.architecture.backbone}: ", "; is --backbone right?"
    )
    model.load_state_dict(state)
    model.clamp_weights()
    return model.eval()


@torch.no_grad()
def public_logits(checkpoint: PIPNetCheckpoint, model: PIPNet, x: torch.Tensor) -> torch.Tensor:
    """The public code's ``forward(xs, inference=True)`` head, written from the checkpoint's own
    tensors (not our modules): softmax over channels, global max-pool, the 0.1 clamp,
    ``linear(relu(W), b)``. The backbone is ours with the checkpoint's weights."""
    state = checkpoint.state
    dtype = x.dtype
    features = model.features(x)
    if checkpoint.add_on_conv:
        features = functional.conv2d(
            features, state["add_on.0.weight"].to(dtype), state["add_on.0.bias"].to(dtype)
        )
    maps = functional.softmax(features, dim=1)
    pooled = functional.adaptive_max_pool2d(maps, (1, 1)).flatten(1)
    clamped = torch.where(pooled < PRESENCE_THRESHOLD, 0.0, pooled)
    bias = state.get("classification.bias")
    weight = torch.relu(state["classification.weight"].to(dtype))
    return functional.linear(clamped, weight, None if bias is None else bias.to(dtype))


__all__ = [
    "BACKBONES",
    "PIPNetCheckpoint",
    "build_pipnet",
    "pipnet_spec",
    "public_logits",
    "read_pipnet",
]
