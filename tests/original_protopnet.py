"""Checkpoints in the original ProtoPNet's and CaBRNet's formats, made inside the tests.

The classes below carry the original code's module and class names (``model.PPNet``,
``resnet_features.ResNet_features``, ``vgg_features.VGG_features``, ``densenet_features.DenseNet_features``,
...) and its attribute layout (``features``, ``add_on_layers``, ``prototype_vectors``, ``ones``,
``last_layer``, ``prototype_class_identity``, ``img_size``, ``prototype_activation_function``, ``epsilon``,
``proto_layer_rf_info``), written here from the published description, not copied. Their modules exist in
``sys.modules`` only while a checkpoint is saved (:func:`original_modules`), so an import can never resolve
a class from them.

Entry points for other test suites:

* :func:`make_original_checkpoint` ``(kind, folder) -> Path`` for :data:`KINDS` (whole pickles, a state
  dict, CaBRNet folders);
* :func:`import_options` ``(kind)``: the extra arguments ``import_checkpoint`` needs for that kind;
* :func:`make_original` ``(kind, folder)``: the path, the in-memory network and those arguments;
* :func:`original_outputs` ``(network, x)``: the network's own logits, min distances and scores.
"""

from __future__ import annotations

import contextlib
import sys
import types
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from torch import nn

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


# --- resnet_features -------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    __module__ = "resnet_features"
    expansion = 1
    num_layers = 2

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    __module__ = "resnet_features"
    expansion = 4
    num_layers = 3

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet_features(nn.Module):
    __module__ = "resnet_features"

    def __init__(self, block: type[nn.Module], layers: list[int]):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.kernel_sizes, self.strides, self.paddings = [7, 3], [2, 2], [3, 1]
        self.block = block  # the class itself, as the original keeps it
        self.layers = layers
        for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            setattr(
                self, f"layer{stage + 1}", self._stage(block, planes, count, 1 if stage == 0 else 2)
            )

    def _stage(self, block: Any, planes: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        blocks = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes) for _ in range(1, count)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def __repr__(self) -> str:
        return "resnet_features"


# --- vgg_features ----------------------------------------------------------------------------------
class VGG_features(nn.Module):
    __module__ = "vgg_features"

    def __init__(self, cfg: list, batch_norm: bool = False):
        super().__init__()
        self.batch_norm = batch_norm
        self.kernel_sizes, self.strides, self.paddings = [], [], []
        layers: list[nn.Module] = []
        channels = 3
        self.n_layers = 0
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(nn.Conv2d(channels, v, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(v))
                layers.append(nn.ReLU(inplace=True))
                channels = v
                self.n_layers += 1
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def __repr__(self) -> str:
        return "VGG"


# --- densenet_features -----------------------------------------------------------------------------
class _DenseLayer(nn.Sequential):
    __module__ = "densenet_features"

    def __init__(self, inputs: int, growth: int, bn_size: int, drop_rate: float):
        super().__init__()
        self.add_module("norm1", nn.BatchNorm2d(inputs))
        self.add_module("relu1", nn.ReLU(inplace=True))
        self.add_module("conv1", nn.Conv2d(inputs, bn_size * growth, 1, bias=False))
        self.add_module("norm2", nn.BatchNorm2d(bn_size * growth))
        self.add_module("relu2", nn.ReLU(inplace=True))
        self.add_module("conv2", nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False))
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, super().forward(x)], 1)


class _DenseBlock(nn.Sequential):
    __module__ = "densenet_features"

    def __init__(self, num_layers: int, inputs: int, bn_size: int, growth: int, drop_rate: float):
        super().__init__()
        for i in range(num_layers):
            self.add_module(
                f"denselayer{i + 1}", _DenseLayer(inputs + i * growth, growth, bn_size, drop_rate)
            )
        self.num_layers = 2 * num_layers


