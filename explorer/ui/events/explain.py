"""The Explain tab's event functions (its layout and wiring: :mod:`explorer.ui.tabs.explain`).

:meth:`ExplainEvents.explain` makes one :class:`~explorer.Explanation` per upload and option set and
keeps it in the user's ``gr.State`` as a :class:`~explorer.ui.events.state.Shown`; every other panel
reads it: the comparison with another class, the what-if text, the attribution panel (only the
attribution is computed again when another method or target is picked), the pair picker and the
case report. An API client has no state: when the state is empty, expired or was made for another
upload, a function explains its inputs itself.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from explorer import (
    Explanation,
    Explorer,
    ExplorerError,
    MatchRobustness,
    PatchPair,
    badge_line,
    badge_rule,
)
from explorer.images import as_rgb
from explorer.ui.choices import (
    PREDICTED,
    STRONGEST,
    class_choices,
    class_index,
    prototype_choices,
    prototype_index,
)
from explorer.ui.events.attributes import MATCH_WAITING
from explorer.ui.events.state import Shown, shown_for, source_key
from explorer.validation import flag
from explorer.viz.figures import comparison_figure, evidence_figure
from explorer.viz.heatmaps import ATTRIBUTION_COLORMAP, overlay, shared_scale
from explorer.viz.overlays import enlarge
from explorer.viz.pairs import DISPLAY_SIDE, activation_picture, pair_caption, pair_picture
from explorer.viz.text import describe_figure, explanation_summary, position_words
from explorer.viz.trust_text import TITLES

METHOD_LABELS = {
    "Grad-CAM": "gradcam",
    "Occlusion": "occlusion",
    "Integrated Gradients": "integrated_gradients",
}
METHOD_NAMES = {value: label for label, value in METHOD_LABELS.items()}
DEFAULT_METHOD = "Grad-CAM"  # what :meth:`ExplainEvents.explain` computes with every explanation
TABLE_HEADERS = [
    "rank",
    "prototype",
    "prototype class",
    "similarity",
    "weight",
    "contribution",
    "where",
    "robustness",
]
TABLE_WIDTHS = ["5%", "8%", "14%", "10%", "9%", "11%", "9%", "34%"]  # the badge line wraps
NO_IMAGE = "Upload an image or click an example first."
COMPARISON_WAITING = (
    "*Why this and not that* compares the explained class with another one, prototype by "
    "prototype: explain an image and it shows the runner-up class here (pick another class above)."
)
PICK_A_CLASS = "Pick a class above to compare the explained class with."


# The checks of a robustness badge, as short as a caption needs (the table says them in full).
CHECK_WORDS = {"jpeg": "JPEG", "noise": "noise", "shift": "shift", "outside": "outside box"}
ROBUSTNESS_NOTE = (
    "**Robustness badges** (in each caption; in full in the table's *robustness* column): each "
    "match is read again on the image changed in ways a person would not notice — "
    + "; ".join(TITLES.values())
    + f". {badge_rule()} A match is ✓ robust when no check is fragile, ⚠ fragile otherwise (the "
    "caption names the checks that failed)."
)


def badge_text(badge: MatchRobustness | None) -> str:
    """The table's *robustness* cell: the verdict and what failed by how much (one line)."""
    return "not checked" if badge is None else badge_line(badge)


def badge_mark(badge: MatchRobustness | None) -> str:
    """The caption's badge: ``✓ robust``, ``⚠ fragile: JPEG, shift`` (the checks that failed) or
    ``⚠ fragile: every check``."""
    if badge is None:
        return "robustness not checked"
    if badge.verdict == "robust":
        return "✓ robust"
    failed = badge.fragile_checks
    if len(failed) == len(badge.checks):
        return "⚠ fragile: every check"
    return "⚠ fragile: " + ", ".join(CHECK_WORDS.get(c, c) for c in failed)


def pair_label(explanation: Explanation, pair: PatchPair) -> str:
    """A pair's caption: prototype and class, its badge (where a narrow caption still shows it),
    then score × weight = contribution."""
    caption = pair_caption(explanation, pair)  # "P<j> (<class>): sim ... = ..."
    head, colon, rest = caption.partition("): ")
    if not colon:
        return f"{caption} · {badge_mark(pair.robustness)}"
    return f"{head}) · {badge_mark(pair.robustness)} · {rest}"


