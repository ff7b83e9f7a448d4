"""Event functions of the attribute explanations ("this looks like that, because ..."): the Explain
tab's section for one match and the Prototypes tab's section for one prototype (their layout:
:mod:`explorer.ui.tabs.attributes`)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import plotly.graph_objects as go

from explorer import (
    ATTRIBUTE_MODES,
    LOCAL_RELATIVE_READING,
    RELATIVE_READING,
    SPLITS,
    Explorer,
    ExplorerError,
)
from explorer.ui.choices import STRONGEST, prototype_index
from explorer.ui.events.state import shown_for
from explorer.validation import prototype_index as checked_prototype
from explorer.viz.figures import attribute_figure, dose_figure, score_loss_title
from explorer.viz.text import describe_figure

MODES = list(ATTRIBUTE_MODES)
DEFAULT_MODE = "reference"  # the paper's own modification set
READINGS = ["reference (raw, as the paper)", "relative (percentile of its share among prototypes)"]
NO_IMAGE = "Upload an image or click an example first."
MATCH_WAITING = (
    "Explain an image and the strongest match's attribute explanation shows here; pick another "
    "prototype above (or click a pair) and *Explain the match* for that one."
)


def relative(reading: str) -> bool:
    return reading == READINGS[1]


def axis(is_relative: bool, score_name: str) -> dict[str, object]:
    """The attribute chart's value axis for a reading (raw: in the model's own scores)."""
    if is_relative:
        return {"y_title": "percentile of its share among prototypes", "decimals": 0}
    return {"y_title": score_loss_title(score_name)}


class MatchEvents:
    """The Explain tab's attribute section: why one prototype matches this image, beside why it
    matches in general."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer

    def _strongest(self, path: Any, model_id: str, shown: Any) -> int:
        """The strongest match: the state's first pair, or (an API client) the prediction's."""
        kept = shown_for(self.explorer, shown, path, model_id)
        if kept is not None and kept.explanation.pairs:
            return kept.explanation.pairs[0].prototype
        return self.explorer.predict(path, model_id, top_k=1).top_prototypes[0].prototype

    def explain_match(self, path, model_id, choice, mode_name, reading_name, shown=None):
        """The chart of φ on this image beside the stored global Φ, and its reading."""
        if not path:
            raise gr.Error(NO_IMAGE)
        try:
            chosen = prototype_index(choice)
            if chosen is None:
                chosen = self._strongest(path, model_id, shown)
            match = self.explorer.match_attributes(path, chosen, model_id, mode_name)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        is_relative = relative(reading_name)
        series = {"this image (φ)": match.local_relative if is_relative else match.local}
        if match.global_phi is not None:
            label = f"in general (Φ, {match.global_split} split)"
            series[label] = match.global_relative if is_relative else match.global_phi
        score = self.explorer.score_name(model_id)
        figure = attribute_figure(
            match.names, series, f"Prototype {chosen}: {score} lost per modification"
            + (" (percentile among prototypes)" if is_relative else ""), match.not_applicable,
            **axis(is_relative, score),
        )  # fmt: skip
        lines = [match.sentence, f"Sorted φ: {match.values}."]
        if match.global_phi is None:
            lines.append(
                "The prototype's global Φ is not computed yet: use *Compute global explanation* in the "
                "Prototypes tab (needs the model's data set) or run `python -m explorer analyse`."
            )
        else:
            if match.disagrees:
                lines.append(
                    "⚠ **Hint**: this match ranks the modifications differently from the prototype's "
                    "usual matches (Spearman ρ < 0): it may rest on something else than the "
                    "prototype usually does."
                )
            lines.append(f"In general: {match.global_uncertainty}")
        if is_relative:
            chart_reading = f"Chart: this image's bars — {LOCAL_RELATIVE_READING}"
            if match.global_phi is not None:
                chart_reading += f"; the prototype's general bars — {RELATIVE_READING}"
            lines.append(chart_reading + ".")
        lines.append(describe_figure(figure))
        return figure, "\n\n".join(lines)

    def default_match(self, path, model_id, mode_name, reading_name, shown=None):
        """After an explanation: the strongest match's attribute explanation, from the state."""
        if shown_for(self.explorer, shown, path, model_id) is None:
            return None, MATCH_WAITING
        figure, text = self.explain_match(path, model_id, STRONGEST, mode_name, reading_name, shown)
        return figure, "*The strongest match (pick another prototype above).* " + text


class PrototypeAttributeEvents:
    """The Prototypes tab's attribute section: a prototype's global explanation on train vs test,
    and its dose-response."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer

    def show_prototype(
        self, model_id, prototype, mode_name, reading_name
    ) -> tuple[go.Figure, str, go.Figure]:
        if prototype is None:
            raise gr.Error("Enter a prototype number.")
        try:
            view = self.explorer.prototype_attributes(prototype, model_id, mode_name)
            curves = self.explorer.dose_curves(prototype, model_id, mode_name)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        series, bars = {}, {}
        if relative(reading_name):
            series["relative (percentile)"] = view.relative
            if "relative" in view.intervals:
                bars["relative (percentile)"] = view.intervals["relative"]
        else:
            for split, values in (("train", view.train), ("test", view.test)):
                if values is not None:
                    series[f"Φ {split}"] = values
                    if split in view.intervals:
                        bars[f"Φ {split}"] = view.intervals[split]
        figure = attribute_figure(
            view.names, series, f"Prototype {int(prototype)}: global Φ", view.not_applicable,
            intervals=bars, **axis(relative(reading_name), self.explorer.score_name(model_id)),
        )  # fmt: skip
        lines = [view.sentence, view.uncertainty]
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

    def default_view(
        self, model_id, prototype, mode_name, reading_name
    ) -> tuple[go.Figure | None, str, go.Figure | None]:
        """Whenever the shown prototype changes: its global explanation when one is stored (a
        shipped model ships them), else a sentence saying how to make it."""
        if prototype is None or not model_id:
            return None, "Pick a prototype above.", None
        try:
            stored = any(
                self.explorer.has_global_attributes(model_id, split, mode_name) for split in SPLITS
            )
        except (ExplorerError, ValueError) as error:
            return None, str(error), None
        if not stored:
            return None, (
                f"No global attribute explanation ({mode_name} set) of this model is stored yet: "
                "press *Compute global explanation* (needs the model's data set) or run "
                f"`python -m explorer analyse --model {model_id}`."
            ), None  # fmt: skip
        try:
            return self.show_prototype(model_id, prototype, mode_name, reading_name)
        except gr.Error as error:
            return None, str(error), None

    def compute_global(self, model_id, prototype, mode_name, reading_name, progress=gr.Progress()):  # noqa: B008
        if prototype is None:
            raise gr.Error("Enter a prototype number.")
        try:
            checked_prototype(prototype, self.explorer.num_prototypes(model_id))  # before the work
            for split in SPLITS:
                self.explorer.global_attributes(
                    model_id, split, mode_name,
                    progress=lambda it, s=split: progress.tqdm(it, desc=f"attribute explanation ({s})"),
                )  # fmt: skip
        except ExplorerError as error:
            raise gr.Error(str(error)) from None
        return self.show_prototype(model_id, prototype, mode_name, reading_name)
