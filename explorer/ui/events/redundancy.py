"""Event functions of the Redundancy tab: clusters of prototypes that mean the same, and the test
accuracy after disabling or merging some (laid out in ``explorer/ui/tabs/redundancy.py``)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from explorer import DEFAULT_THRESHOLD, Explorer, ExplorerError, RedundancyReport, WhatIf
from explorer.ui.progress import tracked
from explorer.ui.thumbnails import prototype_thumbnail
from explorer.validation import InputError, shown
from explorer.viz.figures import redundancy_heatmap
from explorer.viz.text import describe_figure

CLUSTER_HEADERS = ["cluster", "members", "classes", "within distance", "suggestion", "why"]
CLASS_HEADERS = ["class", "accuracy before", "accuracy after"]
FIRST_PASS = "Test-split prototype scores (one pass over the test split)"


def cluster_rows(report: RedundancyReport, names: tuple[str, ...]) -> list[list[Any]]:
    return [
        [i, ", ".join(f"P{j}" for j in c.members), ", ".join(names[k] for k in c.classes),
         round(c.within_distance, 4), c.suggestion, c.reason]
        for i, c in enumerate(report.clusters, start=1)
    ]  # fmt: skip


def cluster_crops(
    explorer: Explorer, model_id: str, report: RedundancyReport
) -> list[tuple[np.ndarray, str]]:
    if not explorer.has_sources(model_id):
        return []
    labels = explorer.prototype_labels(model_id)
    return [
        (prototype_thumbnail(explorer, model_id, j), f"cluster {i} · {labels[j]}")
        for i, c in enumerate(report.clusters, start=1)
        for j in c.members
    ]


def what_if_text(result: WhatIf, what: str) -> str:
    return (
        f"**{what}**: test accuracy {result.baseline_accuracy:.2%} → **{result.accuracy:.2%}** "
        f"({result.accuracy - result.baseline_accuracy:+.2%}); {result.changed_predictions} test "
        "predictions change. Computed from the stored test-split prototype scores (logits = scores · Wᵀ), "
        "no forward pass."
    )


def class_rows(result: WhatIf, names: tuple[str, ...]) -> list[list[Any]]:
    return [
        [name, round(float(before), 4), round(float(after), 4)]
        for name, before, after in zip(
            names, result.baseline_per_class, result.per_class_accuracy, strict=True
        )
    ]


def parse_prototypes(text: str | None, num_prototypes: int) -> list[int]:
    """``"3, 7 12"`` or ``"P3 P7"`` (typed by the user) → ``[3, 7, 12]``; anything else is a clear
    error."""
    out = []
    for token in (text or "").replace(",", " ").split():
        number = token.removeprefix("P").removeprefix("p")
        if not (number.isascii() and number.isdigit()) or not 0 <= int(number) < num_prototypes:
            raise InputError(
                f"{shown(token)} is not a prototype number between 0 and {num_prototypes - 1}"
            )
        out.append(int(number))
    return sorted(set(out))


def find_clusters(
    explorer: Explorer,
    model_id: str,
    cut: float,
    progress=gr.Progress(),  # noqa: B008 (Gradio's pattern)
) -> tuple[str, Any, list[list[Any]], list[tuple[np.ndarray, str]]]:
    """The report at threshold ``cut`` (API ``/redundancy``): summary, heatmap, cluster table and
    the clusters' source patches; the test split's scores are computed first where not stored."""
    try:
        report = explorer.redundancy(
            model_id, threshold=float(cut), progress=tracked(progress, FIRST_PASS)
        )
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    names = explorer.class_names(model_id)
    figure = redundancy_heatmap(
        report.distances.combined,
        report.order,
        [c.members for c in report.clusters],
        list(explorer.prototype_labels(model_id)),
    )
    removed = sum(len(v) for v in report.plan.values())
    views = ", ".join(f"{v} {w:.2f}" for v, w in report.distances.weights.items())
    text = f"{len(report.clusters)} clusters at threshold {report.threshold:.2f} ({views})."
    latent = explorer.not_applicable(model_id, "prototype_vectors")
    if latent is not None:
        text = f"{latent}\n\n{text}"
    if report.pruned is not None:
        text += " " + what_if_text(
            report.pruned, f"Pruning as suggested (removes {removed} prototypes)"
        )
    text += "\n\n" + describe_figure(figure) + " The cluster table below lists every cluster."
    return text, figure, cluster_rows(report, names), cluster_crops(explorer, model_id, report)


def compute_what_if(
    explorer: Explorer,
    model_id: str,
    cut: float,
    disabled_text: str | None,
    cluster_number: int | None,
    progress=gr.Progress(),  # noqa: B008 (Gradio's pattern)
) -> tuple[str, list[list[Any]]]:
    """Test accuracy with the prototypes named disabled and/or cluster ``cluster_number`` (1-based,
    at threshold ``cut``; 0 or empty for none) merged into one (API ``/what_if``)."""
    try:
        disabled = parse_prototypes(disabled_text, explorer.num_prototypes(model_id))
        if not disabled and not cluster_number:  # 0 or empty: no merge
            raise ValueError("name prototypes to disable or a cluster to merge")
        if not explorer.has_nearest(model_id, "test"):  # the first pass, with its progress
            explorer.nearest(model_id, "test", progress=tracked(progress, FIRST_PASS))
        merges: dict[int, list[int]] = {}
        what = []
        if cluster_number:
            report = explorer.redundancy(model_id, threshold=float(cut))
            if not 1 <= int(cluster_number) <= len(report.clusters):
                raise ValueError(
                    f"there are {len(report.clusters)} clusters: choose 1 to {len(report.clusters)}"
                )
            cluster = report.clusters[int(cluster_number) - 1]
            merges = explorer.prune_plan([cluster], model_id)
            keep = next(iter(merges))
            what.append(f"cluster {int(cluster_number)} merged into P{keep}")
        if disabled:
            what.append("disabled " + ", ".join(f"P{j}" for j in disabled))
        result = explorer.what_if(model_id, disabled=disabled, merges=merges)
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    text = "; ".join(what)
    return what_if_text(result, text[0].upper() + text[1:]), class_rows(
        result, explorer.class_names(model_id)
    )


def reveal_report() -> tuple[dict, dict, dict]:
    """The heatmap, the cluster table and the crops shown, before a first pass that fills them (its
    progress shows in the heatmap's panel)."""
    return gr.update(visible=True), gr.update(visible=True), gr.update(visible=True)


def reveal_table() -> dict:
    """The per-class table shown, before a what-if that may need the first pass."""
    return gr.update(visible=True)


def report_shown(explorer: Explorer, model_id: str) -> tuple[dict, dict, dict]:
    """The heatmap, cluster table and crops shown when the test split's scores are stored (after
    a pass that may have failed: a model without its data set hides them again)."""
    shown = explorer.has_nearest(model_id, "test")
    return gr.update(visible=shown), gr.update(visible=shown), gr.update(visible=shown)


def table_shown(explorer: Explorer, model_id: str) -> dict:
    """The per-class table shown when the test split's scores are stored."""
    return gr.update(visible=explorer.has_nearest(model_id, "test"))


def first_view(explorer: Explorer, model_id: str) -> tuple:
    """What the tab shows at once for a model: with the test split's scores stored, the report at
    the default threshold and the per-class accuracy of the model as trained; without them (a first
    pass is needed), sentences saying what to press, and the panels that would wait hidden.

    Returns:
        threshold, summary, heatmap, cluster table, crops, what-if text, per-class table.
    """
    hidden = gr.update(value=None, visible=False)
    try:
        stored = explorer.has_nearest(model_id, "test")
    except ExplorerError as error:
        return (DEFAULT_THRESHOLD, str(error), hidden, hidden, hidden, "", hidden)
    if not stored:
        return (
            DEFAULT_THRESHOLD,
            f"No clusters yet for *{model_id}*: press **Find clusters**. The first run makes one "
            "pass over the test split (needs the model's data set); its progress shows here. "
            f"`python -m explorer analyse --model {model_id}` stores it ahead.",
            hidden, hidden, hidden,
            "The what-if accuracy needs the same pass: it is made when you press *Compute "
            "accuracy*, if *Find clusters* has not made it.",
            hidden,
        )  # fmt: skip
    try:
        summary, figure, rows, crops = find_clusters(explorer, model_id, DEFAULT_THRESHOLD)
        trained = explorer.what_if(model_id)
    except gr.Error as error:
        return (DEFAULT_THRESHOLD, error.message, hidden, hidden, hidden, "", hidden)
    outcome = (
        f"The model as trained: test accuracy **{trained.baseline_accuracy:.2%}** (the table "
        "shows each class). Name prototypes to disable and/or a cluster to merge, then press "
        "*Compute accuracy*."
    )
    return (
        DEFAULT_THRESHOLD, summary, gr.update(value=figure, visible=True),
        gr.update(value=rows, visible=True), gr.update(value=crops, visible=True), outcome,
        gr.update(value=class_rows(trained, explorer.class_names(model_id)), visible=True),
    )  # fmt: skip
