"""Event functions of the Labels tab's *Retrain without what we flagged* and *Before / after*
sections (laid out in ``explorer/ui/tabs/labels.py``).

A retrain runs as a background job of the :class:`~explorer.Explorer` (one per model at a time, in
its own process): starting returns at once, a timer polls its status (stage, share done, time left),
and when it is done the new model joins the model selector of every page that polls it.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from explorer import Explorer, ExplorerError, JobStatus
from explorer.validation import shown
from explorer.viz.lineage_text import before_after_markdown

POLL_SECONDS = 2.0
STATES = {
    "running": "Retraining",
    "done": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def retrain_note(explorer: Explorer, model_id: str) -> str:
    """What a retrain of this model would use and write, or the one line why it cannot run."""
    try:
        blocker = explorer.retrain_blocker(model_id)
        labels = explorer.retrain_labels(model_id)
        minutes = explorer.retrain_estimate(model_id)
    except ExplorerError as error:
        return str(error)
    if blocker is not None:
        return blocker
    forgotten = sorted(e.prototype for e in labels if e.verdict == "misleading")
    remembered = sorted(e.prototype for e in labels if e.verdict == "valid")
    estimate = (
        f" Estimated time: about {_minutes(minutes * 60)}, from the time the model's own training "
        "took (on the machine that trained it); the status below estimates the rest as it goes."
        if minutes is not None
        else ""
    )
    return (
        "ProtoPDebug (Bontempelli et al., ICLR 2023) fine-tunes a copy of this model so that no "
        "prototype looks like the patches of the prototypes labelled **misleading** "
        f"({', '.join(f'P{j}' for j in forgotten) or 'none'}), and keeps the prototypes labelled "
        f"**valid** close to theirs ({', '.join(f'P{j}' for j in remembered) or 'none'}); then it "
        "pushes and retrains the last layer. The new model is written to "
        f"`{explorer.models_out}` and joins the model selector; this one is left as it is."
        + estimate
    )


def status_text(status: JobStatus | None) -> str:
    """One paragraph on a retrain's status (empty before any)."""
    if status is None:
        return ""
    head = f"**{STATES.get(status.state, status.state)}**"
    if status.state == "running":
        left = status.remaining_seconds
        return (
            f"{head}: {status.stage} — {status.fraction:.0%} done after "
            f"{_minutes(status.elapsed)}"
            + (f", about {_minutes(left)} left." if left is not None else ".")
        )
    if status.state == "done":
        result = status.result or {}
        accuracy = result.get("accuracy", {})
        new, old = accuracy.get("after_last_layer"), accuracy.get("parent_after_last_layer")
        figures = (
            f" Test accuracy {old:.1%} → {new:.1%}." if new is not None and old is not None else ""
        )
        return (
            f"{head} in {_minutes(status.elapsed)}: the new model "
            f"**{result.get('model_id', '?')}** is in the model selector.{figures} Compare it "
            "below (Before / after)."
        )
    if status.state == "failed":
        return f"{head}: {status.error}"
    return f"{head} after {_minutes(status.elapsed)}; nothing was written."


def _lineage_choices(explorer: Explorer, model_id: str) -> tuple[list[str], str | None, str | None]:
    family = explorer.lineage(model_id)
    if len(family) < 2:
        return family, model_id, None
    before = model_id if model_id != family[-1] else family[-2]
    after = next(
        (m for m in family if m != before and family.index(m) > family.index(before)), None
    )
    return family, before, after or family[-1]


def open_model(explorer: Explorer, model_id: str) -> tuple[Any, ...]:
    """The sections for a newly chosen model: its note, its latest retrain, and its lineage."""
    family, before, after = _lineage_choices(explorer, model_id)
    return (
        *refresh(explorer, model_id),
        gr.Dropdown(choices=family, value=before),
        gr.Dropdown(choices=family, value=after),
        "" if after else lineage_hint(model_id),
    )


def refresh(explorer: Explorer, model_id: str) -> tuple[str, str, Any]:
    """The note and the status as they stand now (the tab is opened: labels may have changed)."""
    status = explorer.retrain_status(model_id)
    running = status is not None and status.state == "running"
    return retrain_note(explorer, model_id), status_text(status), gr.Timer(active=running)


def lineage_hint(model_id: str) -> str:
    return (
        f"`{model_id}` has no retrained model yet (nor a parent): retrain it above, then compare "
        "the two here."
    )


def start(explorer: Explorer, model_id: str) -> tuple[str, Any]:
    """Starts a background retrain of the model from its labels (API ``/retrain``)."""
    try:
        status = explorer.start_retrain(model_id)
    except ExplorerError as error:
        raise gr.Error(str(error)) from None
    return status_text(status), gr.Timer(active=True)


def cancel(explorer: Explorer, model_id: str) -> tuple[str, Any]:
    """Cancels the model's running retrain (API ``/cancel_retrain``)."""
    try:
        status = explorer.cancel_retrain(model_id)
    except ExplorerError as error:
        raise gr.Error(str(error)) from None
    if status is None:
        raise gr.Error(f"no retrain of '{model_id}' is running")
    return status_text(status), gr.Timer(active=False)


def poll(explorer: Explorer, model_id: str, chosen: str) -> tuple[Any, ...]:
    """The retrain's status; once it has ended, the timer stops and the model selector and the
    before/after choices list the new model."""
    status = explorer.retrain_status(model_id)
    running = status is not None and status.state == "running"
    if running:
        return status_text(status), gr.Timer(active=True), gr.skip(), gr.skip(), gr.skip()
    family, before, after = _lineage_choices(explorer, model_id)
    return (
        status_text(status),
        gr.Timer(active=False),
        gr.Dropdown(choices=explorer.model_ids(), value=chosen),
        gr.Dropdown(choices=family, value=before),
        gr.Dropdown(choices=family, value=after),
    )


def compare(explorer: Explorer, before: str | None, after: str | None) -> str:
    """What changed from ``before`` to ``after`` (API ``/before_after``)."""
    if not before or not after:
        raise gr.Error("Choose two models of one lineage: the model before and the one after.")
    known = explorer.model_ids()
    for name, value in (("before", before), ("after", after)):
        if value not in known:  # a typed value (the lists take any): one short line
            raise gr.Error(f"{name}: unknown model {shown(value)} (available: {', '.join(known)})")
    if before == after:
        raise gr.Error(f"Choose two different models (both are '{before}').")
    try:
        return before_after_markdown(explorer.before_after(before, after))
    except ExplorerError as error:
        raise gr.Error(str(error)) from None
