"""Plotly figures built from results (no gradio imports)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.analysis.activations import ImageActivations
from explorer.analysis.scoring_sheet import ScoringSheet

POSITIVE = "#1b7837"
NEGATIVE = "#762a83"
TOTAL = "#2166ac"


def _largest_nonzero(values: np.ndarray) -> np.ndarray:
    """Indices of the non-zero values, largest magnitude first (ties by index)."""
    nonzero = np.flatnonzero(values)
    return nonzero[np.argsort(-np.abs(values[nonzero]), kind="stable")]


def _silent_note(values: np.ndarray) -> str:
    """`` (N prototypes add exactly 0)`` for the title of a chart that leaves them out."""
    silent = int(np.count_nonzero(values == 0))
    return f" ({silent} of {len(values)} prototypes add exactly 0)" if silent else ""


def evidence_terms(
    acts: ImageActivations, class_index: int, top: int = 10
) -> tuple[list[str], list[float]]:
    """The contributions to one class as the chart shows them: the ``top`` largest by magnitude, then
    "other N prototypes" as one term, then the last layer's bias where there is one. Contributions
    that are exactly zero (a PIP-Net's absent prototypes and zero weights) are left out. The terms
    sum to the class's logit."""
    row = acts.contributions[class_index]
    order = _largest_nonzero(row)
    shown = order[:top]
    labels = [f"P{j}" for j in shown]
    values = [float(row[j]) for j in shown]
    rest = order[top:]
    if len(rest):
        labels.append(f"other {len(rest)} prototypes")
        values.append(float(row[rest].sum()))
    if acts.bias is not None:
        labels.append("bias")
        values.append(acts.bias_of(class_index))
    return labels, values


def evidence_figure(
    acts: ImageActivations, class_index: int, class_names: tuple[str, ...], top: int = 10
) -> go.Figure:
    """A waterfall from 0 to the class logit: each bar is one prototype's similarity (PIP-Net:
    presence) × weight, the last one the bias where the family has one."""
    labels, values = evidence_terms(acts, class_index, top)
    figure = go.Figure(
        go.Waterfall(
            orientation="h",
            y=[*labels, "logit"],
            x=[*values, 0.0],
            measure=["relative"] * len(values) + ["total"],
            increasing={"marker": {"color": POSITIVE}},
            decreasing={"marker": {"color": NEGATIVE}},
            totals={"marker": {"color": TOTAL}},
            text=[f"{v:+.2f}" for v in values] + [f"{acts.logits[class_index]:.2f}"],
            textposition="outside",
        )
    )
    figure.update_layout(
        title=f"Evidence for {class_names[class_index]}: contributions "
        f"{'' if acts.bias is None else 'and the bias '}sum to the logit"
        f"{_silent_note(acts.contributions[class_index])}",
        yaxis={"autorange": "reversed"},
        xaxis_title=f"{acts.score_name} × weight",
        height=120 + 28 * (len(labels) + 1),
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
        showlegend=False,
    )
    return figure


def comparison_figure(
    acts: ImageActivations, first: int, second: int, class_names: tuple[str, ...], top: int = 10
) -> go.Figure:
    """ "Why this and not that": per prototype, contribution to ``first`` minus to ``second`` (then
    the difference of the biases, where the family has one); all the differences sum to the logit
    gap. The ``top`` largest are drawn; exact zeros are left out (the title counts them)."""
    difference = acts.contributions[first] - acts.contributions[second]
    order = _largest_nonzero(difference)[:top]
    gap = acts.logits[first] - acts.logits[second]
    labels, values = [f"P{j}" for j in order], [float(v) for v in difference[order]]
    if acts.bias is not None:
        labels.append("bias")
        values.append(acts.bias_of(first) - acts.bias_of(second))
    figure = go.Figure(
        go.Bar(
            orientation="h",
            y=labels,
            x=values,
            marker_color=[POSITIVE if v >= 0 else NEGATIVE for v in values],
            text=[f"{v:+.2f}" for v in values],
            textposition="outside",
        )
    )
    figure.update_layout(
        title=f"Why {class_names[first]} and not {class_names[second]} (logit gap {gap:+.2f})"
        f"{_silent_note(difference)}",
        yaxis={"autorange": "reversed"},
        xaxis_title=f"contribution to {class_names[first]} − to {class_names[second]}",
        height=120 + 28 * len(labels),
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
    )
    return figure


def weights_figure(weights: np.ndarray, class_names: tuple[str, ...], prototype: int) -> go.Figure:
    """A prototype's last-layer weights to every class."""
    figure = go.Figure(
        go.Bar(
            x=list(class_names),
            y=weights,
            marker_color=[POSITIVE if w >= 0 else NEGATIVE for w in weights],
        )
    )
    figure.update_layout(
        title=f"Prototype {prototype}: last-layer weight to each class",
        height=260,
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
    )
    return figure


def redundancy_heatmap(
    distances: np.ndarray,
    order: np.ndarray,
    clusters: Sequence[Sequence[int]],
    labels: Sequence[str],
) -> go.Figure:
    """Prototype–prototype combined distance, rows and columns in dendrogram order, each cluster
    outlined (a cluster of a hierarchical cut is contiguous in that order)."""
    order = np.asarray(order)
    ordered = distances[np.ix_(order, order)]
    names = [labels[j] for j in order]
    figure = go.Figure(
        go.Heatmap(
            z=ordered, x=names, y=names, colorscale="Cividis", reversescale=True,
            zmin=0.0, zmax=float(max(ordered.max(), 1e-9)), colorbar={"title": "distance"},
            hovertemplate="%{y} – %{x}: %{z:.3f}<extra></extra>",
        )
    )  # fmt: skip
    position = {int(j): i for i, j in enumerate(order)}
    for members in clusters:
        where = sorted(position[int(j)] for j in members)
        low, high = where[0] - 0.5, where[-1] + 0.5
        figure.add_shape(
            type="rect", x0=low, x1=high, y0=low, y1=high, line={"color": "#d62728", "width": 2}
        )
    side = min(900, 260 + 9 * len(order))
    figure.update_layout(
        title="Prototype distances (dendrogram order; red boxes: redundancy clusters)",
        height=side,
        yaxis={"autorange": "reversed", "showticklabels": len(order) <= 60},
        xaxis={"showticklabels": len(order) <= 60},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


SCORE_LOSS_TITLES = {  # the φ axis, by what the model calls its scores
    "similarity": "similarity lost (log-similarity)",
    "presence": "presence lost (presence score, 0 to 1)",
}


def score_loss_title(score_name: str) -> str:
    """The value axis of a raw φ / Φ chart for a model whose scores are ``score_name``."""
    return SCORE_LOSS_TITLES.get(score_name, f"{score_name} lost")


def attribute_figure(
    names: Sequence[str],
    series: dict[str, np.ndarray],
    title: str,
    not_applicable: Sequence[str] = (),
    y_title: str = "similarity lost (log-similarity)",  # see score_loss_title
    decimals: int = 4,
    intervals: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> go.Figure:
    """Grouped bars, one group per modification (e.g. local φ beside global Φ, or train beside test);
    not-applicable modifications are labelled so. ``intervals``: for some series, ``(low, high)``
    per modification, drawn as error bars (the bootstrap intervals)."""
    labels = [f"{n} (n/a)" if n in not_applicable else n for n in names]
    intervals = intervals or {}
    figure = go.Figure(
        [
            go.Bar(name=name, x=labels, y=np.asarray(values, dtype=float),
                   text=[f"{v:.{decimals}f}" for v in values], textposition="outside",
                   cliponaxis=False, error_y=_error_bars(values, intervals.get(name)))
            for name, values in series.items()
        ]
    )  # fmt: skip
    every = np.concatenate(
        [np.asarray(v, dtype=float).ravel() for v in series.values()]
        + [np.asarray(bound, dtype=float).ravel() for pair in intervals.values() for bound in pair]
        or [[0.0]]
    )
    low, high = min(0.0, float(every.min())), max(0.0, float(every.max()))
    if high > low:  # room for the value labels above (and below) the bars
        pad = 0.15 * (high - low)
        figure.update_yaxes(range=[low - (pad if low < 0 else 0.0), high + pad])
    figure.update_layout(
        title=title,
        barmode="group",
        yaxis_title=y_title,
        height=340,
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
    )
    return figure


def _error_bars(
    values: np.ndarray, interval: tuple[np.ndarray, np.ndarray] | None
) -> dict[str, object] | None:
    """Plotly's asymmetric error bars from an interval around ``values`` (``None``: no bars)."""
    if interval is None:
        return None
    centre = np.asarray(values, dtype=float)
    low, high = (np.asarray(bound, dtype=float) for bound in interval)
    return {
        "type": "data", "symmetric": False, "visible": True,
        "array": np.maximum(high - centre, 0.0).tolist(),
        "arrayminus": np.maximum(centre - low, 0.0).tolist(),
    }  # fmt: skip


def dose_figure(
    curves: dict[str, tuple[tuple[float, ...], np.ndarray]], prototype: int
) -> go.Figure:
    """φ against modification strength, one line per attribute (no-op first, so each starts at 0)."""
    figure = go.Figure()
    for attribute, (strengths, phi) in curves.items():
        figure.add_trace(
            go.Scatter(
                x=list(range(len(strengths))), y=phi, mode="lines+markers", name=attribute,
                text=[f"strength {s:g}" for s in strengths],
                hovertemplate="%{text}: φ = %{y:.4f}<extra>" + attribute + "</extra>",
            )
        )  # fmt: skip
    figure.update_layout(
        title=f"Prototype {prototype}: dose-response on its source image",
        xaxis_title="step (0 = no change … 4 = strongest)",
        yaxis_title="φ",
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
    )
    return figure


def scoring_sheet_figure(sheet: ScoringSheet) -> go.Figure:
    """The scoring sheet as a class × prototype heatmap of the weights, zeros blank, only the
    prototypes that count for some class."""
    used = list(sheet.used)
    values = sheet.weights[:, used]
    figure = go.Figure(
        go.Heatmap(
            z=np.where(values == 0, np.nan, values),
            x=[f"P{j}" for j in used],
            y=[row.class_name for row in sheet.rows],
            colorscale="Greens" if (values >= 0).all() else "RdBu",
            colorbar={"title": "weight"},
            hoverongaps=False,
        )
    )
    figure.update_layout(
        title=f"Scoring sheet: {sheet.nonzero_share:.0%} of the weights non-zero "
        f"({len(used)} prototypes count)",
        yaxis={"autorange": "reversed"},
        height=160 + 28 * len(sheet.rows),
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
    )
    return figure
