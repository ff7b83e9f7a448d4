"""PIP-Net (Nauta et al., CVPR 2023, "PIP-Net: Patch-based Intuitive Prototypes for Interpretable
Image Classification") with the public code's forward arithmetic (github M-Nauta/PIPNet,
``pipnet/pipnet.py``):

backbone → add-on (an optional 1x1 conv, then a **softmax over the channels at every cell**, so every
channel is a prototype and each cell votes for one) → **global max-pool** per channel = presence
score in [0, 1] → **non-negative linear layer** ``logits = scores @ relu(W).T (+ bias)``.

At inference (the public code's ``inference=True``, the only forward here) a presence score below
:data:`PRESENCE_THRESHOLD` (0.1) is set to zero before the linear layer, so an image in which no
prototype is present gets no evidence at all: all logits are the bias (zero without one), an honest
"I don't know" (the public code counts it as abstaining). The similarity maps are the softmax maps,
never thresholded; a prototype's score is its map's maximum where that reaches 0.1, else 0.

Contract notes (ours): prototypes belong to no class in PIP-Net; :attr:`prototype_classes` is the
class each prototype weighs most for, fixed in the spec when the model was imported or trained. The
weights are kept non-negative (clamped at import and after every training step, as the public code
clamps them), so ``class_weights`` times the scores is exactly what the forward adds up.
``normalization_multiplier`` (the public code's constant 2, used only in its training loss
``log1p(out ** multiplier)``) is kept as a buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from explorer.models.backbones import SplitBackbone, build_backbone
from explorer.models.base import ContractBasics
from explorer.spec import ModelSpec
from explorer.types import ModelOutput

PRESENCE_THRESHOLD = 0.1
"""Presence scores below this are zero at inference (public code: ``torch.where(pooled < 0.1, 0.,
pooled)``)."""
NORMALIZATION_MULTIPLIER = 2.0
"""The public code's training-loss exponent (``main.py`` sets it to 2 and freezes it)."""


def presence(pooled: torch.Tensor, threshold: float = PRESENCE_THRESHOLD) -> torch.Tensor:
    """Inference presence scores: ``pooled`` where it reaches ``threshold``, else exactly 0."""
    return torch.where(pooled < threshold, torch.zeros_like(pooled), pooled)


class NonNegativeLinear(nn.Module):
    """PIP-Net's last layer: ``x @ relu(W).T (+ b)``; ``W`` is ``[C, P]``.

    Attributes:
        weight: ``[C, P]`` the class weights (kept non-negative).
        bias: ``[C]`` or ``None``.
        normalization_multiplier: buffer ``[1]``, the training loss's exponent.
    """

    def __init__(self, prototypes: int, classes: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, prototypes))
        self.bias = nn.Parameter(torch.zeros(classes)) if bias else None
        self.register_buffer("normalization_multiplier", torch.full((1,), NORMALIZATION_MULTIPLIER))
        nn.init.normal_(self.weight, mean=1.0, std=0.1)  # the public code's fresh initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, torch.relu(self.weight), self.bias)


def add_on(in_channels: int, layout: Sequence[str] | None) -> nn.Sequential:
    """PIP-Net's add-on: ``Softmax(dim=1)``, after a 1x1 conv with bias when ``layout`` is
    ``("conv:N",)`` (the public code's ``--num_features N``; module indices as its ``_add_on``)."""
    layers: list[nn.Module] = []
    if layout:
        width = int(layout[0].split(":")[1])
        layers.append(nn.Conv2d(in_channels, width, kernel_size=1, bias=True))
    layers.append(nn.Softmax(dim=1))
    return nn.Sequential(*layers)


class PIPNet(ContractBasics, nn.Module):
    """A PIP-Net built from a :class:`ModelSpec` (``architecture.family == "pipnet"``); satisfies
    :class:`~explorer.models.base.PrototypeModel`."""

    family = "PIP-Net"
    capabilities: frozenset[str] = frozenset()  # no prototype vectors, no push, no distances
    presence_threshold = PRESENCE_THRESHOLD
    score_name = "presence"

    def __init__(self, spec: ModelSpec, pretrained_backbone: bool = False) -> None:
        super().__init__()
        arch = spec.architecture
        if arch.family != "pipnet":
            raise ValueError(f"{spec.model_id}: architecture family {arch.family!r} is not pipnet")
        self.spec = spec
        self.features: SplitBackbone = build_backbone(
            arch.backbone, spec.channels, arch.backbone_options, pretrained=pretrained_backbone
        )
        layout = arch.add_on_layout
        self.add_on = add_on(self.features.out_channels, layout)
        channels = int(layout[0].split(":")[1]) if layout else self.features.out_channels
        if channels != arch.prototype_dim:
            raise ValueError(
                f"{spec.model_id}: the add-on gives {channels} channels, the spec says "
                f"{arch.prototype_dim} prototypes"
            )
        self.classification = NonNegativeLinear(channels, spec.num_classes, arch.bias)
        classes = torch.tensor(spec.prototype_classes, dtype=torch.long)
        self.register_buffer(
            "_class_identity", nn.functional.one_hot(classes, spec.num_classes).float()
        )

    # --- the PrototypeModel contract (the rest: ContractBasics) ------------------------------------
    @property
    def num_prototypes(self) -> int:
        return self.classification.weight.shape[1]

    @property
    def class_weights(self) -> torch.Tensor:
        return self.classification.weight

    @property
    def class_bias(self) -> torch.Tensor | None:
        return self.classification.bias

    # --- forward ---------------------------------------------------------------------------------
    def prototype_maps(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, P, h, w]`` the softmax over the channels at every cell."""
        return self.add_on(self.features(x))

    def training_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The public code's ``inference=False`` pass: ``(maps, pooled, logits)``, no threshold."""
        maps = self.prototype_maps(x)
        pooled = maps.flatten(2).amax(dim=2)
        return maps, pooled, self.classification(pooled)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        maps = self.prototype_maps(x)
        scores = presence(maps.flatten(2).amax(dim=2))
        return ModelOutput(
            logits=self.classification(scores),
            min_distances=None,
            scores=scores,
            similarity_maps=maps,
            distance_maps=None,
        )

    def clamp_weights(self) -> None:
        """Keeps the class weights (and the bias) non-negative, as the public code does after every
        step (it also shrinks every weight by 1e-3 there; that is a training choice, not this)."""
        with torch.no_grad():
            self.classification.weight.clamp_(min=0.0)
            if self.classification.bias is not None:
                self.classification.bias.clamp_(min=0.0)
