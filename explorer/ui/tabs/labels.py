"""Labelling prototypes: verdict controls (Prototypes and Explain tabs) and the Labels tab.

Layout and wiring only; the event functions are in :mod:`explorer.ui.events.labels`. The Labels tab
opens on the review queue (which prototypes to look at first: shown at once when its measurements
are stored, else ranked at the press of a button, with progress), then shows the current labels and
the history of prototype 0 at once, and all of them again whenever it is opened (labels may have
been added in the other tabs meanwhile).
"""

from __future__ import annotations

from typing import NamedTuple

import gradio as gr

from explorer import REASONS, VERDICTS, Explorer
from explorer.ui.components import UploadedFile, WholeNumberInput
from explorer.ui.events import bind, retrain
from explorer.ui.events import labels as events
from explorer.ui.events.labels import PrototypeOf

SHORTCUTS = {"valid": "v", "misleading": "m", "unsure": "u", "redundant": "r"}

# Keyboard review: v / m / u / r label the prototype on screen, n / p move to the next / previous one.
# Keys typed into text fields are left alone.
SHORTCUT_JS = """
<script>
document.addEventListener('keydown', (event) => {
  const target = event.target;
  const tag = (target.tagName || '').toLowerCase();
  if (tag === 'input' || tag === 'textarea' || target.isContentEditable) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const classes = {v: 'label-valid', m: 'label-misleading', u: 'label-unsure', r: 'label-redundant',
                   n: 'prototype-next', p: 'prototype-previous'};
  const name = classes[event.key];
  if (!name) return;
  const visible = [...document.querySelectorAll('.' + name)].find((el) => el.offsetParent !== null);
  if (visible) { event.preventDefault(); visible.click(); }
});
</script>
"""


class LabelControls(NamedTuple):
    """What :func:`build_label_controls` made that others follow: the status line, and the events
    of the verdict and undo buttons (to chain what a label changes)."""

    status: gr.Markdown
    changes: list[gr.events.Dependency]


def build_label_controls(
    explorer: Explorer,
    model: gr.Dropdown,
    prototype_of: PrototypeOf,
    prototype_input: gr.components.Component,
    reviewer: gr.Textbox,
    api: bool,
) -> LabelControls:
    """Verdict buttons, reason, comment and undo for the prototype ``prototype_of(input)`` names."""
    with gr.Row():
        buttons = {
            verdict: gr.Button(
                f"{verdict} [{SHORTCUTS[verdict]}]", size="sm", elem_classes=[f"label-{verdict}"],
                variant="stop" if verdict == "misleading" else "secondary",
            )
            for verdict in VERDICTS
        }  # fmt: skip
        reason = gr.Dropdown(["", *REASONS], value="", label="Reason", scale=1)
        comment = gr.Textbox(label="Comment", scale=2)
        undo = gr.Button("Undo my last label", size="sm")
    status = gr.Markdown()

    inputs = [model, prototype_input, reason, comment, reviewer]
    changes = []
    for verdict, button in buttons.items():
        changes.append(button.click(
            bind(events.save_label, explorer, prototype_of, verdict), inputs, status,
            api_name="label" if api and verdict == VERDICTS[0] else False,
        ))  # fmt: skip
    changes.append(
        undo.click(
            bind(events.undo_last, explorer, prototype_of),
            [model, prototype_input, reviewer],
            status,
            api_name="undo_label" if api else False,
        )
    )
    return LabelControls(status, changes)


def build_labels_tab(
    explorer: Explorer, app: gr.Blocks, tab: gr.Tab, model: gr.Dropdown, reviewer: gr.Textbox
) -> gr.Number:
    """Lays out the tab and wires its events; returns the number of the prototype picked in the
    review queue (the Prototypes tab follows it)."""
    gr.Markdown(
        "Every label is kept: the history is append-only (undo appends a reversal), stored in SQLite "
        f"at `{explorer.labels_path}`."
    )
    labelled, picked = build_review_queue(explorer, app, tab, model, reviewer)
    gr.Markdown("### Current labels")
    with gr.Row():
        verdict = gr.Dropdown([events.ANY, *VERDICTS], value=events.ANY, label="Verdict")
        reviewer = gr.Textbox(label="Reviewer (empty: everyone)")
        everything = gr.Checkbox(label="All models")
        refresh = gr.Button("Show labels", variant="primary")
    progress = gr.Markdown("Loading the labels …")
    table = gr.Dataframe(headers=events.TABLE_HEADERS, label="Current labels", interactive=False)
    with gr.Row():
        prototype = WholeNumberInput(value=0, precision=0, label="History of prototype")
        history_button = gr.Button("Show history")
    history = gr.Dataframe(
        headers=events.HISTORY_HEADERS, label="History (oldest first)", interactive=False
    )
    gr.Markdown("### Export and import")
    with gr.Row():
        kind = gr.Radio(list(events.EXPORTS), value="full history (JSON)", label="Export")
        export_button = gr.Button("Export")
        download = gr.File(label="Download", interactive=False)
    with gr.Row():
        upload = UploadedFile(
            label="Import labels (CSV or JSON from an export)", file_types=[".csv", ".json"]
        )
        import_button = gr.Button("Import")
    imported = gr.Markdown()
    build_retrain_section(explorer, app, tab, model)

    filters = [model, verdict, reviewer, everything]
    refresh.click(bind(events.show_labels, explorer), filters, [progress, table], api_name="labels")
    history_button.click(
        bind(events.show_history, explorer), [model, prototype], history, api_name="label_history"
    )
    export_button.click(
        bind(events.export_labels, explorer), [model, kind], download, api_name="export_labels"
    )
    import_button.click(
        bind(events.import_labels, explorer), [model, upload], imported, api_name="import_labels"
    )
    gr.on(
        [app.load, model.change], bind(events.open_model, explorer), filters,
        [progress, table, prototype, history], api_name=False,
    )  # fmt: skip
    tab.select(
        bind(events.refresh, explorer),
        [*filters, prototype],
        [progress, table, history],
        api_name=False,
    )
    for change in labelled:  # a label given in the queue shows in the table at once
        change.success(
            bind(events.show_labels, explorer), filters, [progress, table], api_name=False
        )
    return picked


