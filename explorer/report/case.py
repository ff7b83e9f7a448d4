"""One image's case, computed once into plain data that the HTML and PDF renderers only lay out.

Everything comes from the :class:`~explorer.api.Explorer` facade and the public :mod:`explorer.viz`
functions, so a report shows exactly the numbers and pictures the Explain tab shows.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from explorer import ATTRIBUTE_MODES, Explanation, Explorer
from explorer.analysis.attributes import ranking
from explorer.images import as_rgb, load_image
from explorer.viz.figures import evidence_figure, evidence_terms
from explorer.viz.heatmaps import ACTIVATION_COLORMAP, ATTRIBUTION_COLORMAP, overlay, shared_scale
from explorer.viz.overlays import enlarge
from explorer.viz.pairs import DISPLAY_SIDE, activation_picture, boxed_picture, pair_caption
from explorer.viz.text import explanation_summary, position_words
from explorer.viz.trust_text import badge_line

EVIDENCE_TERMS = 10  # bars of the evidence chart before "other N prototypes", as the Explain tab
METHOD_NAMES = {
    "gradcam": "Grad-CAM",
    "occlusion": "Occlusion",
    "integrated_gradients": "Integrated Gradients",
}
UNKNOWN_SOURCE = "(image given in memory)"


@dataclass(frozen=True)
class Picture:
    """A rendered picture: PNG bytes, its size, and a text alternative for people who cannot see it."""

    png: bytes = field(repr=False)
    width: int
    height: int
    alt: str

    @classmethod
    def from_array(cls, rgb: np.ndarray, alt: str) -> Picture:
        rgb = as_rgb(rgb)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="PNG")
        return cls(
            png=buffer.getvalue(), width=int(rgb.shape[1]), height=int(rgb.shape[0]), alt=alt
        )


@dataclass(frozen=True)
class EvidenceTerm:
    """One bar of the evidence chart: a prototype's contribution, or the rest taken together."""

    label: str
    value: float
    prototype: int | None  # None for the "other N prototypes" term


@dataclass(frozen=True)
class Evidence:
    """The evidence for one class: contributions (similarity × weight) that sum to its logit.

    Attributes:
        class_index, class_name: the explained class (the predicted one).
        logit: its logit.
        contributions: ``[P]`` every prototype's contribution (they sum to ``logit``).
        terms: the chart's bars (the largest by magnitude, then the rest as one term).
        summary: the chart in words.
        figure: the Explain tab's plotly waterfall (for callers that show plotly; the renderers draw
            their own static chart from ``terms``).
    """

    class_index: int
    class_name: str
    logit: float
    contributions: tuple[float, ...]
    terms: tuple[EvidenceTerm, ...]
    summary: str
    figure: go.Figure = field(repr=False, compare=False)


@dataclass(frozen=True)
class PairReport:
    """One "this looks like that" pair with its numbers and its two pictures."""

    rank: int
    prototype: int
    prototype_class: str
    similarity: float
    weight: float
    contribution: float
    where: str
    image_box: tuple[int, int, int, int]
    source_box: tuple[int, int, int, int] | None
    caption: str
    image_picture: Picture
    source_picture: Picture | None
    robustness: str | None = None
    """The match's robustness badge in one line (``None``: not checked)."""


@dataclass(frozen=True)
class AttributionReport:
    """The post-hoc attribution map over the image, and what it shows."""

    method: str
    target: str
    picture: Picture
    note: str


@dataclass(frozen=True)
class AttributeReport:
    """Why one top prototype matches this image (Nauta et al.'s local explanation).

    Attributes:
        sentence: the library's sentence (names its reading; says when hue/saturation do not apply).
        phi: ``(modification, φ)`` of the applicable modifications, largest first.
        not_applicable: modifications that cannot apply (grey images or grey-input models).
        disagrees: the match ranks modifications unlike the prototype's stored global explanation.
        global_split: which split the global explanation came from (``None``: none stored).
        global_uncertainty: how sure that global explanation is (its intervals, in words).
    """

    prototype: int
    prototype_class: str
    sentence: str
    phi: tuple[tuple[str, float], ...]
    not_applicable: tuple[str, ...]
    disagrees: bool
    global_split: str | None
    global_uncertainty: str = ""


