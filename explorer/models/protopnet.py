"""ProtoPNet (Chen et al., 2019) with the original forward math.

backbone → add-on (1x1 conv, ReLU, 1x1 conv, Sigmoid) → prototype layer → bias-free last layer.

* distance per cell: ``d = relu(‖z‖² − 2 z·p + ‖p‖²)`` (squared L2 by expansion, ReLU clamps rounding);
* similarity: ``s = log((d + 1) / (d + 1e-4))``, so ``s(0) = log(1e4)`` (an imported model keeps its own
  ``ε`` or the original code's ``linear`` activation ``s = −d``);
* prototype score: the similarity at the nearest cell (min distance over cells);
* ``logits = scores @ W.T``; contribution of prototype ``j`` to class ``c`` is ``W[c, j] · s_j``.

Ours, documented: the prototype layer computes in float64 and returns float32. The math is unchanged; the
expansion in float32 loses ~1e-5 to cancellation, which near ``d = 0`` moves ``s`` by ~0.05 (``ds/dd ≈ −1e4``),
so a pushed prototype would not score ``log(1e4)`` on its own source patch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from explorer.models.backbones import SplitBackbone, build_backbone
from explorer.models.base import DISTANCES, PROTOTYPE_VECTORS, PUSH, ContractBasics
from explorer.spec import DEFAULT_EPSILON, ModelSpec
from explorer.types import ModelOutput

EPSILON = DEFAULT_EPSILON
OWN_CLASS_WEIGHT = 1.0
OTHER_CLASS_WEIGHT = -0.5


def similarity_from_distance(
    distances: torch.Tensor, activation: str = "log", epsilon: float = EPSILON
) -> torch.Tensor:
    """ProtoPNet's activation: ``log((d + 1) / (d + ε))`` (``log``, the default) or ``−d`` (``linear``)."""
    if activation == "linear":
        return -distances
    return torch.log((distances + 1) / (distances + epsilon))