def build_review_queue(
    explorer: Explorer, app: gr.Blocks, tab: gr.Tab, model: gr.Dropdown, reviewer: gr.Textbox
) -> tuple[list[gr.events.Dependency], gr.Number]:
    """The review queue: the stated rule, *Rank prototypes to review* (the first ranking measures
    the prototypes, with progress), the table worst first, and the prototype of the row clicked
    with its label controls (a labelled prototype leaves the queue at once). Returns the events of
    those controls (to chain what a label changes) and the picked prototype's number."""
    with gr.Column(elem_id="review-queue-section"):
        gr.Markdown("### Review queue: which prototypes to look at first")
        gr.Markdown(events.queue_rule_line(), elem_id="review-queue-rule")
        with gr.Row():
            rank = gr.Button(
                "Rank prototypes to review", variant="primary", elem_id="rank-queue", scale=0,
                min_width=260,
            )  # fmt: skip
            status = gr.Markdown("Loading the review queue …", elem_id="review-queue-status")
        table = gr.Dataframe(
            headers=events.QUEUE_HEADERS, label="Review queue (click a row to label its prototype)",
            interactive=False, wrap=True, elem_id="review-queue",
            column_widths=["7%", "15%", "8%", "70%"],
        )  # fmt: skip
        with gr.Row():
            picture = gr.Image(
                label="Its source patch", interactive=False, height=200,
                alt_text="The source patch of the prototype picked in the review queue",
            )  # fmt: skip
            with gr.Column(scale=3):
                number = WholeNumberInput(
                    value=None, precision=0, label="Prototype to label (click a row above)"
                )
                detail = gr.Markdown(elem_id="review-queue-detail")
        controls = build_label_controls(
            explorer, model, events.queued_prototype, number, reviewer, api=False
        )

    rank.click(
        bind(events.rank_queue, explorer), model, [status, table], api_name="review_queue",
        show_progress_on=table,
    )  # fmt: skip
    table.select(
        bind(events.pick_queued, explorer), model, [number, picture, detail, controls.status],
        api_name=False,
    )  # fmt: skip
    # a labelled prototype leaves the queue (an undo brings it back)
    for change in controls.changes:
        change.success(bind(events.refresh_queue, explorer), model, [status, table], api_name=False)
    gr.on(
        [app.load, model.change], bind(events.open_queue, explorer), model,
        [status, table, number, picture, detail, controls.status], api_name=False,
    )  # fmt: skip
    tab.select(bind(events.refresh_queue, explorer), model, [status, table], api_name=False)
    return controls.changes, number


def build_retrain_section(
    explorer: Explorer, app: gr.Blocks, tab: gr.Tab, model: gr.Dropdown
) -> None:
    """*Retrain without what we flagged* (a background job with progress, cancellable) and *Before /
    after* (what a retrain changed)."""
    gr.Markdown("### Retrain without what we flagged")
    note = gr.Markdown(elem_id="retrain-note")
    with gr.Row():
        start = gr.Button("Retrain without what we flagged", variant="primary", elem_id="retrain")
        cancel = gr.Button("Cancel the retrain", variant="stop", elem_id="cancel-retrain")
    status = gr.Markdown(elem_id="retrain-status")
    timer = gr.Timer(retrain.POLL_SECONDS, active=False)
    gr.Markdown("### Before / after")
    with gr.Row():
        # every model at first (API callers); a page lists the chosen model's lineage. Custom values:
        # a model retrained after the start is not among the first choices, the facade checks it
        known = explorer.model_ids()
        before = gr.Dropdown(known, label="Before (the parent)", allow_custom_value=True)
        after = gr.Dropdown(known, label="After (retrained from it)", allow_custom_value=True)
        compare = gr.Button("Compare")
    compared = gr.Markdown(elem_id="before-after")

    start.click(bind(retrain.start, explorer), model, [status, timer], api_name="retrain")
    cancel.click(bind(retrain.cancel, explorer), model, [status, timer], api_name="cancel_retrain")
    timer.tick(
        bind(retrain.poll, explorer), [model, model], [status, timer, model, before, after],
        api_name=False,
    )  # fmt: skip
    compare.click(
        bind(retrain.compare, explorer), [before, after], compared, api_name="before_after"
    )
    gr.on(
        [app.load, model.change], bind(retrain.open_model, explorer), model,
        [note, status, timer, before, after, compared], api_name=False,
    )  # fmt: skip
    # labels may have been added in other tabs meanwhile: the note says what a retrain would use
    tab.select(bind(retrain.refresh, explorer), model, [note, status, timer], api_name=False)
