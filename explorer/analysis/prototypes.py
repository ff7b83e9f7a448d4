"""One prototype seen on its own: source image and box, self-activation, weights, nearest patches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.analysis.nearest import NearestPatches
from explorer.boxes import upsample_map
from explorer.models.checkpoint import ModelBundle
from explorer.types import PrototypeRecord

BY_PUSH = "push"
BY_NEAREST = "nearest training patch"


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
        shown_by: :data:`BY_PUSH` (its push source) or :data:`BY_NEAREST` (a family without push,
            PIP-Net, or an import without sources: its nearest training patch stands in).
        score_name: what the model calls its scores (similarity, presence).
    """

    index: int
    class_index: int
    record: PrototypeRecord
    source: np.ndarray
    self_activation: np.ndarray
    weights: np.ndarray
    nearest: dict[str, NearestPatches]
    shown_by: str = "push"
    score_name: str = "similarity"

    def purity(self, split: str) -> float:
        """Share of its nearest patches in ``split`` that come from its own class."""
        return float((self.nearest[split].labels[self.index] == self.class_index).mean())


@dataclass(frozen=True)
class ShownSource:
    """What stands for a prototype in every picture of it: its push source, or (a family without
    push, PIP-Net, or an import without sources) its nearest training patch.

    Attributes:
        record: source image index, feature cell and box (model-input pixels).
        image: that training image (RGB uint8, model-input size).
        shown_by: :data:`BY_PUSH` or :data:`BY_NEAREST`.
    """

    record: PrototypeRecord
    image: np.ndarray
    shown_by: str


def shown_source(
    bundle: ModelBundle, prototype: int, nearest_train: NearestPatches | None
) -> ShownSource | None:
    """The prototype's :class:`ShownSource`: its push source when the folder stores them, else
    its nearest training patch when ``nearest_train`` is given; ``None`` when neither exists."""
    if bundle.projection:
        return ShownSource(bundle.projection[prototype], bundle.source_image(prototype), BY_PUSH)
    if nearest_train is None:
        return None
    record = PrototypeRecord(
        index=prototype,
        class_index=int(bundle.model.prototype_classes[prototype]),
        source_index=int(nearest_train.images[prototype, 0]),
        cell=(int(nearest_train.cells[prototype, 0, 0]), int(nearest_train.cells[prototype, 0, 1])),
        box=tuple(int(v) for v in nearest_train.boxes[prototype, 0]),  # type: ignore[arg-type]
        source_file="",
    )
    return ShownSource(record, nearest_train.pixels[prototype, 0], BY_NEAREST)


def prototype_view(
    bundle: ModelBundle, prototype: int, nearest: dict[str, NearestPatches] | None = None
) -> PrototypeView:
    """Builds the view of one prototype (one forward pass on its source image).

    A model without push sources (PIP-Net has no push; an import may have none) is shown by its
    nearest training patch, once the nearest-patch pass over the train split is stored.

    Raises:
        ValueError: the prototype is out of range, or the model has no sources and its nearest
            training patches are not computed yet (the message says how to compute them).
    """
    if not 0 <= prototype < bundle.spec.num_prototypes:
        raise ValueError(
            f"prototype {prototype} is out of range (0..{bundle.spec.num_prototypes - 1})"
        )
    model = bundle.model
    nearest = dict(nearest or {})
    shown = shown_source(bundle, prototype, nearest.get("train"))
    if shown is None:
        raise ValueError(
            f"{bundle.spec.model_id} has no push sources ({getattr(model, 'family', 'its family')}"
            " is shown by its nearest training patches): compute them first (Compute nearest "
            "patches, or `python -m explorer analyse`)"
        )
    record, source, shown_by = shown.record, shown.image, shown.shown_by
    with torch.inference_mode():
        maps = model(model.preprocess([source])).similarity_maps[0, prototype].cpu().numpy()
    return PrototypeView(
        index=prototype,
        class_index=int(model.prototype_classes[prototype]),
        record=record,
        source=source,
        self_activation=upsample_map(maps, bundle.spec.input_size),
        weights=model.class_weights[:, prototype].detach().cpu().numpy().copy(),
        nearest=nearest,
        shown_by=shown_by,
        score_name=model.score_name,
    )
