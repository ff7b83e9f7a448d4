"""Plain result types shared by the library, the CLI and the UI (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: importing these types needs no torch
    import torch


@dataclass(frozen=True)
class ModelOutput:
    """What a prototype model's forward pass returns.

    Attributes:
        logits: ``[B, C]`` class scores, ``logits = scores @ W.T (+ bias)``.
        min_distances: ``[B, P]`` each prototype's smallest squared L2 distance over the feature cells
            (``None`` for a family without distances).
        scores: ``[B, P]`` each prototype's score: for ProtoPNet its similarity
            ``log((d + 1) / (d + 1e-4))`` at its nearest cell, the maximum of its map.
        similarity_maps: ``[B, P, h, w]`` the similarity at every feature cell.
        distance_maps: ``[B, P, h, w]`` the squared L2 distance at every feature cell (or ``None``).
    """

    logits: torch.Tensor
    min_distances: torch.Tensor | None
    scores: torch.Tensor
    similarity_maps: torch.Tensor
    distance_maps: torch.Tensor | None = None


@dataclass(frozen=True)
class PrototypeRecord:
    """Where a prototype was projected during push.

    Attributes:
        index: prototype index ``j``.
        class_index: the class the prototype belongs to.
        source_index: index of its source image in the training split.
        cell: ``(row, col)`` of the feature cell it was projected onto.
        box: ``(y0, y1, x0, x1)`` 95th-percentile box in model-input pixels (ProtoPNet's crop convention:
            upper bounds exclusive).
        source_file: file name of the stored source image inside the model folder.
    """

    index: int
    class_index: int
    source_index: int
    cell: tuple[int, int]
    box: tuple[int, int, int, int]
    source_file: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrototypeRecord:
        return cls(
            index=int(data["index"]),
            class_index=int(data["class_index"]),
            source_index=int(data["source_index"]),
            cell=(int(data["cell"][0]), int(data["cell"][1])),
            box=tuple(int(v) for v in data["box"]),  # type: ignore[arg-type]
            source_file=str(data["source_file"]),
        )


@dataclass(frozen=True)
class PrototypeEvidence:
    """One prototype's part in a prediction."""

    prototype: int
    prototype_class: str
    similarity: float
    weight: float
    contribution: float
    cell: tuple[int, int]


@dataclass(frozen=True)
class Prediction:
    """A model's answer for one image, with the prototypes that drove it.

    ``contributions`` to the predicted class (similarity x weight) sum to its logit (minus the
    bias, where the family has one). ``nothing_present``: no prototype is present (PIP-Net: every
    presence score below 0.1), so the model gives no evidence for any class and ``predicted`` is
    only the first of equal logits — an "I don't know".
    """

    model_id: str
    content_hash: str
    class_names: tuple[str, ...]
    probabilities: tuple[float, ...]
    logits: tuple[float, ...]
    predicted: int
    top_prototypes: tuple[PrototypeEvidence, ...] = field(default=())
    nothing_present: bool = False

    @property
    def predicted_class(self) -> str:
        return self.class_names[self.predicted]

    @property
    def confidence(self) -> float:
        return self.probabilities[self.predicted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "content_hash": self.content_hash,
            "predicted_class": self.predicted_class,
            "confidence": self.confidence,
            "probabilities": dict(zip(self.class_names, self.probabilities, strict=True)),
            "logits": dict(zip(self.class_names, self.logits, strict=True)),
            "top_prototypes": [asdict(p) for p in self.top_prototypes],
            "nothing_present": self.nothing_present,
        }
