"""Recognising the original ProtoPNet layouts from tensor names and shapes.

Backbones (keys relative to the backbone, as in the original ``features.*`` or CaBRNet's
``extractor.convnet.*``, both torchvision's own names):

* ResNet: ``conv1``, ``layer{1..4}.{block}.conv{1,2[,3]}``; three convs per block is ``Bottleneck``;
  the block counts give the depth (ResNet-18/34/50/101/152, other counts as ``layers``).
* VGG: ``features.{i}.weight`` of 3x3 convs, with ``features.{i+1}.running_mean`` when it has BN; the
  gaps between conv indices place the max-pools (the configuration ``cfg``, matched to VGG-11/13/16/19).
* DenseNet: ``features.conv0`` and ``features.denseblock{b}.denselayer{l}``; growth rate, block sizes,
  initial features and bottleneck size from the shapes (DenseNet-121/161/169/201, others as options).

Add-on (original ``add_on_layers.*``): convs at indices ``4k`` and ``4k + 2``, one stage per pair
(the "bottleneck" variant halves the width stage by stage, the "shallow" one has one stage).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch

from explorer.errors import CheckpointError
from explorer.models.backbones import DENSENET_LAYOUTS

RESNET_DEPTHS = {
    ("basic", (2, 2, 2, 2)): "resnet18",
    ("basic", (3, 4, 6, 3)): "resnet34",
    ("bottleneck", (3, 4, 6, 3)): "resnet50",
    ("bottleneck", (3, 4, 23, 3)): "resnet101",
    ("bottleneck", (3, 8, 36, 3)): "resnet152",
}
VGG_CFGS = {  # the original code's (and torchvision's) configurations
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}  # fmt: skip


@dataclass(frozen=True)
class Backbone:
    """A recognised backbone: our registry name, its options, and a readable description."""

    name: str
    options: dict[str, Any]
    description: str
    notes: tuple[str, ...] = field(default=())


def _indices(keys: list[str], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := regex.match(k))})


def _resnet(state: dict[str, torch.Tensor], where: str) -> Backbone:
    keys = list(state)
    kind = "bottleneck" if "layer1.0.conv3.weight" in state else "basic"
    layers = []
    for stage in range(1, 5):
        blocks = _indices(keys, rf"^layer{stage}\.(\d+)\.")
        if not blocks or blocks != list(range(len(blocks))):
            raise CheckpointError(f"{where}: ResNet layer{stage} has no blocks numbered 0, 1, ...")
        layers.append(len(blocks))
    if any(re.match(r"^layer5\.", k) for k in keys):
        raise CheckpointError(f"{where}: unknown backbone (a ResNet with a fifth stage)")
    name = RESNET_DEPTHS.get((kind, tuple(layers)))
    block = "Bottleneck" if kind == "bottleneck" else "BasicBlock"
    if name is not None:
        return Backbone(name, {}, f"ResNet-{name.removeprefix('resnet')}")
    base = "resnet50" if kind == "bottleneck" else "resnet18"
    return Backbone(base, {"layers": layers}, f"ResNet ({block}, blocks {layers})")


CONV_KEYS = {"weight", "bias"}
BN_KEYS = {"weight", "bias", "running_mean", "running_var"}


def _vgg(state: dict[str, torch.Tensor], where: str, length: int | None, prefix: str) -> Backbone:
    keys = list(state)
    members: dict[int, set[str]] = {}
    for key in keys:
        match = re.match(r"^features\.(\d+)\.(\w+)$", key)
        if not match:
            raise CheckpointError(f"{where}: unexpected tensor {prefix}{key} in a VGG")
        members.setdefault(int(match.group(1)), set()).add(match.group(2))
    for index, names in sorted(members.items()):
        needed = (
            BN_KEYS if names & {"running_mean", "running_var", "num_batches_tracked"} else CONV_KEYS
        )
        missing = sorted(needed - names)
        if missing:
            raise CheckpointError(
                f"{where}: the VGG's layer {index} is incomplete (missing {prefix}features.{index}."
                f"{missing[0]})"
            )
    convs = [
        i
        for i in _indices(keys, r"^features\.(\d+)\.weight$")
        if state[f"features.{i}.weight"].ndim == 4
    ]
    if not convs:
        raise CheckpointError(f"{where}: unknown backbone (no convolutions under features)")
    bn = f"features.{convs[0] + 1}.running_mean" in state
    group = 3 if bn else 2
    cfg: list[int | str] = ["M"] * convs[0]
    for n, index in enumerate(convs):
        weight = state[f"features.{index}.weight"]
        if weight.shape[2:] != (3, 3):
            raise CheckpointError(
                f"{where}: unknown backbone (VGG convs are 3x3, {prefix}features.{index}.weight "
                f"is {tuple(weight.shape)})"
            )
        if bn != (f"features.{index + 1}.running_mean" in state):
            raise CheckpointError(
                f"{where}: unknown backbone (BatchNorm after some VGG convs only)"
            )
        cfg.append(int(weight.shape[0]))
        following = convs[n + 1] if n + 1 < len(convs) else None
        if following is not None:
            pools = following - index - group
        else:
            pools = (length - index - group) if length is not None else 1
        if pools < 0:
            raise CheckpointError(
                f"{where}: unknown backbone (VGG layers overlap at {prefix}features.{index})"
            )
        cfg += ["M"] * pools
    notes: tuple[str, ...] = ()
    if length is None:
        notes = ("a state dict does not show max-pools after the last VGG conv: assumed one, as "
                 "every configuration of the original code ends with one",)  # fmt: skip
    suffix = "_bn" if bn else ""
    for name, standard in VGG_CFGS.items():
        if cfg == standard:
            return Backbone(name + suffix, {}, f"VGG-{name[3:]}{' with BN' if bn else ''}", notes)
    return Backbone(
        "vgg11" + suffix, {"cfg": cfg}, f"VGG{' with BN' if bn else ''}, cfg {cfg}", notes
    )


def _densenet(state: dict[str, torch.Tensor], where: str) -> Backbone:
    keys = list(state)
    init = int(state["features.conv0.weight"].shape[0])
    blocks = _indices(keys, r"^features\.denseblock(\d+)\.")
    if blocks != list(range(1, len(blocks) + 1)):
        raise CheckpointError(f"{where}: unknown backbone (DenseNet blocks not numbered 1, 2, ...)")
    config = []
    for b in blocks:
        layers = _indices(keys, rf"^features\.denseblock{b}\.denselayer(\d+)\.")
        if layers != list(range(1, len(layers) + 1)):
            raise CheckpointError(f"{where}: DenseNet block {b} has no layers numbered 1, 2, ...")
        config.append(len(layers))
    first = "features.denseblock1.denselayer1"
    growth = int(state[f"{first}.conv2.weight"].shape[0])
    bottleneck = int(state[f"{first}.conv1.weight"].shape[0])
    if bottleneck % growth:
        raise CheckpointError(
            f"{where}: unknown backbone (DenseNet bottleneck not a multiple of growth)"
        )
    bn_size = bottleneck // growth
    for name, (g, standard, i) in DENSENET_LAYOUTS.items():
        if (g, tuple(standard), i, 4) == (growth, tuple(config), init, bn_size):
            return Backbone(name, {}, f"DenseNet-{name.removeprefix('densenet')}")
    options = {"growth_rate": growth, "block_config": config, "num_init_features": init,
               "bn_size": bn_size}  # fmt: skip
    return Backbone(
        "densenet121", options, f"DenseNet (growth {growth}, blocks {config}, init {init})"
    )


def infer_backbone(
    state: dict[str, torch.Tensor], where: str, vgg_length: int | None = None, prefix: str = ""
) -> Backbone:
    """The backbone whose torchvision layout these backbone-relative keys and shapes are.

    Args:
        state: tensors by key relative to the backbone (``conv1.weight``, ``features.0.weight``, ...).
        vgg_length: the number of modules in a VGG's ``features`` Sequential, when known (a pickle).
        prefix: the checkpoint's prefix of these keys, for messages (``features.``).

    Raises:
        CheckpointError: the keys match no ResNet, VGG or DenseNet ("unknown backbone").
    """
    if "conv1.weight" in state and "layer1.0.conv1.weight" in state:
        return _resnet(state, where)
    if (
        "features.conv0.weight" in state
        and "features.denseblock1.denselayer1.conv1.weight" in state
    ):
        return _densenet(state, where)
    if "features.0.weight" in state:
        return _vgg(state, where, vgg_length, prefix)
    shown = ", ".join(prefix + k for k in list(state)[:4]) or "none"
    raise CheckpointError(
        f"{where}: unknown backbone: its tensors ({shown}, ...) match none of ResNet, VGG or DenseNet"
    )


def add_on_widths(state: dict[str, torch.Tensor], where: str) -> tuple[int, ...]:
    """The widths of the original add-on's stages from ``add_on_layers``-relative keys."""
    convs = _indices(list(state), r"^(\d+)\.weight$")
    if not convs or convs != [2 * i for i in range(len(convs))] or len(convs) % 2:
        raise CheckpointError(
            f"{where}: the add-on layers are not the original's (1x1 conv, ReLU, 1x1 conv, ReLU or "
            f"Sigmoid) stages: convs at {convs}"
        )
    widths = []
    for stage in range(len(convs) // 2):
        first, second = state[f"{4 * stage}.weight"], state[f"{4 * stage + 2}.weight"]
        if first.shape[2:] != (1, 1) or second.shape[2:] != (1, 1):
            raise CheckpointError(f"{where}: the add-on convolutions must be 1x1")
        widths.append(int(first.shape[0]))
    return tuple(widths)