@dataclass(frozen=True)
class LabelEntry:
    """A current reviewer label of one of the report's prototypes."""

    prototype: int
    verdict: str
    reason: str | None
    comment: str
    reviewer: str
    time: str
    case: str | None


@dataclass(frozen=True)
class CaseReport:
    """Everything a case report shows, computed and rendered (plain data; see :func:`build_case`)."""

    model_id: str
    title: str
    content_hash: str
    date: str
    source_name: str
    class_names: tuple[str, ...]
    predicted: int
    probabilities: tuple[float, ...]
    logits: tuple[float, ...]
    summary: str
    image: Picture
    evidence: Evidence
    pairs: tuple[PairReport, ...]
    attribution: AttributionReport | None
    attribute_mode: str
    attributes: tuple[AttributeReport, ...]
    labels: tuple[LabelEntry, ...]
    disabled: tuple[int, ...] = ()
    as_trained: tuple[str, float] | None = None
    score_name: str = "similarity"  # what the model calls its scores (PIP-Net: presence)

    @property
    def numbers_mean(self) -> tuple[str, ...]:
        """The report's "what the numbers mean", for this model's kind of score."""
        from explorer.report.words import numbers_mean  # words reads this module's types

        return numbers_mean(self.score_name)

    @property
    def predicted_class(self) -> str:
        return self.class_names[self.predicted]

    @property
    def probability(self) -> float:
        return self.probabilities[self.predicted]


def signed(value: float, decimals: int = 2) -> str:
    """``+1.23`` / ``−0.40`` with a typographic minus (zero shows no sign)."""
    text = f"{value:+.{decimals}f}"
    if float(text) == 0:
        text = f"{abs(value):.{decimals}f}"
    return text.replace("-", "−")


def number(value: float, decimals: int = 4) -> str:
    """``value`` with a typographic minus (a value that rounds to zero shows no sign)."""
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "−")


def utc_date(now: datetime | None) -> str:
    """ISO 8601 in UTC to the second; a naive ``now`` counts as UTC."""
    moment = now or datetime.now(UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds")


def _source_name(image: Any, source_name: str | None) -> str:
    if source_name:
        return str(source_name)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).name
    return UNKNOWN_SOURCE


def _evidence(x: Explanation) -> Evidence:
    acts = x.activations
    target = x.target_class
    name = x.class_names[target]
    labels, values = evidence_terms(acts, target, EVIDENCE_TERMS)
    terms = tuple(
        EvidenceTerm(label, value, int(label[1:]) if label.startswith("P") else None)
        for label, value in zip(labels, values, strict=True)
    )
    row = acts.contributions[target]
    logit = float(acts.logits[target])
    strongest = [t for t in terms if t.prototype is not None][:3]
    largest = ", ".join(f"prototype {t.prototype} ({signed(t.value)})" for t in strongest)
    bias = "" if acts.bias is None else f" and the bias ({number(acts.bias_of(target))})"
    summary = (
        f"Logit of class *{name}* = {number(logit)}, the sum of {len(row)} contributions "
        f"({acts.score_name} × weight, one per prototype){bias}; largest by size: {largest}."
    )
    rest = next((t for t in terms if t.label.startswith("other ")), None)
    if rest is not None:
        summary += (
            f" The chart shows the {sum(t.prototype is not None for t in terms)} largest; the {rest.label} add "
            f"{signed(rest.value)} together."
        )
    return Evidence(
        class_index=target,
        class_name=name,
        logit=logit,
        contributions=tuple(float(v) for v in row),
        terms=terms,
        summary=summary,
        figure=evidence_figure(acts, target, x.class_names, EVIDENCE_TERMS),
    )


