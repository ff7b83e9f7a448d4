"""The Redundancy tab: clusters of prototypes that mean the same, and what removing them costs.

Layout and wiring only; the event functions are in :mod:`explorer.ui.events.redundancy`. With the
test split's scores stored (shipped models carry them), the tab shows the report at the default
threshold at once; otherwise it says what to press, and the first pass shows its progress in the
heatmap's panel.
"""

from __future__ import annotations

import gradio as gr

from explorer import DEFAULT_THRESHOLD, Explorer
from explorer.ui.components import BoundedSlider, WholeNumberInput
from explorer.ui.events import bind
from explorer.ui.events import redundancy as events


def build_redundancy_tab(explorer: Explorer, app: gr.Blocks, model: gr.Dropdown) -> None:
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
    summary = gr.Markdown("Loading the stored report …")
    heatmap = gr.Plot(label="Prototype distances")
    clusters = gr.Dataframe(
        headers=events.CLUSTER_HEADERS, label="Clusters (text view)", interactive=False
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
        headers=events.CLASS_HEADERS, label="Per-class test accuracy", interactive=False
    )

    # The panels first (a first pass shows its progress in them), then the work.
    report = [heatmap, clusters, crops]
    find.click(events.reveal_report, None, report, api_name=False, queue=False).then(
        bind(events.find_clusters, explorer), [model, threshold], [summary, *report],
        api_name="redundancy", show_progress_on=heatmap,
    ).then(bind(events.report_shown, explorer), model, report, api_name=False)  # fmt: skip
    apply.click(events.reveal_table, None, per_class, api_name=False, queue=False).then(
        bind(events.compute_what_if, explorer), [model, threshold, disable, merge],
        [outcome, per_class], api_name="what_if", show_progress_on=per_class,
    ).then(bind(events.table_shown, explorer), model, per_class, api_name=False)  # fmt: skip
    gr.on(
        [app.load, model.change], bind(events.first_view, explorer), model,
        [threshold, summary, heatmap, clusters, crops, outcome, per_class], api_name=False,
    )  # fmt: skip
