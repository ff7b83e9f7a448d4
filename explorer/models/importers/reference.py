"""The original networks' forward math, evaluated functionally from a checkpoint's own tensors.

The import's equality check compares the rebuilt model (torchvision modules, our prototype layer) with
this independent evaluation: every layer is applied with ``torch.nn.functional`` from the checkpoint's
tensors and hyper-parameters, block by block as the original ProtoPNet code defines its forward passes
(``resnet_features``, ``vgg_features``, ``densenet_features``), and the prototype layer as its
``_l2_convolution`` (``F.conv2d`` with the ``ones`` kernel), min-pool as ``-max_pool2d(-d)``, then the
activation and the bias-free last layer (or CaBRNet's similarity layers for a CaBRNet checkpoint).

For a whole-model pickle the layer graph and hyper-parameters are the pickled ones; a state dict has
none, so its graph is read from the rebuilt modules (the tensors are still the checkpoint's).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from explorer.errors import CheckpointError
from explorer.models.importers.safe_pickle import PickledModule

# our (torchvision) classes → the original code's class names, so both graphs read alike
_OUR_NAMES = {
    "BasicBlock": "resnet_features.BasicBlock",
    "Bottleneck": "resnet_features.Bottleneck",
    "_ResNetFeatures": "resnet_features.ResNet_features",
    "_SequentialFeatures": "vgg_features.VGG_features",
    "_DenseBlock": "densenet_features._DenseBlock",
    "_DenseLayer": "densenet_features._DenseLayer",
    "_Transition": "densenet_features._Transition",
}
_SAME_KIND = {"DenseNet_features": "VGG_features"}  # both only run their ``features`` Sequential
_PAIR = ("kernel_size", "stride", "padding", "dilation")
_HYPER: dict[str, tuple[str, ...]] = {
    "Conv2d": ("in_channels", "out_channels", *_PAIR, "groups", "padding_mode"),
    "BatchNorm2d": ("num_features", "eps", "affine", "track_running_stats"),
    "MaxPool2d": (*_PAIR, "ceil_mode"),
    "AvgPool2d": (
        "kernel_size",
        "stride",
        "padding",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
    ),
    "Linear": ("in_features", "out_features"),
}
_DEFAULTS = {"padding_mode": "zeros", "divisor_override": None, "dilation": 1}
_SEQUENTIAL = {"Sequential", "_DenseBlock", "_Transition"}
_ELEMENTWISE = {"ReLU", "Sigmoid", "Dropout", "Identity"}


def tree_from_module(module: nn.Module) -> PickledModule:
    """Our ``nn.Module`` as a :class:`PickledModule`, named like the original code's classes."""
    cls = type(module)
    name = _OUR_NAMES.get(cls.__name__, f"{cls.__module__}.{cls.__name__}")
    skip = {"_parameters", "_buffers", "_modules"}
    return PickledModule(
        class_name=name,
        parameters=dict(module._parameters),
        buffers=dict(module._buffers),
        children={k: tree_from_module(v) for k, v in module._modules.items() if v is not None},
        attributes={k: v for k, v in vars(module).items() if k not in skip},
    )


def kind(node: PickledModule) -> str:
    short = node.short_name
    return _SAME_KIND.get(short, short)


def _hyper(node: PickledModule, key: str) -> Any:
    if key not in node.attributes:
        if key in _DEFAULTS:
            return _DEFAULTS[key]
        raise CheckpointError(f"the pickled {node.short_name} lacks its attribute '{key}'")
    value = node.attributes[key]
    if isinstance(value, list | tuple):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise CheckpointError(
                f"the pickled {node.short_name}'s {key} is not a tuple of integers"
            )
        return tuple(value)
    if value is not None and not isinstance(value, bool | int | float | str):
        raise CheckpointError(f"the pickled {node.short_name}'s {key} is a {type(value).__name__}")
    if key in _PAIR and isinstance(value, int):
        return (value, value)
    return value


def compare_trees(original: PickledModule, ours: PickledModule, path: str, where: str) -> None:
    """Refuses, naming the first difference, unless the two graphs have the same modules of the same
    kinds with the same hyper-parameters (what tensor shapes alone cannot show: strides, paddings,
    pooling, BatchNorm ε, a missing activation)."""
    if kind(original) != kind(ours):
        raise CheckpointError(
            f"{where}: {path or 'the network'} is a {original.short_name} in the checkpoint but the "
            f"rebuilt network has a {ours.short_name} there"
        )
    if list(original.children) != list(ours.children):
        raise CheckpointError(
            f"{where}: {path or 'the network'} holds modules {list(original.children)[:8]} in the "
            f"checkpoint, the rebuilt network {list(ours.children)[:8]}"
        )
    for key in _HYPER.get(kind(original), ()):
        a, b = _hyper(original, key), _hyper(ours, key)
        if a != b:
            raise CheckpointError(
                f"{where}: {path}: {key} is {a!r} in the checkpoint, {b!r} in the rebuilt network"
            )
    if kind(original) in ("Conv2d", "Linear"):
        has_bias = original.parameters.get("bias") is not None
        if has_bias != (ours.parameters.get("bias") is not None):
            raise CheckpointError(f"{where}: {path}: bias present in one network only")
    for name, child in original.children.items():
        compare_trees(child, ours.children[name], f"{path}.{name}" if path else name, where)