def _pairs(explorer: Explorer, x: Explanation, model_id: str) -> tuple[PairReport, ...]:
    names = x.class_names
    size = x.activations.input_size
    out = []
    for rank, pair in enumerate(x.pairs, start=1):
        where = position_words(pair.image_box, size)
        cls = names[pair.prototype_class]
        left = activation_picture(x.pixels, pair.activation, pair.image_box, ACTIVATION_COLORMAP)
        image_picture = Picture.from_array(
            left,
            f"The input image with prototype {pair.prototype}'s similarity map overlaid (jet "
            f"colours: red most similar, blue least) and a yellow box around the region that looks "
            f"most like the prototype, at the {where}; similarity {pair.similarity:.2f}.",
        )
        source_picture = None
        source = explorer.source_image(pair.prototype, model_id)
        if source is not None:
            source_picture = Picture.from_array(
                boxed_picture(source, pair.source_box),
                f"Prototype {pair.prototype}'s source training image (class {cls}) with a yellow "
                f"box around the patch the prototype was taken from.",
            )
        out.append(
            PairReport(
                rank=rank,
                prototype=pair.prototype,
                prototype_class=cls,
                similarity=pair.similarity,
                weight=pair.weight,
                contribution=pair.contribution,
                where=where,
                image_box=tuple(int(v) for v in pair.image_box),  # type: ignore[arg-type]
                source_box=None
                if pair.source_box is None
                else tuple(int(v) for v in pair.source_box),  # type: ignore[arg-type]
                caption=pair_caption(x, pair),
                image_picture=image_picture,
                source_picture=source_picture,
                robustness=None if pair.robustness is None else badge_line(pair.robustness),
            )
        )
    return tuple(out)


def _attribution(x: Explanation) -> AttributionReport | None:
    attribution = x.attribution
    if attribution is None:
        return None
    values = attribution.values
    base, _, smooth = attribution.method.partition("+")
    method = METHOD_NAMES.get(base, base) + (f" + {smooth}" if smooth else "")
    is_signed = bool(values.min() < 0)
    vmin, vmax = shared_scale([values], signed=is_signed)
    colormap = ATTRIBUTION_COLORMAP if is_signed else ACTIVATION_COLORMAP
    picture = overlay(
        enlarge(as_rgb(x.pixels), DISPLAY_SIDE), values, colormap=colormap, vmin=vmin, vmax=vmax
    )
    target = (
        f"prototype {attribution.target}"
        if attribution.target_kind == "prototype"
        else f"class {x.class_names[attribution.target]}"
    )
    colours = (
        "blue negative, white zero, red positive"
        if is_signed
        else "jet colours: red strongest, blue weakest"
    )
    note = (
        f"{method} for {target}: a post-hoc estimate of where the backbone's evidence "
        f"lies ({colours}; colour scale {vmin:.3g} … {vmax:.3g}). It is not the model's reasoning; "
        "the prototype similarity maps above are."
    )
    if attribution.all_zero:
        note += " " + attribution.zero_reason
    alt = f"The input image with its {method} attribution map for {target} overlaid ({colours})."
    return AttributionReport(
        method=method,
        target=target,
        picture=Picture.from_array(picture, alt),
        note=note,
    )


def _attributes(
    explorer: Explorer, rgb: np.ndarray, model_id: str, pairs: tuple[PairReport, ...], mode: str
) -> tuple[AttributeReport, ...]:
    # the image's local explanation (all prototypes in one batched forward) once for every pair
    matches = explorer.match_attributes_many(
        rgb, [pair.prototype for pair in pairs], model_id, mode
    )
    out = []
    for pair, match in zip(pairs, matches, strict=True):
        keep = [n not in match.not_applicable for n in match.names]
        phi = ranking(
            np.asarray(match.local)[keep], [n for n, k in zip(match.names, keep, strict=True) if k]
        )
        out.append(
            AttributeReport(
                prototype=pair.prototype,
                prototype_class=pair.prototype_class,
                sentence=match.sentence,
                phi=tuple((name, float(value)) for name, value in phi),
                not_applicable=tuple(match.not_applicable),
                disagrees=bool(match.disagrees),
                global_split=match.global_split,
                global_uncertainty=match.global_uncertainty,
            )
        )
    return tuple(out)


