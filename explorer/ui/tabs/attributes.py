"""Attribute explanations in the app ("this looks like that, because ..."): the layout of a section
of the Explain tab for one match, and of a section of the Prototypes tab for one prototype (their
event functions: :mod:`explorer.ui.events.attributes`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import gradio as gr

from explorer import WHY_RAW_FAVOURS_CONTRAST, Explorer
from explorer.ui.events.attributes import (
    DEFAULT_MODE,
    MATCH_WAITING,
    MODES,
    READINGS,
    MatchEvents,
    PrototypeAttributeEvents,
)

MODE_HELP = (
    "**Modification sets** — *reference*: the paper's exact settings (hue 0.1, contrast 0.45, "
    "saturation 0.7, NL-means h = 4, sine warp A = 4 px), plus brightness 0.8, computed by the "
    "reference code but not in the paper. *disentangled* (ours): each changes one attribute only, in "
    "CIE Lab (contrast on lightness keeping chroma, saturation on chroma keeping lightness, hue as a "
    "rotation, texture as a blur of lightness, shape as a warp), strengths tied to the feature-cell "
    "size. " + WHY_RAW_FAVOURS_CONTRAST + " The *relative* reading (ours) takes each prototype's "
    "Φ as shares of its total and ranks each share among the prototypes (100 = no prototype gives "
    "this change a larger part of its response). **What is measured, where**: on our own synthetic "
    "known-answer data (the generator these settings were chosen on), the disentangled set read "
    "relatively names a prototype's class-defining attribute first for about two thirds of "
    "prototypes (66 % over five models, chance 20 %), and raw Φ of the reference set names contrast "
    "for all of them. On an independent known-answer data set made elsewhere (64 px, 97.8 % test "
    "accuracy), the same reading recovered only 40 % (test split; shape 0 %), the reference raw "
    "reading 20 %; on our second generator, designed before any result (96 px, five models of "
    "97–100 % test accuracy), 34 % on average (20–52 % per model; hue 16 %), against 30 % for the "
    "reference set read the same way. The disentangled set and the relative reading do "
    "**not** hold on data they were not tuned on, so read them as hints, not as findings "
    "(docs/method.md §8). Exact counterfactuals drawn by our generators (each image redrawn "
    "with one attribute changed) show why: those models' prototypes depend most on colour "
    "whatever their class, so no faithful explanation could name the class's attribute first "
    "(at most 38 % of prototypes on the second generator); there the disentangled set's *raw* "
    "reading agrees more often with what the model's similarity depends on (43 % of "
    "prototypes) than the relative one (21 %). Global Φ comes "
    "with bootstrap intervals when it was computed with them; where the top two overlap the text "
    "says it cannot tell them apart."
)


class MatchSection(NamedTuple):
    """The attribute section's components that the Explain tab fills after each explanation, and
    its event functions."""

    events: MatchEvents
    mode: gr.Radio
    reading: gr.Radio
    chart: gr.Plot
    text: gr.Markdown


def build_match_section(
    explorer: Explorer,
    model: gr.Dropdown,
    image: gr.Image,
    prototype: gr.Dropdown,
    shown: gr.State,
) -> MatchSection:
    """In the Explain tab: why the chosen prototype matches this image, beside why it matches in
    general (the strongest match's until another prototype is picked)."""
    events = MatchEvents(explorer)
    gr.Markdown(
        "### Why does it match? Attribute explanations (Nauta et al., *This Looks Like That, Because*)"
    )
    with gr.Row():
        mode = gr.Radio(MODES, value=DEFAULT_MODE, label="Modification set")
        reading = gr.Radio(READINGS, value=READINGS[0], label="Reading")
        run = gr.Button("Explain the match")
    chart = gr.Plot(
        label="Local φ on this image beside the prototype's global Φ", elem_id="match-chart"
    )
    text = gr.Markdown(MATCH_WAITING)
    gr.Markdown(MODE_HELP)
    run.click(
        events.explain_match,
        [image, model, prototype, mode, reading, shown],
        [chart, text],
        api_name="attributes",
    )
    return MatchSection(events, mode, reading, chart, text)


def build_prototype_section(
    explorer: Explorer, model: gr.Dropdown, number: gr.Number
) -> tuple[Callable, list, list]:
    """In the Prototypes tab: the prototype's global explanation on train vs test, and dose-response.

    Returns the default view's event, inputs and outputs, for the tab to run after its first view
    (a prototype number set to the value it already has fires no change)."""
    events = PrototypeAttributeEvents(explorer)
    gr.Markdown("### Attribute explanation of this prototype")
    with gr.Row():
        mode = gr.Radio(MODES, value=DEFAULT_MODE, label="Modification set")
        reading = gr.Radio(READINGS, value=READINGS[0], label="Reading")
        show = gr.Button("Show attribute explanation")
        compute = gr.Button("Compute global explanation (train and test)")
    chart = gr.Plot(label="Global Φ: train beside test")
    text = gr.Markdown()
    dose = gr.Plot(label="Dose-response")
    inputs = [model, number, mode, reading]
    show.click(events.show_prototype, inputs, [chart, text, dose], api_name="prototype_attributes")
    number.change(events.default_view, inputs, [chart, text, dose], api_name=False)
    mode.change(events.default_view, inputs, [chart, text, dose], api_name=False)
    reading.change(events.default_view, inputs, [chart, text, dose], api_name=False)
    compute.click(events.compute_global, inputs, [chart, text, dose], api_name="compute_attributes")
    return events.default_view, inputs, [chart, text, dose]