def _tensor(
    node: PickledModule, name: str, dtype: torch.dtype, buffer: bool = False
) -> torch.Tensor | None:
    value = (node.buffers if buffer else node.parameters).get(name)
    return None if value is None else value.detach().to(dtype)


def run(node: PickledModule, x: torch.Tensor) -> torch.Tensor:
    """Applies a pickled module to ``x`` functionally, as the original code's forward does (in
    ``x``'s dtype)."""
    k = kind(node)
    dt = x.dtype
    children = list(node.children.values())
    if k in _SEQUENTIAL:
        for child in children:
            x = run(child, x)
        return x
    if k == "VGG_features":
        return run(node.children["features"], x)
    if k == "ResNet_features":
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            x = run(node.children[name], x)
        return x
    if k in ("BasicBlock", "Bottleneck"):
        names = ("conv1", "conv2") if k == "BasicBlock" else ("conv1", "conv2", "conv3")
        out = x
        for i, conv in enumerate(names, start=1):
            out = run(node.children[f"bn{i}"], run(node.children[conv], out))
            if i < len(names):
                out = F.relu(out)
        identity = run(node.children["downsample"], x) if "downsample" in node.children else x
        return F.relu(out + identity)
    if k == "_DenseLayer":
        new = x
        for child in children:
            new = run(child, new)
        return torch.cat([x, new], 1)
    if k == "Conv2d":
        return F.conv2d(
            x, _tensor(node, "weight", dt), _tensor(node, "bias", dt), _hyper(node, "stride"),
            _hyper(node, "padding"), _hyper(node, "dilation"), _hyper(node, "groups"),
        )  # fmt: skip
    if k == "BatchNorm2d":
        return F.batch_norm(
            x, _tensor(node, "running_mean", dt, True), _tensor(node, "running_var", dt, True),
            _tensor(node, "weight", dt), _tensor(node, "bias", dt), False, 0.0, _hyper(node, "eps"),
        )  # fmt: skip
    if k == "MaxPool2d":
        return F.max_pool2d(
            x, _hyper(node, "kernel_size"), _hyper(node, "stride"), _hyper(node, "padding"),
            _hyper(node, "dilation"), _hyper(node, "ceil_mode"),
        )  # fmt: skip
    if k == "AvgPool2d":
        return F.avg_pool2d(
            x, _hyper(node, "kernel_size"), _hyper(node, "stride"), _hyper(node, "padding"),
            _hyper(node, "ceil_mode"), _hyper(node, "count_include_pad"),
            _hyper(node, "divisor_override"),
        )  # fmt: skip
    if k == "ReLU":
        return F.relu(x)
    if k == "Sigmoid":
        return torch.sigmoid(x)
    if k in _ELEMENTWISE:  # Dropout (eval) and Identity
        return x
    raise CheckpointError(f"no reference forward for a {node.class_name}")


def protopnet_head(
    features: torch.Tensor,
    prototypes: torch.Tensor,
    ones: torch.Tensor,
    weight: torch.Tensor,
    activation: str,
    epsilon: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The original ``PPNet.forward`` after ``conv_features``: ``_l2_convolution`` with ``ones``,
    global min-pool, ``distance_2_similarity``, last layer. Returns logits, min distances, scores."""
    x2_patch_sum = F.conv2d(features**2, ones)
    p2 = (prototypes**2).sum(dim=(1, 2, 3)).view(-1, 1, 1)
    xp = F.conv2d(features, prototypes)
    distances = F.relu(x2_patch_sum + (-2 * xp + p2))
    min_distances = -F.max_pool2d(-distances, kernel_size=distances.shape[2:]).flatten(1)
    if activation == "log":
        scores = torch.log((min_distances + 1) / (min_distances + epsilon))
    else:
        scores = -min_distances
    return F.linear(scores, weight), min_distances, scores


def cabrnet_head(
    features: torch.Tensor,
    prototypes: torch.Tensor,
    summation_kernel: torch.Tensor | None,
    weight: torch.Tensor,
    epsilon: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CaBRNet's ``ProtoPNetClassifier.forward``: ``LegacyProtoPNetSimilarity`` (expansion with the
    summation kernel) when the checkpoint has one, else ``ProtoPNetSimilarity`` (``cdist``²); min over
    cells, ``relu``, ``log((d + 1) / (d + ε))``, last layer."""
    if summation_kernel is not None:
        f2 = F.conv2d(features**2, summation_kernel)
        p2 = (prototypes**2).sum(dim=(1, 2, 3)).view(-1, 1, 1)
        distances = f2 + (-2 * F.conv2d(features, prototypes) + p2)
    else:
        n, d, h, w = features.shape
        flat = features.view(n, d, -1).transpose(1, 2)
        distances = (
            (torch.cdist(flat, prototypes.flatten(1)) ** 2).transpose(1, 2).view(n, -1, h, w)
        )
    min_distances = distances.flatten(2).min(dim=2).values
    clamped = torch.relu(min_distances)
    scores = torch.log((clamped + 1) / (clamped + epsilon))
    return F.linear(scores, weight), min_distances, scores
