"""The Explain tab's layout: prediction, "this looks like that" pairs, evidence, the comparison with
another class, post-hoc attributions, attribute explanations, the case report and labels.

Only components and wiring live here; the event functions are :class:`~explorer.ui.events.explain.
ExplainEvents` (and :mod:`explorer.ui.events.attributes`). Every explanation (an upload, an example
clicked, *Explain*) is followed at once by the panels that need a choice, with a default: the
comparison with the runner-up class and the strongest match's attribute explanation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from explorer import Explorer
from explorer.ui.choices import (
    PREDICTED,
    STRONGEST,
    class_choices,
    prototype_choices,
    required_prototype,
)
from explorer.ui.components import BoundedSlider, UploadedImage, shown_picture
from explorer.ui.events.explain import (
    COMPARISON_WAITING,
    DEFAULT_METHOD,
    METHOD_LABELS,
    ROBUSTNESS_NOTE,
    TABLE_HEADERS,
    TABLE_WIDTHS,
    ExplainEvents,
)
from explorer.ui.events.state import STATE_TTL_S
from explorer.ui.tabs.attributes import build_match_section
from explorer.ui.tabs.labels import build_label_controls
from explorer.viz.heatmaps import COLOUR_BLIND_SAFE

if TYPE_CHECKING:
    from explorer.ui.warm_up import WarmUp


def build_explain_tab(
    explorer: Explorer,
    model: gr.Dropdown,
    reviewer: gr.Textbox,
    what_if: gr.Checkbox,
    warm_up: WarmUp | None = None,
) -> gr.Dropdown:
    """Lays out the tab and wires its events (``api_name`` on each public one); returns the picker of
    the current prototype, so that other tabs can follow it. With ``warm_up``, a model picked is
    warmed in the background (its first explanation then costs what every later one does)."""
    events = ExplainEvents(explorer)
    default = explorer.default_model
    with gr.Row():
        with gr.Column(scale=1):
            image = UploadedImage(
                label="Image to explain", type="filepath", format="png",
                sources=["upload", "clipboard"], height=280,
                alt_text="The image being explained (its prediction is summarised on the right)",
            )  # fmt: skip
            run = gr.Button("Explain", variant="primary")
            examples = gr.Gallery(
                value=explorer.examples(default) if default else [],
                label="Examples from the test split (click one)",
                columns=6, height=200, allow_preview=False, elem_id="explain-examples",
            )  # fmt: skip
            with gr.Accordion("Options", open=False):
                top_k = BoundedSlider(1, 20, value=10, step=1, label="Prototype pairs to show")
                ranked_by = gr.Radio(
                    ["contribution", "similarity"], value="contribution", label="Rank by"
                )
                target = gr.Dropdown(
                    class_choices(explorer, default) if default else [(PREDICTED, PREDICTED)],
                    value=PREDICTED, label="Class to explain", allow_custom_value=True,
                )  # fmt: skip
                colormap = gr.Radio(
                    ["jet", COLOUR_BLIND_SAFE],
                    value="jet",
                    label="Activation colours (cividis is colour-blind safe)",
                )
        with gr.Column(scale=2):
            summary = gr.Markdown("Upload an image or click an example.")
            probabilities = gr.Label(label="Class probabilities", num_top_classes=5)
            evidence = gr.Plot(
                label="Evidence: contributions to the explained class", elem_id="explain-evidence"
            )
            table = gr.Dataframe(
                headers=TABLE_HEADERS, label="Top prototypes (text view)", interactive=False,
                wrap=True, column_widths=TABLE_WIDTHS, elem_id="explain-table",
            )  # fmt: skip
    with gr.Column(elem_id="explain-pairs-section"):
        pairs = gr.Gallery(
            label="This looks like that: the image's patch (left, with activation) beside the "
            "prototype's source patch (right, box on its training image); its robustness badge in "
            "the caption. Click a pair to pick its prototype below.",
            columns=3, height=560, object_fit="contain", elem_id="explain-pairs", format="jpeg",
        )  # fmt: skip
        gr.Markdown(ROBUSTNESS_NOTE, elem_id="explain-robustness-rule")
    with gr.Row():
        with gr.Column(scale=1):
            compare = gr.Dropdown(
                class_choices(explorer, default, predicted=False) if default else [],
                label="Why the explained class and not …", value=None, allow_custom_value=True,
            )  # fmt: skip
            comparison_text = gr.Markdown(COMPARISON_WAITING)
        comparison = gr.Plot(label="Why this and not that", elem_id="explain-comparison", scale=2)
    gr.Markdown("### Post-hoc attribution next to the model's own reasoning")
    with gr.Row():
        method = gr.Dropdown(list(METHOD_LABELS), value=DEFAULT_METHOD, label="Method (captum)")
        attribution_target = gr.Radio(["class", "prototype"], value="class", label="Explain")
        prototype = gr.Dropdown(
            prototype_choices(explorer, default) if default else [(STRONGEST, STRONGEST)],
            value=STRONGEST, label="Prototype (for a prototype target)", allow_custom_value=True,
        )  # fmt: skip
        smoothgrad = gr.Checkbox(label="SmoothGrad (NoiseTunnel)")
        shared = gr.Checkbox(label="Shared colour scale (across the maps you compute)")
        attribute_button = gr.Button("Compute attribution")
    with gr.Row():
        post_hoc = shown_picture(
            "Attribution",
            "Post-hoc attribution heatmap over the image (described in the note below)",
            elem_id="explain-attribution",
        )
        own = shown_picture(
            "Prototype similarity map",
            "The model's own similarity map of the prototype over the image",
            elem_id="explain-own-map",
        )
    note = gr.Markdown()
    # per user: the explanation every panel reads, and the colour scale of the maps computed so far
    shown = gr.State(None, time_to_live=STATE_TTL_S)
    scale_memory = gr.State(None)
    section = build_match_section(explorer, model, image, prototype, shown)
    gr.Markdown(
        "### Case report\nOne self-contained HTML file (images inline, no links out) and a PDF of "
        "the same case: prediction, evidence, top pairs, attribution, attribute explanations, labels."
    )
    with gr.Row():
        report_button = gr.Button("Make case report (HTML + PDF)")
        report_files = gr.File(
            label="Case report", file_count="multiple", interactive=False, visible=False
        )
    gr.Markdown("### Label the chosen prototype")
    build_label_controls(
        explorer, model, required_prototype, prototype, reviewer, api=False,
    )  # fmt: skip

    inputs = [image, model, top_k, ranked_by, target, colormap, what_if, shown]
    outputs = [summary, probabilities, evidence, table, pairs, post_hoc, own, note, shown]

    def then_the_defaults(explained: gr.events.Dependency) -> None:
        """After an explanation: the panels that need a choice, filled with their defaults from the
        state. The comparison first: it costs nothing. The attribute explanation takes a pass of
        modified images (a few explanations' worth), so one runs at a time on the server, leaving
        the other worker to explanations."""
        explained.success(
            events.default_comparison, shown, [compare, comparison, comparison_text],
            api_name=False,
        ).success(
            section.events.default_match, [image, model, section.mode, section.reading, shown],
            [section.chart, section.text], api_name=False, concurrency_limit=1,
            concurrency_id="default-attribute-explanation",
        )  # fmt: skip

    then_the_defaults(run.click(events.explain, inputs, outputs, api_name="explain"))
    then_the_defaults(image.upload(events.explain, inputs, outputs, api_name=False))
    then_the_defaults(
        examples.select(events.explain_example, inputs[1:], [image, *outputs], api_name=False)
    )
    compare.input(
        events.why_not, [image, model, target, compare, shown], [comparison, comparison_text],
        api_name="why_not",
    )  # fmt: skip
    attribute_button.click(
        events.attribute,
        [image, model, target, method, attribution_target, prototype, smoothgrad, shared,
         colormap, scale_memory, shown],
        [post_hoc, own, note, scale_memory],
        api_name="attribute",
    )  # fmt: skip
    report_button.click(
        events.case_report, [image, model, what_if, shown], report_files, api_name="report"
    ).success(events.reveal, None, report_files, api_name=False)
    pairs.select(events.pick_pair, [shown], prototype, api_name=False)
    reset = model.change(
        events.reset, model,
        [examples, image, summary, probabilities, evidence, table, pairs, post_hoc, own, note,
         report_files, target, compare, comparison, comparison_text, prototype, section.chart,
         section.text, shown],
        api_name=False,
    )  # fmt: skip
    if warm_up is not None:
        reset.then(warm_up.start, model, None, api_name=False, queue=False, show_progress="hidden")
    return prototype
