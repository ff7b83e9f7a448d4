"""Event functions of labelling: the verdict controls (Prototypes and Explain tabs) and the Labels
tab's review queue, table, history, export and import (laid out in ``explorer/ui/tabs/labels.py``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from explorer import (
    SPLITS,
    Explorer,
    ExplorerError,
    LabelEvent,
    QueueEntry,
    ReviewQueue,
    queue_rule,
    reasons,
)
from explorer.ui import identity
from explorer.ui.choices import prototype_index
from explorer.ui.progress import tracked
from explorer.ui.thumbnails import prototype_thumbnail
from explorer.validation import InputError, flag

TABLE_HEADERS = ["model", "prototype", "case", "verdict", "reason", "comment", "reviewer", "time"]
HISTORY_HEADERS = ["id", "prototype", "event", "reason", "comment", "reviewer", "time"]
ANY = "any"
# Export choice → (format, whole history, file name after the model id); None: ProtoPDebug folders.
EXPORTS: dict[str, tuple[str, bool, str] | None] = {
    "current labels (CSV)": ("csv", False, "labels.csv"),
    "full history (CSV)": ("csv", True, "label-history.csv"),
    "full history (JSON)": ("json", True, "label-history.json"),
    "ProtoPDebug folders (zip)": None,
}
PrototypeOf = Callable[[Any], int]  # a prototype control's value → the prototype it names

QUEUE_HEADERS = ["rank", "prototype", "score", "why it is here"]
QUEUE_PASS = "Measuring the prototypes"  # the progress bar's words during the first ranking
QUEUE_WAITING = (
    "Not ranked yet for *{model}*. *Rank prototypes to review* measures every prototype once (one "
    "pass over the test split, about a minute on 2 cores for the synthetic model; needs the model's "
    "data set); the ranking is stored, and later rankings take a moment."
)
SIGNAL_WORDS = {  # the queue's signals as the selected prototype's detail names them
    "background": "background share",
    "instability": "1 − stability",
    "impurity": "1 − class purity",
    "gap": "train-to-test gap",
    "duplicate": "later exact duplicate",
}


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


def save_label(
    explorer: Explorer,
    prototype_of: PrototypeOf,
    verdict: str,
    model_id: str,
    chosen: Any,
    reason_text: str | None,
    comment_text: str | None,
    name: str | None,
    request: gr.Request,
) -> str:
    """Labels the prototype ``prototype_of(chosen)`` names with ``verdict`` (API ``/label`` for the
    first verdict), by the signed-in user or the name typed; returns the label's status."""
    try:
        prototype = prototype_of(chosen)
        event = explorer.label(
            model_id, prototype, verdict, identity.reviewer_name(name, request),
            reason=reason_text or None, comment=comment_text or "",
        )  # fmt: skip
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    return label_status(explorer, model_id, prototype, event)


def undo_last(
    explorer: Explorer,
    prototype_of: PrototypeOf,
    model_id: str,
    chosen: Any,
    name: str | None,
    request: gr.Request,
) -> str:
    """Undoes this reviewer's last label of the prototype (API ``/undo_label``)."""
    try:
        prototype = prototype_of(chosen)
        event = explorer.undo_label(model_id, prototype, identity.reviewer_name(name, request))
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    if event is None:
        return f"Nothing to undo for P{prototype}. " + label_status(explorer, model_id, prototype)
    return label_status(explorer, model_id, prototype, event)


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
        [e.model_id, e.prototype, e.case or "", e.verdict, e.reason or "", e.comment, e.reviewer,
         e.time[:19]]
        for e in events
    ]  # fmt: skip


def show_labels(
    explorer: Explorer,
    model_id: str,
    verdict_choice: str,
    reviewer_name: str | None,
    all_models: bool,
) -> tuple[str, list[list[Any]]]:
    """The review progress and the current labels that match the filters (API ``/labels``)."""
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
    if not events:
        text += (
            " No current label matches these filters."
            if done
            else " No labels yet: label prototypes in the Prototypes tab (keys v, m, u, r) or the "
            "Explain tab."
        )
    return text, event_rows(events)


def show_history(explorer: Explorer, model_id: str, number: int | None) -> list[list[Any]]:
    """Every label event of one prototype, oldest first (API ``/label_history``)."""
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


