"""Attribute explanations in the app ("this looks like that, because ..."): a section of the Explain
tab for one match, and a section of the Prototypes tab for one prototype."""

from __future__ import annotations

import gradio as gr

from explorer import (
    ATTRIBUTE_MODES,
    LOCAL_RELATIVE_READING,
    RELATIVE_READING,
    SPLITS,
    WHY_RAW_FAVOURS_CONTRAST,
    Explorer,
    ExplorerError,
)
from explorer.ui.choices import prototype_index
from explorer.validation import prototype_index as checked_prototype
from explorer.viz.figures import attribute_figure, dose_figure
from explorer.viz.text import describe_figure

MODES = list(ATTRIBUTE_MODES)
READINGS = ["reference (raw, as the paper)", "relative (percentile of its share among prototypes)"]
MODE_HELP = (
    "**Modification sets** — *reference*: the paper's exact settings (hue 0.1, contrast 0.45, "
    "saturation 0.7, NL-means h = 4, sine warp A = 4 px), plus brightness 0.8, computed by the "
    "reference code but not in the paper. *disentangled* (ours): each changes one attribute only, in "
    "CIE Lab (contrast on lightness keeping chroma, saturation on chroma keeping lightness, hue as a "
    "rotation, texture as a blur of lightness, shape as a warp), strengths tied to the feature-cell "
    "size. " + WHY_RAW_FAVOURS_CONTRAST + " The *relative* reading (ours) takes each prototype's "
    "Φ as shares of its total and ranks each share among the prototypes (100 = no prototype gives "
    "this change a larger part of its response). On the synthetic known-answer benchmark, the "
    "disentangled set read relatively names a prototype's class-defining attribute first for about "
    "two thirds of prototypes (66 % on average over five models, chance 20 %); raw Φ of the "
    "reference set names contrast for all of them (README, known-answer benchmark)."
)


def _relative(reading: str) -> bool:
    return reading == READINGS[1]


def _axis(relative: bool) -> dict[str, object]:
    """The attribute chart's value axis for a reading."""
    if relative:
        return {"y_title": "percentile of its share among prototypes", "decimals": 0}
    return {}


def build_match_section(
    explorer: Explorer, model: gr.Dropdown, image: gr.Image, prototype: gr.Dropdown
) -> None:
    """In the Explain tab: why the chosen prototype matches this image, beside why it matches in general."""
    gr.Markdown(
        "### Why does it match? Attribute explanations (Nauta et al., *This Looks Like That, Because*)"
    )
    with gr.Row():
        mode = gr.Radio(MODES, value="reference", label="Modification set")
        reading = gr.Radio(READINGS, value=READINGS[0], label="Reading")
        run = gr.Button("Explain the match")
    chart = gr.Plot(label="Local φ on this image beside the prototype's global Φ")
    text = gr.Markdown()
    gr.Markdown(MODE_HELP)

    def explain_match(path, model_id, choice, mode_name, reading_name):
        if not path:
            raise gr.Error("Upload an image or click an example first.")
        try:
            chosen = prototype_index(choice)
            if chosen is None:
                chosen = (
                    explorer.explain(path, model_id, top_k=1, attribution=None).pairs[0].prototype
                )
            match = explorer.match_attributes(path, chosen, model_id, mode_name)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        relative = _relative(reading_name)
        series = {"this image (φ)": match.local_relative if relative else match.local}
        if match.global_phi is not None:
            label = f"in general (Φ, {match.global_split} split)"
            series[label] = match.global_relative if relative else match.global_phi
        figure = attribute_figure(
            match.names, series, f"Prototype {chosen}: similarity lost per modification"
            + (" (percentile among prototypes)" if relative else ""), match.not_applicable,
            **_axis(relative),
        )  # fmt: skip
        lines = [match.sentence, f"Sorted φ: {match.values}."]
        if match.global_phi is None:
            lines.append(
                "The prototype's global Φ is not computed yet: use *Compute global explanation* in the "
                "Prototypes tab (needs the model's data set) or run `python -m explorer analyse`."
            )
        elif match.disagrees:
            lines.append(
                "⚠ **Hint**: this match ranks the modifications differently from the prototype's usual "
                "matches (Spearman ρ < 0): it may rest on something else than the prototype usually does."
            )
        if relative:
            chart_reading = f"Chart: this image's bars — {LOCAL_RELATIVE_READING}"
            if match.global_phi is not None:
                chart_reading += f"; the prototype's general bars — {RELATIVE_READING}"
            lines.append(chart_reading + ".")
        lines.append(describe_figure(figure))
        return figure, "\n\n".join(lines)

    run.click(
        explain_match,
        [image, model, prototype, mode, reading],
        [chart, text],
        api_name="attributes",
    )


def build_prototype_section(explorer: Explorer, model: gr.Dropdown, number: gr.Number) -> None:
    """In the Prototypes tab: the prototype's global explanation on train vs test, and dose-response."""
    gr.Markdown("### Attribute explanation of this prototype")
    with gr.Row():
        mode = gr.Radio(MODES, value="reference", label="Modification set")
        reading = gr.Radio(READINGS, value=READINGS[0], label="Reading")
        show = gr.Button("Show attribute explanation")
        compute = gr.Button("Compute global explanation (train and test)")
    chart = gr.Plot(label="Global Φ: train beside test")
    text = gr.Markdown()
    dose = gr.Plot(label="Dose-response")

    def show_prototype(model_id, prototype, mode_name, reading_name):
        if prototype is None:
            raise gr.Error("Enter a prototype number.")
        try:
            view = explorer.prototype_attributes(prototype, model_id, mode_name)
            curves = explorer.dose_curves(prototype, model_id, mode_name)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        series = {}
        if _relative(reading_name):
            series["relative (percentile)"] = view.relative
        else:
            for split, values in (("train", view.train), ("test", view.test)):
                if values is not None:
                    series[f"Φ {split}"] = values
        figure = attribute_figure(
            view.names, series, f"Prototype {int(prototype)}: global Φ", view.not_applicable,
            **_axis(_relative(reading_name)),
        )  # fmt: skip
        lines = [view.sentence]
        if view.generalises is not None:
            verdict = "generalises" if view.generalises else "does **not** generalise"
            lines.append(
                f"Its explanation {verdict} from train to test (Spearman ρ of train vs test Φ ≥ 0.5 "
                "and the same top modification)."
            )
            lines.append(
                "Welch's t-test, train vs test Φ over all prototypes: "
                + "; ".join(f"{n} p = {p:.3f}" for n, (_, p) in view.welch.items())
            )
        dose_chart = dose_figure(curves, int(prototype))
        lines += [describe_figure(figure), describe_figure(dose_chart)]
        return figure, "\n\n".join(lines), dose_chart

    def compute_global(model_id, prototype, mode_name, reading_name, progress=gr.Progress()):  # noqa: B008
        if prototype is None:
            raise gr.Error("Enter a prototype number.")
        try:
            checked_prototype(prototype, explorer.num_prototypes(model_id))  # before the work
            for split in SPLITS:
                explorer.global_attributes(
                    model_id, split, mode_name,
                    progress=lambda it, s=split: progress.tqdm(it, desc=f"attribute explanation ({s})"),
                )  # fmt: skip
        except ExplorerError as error:
            raise gr.Error(str(error)) from None
        return show_prototype(model_id, prototype, mode_name, reading_name)

    inputs = [model, number, mode, reading]
    show.click(show_prototype, inputs, [chart, text, dose], api_name="prototype_attributes")
    compute.click(compute_global, inputs, [chart, text, dose], api_name="compute_attributes")
