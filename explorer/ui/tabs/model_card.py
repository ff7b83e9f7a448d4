"""The Model card tab: what the model is, its data and licence, accuracy, what is computed, and the
metrics of its prototypes (their event functions: :mod:`explorer.ui.events.model_card`)."""

from __future__ import annotations

from functools import partial

import gradio as gr

from explorer import Explorer, ExplorerError
from explorer.ui.events import bind
from explorer.ui.events import model_card as events
from explorer.viz.figures import scoring_sheet_figure

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


def comparison_text(explorer: Explorer, model_id: str) -> str:
    """The model beside the other models of its data set (accuracy, prototypes used, evidence per
    decision, redundancy); empty when it is the only one."""
    try:
        dataset = explorer.spec(model_id).dataset.get("name")
    except ExplorerError as error:
        raise gr.Error(str(error)) from None
    others = [
        m for m in explorer.model_ids()
        if m != model_id and explorer.spec(m).dataset.get("name") == dataset
    ]  # fmt: skip
    if not others:
        return ""
    try:
        columns = explorer.compare_models([model_id, *others])
    except ExplorerError as error:
        return f"Comparison with {', '.join(others)} not available: {error}"
    return (
        f"## Beside the other models of `{dataset}`\n\nFrom each model's last layer and stored "
        "test-split scores (evidence: prototypes adding to the predicted class; redundancy at the "
        "default threshold).\n\n" + explorer.comparison_markdown(columns)
    )


def scoring_sheet_view(explorer: Explorer, model_id: str) -> tuple:
    """The model's scoring sheet: heatmap and text (PIP-Net's global explanation)."""
    sheet = explorer.scoring_sheet(model_id)
    return scoring_sheet_figure(sheet), sheet.markdown()


def build_model_card_tab(
    explorer: Explorer, app: gr.Blocks, tab: gr.Tab, model: gr.Dropdown
) -> None:
    card = gr.Markdown(
        card_text(explorer, explorer.default_model) if explorer.default_model else ""
    )
    refresh = gr.Button("Refresh", size="sm")
    show = partial(card_text, explorer)
    refresh.click(show, model, card, api_name="model_card")
    model.change(show, model, card, api_name=False)
    build_metrics_section(explorer, app, tab, model, card)
    gr.Markdown("## Scoring sheet (the last layer, class by class)")
    figure, text = (
        scoring_sheet_view(explorer, explorer.default_model)
        if explorer.default_model
        else (None, "")
    )
    sheet_chart = gr.Plot(value=figure, label="Scoring sheet: non-zero weights")
    sheet_text = gr.Markdown(text)
    model.change(
        partial(scoring_sheet_view, explorer), model, [sheet_chart, sheet_text], api_name=False
    )
    compared = gr.Markdown(
        comparison_text(explorer, explorer.default_model) if explorer.default_model else ""
    )
    model.change(partial(comparison_text, explorer), model, compared, api_name="compare")


def build_metrics_section(
    explorer: Explorer, app: gr.Blocks, tab: gr.Tab, model: gr.Dropdown, card: gr.Markdown
) -> None:
    """*Prototype metrics*: the stored table at once, else a button that measures them with
    progress (then the card lists them as stored); shown again when the tab is opened (the review
    queue may have measured them)."""
    gr.Markdown(f"## Prototype metrics\n\n{events.METRICS_INTRO}")
    measure = gr.Button(
        "Measure the prototype metrics", variant="primary", visible=False, elem_id="measure-metrics"
    )
    table = gr.Markdown("Loading the prototype metrics …", elem_id="prototype-metrics")
    measure.click(
        bind(events.measure_metrics, explorer), model, table, api_name="metrics",
        show_progress_on=table,
    ).success(
        bind(events.measured, explorer), model, measure, api_name=False
    ).success(partial(card_text, explorer), model, card, api_name=False)  # fmt: skip
    gr.on(
        [app.load, model.change, tab.select], bind(events.metrics_view, explorer), model,
        [table, measure], api_name=False,
    )  # fmt: skip
