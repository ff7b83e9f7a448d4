"""The Explain tab: prediction, "this looks like that" pairs, evidence, and post-hoc attributions."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from explorer import Explanation, Explorer, ExplorerError
from explorer.images import as_rgb
from explorer.report import build_case, write_reports
from explorer.ui.choices import STRONGEST, prototype_choices, prototype_index, required_prototype
from explorer.ui.components import BoundedSlider, UploadedImage, shown_picture
from explorer.ui.tabs.attributes import build_match_section
from explorer.ui.tabs.labels import build_label_controls
from explorer.validation import InputError, flag, shown
from explorer.viz.figures import comparison_figure, evidence_figure
from explorer.viz.heatmaps import ATTRIBUTION_COLORMAP, COLOUR_BLIND_SAFE, overlay, shared_scale
from explorer.viz.overlays import enlarge
from explorer.viz.pairs import DISPLAY_SIDE, activation_picture, pair_caption, pair_picture
from explorer.viz.text import describe_figure, explanation_summary

PREDICTED = "predicted class"
METHOD_LABELS = {
    "Grad-CAM": "gradcam",
    "Occlusion": "occlusion",
    "Integrated Gradients": "integrated_gradients",
}
TABLE_HEADERS = [
    "rank",
    "prototype",
    "prototype class",
    "similarity",
    "weight",
    "contribution",
    "where",
]


def class_choices(explorer: Explorer, model_id: str) -> list[str]:
    return [PREDICTED, *explorer.class_names(model_id)]


def _class_index(explorer: Explorer, model_id: str, choice: str | None) -> int | None:
    """The class a dropdown entry names; ``None`` for the predicted class."""
    if not choice or choice == PREDICTED:
        return None
    names = explorer.class_names(model_id)
    if choice not in names:
        raise InputError(
            f"model '{model_id}' has no class {shown(choice)} (classes: {', '.join(names)})"
        )
    return names.index(choice)


def evidence_table(explanation: Explanation) -> list[list[Any]]:
    from explorer.viz.text import position_words

    names = explanation.class_names
    size = explanation.activations.input_size
    return [
        [rank, p.prototype, names[p.prototype_class], round(p.similarity, 4), round(p.weight, 4),
         round(p.contribution, 4), position_words(p.image_box, size)]
        for rank, p in enumerate(explanation.pairs, start=1)
    ]  # fmt: skip


def attribution_pictures(
    explanation: Explanation,
    colormap: str,
    prototype: int | None,
    scale: tuple[float, float] | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, str, tuple[float, float] | None]:
    """The post-hoc map and the model's own prototype map side by side, a note, and the colour scale
    used (pass it back as ``scale`` to draw later maps on the same scale)."""
    attribution = explanation.attribution
    if attribution is None:
        return None, None, "No attribution computed.", scale
    pair = next((p for p in explanation.pairs if p.prototype == prototype), explanation.pairs[0])
    signed = bool(attribution.values.min() < 0)
    own_scale = shared_scale([attribution.values], signed=signed)
    if scale is not None:
        own_scale = shared_scale([np.array(scale), np.array(own_scale)], signed=signed)
    cmap = ATTRIBUTION_COLORMAP if signed else colormap
    pixels = enlarge(as_rgb(explanation.pixels), DISPLAY_SIDE)
    post_hoc = overlay(
        pixels, attribution.values, colormap=cmap, vmin=own_scale[0], vmax=own_scale[1]
    )
    own = activation_picture(explanation.pixels, pair.activation, pair.image_box, colormap)
    target = (
        f"prototype {attribution.target}" if attribution.target_kind == "prototype"
        else f"class *{explanation.class_names[attribution.target]}*"
    )  # fmt: skip
    note = (
        f"Left: {attribution.method} for {target} — a post-hoc estimate of where the backbone's "
        f"evidence lies (colour scale {own_scale[0]:.3g} … {own_scale[1]:.3g}). Right: prototype "
        f"{pair.prototype}'s own similarity map — the model's reasoning itself."
    )
    if attribution.all_zero:
        note += (
            " The attribution map is zero everywhere (the target does not depend on this image)."
        )
    return post_hoc, own, note, own_scale


def what_if_text(
    explorer: Explorer, model_id: str, path: Any, x: Explanation, disabled: set[int]
) -> str:
    """The prediction with and without the prototypes labelled misleading, and the test accuracy."""
    if not disabled:
        return "What-if is on, but no prototype of this model is labelled *misleading* yet.\n\n"
    names = x.class_names
    plain = explorer.explain(path, model_id, top_k=1, attribution=None)
    without = f"P{', P'.join(map(str, sorted(disabled)))}"
    text = (
        f"**What-if: {len(disabled)} prototype(s) labelled misleading disabled ({without}).** "
        f"Without them: *{names[x.predicted]}* ({x.activations.probabilities[x.predicted]:.2f}); "
        f"the model as trained: *{names[plain.predicted]}* "
        f"({plain.activations.probabilities[plain.predicted]:.2f})."
    )
    try:
        result = explorer.what_if(model_id, disabled=disabled)
        text += f" Test accuracy {result.baseline_accuracy:.2%} → {result.accuracy:.2%}."
    except ExplorerError as error:
        text += f" (Test accuracy needs the test split: {error})"
    return text + "\n\n"


def build_explain_tab(
    explorer: Explorer, model: gr.Dropdown, reviewer: gr.Textbox, what_if: gr.Checkbox
) -> gr.Dropdown:
    """Lays out the tab and wires its events (``api_name`` on each public one); returns the picker of
    the current prototype, so that other tabs can follow it."""
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
                columns=6, height=200, allow_preview=False,
            )  # fmt: skip
            with gr.Accordion("Options", open=False):
                top_k = BoundedSlider(1, 20, value=10, step=1, label="Prototype pairs to show")
                ranked_by = gr.Radio(
                    ["contribution", "similarity"], value="contribution", label="Rank by"
                )
                target = gr.Dropdown(
                    class_choices(explorer, default) if default else [PREDICTED],
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
            evidence = gr.Plot(label="Evidence: contributions to the explained class")
            table = gr.Dataframe(
                headers=TABLE_HEADERS, label="Top prototypes (text view)", interactive=False
            )
    pairs = gr.Gallery(
        label="This looks like that: the image's patch (left, with activation) beside the prototype's "
        "source patch (right, box on its training image). Click a pair to pick its prototype below.",
        columns=3, height=560, object_fit="contain",
    )  # fmt: skip
    with gr.Row():
        compare = gr.Dropdown(
            class_choices(explorer, default)[1:] if default else [],
            label="Why the explained class and not …", value=None, allow_custom_value=True,
        )  # fmt: skip
        comparison = gr.Plot(label="Why this and not that")
    comparison_text = gr.Markdown()
    gr.Markdown("### Post-hoc attribution next to the model's own reasoning")
    with gr.Row():
        method = gr.Dropdown(list(METHOD_LABELS), value="Grad-CAM", label="Method (captum)")
        attribution_target = gr.Radio(["class", "prototype"], value="class", label="Explain")
        prototype = gr.Dropdown(
            prototype_choices(explorer, default) if default else [STRONGEST],
            value=STRONGEST, label="Prototype (for a prototype target)", allow_custom_value=True,
        )  # fmt: skip
        smoothgrad = gr.Checkbox(label="SmoothGrad (NoiseTunnel)")
        shared = gr.Checkbox(label="Shared colour scale (across the maps you compute)")
        attribute_button = gr.Button("Compute attribution")
    with gr.Row():
        post_hoc = shown_picture(
            "Attribution",
            "Post-hoc attribution heatmap over the image (described in the note below)",
        )
        own = shown_picture(
            "Prototype similarity map",
            "The model's own similarity map of the prototype over the image",
        )
    note = gr.Markdown()
    build_match_section(explorer, model, image, prototype)
    gr.Markdown(
        "### Case report\nOne self-contained HTML file (images inline, no links out) and a PDF of "
        "the same case: prediction, evidence, top pairs, attribution, attribute explanations, labels."
    )
    with gr.Row():
        report_button = gr.Button("Make case report (HTML + PDF)")
        report_files = gr.File(label="Case report", file_count="multiple", interactive=False)
    gr.Markdown("### Label the chosen prototype")
    build_label_controls(
        explorer, model, required_prototype, prototype, reviewer, api=False,
    )  # fmt: skip
    scale_memory = gr.State(None)  # per user: the colour scale of the maps computed so far

    def explain(path, model_id, k, rank, target_choice, cmap, what_if_on=False):
        if not path:
            raise gr.Error("Upload an image or click an example first.")
        try:
            what_if_on = flag(what_if_on, "What-if")
            disabled = explorer.misleading(model_id) if what_if_on else set()
            x = explorer.explain(
                path, model_id, top_k=k, ranked_by=rank,
                class_index=_class_index(explorer, model_id, target_choice), attribution="gradcam",
                disabled=disabled,
            )  # fmt: skip
            prefix = what_if_text(explorer, model_id, path, x, disabled) if what_if_on else ""
            gallery = [
                (pair_picture(x, p, explorer.source_image(p.prototype, model_id), cmap),
                 pair_caption(x, p))
                for p in x.pairs
            ]  # fmt: skip
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        probs = dict(zip(x.class_names, map(float, x.activations.probabilities), strict=True))
        figure = evidence_figure(x.activations, x.target_class, x.class_names)
        left, right, text, _ = attribution_pictures(x, cmap, None)
        return (
            prefix + explanation_summary(x),
            probs,
            figure,
            evidence_table(x),
            gallery,
            left,
            right,
            text,
        )

    def why_not(path, model_id, target_choice, other):
        if not path or not other:
            return None, ""
        try:
            second = _class_index(explorer, model_id, other)
            x = explorer.explain(
                path, model_id, class_index=_class_index(explorer, model_id, target_choice),
                attribution=None,
            )  # fmt: skip
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        figure = comparison_figure(x.activations, x.target_class, second, x.class_names)
        return figure, describe_figure(figure)

    def attribute(
        path, model_id, target_choice, method_label, kind, proto, smooth, same_scale, cmap, memory
    ):
        if not path:
            raise gr.Error("Upload an image or click an example first.")
        try:
            smooth = flag(smooth, "SmoothGrad")
            same_scale = flag(same_scale, "Shared colour scale")
            x = explorer.explain(
                path, model_id, class_index=_class_index(explorer, model_id, target_choice),
                attribution=METHOD_LABELS[method_label], attribution_target=kind,
                attribution_prototype=prototype_index(proto), smoothgrad=smooth,
            )  # fmt: skip
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        shown = x.attribution.target if kind == "prototype" else None
        return attribution_pictures(x, cmap, shown, memory if same_scale else None)

    def case_report(path, model_id, what_if_on, progress=gr.Progress()):  # noqa: B008 (Gradio's pattern)
        if not path:
            raise gr.Error("Upload an image or click an example first.")
        progress(0.1, desc="Explaining the case")
        try:
            disabled = explorer.misleading(model_id) if flag(what_if_on, "What-if") else set()
            case = build_case(
                explorer, path, model_id, disabled=disabled, source_name=Path(path).name
            )
            progress(0.8, desc="Writing HTML and PDF")
            folder = Path(tempfile.mkdtemp(prefix="case-report-"))
            stem = f"{model_id}-{case.date[:19].replace(':', '').replace('-', '')}-case"
            html, pdf = write_reports(case, folder, stem)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        return [str(html), str(pdf)]

    def pick_example(model_id: str, event: gr.SelectData) -> np.ndarray:
        return explorer.example_image(event.index, model_id)

    inputs = [image, model, top_k, ranked_by, target, colormap, what_if]
    outputs = [summary, probabilities, evidence, table, pairs, post_hoc, own, note]
    run.click(explain, inputs, outputs, api_name="explain")
    report_button.click(case_report, [image, model, what_if], report_files, api_name="report")

    def pick_pair(model_id: str, event: gr.SelectData) -> str:
        """Clicking a pair picks its prototype for the attribution and labelling panels."""
        value = event.value if isinstance(event.value, dict) else {}
        caption = str(value.get("caption") or "")
        number = caption.split(" ", 1)[0].removeprefix("P")
        if not number.isdigit():
            raise gr.Error("Pick the prototype from the list below instead.")
        labels = explorer.prototype_labels(model_id)
        j = int(number)
        if j >= len(labels):
            raise gr.Error("Pick the prototype from the list below instead.")
        return labels[j]

    pairs.select(pick_pair, [model], prototype, api_name=False)
    image.upload(explain, inputs, outputs, api_name=False)
    examples.select(pick_example, [model], image, api_name=False).then(
        explain, inputs, outputs, api_name=False
    )
    compare.change(
        why_not, [image, model, target, compare], [comparison, comparison_text], api_name="why_not"
    )
    attribute_button.click(
        attribute,
        [
            image,
            model,
            target,
            method,
            attribution_target,
            prototype,
            smoothgrad,
            shared,
            colormap,
            scale_memory,
        ],
        [post_hoc, own, note, scale_memory],
        api_name="attribute",
    )

    def reset(model_id: str):
        choices = class_choices(explorer, model_id)
        return (
            explorer.examples(model_id), None, "Model changed: upload or pick an image.",
            None, None, None, None, None, None, None, None,
            gr.update(choices=choices, value=PREDICTED), gr.update(choices=choices[1:], value=None),
            gr.update(choices=prototype_choices(explorer, model_id), value=STRONGEST),
        )  # fmt: skip

    model.change(
        reset, model,
        [examples, image, summary, probabilities, evidence, table, pairs, post_hoc, own, note, report_files, target, compare, prototype],
        api_name=False,
    )  # fmt: skip
    return prototype