def _labels(explorer: Explorer, model_id: str, prototypes: set[int]) -> tuple[LabelEntry, ...]:
    return tuple(
        LabelEntry(
            prototype=event.prototype,
            verdict=str(event.verdict),
            reason=event.reason,
            comment=event.comment,
            reviewer=event.reviewer,
            time=event.time,
            case=event.case,
        )
        for event in explorer.current_labels(model_id)
        if event.prototype in prototypes and event.verdict is not None
    )


def build_case(
    explorer: Explorer,
    image: Any,
    model_id: str | None = None,
    *,
    top_k: int = 5,
    attribution: str | None = "gradcam",
    mode: str = "reference",
    disabled: set[int] | None = None,
    source_name: str | None = None,
    now: datetime | None = None,
    explanation: Explanation | None = None,
) -> CaseReport:
    """Explains one image and renders everything a case report shows.

    Args:
        explorer: the facade.
        image: a path, bytes, PIL image or numpy array (see :func:`explorer.images.load_image`).
        model_id: which model (the default model when ``None``).
        top_k: how many "this looks like that" pairs (and attribute explanations).
        attribution: a post-hoc method (``gradcam``, ``occlusion``, ``integrated_gradients``), or
            ``None`` / ``"none"`` for none.
        mode: the attribute modification set, ``reference`` or ``disentangled``.
        disabled: prototypes to leave out (the what-if model, e.g. those labelled misleading).
        source_name: the file name shown in the header (default: the path's name).
        now: the report's date (default: now); a fixed value makes the output reproducible.
        explanation: the image's explanation when the caller already has one (the Explain tab):
            it is reported (its first ``top_k`` pairs, its attribution) instead of explaining the
            image again; it must come from this image, this model and ``disabled``.

    Raises:
        BadImageError: the image cannot be used. UnknownModelError: the model. ValueError: an
        option is out of range.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}")
    if mode not in ATTRIBUTE_MODES:
        raise ValueError(f"mode must be one of {ATTRIBUTE_MODES}, not {mode!r}")
    spec = explorer.spec(model_id)
    model_id = spec.model_id
    rgb = load_image(image)
    method = None if attribution in (None, "none") else attribution
    off = set(disabled or ())
    if explanation is None:
        x = explorer.explain(rgb, model_id, top_k=top_k, attribution=method, disabled=off)
    elif explanation.model_id != model_id or set(explanation.disabled) != off:
        raise ValueError(
            f"the explanation given is of model {explanation.model_id} with prototypes "
            f"{sorted(explanation.disabled)} disabled, not of {model_id} with {sorted(off)}"
        )
    else:
        x = replace(explanation, pairs=explanation.pairs[:top_k])
    acts = x.activations
    pairs = _pairs(explorer, x, model_id)
    as_trained = None
    if off:  # the model as trained, from the same forward pass
        plain = x.as_trained
        as_trained = (x.class_names[plain.predicted], float(plain.probabilities[plain.predicted]))
    source = _source_name(image, source_name)
    height, width = acts.input_size
    picture = Picture.from_array(
        enlarge(as_rgb(x.pixels), DISPLAY_SIDE),
        f"The input image {source} as the model sees it ({width}×{height} pixels"
        f"{', grey' if spec.channels == 1 or spec.grey_input else ''}).",
    )
    return CaseReport(
        model_id=model_id,
        title=spec.title,
        content_hash=explorer.content_hash(model_id),
        date=utc_date(now),
        source_name=source,
        class_names=tuple(x.class_names),
        predicted=acts.predicted,
        probabilities=tuple(float(p) for p in acts.probabilities),
        logits=tuple(float(v) for v in acts.logits),
        summary=explanation_summary(x),
        image=picture,
        evidence=_evidence(x),
        pairs=pairs,
        attribution=_attribution(x),
        attribute_mode=mode,
        attributes=_attributes(explorer, rgb, model_id, pairs, mode),
        labels=_labels(explorer, model_id, {p.prototype for p in pairs}),
        disabled=tuple(sorted(off)),
        as_trained=as_trained,
        score_name=acts.score_name,
    )
