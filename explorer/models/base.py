"""The contract every prototype model in the explorer satisfies, and the capabilities a family may lack.

Every analysis, report and view uses only :class:`PrototypeModel`. What a family cannot offer (prototype
vectors for the latent view, a push step, a bias) is a declared :class:`Capability`, checked with
:func:`require`, which raises one clear :class:`MissingCapabilityError` instead of an AttributeError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from explorer.errors import ExplorerError
from explorer.models.device import model_device
from explorer.models.preprocess import preprocess
from explorer.spec import ModelSpec
from explorer.types import ModelOutput


@dataclass(frozen=True)
class Capability:
    """Something an analysis may need that not every family has.

    Attributes:
        name: the identifier families list in ``capabilities``.
        needed_for: what uses it, for the message when it is missing.
    """

    name: str
    needed_for: str


PROTOTYPE_VECTORS = Capability(
    "prototype_vectors", "the latent view (distances between prototypes)"
)
PUSH = Capability("push", "projecting prototypes onto training patches (push)")
DISTANCES = Capability("distances", "squared-distance maps (ProtoPNet's L2 prototype layer)")
INSTEAD = {  # what the explorer shows in place of what a capability would give
    "prototype_vectors": "redundancy is found from co-activation and attribute importance alone",
    "push": "each prototype is shown by its nearest training patches instead of a push source",
    "distances": "scores are read as they are, with no distance view",
}


def not_applicable_line(model: PrototypeModel, capability: Capability) -> str | None:
    """One line for a view that does not apply to ``model`` (``None`` when it does): what is
    missing, why, and what is shown instead."""
    if has(model, capability):
        return None
    family = getattr(model, "family", type(model).__name__)
    return (
        f"Not shown: {capability.needed_for} — a {family} has no "
        f"{capability.name.replace('_', ' ')}; {INSTEAD[capability.name]}."
    )


CAPABILITIES = {c.name: c for c in (PROTOTYPE_VECTORS, PUSH, DISTANCES)}


class MissingCapabilityError(ExplorerError):
    """An analysis needs something this model's family does not have."""


@runtime_checkable
class PrototypeModel(Protocol):
    """A classifier that scores images by their similarity to learned prototypes.

    ``logits = scores @ class_weights.T (+ class_bias)``, so each prototype's contribution to a class is
    ``class_weights[c, j] * scores[j]`` and contributions (plus the bias) sum to the logit.
    """

    spec: ModelSpec
    capabilities: frozenset[str]
    presence_threshold: float | None
    """Scores below it are exactly zero (PIP-Net: 0.1); ``None``: a score is its map's maximum."""
    score_name: str
    """What a prototype's score is called in every text and chart: ``similarity`` (ProtoPNet's
    log-similarity at the nearest cell), ``presence`` (PIP-Net's max-pooled softmax, in [0, 1])."""

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Turns RGB uint8 images ``[H, W, 3]`` into a normalised batch ``[B, C, H, W]`` on the
        model's device (the outputs of ``__call__`` are on it too)."""
        ...

    def __call__(self, x: torch.Tensor) -> ModelOutput:
        """Runs the network on a preprocessed batch: logits, prototype scores, similarity maps."""
        ...

    @property
    def num_prototypes(self) -> int: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def prototype_classes(self) -> np.ndarray:
        """``[P]`` the class index each prototype belongs to."""
        ...

    @property
    def prototype_class_identity(self) -> torch.Tensor:
        """``[P, C]`` one-hot: prototype ``j`` belongs to class ``c``."""
        ...

    @property
    def class_weights(self) -> torch.Tensor:
        """``[C, P]`` the weights that turn prototype scores into logits (the real parameter: editing
        it in place changes the model)."""
        ...

    @property
    def class_bias(self) -> torch.Tensor | None:
        """``[C]`` added to the logits, or ``None``."""
        ...

    @property
    def last_layer_weight(self) -> torch.Tensor:
        """The same tensor as :attr:`class_weights` (older name)."""
        ...

    @property
    def feature_layer(self) -> nn.Module:
        """The module whose output is the backbone's feature map (Grad-CAM's layer)."""
        ...

    def cell_box(self, cell: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int, int, int]:
        """The input pixels ``(y0, y1, x0, x1)`` (upper bounds exclusive) a feature cell covers."""
        ...


class ContractBasics:
    """What every family's module answers the same way, from its ``spec``, its ``_class_identity``
    buffer (``[P, C]`` one-hot), its ``features`` backbone and its :attr:`class_weights`."""

    spec: ModelSpec
    _class_identity: torch.Tensor
    features: nn.Module

    @property
    def prototype_class_identity(self) -> torch.Tensor:
        return self._class_identity

    @property
    def prototype_classes(self) -> np.ndarray:
        """``[P]`` the class index of every prototype."""
        return self._class_identity.argmax(dim=1).cpu().numpy()

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def class_weights(self) -> torch.Tensor:
        raise NotImplementedError

    @property
    def last_layer_weight(self) -> torch.Tensor:
        return self.class_weights

    @property
    def feature_layer(self) -> nn.Module:
        return self.features

    def cell_box(self, cell: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int, int, int]:
        return uniform_cell_box(cell, grid, self.spec.input_size)

    def preprocess(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """The normalised batch, on the device the model's parameters are on."""
        return preprocess(images, self.spec).to(model_device(self))


def has(model: PrototypeModel, capability: Capability) -> bool:
    """Whether a model declares a capability."""
    return capability.name in getattr(model, "capabilities", frozenset())


def require(model: PrototypeModel, capability: Capability) -> None:
    """Raises :class:`MissingCapabilityError` when the model lacks a capability."""
    if not has(model, capability):
        family = getattr(model, "family", type(model).__name__)
        raise MissingCapabilityError(
            f"{model.spec.model_id} ({family}) has no {capability.name.replace('_', ' ')}, "
            f"which {capability.needed_for} needs"
        )


def uniform_cell_box(
    cell: tuple[int, int], grid: tuple[int, int], input_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The share of the input a cell of an evenly spaced ``grid`` covers (``y0, y1, x0, x1``)."""
    (row, col), (rows, cols), (height, width) = cell, grid, input_size
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"cell {cell} is outside the {rows}x{cols} feature grid")
    return (
        row * height // rows,
        (row + 1) * height // rows,
        col * width // cols,
        (col + 1) * width // cols,
    )
