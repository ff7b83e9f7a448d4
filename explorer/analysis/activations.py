"""Per-image prototype activations: similarity maps at input size, boxes, best cells, rankings.

Everything here is computed from one :class:`~explorer.types.ModelOutput` row and the last layer, so it
is exact with respect to the model: ``contributions[c].sum() + bias[c] == logits[c]`` (no bias: 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from explorer.analysis.evidence import contributions, top_contributors
from explorer.boxes import high_activation_box, upsample_map
from explorer.types import ModelOutput

if TYPE_CHECKING:
    from explorer.models.base import PrototypeModel

RANKINGS = ("similarity", "contribution")


@dataclass(frozen=True)
class ImageActivations:
    """One image's prototype activations.

    Attributes:
        scores: ``[P]`` prototype similarity at the nearest cell.
        similarity_maps: ``[P, h, w]`` similarity at every feature cell.
        logits: ``[C]``.
        probabilities: ``[C]`` softmax of the logits.
        contributions: ``[C, P]`` ``W[c, j] * s_j`` (rows plus the bias sum to the logits).
        prototype_classes: ``[P]`` class of each prototype.
        input_size: ``(H, W)`` of the model input (maps are upsampled to it).
        presence_threshold: the family's (PIP-Net: scores below 0.1 are zero), or ``None``.
        bias: ``[C]`` the last layer's bias, or ``None`` (ProtoPNet has none).
        score_name: what a score is called (the model's ``score_name``: similarity, presence).
    """

    scores: np.ndarray
    similarity_maps: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    contributions: np.ndarray
    prototype_classes: np.ndarray
    input_size: tuple[int, int]
    presence_threshold: float | None = None
    bias: np.ndarray | None = None
    score_name: str = "similarity"

    def bias_of(self, class_index: int) -> float:
        """The last layer's bias for one class (0 without a bias): the logit no prototype explains."""
        return 0.0 if self.bias is None else float(self.bias[class_index])

    @property
    def nothing_present(self) -> bool:
        """No prototype is present (a family with a presence threshold, every score zero): the
        model has no evidence for any class, and its argmax is no answer."""
        return self.presence_threshold is not None and not np.any(self.scores)

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.logits))

    def best_cell(self, prototype: int) -> tuple[int, int]:
        """``(row, col)`` of the cell where the prototype matches best (first on ties)."""
        cell_map = self.similarity_maps[prototype]
        row, col = np.unravel_index(int(np.argmax(cell_map)), cell_map.shape)
        return int(row), int(col)

    def upsampled(self, prototype: int) -> np.ndarray:
        """``[H, W]`` the prototype's similarity map upsampled bicubically to the input size."""
        return upsample_map(self.similarity_maps[prototype], self.input_size)

    def box(self, prototype: int) -> tuple[int, int, int, int]:
        """The 95th-percentile box ``(y0, y1, x0, x1)`` of the prototype on this image (input pixels)."""
        return high_activation_box(self.upsampled(prototype))

    def top(self, k: int, by: str = "similarity", class_index: int | None = None) -> np.ndarray:
        """The ``k`` prototypes ranked by similarity, or by contribution to ``class_index``
        (the predicted class when ``None``), largest first."""
        if by not in RANKINGS:
            raise ValueError(f"rank by one of {RANKINGS}, not {by!r}")
        if by == "similarity":
            return top_contributors(self.scores, k)
        target = self.predicted if class_index is None else class_index
        if not 0 <= target < len(self.logits):
            raise ValueError(f"class index {target} is out of range (0..{len(self.logits) - 1})")
        return top_contributors(self.contributions[target], k)


def image_activations(
    output: ModelOutput,
    weight: np.ndarray,
    prototype_classes: np.ndarray,
    input_size: tuple[int, int],
    index: int = 0,
    presence_threshold: float | None = None,
    bias: np.ndarray | None = None,
    score_name: str = "similarity",
) -> ImageActivations:
    """Plain-data activations of image ``index`` of a batch output.

    Args:
        output: the model's forward output.
        weight: ``[C, P]`` last-layer weights.
        prototype_classes: ``[P]`` class of each prototype.
        input_size: ``(H, W)`` the model input size.
        index: which image of the batch.
        presence_threshold: the model's (``model.presence_threshold``).
        bias: ``[C]`` the last layer's bias (``model.class_bias``), or ``None``.
        score_name: the model's ``score_name``.
    """
    scores = output.scores[index].detach().cpu().numpy()
    logits = output.logits[index].detach().cpu().double().numpy()
    shifted = np.exp(logits - logits.max())
    maps = output.similarity_maps[index].detach().cpu().numpy()
    return ImageActivations(
        scores=scores,
        similarity_maps=maps,
        logits=logits,
        probabilities=shifted / shifted.sum(),
        contributions=contributions(scores, weight),
        prototype_classes=np.asarray(prototype_classes),
        input_size=input_size,
        presence_threshold=presence_threshold,
        bias=None if bias is None else np.asarray(bias, dtype=np.float64),
        score_name=score_name,
    )


def model_activations(
    model: PrototypeModel, output: ModelOutput, input_size: tuple[int, int],
    weight: np.ndarray | None = None, index: int = 0,
) -> ImageActivations:  # fmt: skip
    """:func:`image_activations` with the model's own last layer (or ``weight`` in its place, the
    what-if model's), presence threshold and bias."""
    bias = model.class_bias
    return image_activations(
        output,
        model.class_weights.detach().cpu().numpy() if weight is None else weight,
        model.prototype_classes,
        input_size,
        index=index,
        presence_threshold=model.presence_threshold,
        bias=None if bias is None else bias.detach().cpu().numpy(),
        score_name=model.score_name,
    )
