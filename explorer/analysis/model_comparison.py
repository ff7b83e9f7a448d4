"""Two models of one data set side by side: accuracy, prototypes used, evidence per decision and
redundancy found, all from what each model stores (its last layer and its test-split scores)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

EVIDENCE_SHARE = 0.9  # "prototypes needed": the fewest whose contributions reach this share


@dataclass(frozen=True)
class ModelFigures:
    """One model's column of the comparison (test split, the stored per-image scores).

    Attributes:
        family: ProtoPNet, PIP-Net, ...
        recorded_accuracy: the final test accuracy in its spec (whole test split).
        accuracy: on the test images whose scores are stored (``images`` of them).
        prototypes: how many it has; ``used``: those with a non-zero weight to some class.
        nonzero_weights: share of last-layer weights that are not zero.
        adding: mean number of prototypes that add something (> 0) to the predicted class.
        needed: mean fewest prototypes whose contributions reach 90 % of the positive evidence
            for the predicted class.
        clusters: redundancy clusters at the default threshold; ``removable``: prototypes the
            suggested pruning removes; ``pruned_accuracy``: test accuracy after it.
    """

    model_id: str
    family: str
    recorded_accuracy: float | None
    accuracy: float
    images: int
    prototypes: int
    used: int
    nonzero_weights: float
    adding: float
    needed: float
    clusters: int
    removable: int
    pruned_accuracy: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def evidence_per_decision(
    scores: np.ndarray, weights: np.ndarray, bias: np.ndarray | None
) -> tuple[float, float, np.ndarray]:
    """``(adding, needed, predicted)`` over ``scores [N, P]``: the mean number of prototypes
    adding to each image's predicted class, the mean fewest reaching :data:`EVIDENCE_SHARE` of
    that positive evidence, and the predicted classes."""
    logits = scores @ weights.T + (0.0 if bias is None else bias)
    predicted = logits.argmax(axis=1)
    contributions = scores * weights[predicted]  # [N, P] to each image's predicted class
    positive = np.sort(np.clip(contributions, 0, None), axis=1)[:, ::-1]
    adding = (positive > 0).sum(axis=1)
    totals = positive.sum(axis=1, keepdims=True)
    reached = np.cumsum(positive, axis=1) >= EVIDENCE_SHARE * totals - 1e-12
    needed = np.where(totals[:, 0] > 0, reached.argmax(axis=1) + 1, 0)
    return float(adding.mean()), float(needed.mean()), predicted


def comparison_markdown(columns: list[ModelFigures]) -> str:
    """The comparison as a Markdown table, one column per model."""
    rows = [
        ("family", lambda m: m.family),
        ("test accuracy (recorded, whole split)", lambda m: _pct(m.recorded_accuracy)),
        ("test accuracy (stored scores)", lambda m: f"{_pct(m.accuracy)} of {m.images}"),
        ("prototypes used / in all", lambda m: f"{m.used} / {m.prototypes}"),
        ("non-zero weights", lambda m: _pct(m.nonzero_weights)),
        ("prototypes adding to the decision (mean)", lambda m: f"{m.adding:.2f}"),
        (f"prototypes for {EVIDENCE_SHARE:.0%} of it (mean)", lambda m: f"{m.needed:.2f}"),
        ("redundancy clusters (default threshold)", lambda m: str(m.clusters)),
        (
            "prototypes pruning removes → accuracy",
            lambda m: f"{m.removable} → {_pct(m.pruned_accuracy)}",
        ),
    ]
    head = "| | " + " | ".join(f"`{m.model_id}`" for m in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    lines += [
        "| " + name + " | " + " | ".join(get(m) for m in columns) + " |" for name, get in rows
    ]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
