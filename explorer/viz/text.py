"""Plain-language sentences about results."""

from __future__ import annotations

from explorer.analysis.explanation import Explanation


def position_words(box: tuple[int, int, int, int], size: tuple[int, int]) -> str:
    """Where a ``(y0, y1, x0, x1)`` box lies in an image: "top left", "centre", "bottom", ..."""
    y0, y1, x0, x1 = box
    cy, cx = (y0 + y1) / 2 / size[0], (x0 + x1) / 2 / size[1]
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else ""
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else ""
    return f"{row} {col}".strip() or "centre"


def explanation_summary(explanation: Explanation, strongest: int = 2) -> str:
    """A short reading: the prediction, then the strongest pieces of evidence with their places.

    Example: "Predicted *defective* (0.91). The strongest evidence: the patch at the top left looks
    like prototype 7 (class *defective*), adding +4.20 to *defective* ..."
    """
    acts = explanation.activations
    names = explanation.class_names
    predicted = acts.predicted
    size = acts.input_size
    target = explanation.target_class
    parts = [f"Predicted *{names[predicted]}* ({acts.probabilities[predicted]:.2f})."]
    if target != predicted:
        parts.append(f"Evidence shown for *{names[target]}* ({acts.probabilities[target]:.2f}).")
    pieces = []
    for pair in explanation.pairs[:strongest]:
        pieces.append(
            f"the patch at the {position_words(pair.image_box, size)} looks like prototype "
            f"{pair.prototype} (class *{names[pair.prototype_class]}*), similarity "
            f"{pair.similarity:.2f} × weight {pair.weight:+.2f} = {pair.contribution:+.2f}"
        )
    if pieces:
        parts.append("The strongest evidence: " + "; ".join(pieces) + ".")
    logit = acts.logits[target]
    parts.append(
        f"All {len(acts.scores)} prototypes together give *{names[target]}* a logit of {logit:.2f}."
    )
    return " ".join(parts)