def refresh(
    explorer: Explorer,
    model_id: str,
    verdict_choice: str,
    reviewer_name: str | None,
    all_models: bool,
    number: int | None,
) -> tuple[str, list[list[Any]], list[list[Any]]]:
    """The table and the history as they stand now (when the tab is opened: labels may have been
    added elsewhere); a history number out of the model's range shows an empty history."""
    text, rows = show_labels(explorer, model_id, verdict_choice, reviewer_name, all_models)
    try:
        history = show_history(explorer, model_id, 0 if number is None else number)
    except gr.Error:
        history = []
    return text, rows, history


def open_model(
    explorer: Explorer,
    model_id: str,
    verdict_choice: str,
    reviewer_name: str | None,
    all_models: bool,
) -> tuple[str, list[list[Any]], int, list[list[Any]]]:
    """A newly chosen model's (or the page's first) table with the filters as they are, and the
    history of its prototype 0."""
    text, rows, history = refresh(explorer, model_id, verdict_choice, reviewer_name, all_models, 0)
    return text, rows, 0, history


def export_labels(explorer: Explorer, model_id: str, what: str) -> str:
    """A file of the model's labels, as chosen in :data:`EXPORTS` (API ``/export_labels``)."""
    folder = Path(tempfile.mkdtemp(prefix="labels-"))
    try:
        if what not in EXPORTS:
            raise ValueError(f"choose an export among: {', '.join(EXPORTS)}")
        chosen = EXPORTS[what]
        if chosen is None:
            written = explorer.export_protopdebug(folder / "protopdebug", model_id)
            if not written["forbidden_prototypes"] + written["remembering_prototypes"]:
                raise ValueError(
                    "ProtoPDebug folders hold the prototypes labelled misleading or valid: "
                    f"'{model_id}' has none yet"
                )
            archive = shutil.make_archive(
                str(folder / f"{model_id}-protopdebug"), "zip", folder / "protopdebug"
            )
            return str(archive)
        kind, history, name = chosen
        path = folder / f"{model_id}-{name}"
        explorer.export_labels(path, model_id, format=kind, history=history)
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    return str(path)


def import_labels(explorer: Explorer, model_id: str, file: Any, request: gr.Request) -> str:
    """Imports a CSV or JSON file of labels (API ``/import_labels``); the signed-in user is the
    importer (events naming another reviewer are kept as provenance only)."""
    if file is None:
        raise gr.Error("Choose a CSV or JSON file exported by the explorer.")
    path = Path(file if isinstance(file, str) else file.name)
    try:
        result = explorer.import_labels(path, imported_by=identity.signed_in_user(request))
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    return import_message(result.added, result.provenance_only, result.importer)


def queue_rule_line() -> str:
    """The review queue's stated rule, in bold words first."""
    return f"**Ranked by a stated rule:** {queue_rule()}"


def queue_ready(explorer: Explorer, model_id: str) -> bool:
    """Whether the queue needs nothing computed: the test split's metrics and the nearest patches
    of both splits are stored."""
    return explorer.has_metrics(model_id) and all(explorer.has_nearest(model_id, s) for s in SPLITS)


def queue_rows(explorer: Explorer, model_id: str, queue: ReviewQueue) -> list[list[Any]]:
    """One row per prototype still to review, worst first: rank, ``P<j> · <class>``, score (three
    decimals, as text: the column lines up), reasons."""
    labels = explorer.prototype_labels(model_id)
    return [
        [rank, labels[e.prototype], f"{e.score:.3f}", "; ".join(reasons(e))]
        for rank, e in enumerate(queue.entries, start=1)
    ]


def queue_status(model_id: str, queue: ReviewQueue) -> str:
    """``N of M prototypes reviewed``, what the table holds, and the prototypes left out because
    no class weighs them."""
    left = len(queue.entries)
    text = f"**{queue.reviewed} of {queue.total} prototypes reviewed** for *{model_id}*; "
    if not left:
        text += "none left to review."
    else:
        text += (
            f"{left} left, worst first. Click a row to bring its prototype up below (and in the "
            "Prototypes tab) and label it: it leaves the queue."
        )
    if queue.unused:
        named = ", ".join(f"P{j}" for j in queue.unused)
        many = len(queue.unused) > 1
        text += (
            f" Left out: {len(queue.unused)} prototype{'s' if many else ''} that no class weighs "
            f"(every last-layer weight zero: {named}); {'they decide' if many else 'it decides'} "
            "nothing."
        )
    return text


