"""Per-image prototype activations: similarity maps at input size, boxes, best cells, rankings.

Everything here is computed from one :class:`~explorer.types.ModelOutput` row and the last layer, so it
is exact with respect to the model: ``contributions[c].sum() == logits[c]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.analysis.evidence import contributions, top_contributors
from explorer.boxes import high_activation_box, upsample_map
from explorer.types import ModelOutput

RANKINGS = ("similarity", "contribution")


@dataclass(frozen=True)
class ImageActivations:
    """One image's prototype activations.

    Attributes:
        scores: ``[P]`` prototype similarity at the nearest cell.
        similarity_maps: ``[P, h, w]`` similarity at every feature cell.
        logits: ``[C]``.
        probabilities: ``[C]`` softmax of the logits.
        contributions: ``[C, P]`` ``W[c, j] * s_j`` (rows sum to the logits).
        prototype_classes: ``[P]`` class of each prototype.
        input_size: ``(H, W)`` of the model input (maps are upsampled to it).
        presence_threshold: the family's (PIP-Net: scores below 0.1 are zero), or ``None``.
    """

    scores: np.ndarray
    similarity_maps: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    contributions: np.ndarray
    prototype_classes: np.ndarray
    input_size: tuple[int, int]
    presence_threshold: float | None = None

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
) -> ImageActivations:
    """Plain-data activations of image ``index`` of a batch output.

    Args:
        output: the model's forward output.
        weight: ``[C, P]`` last-layer weights.
        prototype_classes: ``[P]`` class of each prototype.
        input_size: ``(H, W)`` the model input size.
        index: which image of the batch.
        presence_threshold: the model's (``model.presence_threshold``).
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
    )
