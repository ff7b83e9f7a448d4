"""The scoring sheet: the last layer read as a table of points, class by class.

PIP-Net's global explanation (Nauta et al., CVPR 2023) is its sparse, non-negative last layer: for
each class, the prototypes that add to it and how much each adds per unit of presence. The same
reading applies to any prototype model (a ProtoPNet's sheet is dense: every weight is non-zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.models.base import PrototypeModel


@dataclass(frozen=True)
class SheetRow:
    """One class of the sheet: its non-zero weights, largest first, and its bias (0 without)."""

    class_index: int
    class_name: str
    entries: tuple[tuple[int, float], ...]  # (prototype, weight)
    bias: float

    def to_dict(self) -> dict:
        return {
            "class": self.class_name,
            "bias": self.bias,
            "weights": [{"prototype": j, "weight": w} for j, w in self.entries],
        }


@dataclass(frozen=True)
class ScoringSheet:
    """Every class's non-zero weights (``weights`` is the whole ``[C, P]`` layer).

    Attributes:
        nonzero_share: share of the weights that are not zero.
        used: prototypes with a non-zero weight to some class (the others never count).
    """

    model_id: str
    score_name: str
    weights: np.ndarray
    rows: tuple[SheetRow, ...]
    nonzero_share: float
    used: tuple[int, ...]

    def to_dict(self) -> dict:
        return {
            "model": self.model_id,
            "score": self.score_name,
            "nonzero_share": self.nonzero_share,
            "prototypes_used": list(self.used),
            "classes": [row.to_dict() for row in self.rows],
        }

    def markdown(self, per_class: int = 8) -> str:
        """The sheet as text: one line per class with its largest ``per_class`` weights."""
        lines = [
            f"**Scoring sheet**: a class's logit is the sum of {self.score_name} × weight over "
            f"its prototypes (plus its bias). {self.nonzero_share:.1%} of the weights are non-zero; "
            f"{len(self.used)} of {self.weights.shape[1]} prototypes count for some class.",
            "",
        ]
        for row in self.rows:
            shown = ", ".join(f"P{j} × {w:.2f}" for j, w in row.entries[:per_class])
            more = len(row.entries) - per_class
            tail = f", and {more} more" if more > 0 else ""
            bias = f" + bias {row.bias:.2f}" if row.bias else ""
            lines.append(
                f"- *{row.class_name}* ({len(row.entries)}): {shown or 'none'}{tail}{bias}"
            )
        return "\n".join(lines)


def scoring_sheet(
    model: PrototypeModel, model_id: str, class_names: tuple[str, ...]
) -> ScoringSheet:
    """The sheet of a model's last layer (exact: the weights the forward uses)."""
    weights = model.class_weights.detach().double().cpu().numpy().copy()
    bias = model.class_bias
    biases = np.zeros(len(weights)) if bias is None else bias.detach().double().cpu().numpy()
    rows = []
    for c, name in enumerate(class_names):
        order = np.flatnonzero(weights[c])
        order = order[np.argsort(-weights[c][order], kind="stable")]
        entries = tuple((int(j), float(weights[c, j])) for j in order)
        rows.append(SheetRow(c, name, entries, float(biases[c])))
    used = tuple(int(j) for j in np.flatnonzero(np.any(weights != 0, axis=0)))
    return ScoringSheet(
        model_id=model_id,
        score_name=model.score_name,
        weights=weights,
        rows=tuple(rows),
        nonzero_share=float(np.count_nonzero(weights) / weights.size),
        used=used,
    )
