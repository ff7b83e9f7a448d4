"""Text views of charts (accessibility): what a screen reader gets instead of the plot."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go

from explorer.api import Explorer
from explorer.viz.figures import evidence_figure
from explorer.viz.text import describe_figure


def test_evidence_text_lists_the_steps_and_ends_at_the_logit() -> None:
    explorer = Explorer()
    x = explorer.explain(explorer.bundle("synthetic").examples()[0], "synthetic", attribution=None)
    text = describe_figure(evidence_figure(x.activations, x.target_class, x.class_names))
    assert text.startswith("**Text view of the chart** — Evidence for")
    logit = float(x.activations.logits[x.target_class])
    stated = float(re.search(r"logit: ([+-][0-9.e+-]+)\.$", text).group(1))
    assert stated == np.float64(f"{logit:+.3g}")
    strongest = max(x.pairs, key=lambda p: abs(p.contribution)).prototype
    assert f"P{strongest}:" in text


def test_bars_are_listed_largest_first_and_capped() -> None:
    figure = go.Figure(go.Bar(x=list("abcd"), y=[0.1, -3.0, 2.0, 0.5], name="φ"))
    figure.update_layout(title="Toy")
    text = describe_figure(figure, max_items=3)
    assert "Bars *φ*: b: -3, c: +2, d: +0.5 (and 1 more)." in text
    heat = go.Figure(go.Heatmap(z=[[0.0, 1.0], [1.0, 0.25]]))
    assert "Heatmap: 2 × 2 values from 0 to 1." in describe_figure(heat)
    assert describe_figure(None) == ""


def test_numpy_values_are_rounded_like_python_ones() -> None:
    figure = go.Figure(go.Bar(x=["a", "b"], y=np.array([0.29096365, -0.5], dtype=np.float32)))
    assert "Bars: b: -0.5, a: +0.291." in describe_figure(figure)


def test_error_bars_are_read_out_as_intervals() -> None:
    from explorer.viz.figures import attribute_figure

    names = ["hue", "shape"]
    values = np.array([0.4, -0.1])
    interval = (np.array([0.3, -0.25]), np.array([0.55, 0.0]))
    figure = attribute_figure(
        names, {"Φ test": values}, "Prototype 3", (), intervals={"Φ test": interval}
    )
    text = describe_figure(figure)
    assert "hue: +0.4 [0.3, 0.55], shape: -0.1 [-0.25, 0]" in text
    plain = describe_figure(attribute_figure(names, {"Φ test": values}, "Prototype 3", ()))
    assert "hue: +0.4, shape: -0.1." in plain