def rank_queue(
    explorer: Explorer,
    model_id: str,
    progress=gr.Progress(),  # noqa: B008 (Gradio's pattern)
) -> tuple[str, list[list[Any]]]:
    """The review queue (API ``/review_queue``): the status and the table; the first ranking
    measures the prototypes (its progress in the table's panel), later ones read what is stored."""
    try:
        queue = explorer.review_queue(model_id, progress=tracked(progress, QUEUE_PASS))
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    return queue_status(model_id, queue), queue_rows(explorer, model_id, queue)


def open_queue(explorer: Explorer, model_id: str) -> tuple:
    """A newly chosen model's (or the page's first) queue: shown when nothing needs computing,
    else what to press; no prototype selected (number, picture, detail and label status empty)."""
    return (*refresh_queue(explorer, model_id, waiting=True), None, None, "", "")


def queued_prototype(choice: object) -> int:
    """The prototype the queue's number field names (a row clicked, or a number typed)."""
    index = prototype_index(choice)
    if index is None:
        raise InputError("click a row of the queue (or type a prototype number) to label it")
    return index


def refresh_queue(
    explorer: Explorer, model_id: str, waiting: bool = False
) -> tuple[str | dict, list[list[Any]] | dict]:
    """The queue as it stands now (after a label, or when the tab is opened) when it needs nothing
    computed; else no change (``waiting``: the text saying what to press, and an empty table)."""
    try:
        if queue_ready(explorer, model_id):
            queue = explorer.review_queue(model_id)
            return queue_status(model_id, queue), queue_rows(explorer, model_id, queue)
    except (ExplorerError, ValueError):
        pass  # the button says why
    if waiting:
        return QUEUE_WAITING.format(model=model_id), []
    return gr.update(), gr.update()


def entry_detail(explorer: Explorer, model_id: str, entry: QueueEntry, rank: int | None) -> str:
    """The selected prototype's place in the queue, its reasons and every signal."""
    label = explorer.prototype_labels(model_id)[entry.prototype]
    where = f"rank {rank}, " if rank is not None else ""
    signals = ", ".join(
        f"{SIGNAL_WORDS.get(name, name)} {value:.2f}"
        for name, value in entry.signals.items()
        if value == value  # NaN: not measured for this data set
    )
    flag_text = (
        " Its test matches are less than half as similar as its training ones (+1)."
        if entry.does_not_generalise
        else ""
    )
    return (
        f"**{label}** ({where}score {entry.score:.3f}): {'; '.join(reasons(entry))}."
        f"{flag_text}\n\nSignals (0 best, 1 worst): {signals}. Its source image, nearest patches "
        "and weights: the Prototypes tab (it shows this prototype now)."
    )


def pick_queued(
    explorer: Explorer, model_id: str, event: gr.SelectData
) -> tuple[int, Any, str, str]:
    """A row of the queue clicked: its prototype (for the label controls below and the Prototypes
    tab), its source patch, what put it in the queue, and its label status."""
    row = event.row_value if isinstance(event.row_value, list | tuple) else None
    try:
        if not row or len(row) < 2:
            raise ValueError("click a row of the queue")
        prototype = prototype_index(row[1])
        if prototype is None:
            raise ValueError("click a row of the queue")
        if not queue_ready(explorer, model_id):  # a row of another model's queue: nothing computed
            raise ValueError(f"rank the prototypes of '{model_id}' first")
        queue = explorer.review_queue(model_id, include_reviewed=True)
        entry = next((e for e in queue.entries if e.prototype == prototype), None)
        if entry is None:
            raise ValueError(f"P{prototype} is not in the review queue of '{model_id}'")
        ranks = {e.prototype: r for r, e in enumerate(explorer.review_queue(model_id).entries, 1)}
        detail = entry_detail(explorer, model_id, entry, ranks.get(prototype))
        picture = prototype_thumbnail(explorer, model_id, prototype)
        status = label_status(explorer, model_id, prototype)
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    return prototype, picture, detail, status
