"""The Redundancy tab: clusters of prototypes that mean the same, and what removing them costs."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from explorer import DEFAULT_THRESHOLD, Explorer, ExplorerError, RedundancyReport, WhatIf
from explorer.ui.components import BoundedSlider, WholeNumberInput
from explorer.ui.thumbnails import prototype_thumbnail
from explorer.validation import InputError, shown
from explorer.viz.figures import redundancy_heatmap
from explorer.viz.text import describe_figure

CLUSTER_HEADERS = ["cluster", "members", "classes", "within distance", "suggestion", "why"]
CLASS_HEADERS = ["class", "accuracy before", "accuracy after"]


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
    """``"3, 7 12"`` or ``"P3 P7"`` → ``[3, 7, 12]``; anything else is a clear error."""
    out = []
    for token in (text or "").replace(",", " ").split():
        number = token.removeprefix("P").removeprefix("p")
        if not (number.isascii() and number.isdigit()) or not 0 <= int(number) < num_prototypes:
            raise InputError(
                f"{shown(token)} is not a prototype number between 0 and {num_prototypes - 1}"
            )
        out.append(int(number))
    return sorted(set(out))


def build_redundancy_tab(explorer: Explorer, model: gr.Dropdown) -> None:
    gr.Markdown(
        "Prototypes that mean the same thing, by three views — **latent** (distance between "
        "prototype vectors), **behavioural** (correlation of their scores over the test split and "
        "overlap of their nearest test patches), **explanatory** (attribute importance, when "
        "computed) — clustered hierarchically; exact duplicates (same source patch after push) are "
        "always one cluster. The first run needs one pass over the test split (progress bar)."
    )
    with gr.Row():
        threshold = BoundedSlider(
            0.02, 0.6, value=DEFAULT_THRESHOLD, step=0.01, label="Cluster threshold (cut height)"
        )
        find = gr.Button("Find clusters", variant="primary")
    summary = gr.Markdown()
    heatmap = gr.Plot(label="Prototype distances")
    clusters = gr.Dataframe(
        headers=CLUSTER_HEADERS, label="Clusters (text view)", interactive=False
    )
    crops = gr.Gallery(
        label="Cluster members: source patches", columns=8, height=260, object_fit="contain"
    )
    gr.Markdown("### What if")
    with gr.Row():
        disable = gr.Textbox(label="Disable prototypes (e.g. 3, 7, 12)")
        merge = WholeNumberInput(value=0, precision=0, label="…and merge cluster number (0: none)")
        apply = gr.Button("Compute accuracy")
    outcome = gr.Markdown()
    per_class = gr.Dataframe(
        headers=CLASS_HEADERS, label="Per-class test accuracy", interactive=False
    )

    def find_clusters(model_id: str, cut: float, progress=gr.Progress()):  # noqa: B008 (Gradio's pattern)
        try:
            report = explorer.redundancy(
                model_id, threshold=float(cut),
                progress=lambda it: progress.tqdm(it, desc="test-split scores"),
            )  # fmt: skip
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
        text = f"{len(report.clusters)} clusters at threshold {report.threshold:.2f} ({', '.join(f'{v} {w:.2f}' for v, w in report.distances.weights.items())})."
        if report.pruned is not None:
            text += " " + what_if_text(
                report.pruned, f"Pruning as suggested (removes {removed} prototypes)"
            )
        text += "\n\n" + describe_figure(figure) + " The cluster table below lists every cluster."
        return text, figure, cluster_rows(report, names), cluster_crops(explorer, model_id, report)

    def compute_what_if(
        model_id: str, cut: float, disabled_text: str, cluster_number: float | None
    ):
        try:
            disabled = parse_prototypes(disabled_text, explorer.num_prototypes(model_id))
            merges: dict[int, list[int]] = {}
            what = []
            if cluster_number:  # 0 or empty: no merge
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
            if not what:
                raise ValueError("name prototypes to disable or a cluster to merge")
            result = explorer.what_if(model_id, disabled=disabled, merges=merges)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        text = "; ".join(what)
        return what_if_text(result, text[0].upper() + text[1:]), class_rows(
            result, explorer.class_names(model_id)
        )

    find.click(
        find_clusters,
        [model, threshold],
        [summary, heatmap, clusters, crops],
        api_name="redundancy",
    )
    apply.click(
        compute_what_if,
        [model, threshold, disable, merge],
        [outcome, per_class],
        api_name="what_if",
    )
    model.change(
        lambda _: ("", None, None, [], "", None),
        model,
        [summary, heatmap, clusters, crops, outcome, per_class],
        api_name=False,
    )