def robustness_summary(explanation: Explanation) -> str:
    """One sentence on the pairs' badges for the summary (empty when none was checked)."""
    checked = [p for p in explanation.pairs if p.robustness is not None]
    fragile = [p for p in checked if p.robustness.verdict == "fragile"]
    n, f = len(checked), len(fragile)
    if not n:
        return ""
    if n == 1:
        shown = "the match shown is"
    elif f in (0, n):
        shown = f"all {n} matches shown are"
    else:
        shown = f"{f} of the {n} matches shown {'is' if f == 1 else 'are'}"
    if not fragile:
        return f"\n\n**Robustness:** {shown} robust (✓)."
    named = ", ".join(f"P{p.prototype}" for p in fragile)
    return (
        f"\n\n**Robustness:** {shown} fragile (⚠ {named}): a change a person would not notice "
        "changes the match (see the table's *robustness* column)."
    )


def evidence_table(explanation: Explanation) -> dict[str, list]:
    """The pairs as a table (the evidence chart's text view): ``headers`` (the score column named
    as the model names its scores: similarity, presence) and ``data`` rows, each ending with the
    match's robustness badge."""
    names = explanation.class_names
    size = explanation.activations.input_size
    rows = [
        [rank, p.prototype, names[p.prototype_class], round(p.similarity, 4), round(p.weight, 4),
         round(p.contribution, 4), position_words(p.image_box, size), badge_text(p.robustness)]
        for rank, p in enumerate(explanation.pairs, start=1)
    ]  # fmt: skip
    headers = [
        explanation.activations.score_name if h == "similarity" else h for h in TABLE_HEADERS
    ]
    return {"headers": headers, "data": rows}


def attribution_pictures(
    explanation: Explanation,
    colormap: str,
    prototype: int | None,
    scale: tuple[float, float] | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, str, tuple[float, float] | None]:
    """The post-hoc map and the model's own similarity map of ``prototype`` (the strongest pair's
    when ``None``) side by side, a note, and the colour scale used (pass it back as ``scale`` to
    draw later maps on the same scale)."""
    attribution = explanation.attribution
    if attribution is None:
        return None, None, "No attribution computed.", scale
    pair = next((p for p in explanation.pairs if p.prototype == prototype), None)
    if pair is None and prototype is None:
        pair = explanation.pairs[0]
    if pair is not None:
        number, activation, box = pair.prototype, pair.activation, pair.image_box
    else:  # a prototype outside the listed pairs: its map from the same activations
        acts = explanation.activations
        number, activation, box = prototype, acts.upsampled(prototype), acts.box(prototype)
    signed = bool(attribution.values.min() < 0)
    own_scale = shared_scale([attribution.values], signed=signed)
    if scale is not None:
        own_scale = shared_scale([np.array(scale), np.array(own_scale)], signed=signed)
    cmap = ATTRIBUTION_COLORMAP if signed else colormap
    pixels = enlarge(as_rgb(explanation.pixels), DISPLAY_SIDE)
    post_hoc = overlay(
        pixels, attribution.values, colormap=cmap, vmin=own_scale[0], vmax=own_scale[1]
    )
    own = activation_picture(explanation.pixels, activation, box, colormap)
    target = (
        f"prototype {attribution.target}" if attribution.target_kind == "prototype"
        else f"class *{explanation.class_names[attribution.target]}*"
    )  # fmt: skip
    base, _, smooth = attribution.method.partition("+")
    method = METHOD_NAMES.get(base, base) + (" with SmoothGrad" if smooth else "")
    note = (
        f"Left: {method} for {target} — a post-hoc estimate of where the backbone's "
        f"evidence lies (colour scale {own_scale[0]:.3g} … {own_scale[1]:.3g}). Right: prototype "
        f"{number}'s own similarity map — the model's reasoning itself."
    )
    if attribution.all_zero:
        note += " " + attribution.zero_reason
    return post_hoc, own, note, own_scale


def what_if_text(explorer: Explorer, model_id: str, x: Explanation) -> str:
    """The prediction with and without the prototypes labelled misleading (both from the one
    explanation's forward pass), and the test accuracy."""
    if not x.disabled:
        return "What-if is on, but no prototype of this model is labelled *misleading* yet.\n\n"
    names = x.class_names
    plain = x.as_trained
    without = f"P{', P'.join(map(str, sorted(x.disabled)))}"
    text = (
        f"**What-if: {len(x.disabled)} prototype(s) labelled misleading disabled ({without}).** "
        f"Without them: *{names[x.predicted]}* ({x.activations.probabilities[x.predicted]:.2f}); "
        f"the model as trained: *{names[plain.predicted]}* "
        f"({plain.probabilities[plain.predicted]:.2f})."
    )
    try:
        result = explorer.what_if(model_id, disabled=x.disabled)
        text += f" Test accuracy {result.baseline_accuracy:.2%} → {result.accuracy:.2%}."
    except ExplorerError as error:
        text += f" (Test accuracy needs the test split: {error})"
    return text + "\n\n"


