"""One prototype seen on its own: source image and box, self-activation, weights, nearest patches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.analysis.nearest import NearestPatches
from explorer.boxes import upsample_map
from explorer.models.checkpoint import ModelBundle
from explorer.types import PrototypeRecord


@dataclass(frozen=True)
class PrototypeView:
    """What the prototype browser's detail view shows.

    Attributes:
        index: prototype index.
        class_index: its class.
        record: its push record (source image, cell, box).
        source: its source image at model-input size.
        self_activation: ``[H, W]`` its similarity map on its own source image (upsampled).
        weights: ``[C]`` its last-layer weights.
        nearest: nearest patches per split that are stored (``train`` / ``test``).
    """

    index: int
    class_index: int
    record: PrototypeRecord
    source: np.ndarray
    self_activation: np.ndarray
    weights: np.ndarray
    nearest: dict[str, NearestPatches]

    def purity(self, split: str) -> float:
        """Share of its nearest patches in ``split`` that come from its own class."""
        return float((self.nearest[split].labels[self.index] == self.class_index).mean())


def prototype_view(
    bundle: ModelBundle, prototype: int, nearest: dict[str, NearestPatches] | None = None
) -> PrototypeView:
    """Builds the view of one prototype (one forward pass on its source image)."""
    if not bundle.projection:
        raise ValueError(f"{bundle.spec.model_id} was never pushed: its prototypes have no source")
    if not 0 <= prototype < bundle.spec.num_prototypes:
        raise ValueError(
            f"prototype {prototype} is out of range (0..{bundle.spec.num_prototypes - 1})"
        )
    model = bundle.model
    source = bundle.source_image(prototype)
    with torch.inference_mode():
        maps = model(model.preprocess([source])).similarity_maps[0, prototype].numpy()
    return PrototypeView(
        index=prototype,
        class_index=int(model.prototype_classes[prototype]),
        record=bundle.projection[prototype],
        source=source,
        self_activation=upsample_map(maps, bundle.spec.input_size),
        weights=model.class_weights[:, prototype].detach().numpy().copy(),
        nearest=dict(nearest or {}),
    )
