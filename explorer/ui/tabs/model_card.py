"""The Model card tab: what the model is, its data and licence, accuracy, and what is computed."""

from __future__ import annotations

from functools import partial

import gradio as gr

from explorer import Explorer

WHERE = {
    "shipped": "shipped with the model",
    "cache": "computed here (your cache)",
    None: "not computed",
}


def _date(created: str | None) -> str:
    return f", {created[:10]}" if created else ""


def card_text(explorer: Explorer, model_id: str) -> str:
    """The model's card (from its spec) followed by the status of its stored analyses."""
    lines = [explorer.model_card(model_id), "## In this explorer", ""]
    folder = explorer.model_info(model_id).folder
    lines.append(f"- Folder: `{folder}`; content hash `{explorer.content_hash(model_id)}`")
    titles = dict(explorer.analysis_names())
    stored = explorer.stored_analyses(model_id)
    for result in stored:
        lines.append(f"- {titles[result.name]}: {WHERE[result.where]}{_date(result.created)}")
    reviewed, total = explorer.review_progress(model_id)
    lines.append(f"- Labels: {reviewed} of {total} prototypes reviewed")
    note = explorer.shipped_analyses_note(model_id)
    if note:
        lines.append(f"\nShipped analyses: {note}.")
    if any(result.where is None for result in stored):
        lines.append(
            "\nAnalyses marked *not computed* need the model's data set: compute them from the tabs "
            f"or run `python -m explorer analyse --model {model_id}`."
        )
    return "\n".join(lines)


def build_model_card_tab(explorer: Explorer, model: gr.Dropdown) -> None:
    card = gr.Markdown(
        card_text(explorer, explorer.default_model) if explorer.default_model else ""
    )
    refresh = gr.Button("Refresh", size="sm")
    show = partial(card_text, explorer)
    refresh.click(show, model, card, api_name="model_card")
    model.change(show, model, card, api_name=False)