def rival_class(x: Explanation) -> int | None:
    """The class the explained one is compared with by default: the runner-up when the predicted
    class is explained, else the predicted class (``None`` for a one-class model)."""
    if len(x.class_names) < 2:
        return None
    if x.target_class != x.predicted:
        return x.predicted
    order = np.argsort(-x.activations.logits, kind="stable")
    return int(next(c for c in order if c != x.target_class))


def comparison(x: Explanation, other: int) -> tuple[go.Figure, str]:
    """The "why this and not that" chart of the explained class against ``other``, and its text."""
    figure = comparison_figure(x.activations, x.target_class, other, x.class_names)
    text = describe_figure(figure)
    if other == x.target_class:
        text = "That is the explained class itself: every difference is zero.\n\n" + text
    return figure, text


class ExplainEvents:
    """The Explain tab's event functions for one :class:`~explorer.Explorer` (the layout binds
    them; each ``api_name`` endpoint keeps the parameter names of its method)."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        # copies of the examples shown (Gradio serves only files under the temporary folder or the
        # working directory), one per model and example, removed with this object
        self._examples = tempfile.TemporaryDirectory(prefix="explorer-examples-")
        self._copies: dict[tuple[str, int], str] = {}
        self._copying = threading.Lock()

    def _example_copy(self, model_id: str, index: int) -> str:
        """A copy of one bundled example, byte for byte, in this object's temporary folder."""
        with self._copying:
            copy = self._copies.get((model_id, index))
            if copy is None or not Path(copy).is_file():
                source = self.explorer.example_path(index, model_id)
                target = Path(self._examples.name) / f"{len(self._copies)}-{source.name}"
                shutil.copyfile(source, target)
                copy = self._copies[model_id, index] = str(target)
            return copy

    def _shown(
        self,
        path: Any,
        model_id: str,
        top_k: int,
        ranked_by: str,
        wanted: int | None,
        disabled: frozenset[int],
        shown: Any,
    ) -> Shown:
        """The state's explanation when it was made for exactly these inputs, else a new one."""
        kept = shown_for(self.explorer, shown, path, model_id)
        options = (top_k, ranked_by, wanted, disabled)
        if (
            kept is not None
            and (kept.top_k, kept.ranked_by, kept.class_index, kept.disabled) == options
        ):
            return kept
        x = self.explorer.explain(
            path, model_id, top_k=top_k, ranked_by=ranked_by, class_index=wanted,
            attribution=METHOD_LABELS[DEFAULT_METHOD], disabled=disabled,
        )  # fmt: skip
        return Shown(source_key(path), model_id, top_k, ranked_by, wanted, disabled, x)

    def explain(self, path, model_id, k, rank, target_choice, cmap, what_if_on=False, shown=None):
        """Everything about one image at once: summary, probabilities, evidence chart and table,
        the pairs gallery and the default attribution beside the prototype's own map; the last
        value is the new state."""
        if not path:
            raise gr.Error(NO_IMAGE)
        try:
            what_if_on = flag(what_if_on, "What-if")
            disabled = frozenset(self.explorer.misleading(model_id)) if what_if_on else frozenset()
            wanted = class_index(self.explorer, model_id, target_choice)
            now = self._shown(path, model_id, k, rank, wanted, disabled, shown)
            x = now.explanation
            prefix = what_if_text(self.explorer, model_id, x) if what_if_on else ""
            gallery = [
                (pair_picture(x, p, self.explorer.source_image(p.prototype, model_id), cmap),
                 pair_label(x, p))
                for p in x.pairs
            ]  # fmt: skip
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        probs = dict(zip(x.class_names, map(float, x.activations.probabilities), strict=True))
        figure = evidence_figure(x.activations, x.target_class, x.class_names)
        left, right, text, _ = attribution_pictures(x, cmap, None)
        summary = prefix + explanation_summary(x) + robustness_summary(x)
        return summary, probs, figure, evidence_table(x), gallery, left, right, text, now

    def default_comparison(self, shown):
        """After an explanation: the class to compare with (the runner-up), its chart and text."""
        if not isinstance(shown, Shown):
            return gr.update(), None, COMPARISON_WAITING
        x = shown.explanation
        other = rival_class(x)
        if other is None:
            return gr.update(value=None), None, "This model has one class: nothing to compare."
        figure, text = comparison(x, other)
        return gr.update(value=x.class_names[other]), figure, text

    def why_not(self, path, model_id, target_choice, other, shown=None):
        """Why the explained class and not ``other``: per prototype, the difference of their
        contributions (from the state's activations; explained afresh only without one)."""
        if not path:
            return None, COMPARISON_WAITING
        if not other:
            return None, PICK_A_CLASS
        try:
            wanted = class_index(self.explorer, model_id, target_choice)
            second = class_index(self.explorer, model_id, other)
            kept = shown_for(self.explorer, shown, path, model_id)
            if kept is not None and kept.class_index == wanted:
                x = kept.explanation
            else:
                x = self.explorer.explain(path, model_id, class_index=wanted, attribution=None)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        return comparison(x, x.predicted if second is None else second)

    def attribute(
        self,
        path,
        model_id,
        target_choice,
        method_label,
        kind,
        proto,
        smooth,
        same_scale,
        cmap,
        memory=None,
        shown=None,
    ):
        """The chosen post-hoc attribution beside the prototype's own map: only the attribution is
        computed, onto the state's explanation (Grad-CAM of the explained class is the stored one)."""
        if not path:
            raise gr.Error(NO_IMAGE)
        try:
            smooth = flag(smooth, "SmoothGrad")
            same_scale = flag(same_scale, "Shared colour scale")
            wanted = class_index(self.explorer, model_id, target_choice)
            chosen = prototype_index(proto)
            method = METHOD_LABELS[method_label]
            kept = shown_for(self.explorer, shown, path, model_id)
            if kept is not None:
                base = kept.explanation
                x = self.explorer.with_attribution(
                    base, method, kind, smoothgrad=smooth, prototype=chosen,
                    class_index=base.predicted if wanted is None else wanted,
                )  # fmt: skip
            else:
                x = self.explorer.explain(
                    path, model_id, class_index=wanted, attribution=method,
                    attribution_target=kind, attribution_prototype=chosen, smoothgrad=smooth,
                )  # fmt: skip
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        picked = x.attribution.target if kind == "prototype" else None
        return attribution_pictures(x, cmap, picked, memory if same_scale else None)

    def case_report(self, path, model_id, what_if_on, shown=None, progress=gr.Progress()):  # noqa: B008 (Gradio's pattern)
        """The case as one HTML file and a PDF, from the state's explanation when it is this one's."""
        from explorer.report import build_case, write_reports  # fpdf, matplotlib: when used

        if not path:
            raise gr.Error(NO_IMAGE)
        progress(0.1, desc="Explaining the case")
        try:
            on = flag(what_if_on, "What-if")
            disabled = frozenset(self.explorer.misleading(model_id)) if on else frozenset()
            kept = shown_for(self.explorer, shown, path, model_id)
            made = kept.explanation if kept is not None and kept.disabled == disabled else None
            case = build_case(
                self.explorer, path, model_id, disabled=set(disabled), explanation=made,
                source_name=Path(path).name if isinstance(path, str) else None,
            )  # fmt: skip
            progress(0.8, desc="Writing HTML and PDF")
            folder = Path(tempfile.mkdtemp(prefix="case-report-"))
            stem = f"{model_id}-{case.date[:19].replace(':', '').replace('-', '')}-case"
            html, pdf = write_reports(case, folder, stem)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        return [str(html), str(pdf)]

    @staticmethod
    def reveal() -> dict:
        """Shows a panel hidden until it has something (the case report's files)."""
        return gr.update(visible=True)

    def explain_example(
        self, model_id, k, rank, target_choice, cmap, what_if_on, shown, event: gr.SelectData
    ):
        """Clicking an example puts it in the image field and explains it in the same step (one
        round trip): the image, then :meth:`explain`'s values."""
        try:
            path = self._example_copy(model_id, event.index)
        except (ExplorerError, ValueError) as error:
            raise gr.Error(str(error)) from None
        return path, *self.explain(path, model_id, k, rank, target_choice, cmap, what_if_on, shown)

    def pick_pair(self, shown: Any, event: gr.SelectData) -> int:
        """Clicking a pair picks its prototype (by its place among the state's pairs) for the
        attribution, attribute and labelling panels."""
        index = event.index
        if not isinstance(shown, Shown) or not isinstance(index, int):
            raise gr.Error("Pick the prototype from the list below instead.")
        pairs = shown.explanation.pairs
        if not 0 <= index < len(pairs):
            raise gr.Error("Pick the prototype from the list below instead.")
        return pairs[index].prototype

    def reset(self, model_id: str) -> tuple:
        """Another model: its examples and choices, every result panel emptied, the state dropped
        (in the order of :data:`explorer.ui.tabs.explain` 's reset outputs)."""
        explorer = self.explorer
        cleared = (None,) * 7  # probabilities, evidence, table, pairs, post_hoc, own, note
        return (
            explorer.examples(model_id), None, "Model changed: upload or pick an image.",
            *cleared,
            gr.update(value=None, visible=False),  # the case report
            gr.update(choices=class_choices(explorer, model_id), value=PREDICTED),
            gr.update(choices=class_choices(explorer, model_id, predicted=False), value=None),
            None, COMPARISON_WAITING,
            gr.update(choices=prototype_choices(explorer, model_id), value=STRONGEST),
            None, MATCH_WAITING,  # the attribute section
            None,  # the state
        )  # fmt: skip
