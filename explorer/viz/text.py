"""Plain-language sentences about results."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import plotly.graph_objects as go

from explorer.analysis.activations import ImageActivations
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
    if acts.nothing_present:
        return (
            f"**No prototype is present** in this image: every presence score is below "
            f"{acts.presence_threshold:g}, so the model has no evidence for any class (all "
            f"{len(acts.scores)} prototypes add 0). Read it as *I don't know*, not as "
            f"*{names[predicted]}*, the first of its equal logits."
        )
    parts = [f"Predicted *{names[predicted]}* ({acts.probabilities[predicted]:.2f})."]
    if target != predicted:
        parts.append(f"Evidence shown for *{names[target]}* ({acts.probabilities[target]:.2f}).")
    pieces = []
    for pair in explanation.pairs[:strongest]:
        pieces.append(
            f"the patch at the {position_words(pair.image_box, size)} looks like prototype "
            f"{pair.prototype} (class *{names[pair.prototype_class]}*), {acts.score_name} "
            f"{pair.similarity:.2f} × weight {pair.weight:+.2f} = {pair.contribution:+.2f}"
        )
    if pieces:
        parts.append("The strongest evidence: " + "; ".join(pieces) + ".")
    parts.append(_total_sentence(acts, names[target], target))
    return " ".join(parts)


def _total_sentence(acts: ImageActivations, name: str, target: int) -> str:
    """How the evidence adds up to the explained class's logit (how many prototypes add anything
    and the bias, where the family has them)."""
    logit = acts.logits[target]
    adding = int(np.count_nonzero(acts.contributions[target]))
    bias = "" if acts.bias is None else f" and the bias ({acts.bias_of(target):+.2f})"
    if acts.presence_threshold is None and acts.bias is None:
        return f"All {len(acts.scores)} prototypes together give *{name}* a logit of {logit:.2f}."
    return (
        f"{adding} of the {len(acts.scores)} prototypes add to *{name}* (the others are absent or "
        f"have no weight for it){bias}: a logit of {logit:.2f}."
    )


def _number(value: object) -> str:
    return f"{value:+.3g}" if isinstance(value, numbers.Real) else str(value)


def _plain(value: float) -> str:
    return f"{value:.3g}"


def _intervals(trace: Any, values: list) -> list[tuple[float, float] | None]:
    """Each point's ``(low, high)`` from the trace's visible asymmetric error bars (``None`` where
    it draws none: no bars, or a value that is not a number)."""
    bars = getattr(trace, "error_y", None)
    if getattr(trace, "orientation", None) == "h":
        bars = getattr(trace, "error_x", None)
    plus = getattr(bars, "array", None) if bars is not None and bars.visible else None
    if plus is None:
        return [None] * len(values)
    minus = bars.arrayminus if bars.arrayminus is not None else plus
    return [
        (float(v) - float(m), float(v) + float(p)) if isinstance(v, numbers.Real) else None
        for v, p, m in zip(values, plus, minus, strict=False)
    ]


def describe_figure(figure: go.Figure | None, max_items: int = 12) -> str:
    """A text summary of a plotly chart for people who cannot see it (screen readers, print).

    Bars and lines list their points (bars by size, largest first; at most ``max_items`` each),
    each with its interval where the trace draws error bars (``value [low, high]``); heatmaps give
    their size and value range.
    """
    if figure is None:
        return ""
    title = figure.layout.title.text or "Chart"
    lines = [f"**Text view of the chart** — {title}."]
    for trace in figure.data:
        name = f" *{trace.name}*" if getattr(trace, "name", None) else ""
        if trace.type == "heatmap":
            z = np.asarray(trace.z, dtype=float)
            lines.append(
                f"Heatmap{name}: {z.shape[0]} × {z.shape[1]} values from {np.nanmin(z):.3g} to "
                f"{np.nanmax(z):.3g}."
            )
            continue
        horizontal = getattr(trace, "orientation", None) == "h"
        labels = list(trace.y if horizontal else trace.x) if trace.x is not None else []
        values = list(trace.x if horizontal else trace.y) if trace.y is not None else []
        points = list(zip(labels, values, _intervals(trace, values), strict=False))
        if trace.type == "waterfall" and trace.measure is not None:  # totals are running sums
            running, summed = 0.0, []
            for (label, value, interval), measure in zip(points, trace.measure, strict=False):
                running = running + value if measure != "total" else running
                summed.append((label, running if measure == "total" else value, interval))
            points = summed
        if trace.type == "bar":
            points.sort(key=lambda p: -abs(p[1]) if isinstance(p[1], numbers.Real) else 0)
        shown = ", ".join(
            f"{label}: {_number(value)}" + (f" [{_plain(interval[0])}, {_plain(interval[1])}]"
                                            if interval is not None else "")
            for label, value, interval in points[:max_items]
        )  # fmt: skip
        more = f" (and {len(points) - max_items} more)" if len(points) > max_items else ""
        kind = {"bar": "Bars", "waterfall": "Steps", "scatter": "Points"}.get(trace.type, "Values")
        lines.append(f"{kind}{name}: {shown}{more}.")
    return "\n\n".join(lines)
