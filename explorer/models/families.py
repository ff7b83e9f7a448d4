"""The network families a model folder can hold, by ``architecture.family`` (one registry, used by
loading, importing and training)."""

from __future__ import annotations

from torch import nn

from explorer.models.pipnet import PIPNet
from explorer.models.protopnet import ProtoPNet
from explorer.spec import ModelSpec

FAMILY_MODELS: dict[str, type[nn.Module]] = {"protopnet": ProtoPNet, "pipnet": PIPNet}
"""``architecture.family`` → the module class that rebuilds it (every one a PrototypeModel)."""


def build_model(spec: ModelSpec, pretrained_backbone: bool = False) -> nn.Module:
    """An untrained network of the spec's family and architecture (weights to be loaded)."""
    return FAMILY_MODELS[spec.architecture.family](spec, pretrained_backbone=pretrained_backbone)


__all__ = ["FAMILY_MODELS", "build_model"]
