"""Event functions of the Model card tab's *Prototype metrics* section (laid out in
``explorer/ui/tabs/model_card.py``): every metric of the model's prototypes, shown at once when
stored, else measured at the press of a button with the pass's progress."""

from __future__ import annotations

import gradio as gr

from explorer import Explorer, ExplorerError, metrics_markdown
from explorer.ui.progress import tracked

METRICS_PASS = "Measuring the prototypes, test split"  # the progress bar's words
METRICS_INTRO = (
    "How far the prototypes can be trusted, measured on the test split: whether they land on the "
    "same object part (consistency) and stay there under noise (stability), whether their nearest "
    "patches come from their class and lie on the object, how much of their activation falls on "
    "the background, and whether deleting the pixels the model's own evidence ranks first hurts "
    "the prediction more than deleting random ones."
)
METRICS_WAITING = (
    "Not measured yet for *{model}*: press *Measure the prototype metrics* (one pass over the test "
    "split, about a minute on 2 cores for the synthetic model; needs the model's data set). The "
    "result is stored: the table then shows here at once, and the Labels tab's review queue uses it."
)


def metrics_view(explorer: Explorer, model_id: str) -> tuple[str, dict]:
    """The stored metrics as a table and the button hidden, or what to press and the button shown
    (nothing is computed)."""
    try:
        if explorer.has_metrics(model_id):
            return metrics_markdown(explorer.evaluate(model_id)), gr.update(visible=False)
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    return METRICS_WAITING.format(model=model_id), gr.update(visible=True)


def measure_metrics(
    explorer: Explorer,
    model_id: str,
    progress=gr.Progress(),  # noqa: B008 (Gradio's pattern)
) -> str:
    """Every metric of the model's prototypes as a table (API ``/metrics``): measured once (one
    pass over the test split, its progress in the table's panel), read from the store after."""
    try:
        progress(0, desc=f"{METRICS_PASS}: loading the data set")
        metrics = explorer.evaluate(model_id, progress=tracked(progress, METRICS_PASS))
    except (ExplorerError, ValueError) as error:
        raise gr.Error(str(error)) from None
    return metrics_markdown(metrics)


def measured(explorer: Explorer, model_id: str) -> dict:
    """The button hidden once the metrics are stored."""
    return gr.update(visible=not explorer.has_metrics(model_id))