class _Transition(nn.Sequential):
    __module__ = "densenet_features"

    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(inputs))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(inputs, outputs, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet_features(nn.Module):
    __module__ = "densenet_features"

    def __init__(self, growth_rate: int, block_config: tuple, num_init_features: int, bn_size: int):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv0=nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False),
                norm0=nn.BatchNorm2d(num_init_features),
                relu0=nn.ReLU(inplace=True),
                pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        )
        channels = num_init_features
        for i, count in enumerate(block_config):
            self.features.add_module(
                f"denseblock{i + 1}", _DenseBlock(count, channels, bn_size, growth_rate, 0)
            )
            channels += count * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.features.add_module("final_relu", nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def __repr__(self) -> str:
        return "densenet_features"


# --- model -----------------------------------------------------------------------------------------
class PPNet(nn.Module):
    __module__ = "model"

    def __init__(
        self,
        features: nn.Module,
        img_size: int,
        prototype_shape: tuple[int, int, int, int],
        num_classes: int,
        prototype_activation_function: str = "log",
        add_on_layers_type: str = "bottleneck",
    ):
        super().__init__()
        self.img_size = img_size
        self.prototype_shape = prototype_shape
        self.num_prototypes = prototype_shape[0]
        self.num_classes = num_classes
        self.epsilon = 1e-4
        self.prototype_activation_function = prototype_activation_function
        per_class = self.num_prototypes // num_classes
        self.prototype_class_identity = torch.zeros(self.num_prototypes, num_classes)
        for j in range(self.num_prototypes):
            self.prototype_class_identity[j, j // per_class] = 1
        self.proto_layer_rf_info = [7, 32, 435, 16.0]
        self.features = features
        if isinstance(features, DenseNet_features):
            channels = [m for m in features.modules() if isinstance(m, nn.BatchNorm2d)][
                -1
            ].num_features
        else:
            channels = [m for m in features.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        depth = prototype_shape[1]
        layers: list[nn.Module] = []
        if add_on_layers_type == "bottleneck":
            while channels > depth or not layers:
                width = max(depth, channels // 2)
                layers += [nn.Conv2d(channels, width, 1), nn.ReLU(), nn.Conv2d(width, width, 1)]
                layers.append(nn.ReLU() if width > depth else nn.Sigmoid())
                channels //= 2
        else:
            layers = [
                nn.Conv2d(channels, depth, 1),
                nn.ReLU(),
                nn.Conv2d(depth, depth, 1),
                nn.Sigmoid(),
            ]
        self.add_on_layers = nn.Sequential(*layers)
        self.prototype_vectors = nn.Parameter(torch.rand(prototype_shape), requires_grad=True)
        self.ones = nn.Parameter(torch.ones(prototype_shape), requires_grad=False)
        self.last_layer = nn.Linear(self.num_prototypes, num_classes, bias=False)
        own = self.prototype_class_identity.t()
        self.last_layer.weight.data.copy_(own - 0.5 * (1 - own))

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.add_on_layers(self.features(x))

    def _l2_convolution(self, x: torch.Tensor) -> torch.Tensor:
        x2 = F.conv2d(x**2, self.ones)
        p2 = (self.prototype_vectors**2).sum(dim=(1, 2, 3)).view(-1, 1, 1)
        xp = F.conv2d(x, self.prototype_vectors)
        return F.relu(x2 + (-2 * xp + p2))

    def distance_2_similarity(self, distances: torch.Tensor) -> torch.Tensor:
        if self.prototype_activation_function == "log":
            return torch.log((distances + 1) / (distances + self.epsilon))
        return -distances

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        distances = self._l2_convolution(self.conv_features(x))
        min_distances = -F.max_pool2d(-distances, kernel_size=distances.shape[2:])
        min_distances = min_distances.view(-1, self.num_prototypes)
        return self.last_layer(self.distance_2_similarity(min_distances)), min_distances

    def prune_prototypes(self, prototypes_to_prune: list[int]) -> None:
        """As the original: keep the rest (in ``set`` order), re-index every per-prototype tensor."""
        keep = list(set(range(self.num_prototypes)) - set(prototypes_to_prune))
        self.prototype_vectors = nn.Parameter(
            self.prototype_vectors.data[keep, ...], requires_grad=True
        )
        self.prototype_shape = list(self.prototype_vectors.size())
        self.num_prototypes = self.prototype_shape[0]
        self.last_layer.in_features = self.num_prototypes
        self.last_layer.out_features = self.num_classes
        self.last_layer.weight.data = self.last_layer.weight.data[:, keep]
        self.ones = nn.Parameter(self.ones.data[keep, ...], requires_grad=False)
        self.prototype_class_identity = self.prototype_class_identity[keep, :]


ORIGINAL_MODULES = {
    "model": [PPNet],
    "resnet_features": [ResNet_features, BasicBlock, Bottleneck],
    "vgg_features": [VGG_features],
    "densenet_features": [DenseNet_features, _DenseBlock, _DenseLayer, _Transition],
}


@contextlib.contextmanager
def original_modules() -> Iterator[None]:
    """The original code's module names exist in ``sys.modules`` only inside this block."""
    clashes = [name for name in ORIGINAL_MODULES if name in sys.modules]
    if clashes:
        raise RuntimeError(
            f"modules {clashes} already exist; cannot stand in for the original code"
        )
    for name, classes in ORIGINAL_MODULES.items():
        module = types.ModuleType(name)
        for cls in classes:
            setattr(module, cls.__name__, cls)
        sys.modules[name] = module
    try:
        yield
    finally:
        for name in ORIGINAL_MODULES:
            sys.modules.pop(name, None)


# --- building and saving ---------------------------------------------------------------------------
def _randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights everywhere, BatchNorm statistics far from the identity, varied last layer."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(
                    torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5
                )
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
            elif isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(1 + 0.2 * torch.randn(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.num_batches_tracked.fill_(100)
        for name, parameter in model.named_parameters():
            if name.endswith("prototype_vectors") or name.endswith("classifier.prototypes"):
                parameter.copy_(torch.rand(parameter.shape, generator=generator))
            if name.endswith("last_layer.weight"):
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


SMALL_VGG = [16, "M", 32, "M", 32, "M"]
KINDS = (
    "resnet", "resnet_bottleneck", "vgg", "densenet", "pruned", "linear", "bottleneck", "legacy",
    "legacy_densenet", "dataparallel", "state_dict", "cabrnet", "cabrnet_legacy",
)  # fmt: skip
PICKLE_KINDS = KINDS[:10]


def build_original(kind: str, seed: int = 0) -> PPNet:
    """An original-layout PPNet of ``kind`` (small widths where the original layout allows)."""
    torch.manual_seed(seed)
    classes, per_class = 3, 3
    if kind in ("resnet", "legacy", "dataparallel"):
        features, size, depth, add_on = ResNet_features(BasicBlock, [1, 1, 1, 1]), 64, 16, "regular"
        per_class = 2
    elif kind == "resnet_bottleneck":
        features, size, depth, add_on = (
            ResNet_features(Bottleneck, [1, 1, 1, 1]),
            32,
            512,
            "bottleneck",
        )
        per_class = 2
    elif kind in ("vgg", "state_dict"):
        features, size, depth, add_on = VGG_features(SMALL_VGG, batch_norm=True), 32, 8, "regular"
    elif kind in ("densenet", "legacy_densenet"):
        features = DenseNet_features(
            growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2
        )
        size, depth, add_on = 32, 8, "regular"
    elif kind in ("pruned", "linear"):
        features, size, depth, add_on = VGG_features(SMALL_VGG), 32, 8, "regular"
    elif kind == "bottleneck":
        features, size, depth, add_on = VGG_features([16, "M", 64, "M"]), 32, 8, "bottleneck"
    else:
        raise ValueError(f"no original kind {kind!r}")
    activation = "linear" if kind == "linear" else "log"
    model = PPNet(features, size, (classes * per_class, depth, 1, 1), classes, activation, add_on)
    _randomise(model, seed)
    if kind == "pruned":
        model.prune_prototypes([1, 4, 5])
    return model


def save_original(model: nn.Module, path: Path, legacy: bool = False) -> Path:
    """``torch.save(model)`` as the original code does (``legacy``: the pre-1.6 non-zip format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with original_modules(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "couldn't retrieve source code" for the legacy format
        torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    return path


# --- CaBRNet ---------------------------------------------------------------------------------------
class _Extractor(nn.Module):
    def __init__(self, convnet: nn.Module, add_on: nn.Module):
        super().__init__()
        self.convnet = convnet
        self.add_on = add_on


class _Similarity(nn.Module):
    def __init__(self, legacy: bool, num_prototypes: int, dim: int):
        super().__init__()
        if legacy:
            self.register_buffer("_summation_kernel", torch.ones(num_prototypes, dim, 1, 1))


class _Classifier(nn.Module):
    def __init__(self, num_classes: int, per_class: int, dim: int, legacy: bool):
        super().__init__()
        num_prototypes = num_classes * per_class
        self.prototypes = nn.Parameter(torch.rand(num_prototypes, dim, 1, 1))
        self.similarity_layer = _Similarity(legacy, num_prototypes, dim)
        identity = torch.zeros(num_prototypes, num_classes)
        for j in range(num_prototypes):
            identity[j, j // per_class] = 1
        self.register_buffer("proto_class_map", identity, persistent=True)
        self.last_layer = nn.Linear(num_prototypes, num_classes, bias=False)
        self.last_layer.weight.data.copy_(identity.t() - 0.5 * (1 - identity.t()))


class CaBRNetProtoPNet(nn.Module):
    """CaBRNet's ProtoPNet module layout (``extractor.convnet`` = torchvision's feature extractor,
    ``extractor.add_on``, ``classifier.prototypes``, ``classifier.proto_class_map``,
    ``classifier.last_layer``, ``classifier.similarity_layer``), with its forward math."""

    def __init__(
        self,
        arch: str,
        add_on: OrderedDict,
        num_classes: int,
        per_class: int,
        dim: int,
        legacy: bool,
    ):
        super().__init__()
        import torchvision.models as tv
        from torchvision.models.feature_extraction import create_feature_extractor

        net = tv.get_model(arch)
        layer = "layer4" if arch.startswith("resnet") else "features"
        self.extractor = _Extractor(
            create_feature_extractor(net, {layer: "convnet"}), nn.Sequential(add_on)
        )
        self.classifier = _Classifier(num_classes, per_class, dim, legacy)
        self.legacy = legacy

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.extractor.add_on(self.extractor.convnet(x)["convnet"])
        prototypes = self.classifier.prototypes
        if self.legacy:
            kernel = self.classifier.similarity_layer._summation_kernel
            distances = F.conv2d(features**2, kernel) + (
                -2 * F.conv2d(features, prototypes)
                + (prototypes**2).sum(dim=(1, 2, 3)).view(-1, 1, 1)
            )
        else:
            n, d, h, w = features.shape
            flat = features.view(n, d, -1).transpose(1, 2)
            distances = (
                (torch.cdist(flat, prototypes.flatten(1)) ** 2).transpose(1, 2).view(n, -1, h, w)
            )
        min_distances = distances.flatten(2).min(dim=2).values
        clamped = torch.relu(min_distances)
        similarities = torch.log((clamped + 1) / (clamped + 1e-4))
        return self.classifier.last_layer(similarities), min_distances


def build_cabrnet(kind: str, seed: int = 0) -> tuple[CaBRNetProtoPNet, dict]:
    """A CaBRNet-layout ProtoPNet and its ``model_arch.yml`` content."""
    torch.manual_seed(seed)
    if kind == "cabrnet":  # resnet18 cut at layer4, one conv + sigmoid, no bias, cdist similarity
        arch, legacy, dim = "resnet18", False, 16
        add_on = OrderedDict(conv1=nn.Conv2d(512, dim, 1, bias=False), sigmoid1=nn.Sigmoid())
        add_on_config = {"init_mode": "XAVIER",
                         "conv1": {"type": "Conv2d", "params": {"out_channels": dim, "kernel_size": 1, "bias": False}},
                         "sigmoid1": {"type": "Sigmoid"}}  # fmt: skip
    elif kind == "cabrnet_legacy":  # vgg11 features, the original's add-on, legacy similarity
        arch, legacy, dim = "vgg11", True, 16
        add_on = OrderedDict(
            conv1=nn.Conv2d(512, dim, 1),
            act1=nn.ReLU(),
            conv2=nn.Conv2d(dim, dim, 1),
            act2=nn.Sigmoid(),
        )
        add_on_config = {"init_mode": "PROTOPNET",
                         "conv1": {"type": "Conv2d", "params": {"out_channels": dim, "kernel_size": 1, "bias": True}},
                         "act1": {"type": "ReLU"},
                         "conv2": {"type": "Conv2d", "params": {"out_channels": dim, "kernel_size": 1, "bias": True}},
                         "act2": {"type": "Sigmoid"}}  # fmt: skip
    else:
        raise ValueError(f"no CaBRNet kind {kind!r}")
    classes, per_class = 3, 2
    model = _randomise(CaBRNetProtoPNet(arch, add_on, classes, per_class, dim, legacy), seed)
    config = {
        "top_arch": {"module": "cabrnet.archs.protopnet.model", "name": "ProtoPNet"},
        "extractor": {"backbone": {"arch": arch, "layer": "layer4" if arch.startswith("resnet") else "features",
                                   "weights": "IMAGENET1K_V1"}, "add_on": add_on_config},
        "similarity": {"name": "LegacyProtoPNetSimilarity" if legacy else "ProtoPNetSimilarity"},
        "classifier": {"module": "cabrnet.archs.protopnet.decision", "name": "ProtoPNetClassifier",
                       "params": {"num_classes": classes, "num_proto_per_class": per_class,
                                  "proto_init_mode": "SHIFTED_NORMAL", "compatibility_mode": legacy}},
    }  # fmt: skip
    return model, config


CABRNET_SIZE = 64


def save_cabrnet(
    model: CaBRNetProtoPNet | dict, config: dict, folder: Path, size: int = CABRNET_SIZE
) -> Path:
    """A CaBRNet checkpoint folder: ``model_arch.yml``, ``model_state.pth`` (the model's state dict,
    as CaBRNet's ``save_checkpoint`` writes it, or a given state), ``dataset.yml``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_arch.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    torch.save(model if isinstance(model, dict) else model.state_dict(), folder / "model_state.pth")
    transform = {"resize": {"type": "Resize", "params": {"size": [size, size]}},
                 "to_tensor": {"type": "ToTensor"},
                 "normalize": {"type": "Normalize", "params": {"mean": list(MEAN), "std": list(STD)}}}  # fmt: skip
    dataset = {split: {"module": "torchvision.datasets", "name": "ImageFolder",
                       "params": {"root": f"data/{split}", "transform": transform}}
               for split in ("train_set", "projection_set", "test_set")}  # fmt: skip
    (folder / "dataset.yml").write_text(yaml.safe_dump(dataset, sort_keys=False))
    return folder


# --- the entry points ------------------------------------------------------------------------------
def import_options(kind: str) -> dict[str, Any]:
    """What ``import_checkpoint`` needs beyond the file for ``kind``."""
    if kind == "state_dict":
        return {"class_identity": "contiguous", "input_size": 32}
    return {}


def make_original(kind: str, folder: Path, seed: int = 0) -> tuple[Path, nn.Module, dict[str, Any]]:
    """Builds and saves a checkpoint of ``kind`` under ``folder``.

    Returns:
        the checkpoint path (a folder for CaBRNet kinds), the in-memory network (eval mode), and the
        extra arguments ``import_checkpoint`` needs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if kind.startswith("cabrnet"):
        model, config = build_cabrnet(kind, seed)
        return save_cabrnet(model, config, folder / kind), model, import_options(kind)
    model = build_original(kind, seed)
    if kind == "state_dict":
        path = folder / "10push0.9000_state.pth"
        torch.save(model.state_dict(), path)
        return path, model, import_options(kind)
    saved: nn.Module = torch.nn.DataParallel(model) if kind == "dataparallel" else model
    path = save_original(
        saved, folder / f"10push0.9000_{kind}.pth", legacy=kind.startswith("legacy")
    )
    return path, model, import_options(kind)


def make_original_checkpoint(kind: str, folder: Path) -> Path:
    """A checkpoint of ``kind`` (one of :data:`KINDS`) saved under ``folder``; returns its path."""
    return make_original(kind, Path(folder))[0]


def input_size(network: nn.Module) -> int:
    return int(network.img_size) if isinstance(network, PPNet) else CABRNET_SIZE


@torch.no_grad()
def original_outputs(
    network: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's own logits, min distances and prototype scores."""
    logits, min_distances = network(x)
    if isinstance(network, PPNet):
        scores = network.distance_2_similarity(min_distances)
    else:
        clamped = torch.relu(min_distances)
        scores = torch.log((clamped + 1) / (clamped + 1e-4))
    return logits, min_distances, scores


# --- data: an ImageFolder and the original push output ---------------------------------------------
def make_image_folder(
    root: Path, classes: tuple[str, ...], per_class: int, size: int, seed: int = 0
) -> Path:
    """``root/{train,test}/<class>/*.png`` of random coloured images (each class a different tint)."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                image = rng.integers(0, 256, (size, size, 3)).astype(np.float64)
                image[..., c % 3] = 0.5 * image[..., c % 3] + 127
                Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


def _crop_box(activation: np.ndarray, percentile: float = 95) -> tuple[int, int, int, int]:
    threshold = np.percentile(activation, percentile)
    rows = np.flatnonzero((activation >= threshold).any(axis=1))
    cols = np.flatnonzero((activation >= threshold).any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


@torch.no_grad()
def push_like_original(
    model: PPNet, images: np.ndarray, labels: np.ndarray, root: Path, epoch: int
) -> Path:
    """What the original ``push_prototypes`` leaves: prototypes replaced by their nearest own-class
    patch; ``img/epoch-N/`` with ``prototype-img-original{j}.png`` (RGBA, as ``plt.imsave`` writes),
    ``prototype-img{j}.png``, ``bb{N}.npy`` and ``bb-receptive_field{N}.npy``. Returns ``epoch-N``."""
    folder = root / "img" / f"epoch-{epoch}"
    folder.mkdir(parents=True, exist_ok=True)
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255
    x = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    double = model.double()
    features = double.conv_features(x)
    distances = double._l2_convolution(features).numpy()
    classes = model.prototype_class_identity.argmax(dim=1).numpy()
    rows, rf_rows = [], []
    size = images.shape[1]
    for j, c in enumerate(classes):
        own = np.flatnonzero(labels == c)
        d = distances[own, j]
        b, r, col = np.unravel_index(np.argmin(d), d.shape)
        index = int(own[b])
        model.prototype_vectors.data[j] = features[index, :, r, col].view(-1, 1, 1)
        image_distances = (
            ((features[index] - features[index, :, r, col].view(-1, 1, 1)) ** 2).sum(0).numpy()
        )
        activation = np.log((image_distances + 1) / (image_distances + model.epsilon))
        upsampled = cv2.resize(
            activation.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
        )
        y0, y1, x0, x1 = _crop_box(upsampled)
        rows.append([index, y0, y1, x0, x1, int(c)])
        rf_rows.append([index, 0, size, 0, size, int(c)])
        rgba = np.concatenate([images[index], np.full((size, size, 1), 255, np.uint8)], axis=2)
        Image.fromarray(rgba).save(folder / f"prototype-img-original{j}.png")
        Image.fromarray(images[index][y0:y1, x0:x1]).save(folder / f"prototype-img{j}.png")
    model.float()
    np.save(folder / f"bb{epoch}.npy", np.asarray(rows))
    np.save(folder / f"bb-receptive_field{epoch}.npy", np.asarray(rf_rows))
    return folder
