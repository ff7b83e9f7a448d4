"""Labelling prototypes: verdict controls (Prototypes and Explain tabs) and the Labels tab."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from explorer import REASONS, VERDICTS, Explorer, ExplorerError, LabelEvent
from explorer.ui.components import UploadedFile, WholeNumberInput
from explorer.ui.identity import reviewer_name, signed_in_user
from explorer.validation import flag

SHORTCUTS = {"valid": "v", "misleading": "m", "unsure": "u", "redundant": "r"}
TABLE_HEADERS = ["model", "prototype", "case", "verdict", "reason", "comment", "reviewer", "time"]
HISTORY_HEADERS = ["id", "prototype", "event", "reason", "comment", "reviewer", "time"]
ANY = "any"

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


def label_status(
    explorer: Explorer, model_id: str, prototype: int, event: LabelEvent | None = None
) -> str:
    history = explorer.label_history(model_id, prototype)
    current = next(
        (
            e
            for e in explorer.current_labels(model_id)
            if e.prototype == prototype and e.case is None
        ),
        None,
    )
    done, total = explorer.review_progress(model_id)
    now = (
        f"current label of P{prototype}: **{current.verdict}**"
        + (f" ({current.reason})" if current.reason else "")
        + f" by {current.reviewer}, {current.time[:19].replace('T', ' ')} UTC"
        if current
        else f"P{prototype} has no current label"
    )
    saved = "" if event is None else ("Undone. " if event.is_reversal else "Saved. ")
    return f"{saved}{now}; {len(history)} events in its history. {done} of {total} prototypes reviewed."


def build_label_controls(
    explorer: Explorer,
    model: gr.Dropdown,
    prototype_of: Any,
    prototype_input: gr.components.Component,
    reviewer: gr.Textbox,
    api: bool,
) -> None:
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

    def save(verdict: str):
        def handler(model_id, chosen, reason_text, comment_text, name, request: gr.Request):
            try:
                prototype = prototype_of(chosen)
                event = explorer.label(
                    model_id, prototype, verdict, reviewer_name(name, request),
                    reason=reason_text or None,
                    comment=comment_text or "",
                )  # fmt: skip
            except (ExplorerError, ValueError) as error:
                raise gr.Error(str(error)) from None
            return label_status(explorer, model_id, prototype, event)

        return handler

    def undo_last(model_id, chosen, name, request: gr.Request):
        try:
            prototype = prototype_of(chosen)
            event = explorer.undo_label(model_id, prototype, reviewer_name(name, request))
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        if event is None:
            return f"Nothing to undo for P{prototype}. " + label_status(
                explorer, model_id, prototype
            )
        return label_status(explorer, model_id, prototype, event)

    inputs = [model, prototype_input, reason, comment, reviewer]
    for verdict, button in buttons.items():
        button.click(
            save(verdict), inputs, status,
            api_name="label" if api and verdict == VERDICTS[0] else False,
        )  # fmt: skip
    undo.click(
        undo_last,
        [model, prototype_input, reviewer],
        status,
        api_name="undo_label" if api else False,
    )


def event_text(event: LabelEvent) -> str:
    """The history table's *event* cell: the verdict or the undo, and where an import came from."""
    text = f"undo of #{event.reverses}" if event.is_reversal else str(event.verdict)
    if event.provenance_only:
        return f"{text} (imported by {event.imported_by}: provenance only)"
    return f"{text} (imported)" if event.imported else text


def import_message(added: int, provenance_only: int, importer: str | None) -> str:
    """What the Import button answers: the events added and those kept as provenance only."""
    text = f"Imported {added} new events (events already present are skipped)."
    if provenance_only:
        text += (
            f" {provenance_only} of them name another reviewer than you ({importer}): they are "
            "kept as provenance only, in the history but no one's current label, and the what-if "
            "switch ignores them."
        )
    return text


def event_rows(events: list[LabelEvent]) -> list[list[Any]]:
    return [
        [
            e.model_id,
            e.prototype,
            e.case or "",
            e.verdict,
            e.reason or "",
            e.comment,
            e.reviewer,
            e.time[:19],
        ]
        for e in events
    ]