def squared_distances(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Squared L2 distance of every prototype to every feature cell, by expansion, in float64.

    Args:
        features: ``[B, D, h, w]`` add-on output.
        prototypes: ``[P, D]``.

    Returns:
        float64 ``[B, P, h, w]``, clamped at zero.
    """
    z = features.double()
    p = prototypes.double()
    z_sq = (z * z).sum(dim=1, keepdim=True)  # [B, 1, h, w]
    z_dot_p = torch.einsum("bdhw,pd->bphw", z, p)  # [B, P, h, w]
    p_sq = (p * p).sum(dim=1).view(1, -1, 1, 1)  # [1, P, 1, 1]
    return torch.relu(z_sq - 2 * z_dot_p + p_sq)


def class_identity(num_classes: int, per_class: int) -> torch.Tensor:
    """``[P, C]`` one-hot, prototypes ordered class by class (``j // m`` is the class of ``j``)."""
    classes = torch.arange(num_classes * per_class) // per_class
    return nn.functional.one_hot(classes, num_classes).float()


def add_on_layers(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """ProtoPNet's add-on: per width ``w`` a 1x1 conv to ``w``, ReLU, a 1x1 conv ``w → w``, then ReLU,
    or Sigmoid after the last stage (so features lie in ``[0, 1]``). One stage is the original code's
    "shallow" variant (and ours); several halving stages are its "bottleneck" variant. Module indices
    match the original's ``add_on_layers`` Sequential."""
    layers: list[nn.Module] = []
    channels = in_channels
    for stage, width in enumerate(widths):
        last = stage == len(widths) - 1
        layers += [
            nn.Conv2d(channels, width, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(width, width, kernel_size=1),
            nn.Sigmoid() if last else nn.ReLU(),
        ]
        channels = width
    return nn.Sequential(*layers)


def add_on_from_layout(in_channels: int, layout: Sequence[str]) -> nn.Sequential:
    """An add-on of another layout, layer by layer (see ``ArchitectureSpec.add_on_layout``): ``conv:W``
    (1x1 conv with bias), ``conv:W:nobias``, ``relu``, ``sigmoid``; indices are the layers' positions."""
    layers: list[nn.Module] = []
    channels = in_channels
    for layer in layout:
        if layer.startswith("conv:"):
            _, width, *flags = layer.split(":")
            layers.append(
                nn.Conv2d(channels, int(width), kernel_size=1, bias="nobias" not in flags)
            )
            channels = int(width)
        else:
            layers.append(nn.ReLU() if layer == "relu" else nn.Sigmoid())
    return nn.Sequential(*layers)


class ProtoPNet(ContractBasics, nn.Module):
    """A ProtoPNet built from a :class:`ModelSpec`; satisfies :class:`PrototypeModel`."""

    family = "ProtoPNet"
    capabilities = frozenset({PROTOTYPE_VECTORS.name, PUSH.name, DISTANCES.name})
    presence_threshold = None  # every score is its map's maximum
    score_name = "similarity"

    def __init__(self, spec: ModelSpec, pretrained_backbone: bool = False) -> None:
        super().__init__()
        self.spec = spec
        arch = spec.architecture
        self.features: SplitBackbone = build_backbone(
            arch.backbone, spec.channels, arch.backbone_options, pretrained=pretrained_backbone
        )
        dim = arch.prototype_dim
        if arch.add_on_layout is not None:
            self.add_on = add_on_from_layout(self.features.out_channels, arch.add_on_layout)
        else:
            self.add_on = add_on_layers(self.features.out_channels, arch.add_on_widths or (dim,))
        num_prototypes = spec.num_prototypes
        self.prototype_vectors = nn.Parameter(torch.rand(num_prototypes, dim, 1, 1))
        classes = torch.tensor(spec.prototype_classes, dtype=torch.long)
        self.register_buffer(
            "_class_identity", nn.functional.one_hot(classes, spec.num_classes).float()
        )
        self.last_layer = nn.Linear(num_prototypes, spec.num_classes, bias=False)
        self._initialise()

    def _initialise(self) -> None:
        for module in self.add_on.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        self.reset_last_layer()

    def reset_last_layer(self) -> None:
        """ProtoPNet's initialisation: +1 to the own class, −0.5 to every other class."""
        own = self._class_identity.t()  # [C, P]
        with torch.no_grad():
            self.last_layer.weight.copy_(OWN_CLASS_WEIGHT * own + OTHER_CLASS_WEIGHT * (1 - own))

    # --- the PrototypeModel contract (the rest: ContractBasics) ------------------------------------
    @property
    def num_prototypes(self) -> int:
        return self.prototype_vectors.shape[0]

    @property
    def class_weights(self) -> torch.Tensor:
        return self.last_layer.weight

    @property
    def class_bias(self) -> torch.Tensor | None:
        return None

    def similarity(self, distances: torch.Tensor) -> torch.Tensor:
        """This model's distance → similarity (its spec's activation and ε)."""
        arch = self.spec.architecture
        return similarity_from_distance(distances, arch.activation, arch.epsilon)

    # --- forward ---------------------------------------------------------------------------------
    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, D, h, w]`` the add-on output the prototypes are compared with."""
        return self.add_on(self.features(x))

    def head(self, features: torch.Tensor) -> ModelOutput:
        """Prototype layer and last layer on add-on features ``[B, D, h, w]``.

        Distances are computed in float64; outputs come back in the features' dtype.
        """
        dtype = features.dtype
        prototypes = self.prototype_vectors.flatten(1)  # [P, D]
        distance_maps = squared_distances(features, prototypes)  # [B, P, h, w] float64
        min_distances = distance_maps.flatten(2).amin(dim=2)  # [B, P]
        scores = self.similarity(min_distances).to(dtype)
        return ModelOutput(
            logits=self.last_layer(scores),
            min_distances=min_distances.to(dtype),
            scores=scores,
            similarity_maps=self.similarity(distance_maps).to(dtype),
            distance_maps=distance_maps.to(dtype),
        )

    def forward_from_trunk(self, trunk_output: torch.Tensor) -> ModelOutput:
        """The forward pass from a (cached) trunk output; used by training with a frozen trunk."""
        return self.head(self.add_on(self.features.tail(trunk_output)))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return self.head(self.conv_features(x))
