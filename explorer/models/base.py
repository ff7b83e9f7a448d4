"""The small contract every prototype model in the explorer satisfies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from explorer.spec import ModelSpec
from explorer.types import ModelOutput


@runtime_checkable
class PrototypeModel(Protocol):
    """A classifier that scores images by their similarity to learned prototypes.

    Analyses only use this contract, so other prototype networks (ProtoTree, PIP-Net, ...) can be added
    as adapters without touching them.
    """

    spec: ModelSpec

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Turns RGB uint8 images ``[H, W, 3]`` into a normalised batch ``[B, C, H, W]``."""
        ...

    def __call__(self, x: torch.Tensor) -> ModelOutput:
        """Runs the network on a preprocessed batch."""
        ...

    @property
    def prototype_class_identity(self) -> torch.Tensor:
        """``[P, C]`` one-hot: prototype ``j`` belongs to class ``c``."""
        ...

    @property
    def last_layer_weight(self) -> torch.Tensor:
        """``[C, P]`` the weights that turn prototype scores into logits."""
        ...

    @property
    def feature_layer(self) -> nn.Module:
        """The module whose output is the backbone's feature map (Grad-CAM's layer)."""
        ...