def build_labels_tab(explorer: Explorer, model: gr.Dropdown) -> None:
    gr.Markdown(
        "Every label is kept: the history is append-only (undo appends a reversal), stored in SQLite "
        f"at `{explorer.labels_path}`."
    )
    with gr.Row():
        verdict = gr.Dropdown([ANY, *VERDICTS], value=ANY, label="Verdict")
        reviewer = gr.Textbox(label="Reviewer (empty: everyone)")
        everything = gr.Checkbox(label="All models")
        refresh = gr.Button("Show labels", variant="primary")
    progress = gr.Markdown()
    table = gr.Dataframe(headers=TABLE_HEADERS, label="Current labels", interactive=False)
    with gr.Row():
        prototype = WholeNumberInput(value=0, precision=0, label="History of prototype")
        history_button = gr.Button("Show history")
    history = gr.Dataframe(
        headers=HISTORY_HEADERS, label="History (oldest first)", interactive=False
    )
    gr.Markdown("### Export and import")
    with gr.Row():
        kind = gr.Radio(
            ["current labels (CSV)", "full history (CSV)", "full history (JSON)", "ProtoPDebug folders (zip)"],
            value="full history (JSON)", label="Export",
        )  # fmt: skip
        export_button = gr.Button("Export")
        download = gr.File(label="Download", interactive=False)
    with gr.Row():
        upload = UploadedFile(
            label="Import labels (CSV or JSON from an export)", file_types=[".csv", ".json"]
        )
        import_button = gr.Button("Import")
    imported = gr.Markdown()

    def show(model_id, verdict_choice, reviewer_name, all_models):
        try:
            events = explorer.current_labels(
                None if flag(all_models, "All models") else model_id,
                verdict=None if verdict_choice == ANY else verdict_choice,
                reviewer=(reviewer_name or "").strip() or None,
            )
            done, total = explorer.review_progress(model_id)
            disabled = sorted(explorer.misleading(model_id))
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        text = f"**{done} of {total} prototypes reviewed** for *{model_id}*."
        if disabled:
            text += f" Labelled misleading (disabled by the what-if switch): {', '.join(f'P{j}' for j in disabled)}."
        return text, event_rows(events)

    def show_history(model_id, number):
        if number is None:
            raise gr.Error("Enter a prototype number.")
        try:
            events = explorer.label_history(model_id, number)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        return [
            [e.id, e.prototype, event_text(e), e.reason or "", e.comment, e.reviewer, e.time[:19]]
            for e in events
        ]

    def export(model_id, what):
        folder = Path(tempfile.mkdtemp(prefix="labels-"))
        try:
            if what.startswith("current"):
                path = folder / f"{model_id}-labels.csv"
                explorer.export_labels(path, model_id, format="csv", history=False)
            elif what.endswith("(CSV)"):
                path = folder / f"{model_id}-label-history.csv"
                explorer.export_labels(path, model_id, format="csv", history=True)
            elif what.endswith("(JSON)"):
                path = folder / f"{model_id}-label-history.json"
                explorer.export_labels(path, model_id, format="json", history=True)
            else:
                explorer.export_protopdebug(folder / "protopdebug", model_id)
                path = Path(
                    shutil.make_archive(
                        str(folder / f"{model_id}-protopdebug"), "zip", folder / "protopdebug"
                    )
                )
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        return str(path)

    def import_labels(model_id, file, request: gr.Request):
        if file is None:
            raise gr.Error("Choose a CSV or JSON file exported by the explorer.")
        path = Path(file if isinstance(file, str) else file.name)
        try:
            result = explorer.import_labels(path, imported_by=signed_in_user(request))
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        return import_message(result.added, result.provenance_only, result.importer)

    refresh.click(
        show, [model, verdict, reviewer, everything], [progress, table], api_name="labels"
    )
    history_button.click(show_history, [model, prototype], history, api_name="label_history")
    export_button.click(export, [model, kind], download, api_name="export_labels")
    import_button.click(import_labels, [model, upload], imported, api_name="import_labels")
