"""The fixed sentences both renderers print, and small text helpers (one wording, two formats)."""

from __future__ import annotations

import re

from explorer.report.case import CaseReport, number

EMPHASIS = re.compile(r"\*([^*\n]+)\*")

NUMBERS_MEAN = (
    "Similarity s = log((d + 1) / (d + 1e-4)), where d is the squared L2 distance between the "
    "prototype and the closest patch of the image's feature map: 0 for no likeness, "
    "log(10⁴) ≈ 9.21 for an exact match.",
    "Weight w: the prototype's last-layer weight to the explained class.",
    "Contribution = similarity × weight. The last layer has no bias, so the contributions of all "
    "prototypes sum exactly to the class's logit, and the probabilities are the softmax of the "
    "logits.",
    "Boxes: the region where the prototype's upsampled similarity map is at or above its 95th "
    "percentile (on the image) and the patch it was taken from (on its source training image).",
    "φ (attribute explanations, Nauta et al.): the similarity lost when one attribute of the image "
    "is modified, s(p, x) − s(p, mod(x)), both read at the cell where the prototype matches the "
    "original best; larger means the match depends more on that attribute, negative means the "
    "change made the match stronger. Hue and saturation are not applicable to grey images and "
    "grey-input models.",
    "Post-hoc attributions (Grad-CAM and others) estimate where the backbone's evidence lies; they "
    "are not the model's reasoning, which the prototype pairs show.",
)

PIPNET_NUMBERS = {  # a PIP-Net's scores and last layer, in place of the first and third lines
    0: "Presence: at every cell of the image's feature map a softmax over the prototypes (they "
    "compete for each cell); a prototype's presence is its largest value over the cells, in [0, 1], "
    "and is set to 0 below 0.1.",
    2: "Contribution = presence × weight. The weights are non-negative and most are zero (the scoring "
    "sheet); the contributions plus the class's bias (0 without one) sum exactly to its logit, and "
    "the probabilities are the softmax of the logits. No prototype present: no evidence, an honest "
    "'I don't know'.",
}


def numbers_mean(score_name: str) -> tuple[str, ...]:
    """:data:`NUMBERS_MEAN` for a model whose scores are ``score_name`` (presence: PIP-Net's)."""
    if score_name != "presence":
        return NUMBERS_MEAN
    lines = [PIPNET_NUMBERS.get(i, line) for i, line in enumerate(NUMBERS_MEAN)]
    return tuple(line.replace("similarity", "presence") for line in lines)


def plain(text: str) -> str:
    """The library's sentences mark class names as ``*name*``; without the marks."""
    return EMPHASIS.sub(r"\1", text)


def title(case: CaseReport) -> str:
    return f"Case report: {case.source_name} — {case.title}"


def what_if(case: CaseReport) -> str | None:
    """The what-if line, when prototypes were left out."""
    if not case.disabled:
        return None
    names = ", ".join(f"P{j}" for j in case.disabled)
    text = (
        f"What-if: {len(case.disabled)} prototype(s) left out ({names}; their last-layer weights "
        "count as zero). Every number below is for the model without them."
    )
    if case.as_trained is not None:
        name, probability = case.as_trained
        text += f" The model as trained predicts {name} ({probability:.4f})."
    return text


def labels_heading_note(case: CaseReport) -> str:
    if not case.labels:
        return "No reviewer has labelled the prototypes in this report yet."
    return "Current reviewer labels of the prototypes in this report (the latest per prototype and case)."


def phi_line(values: tuple[tuple[str, float], ...]) -> str:
    """``"contrast 6.3085, shape 1.2647, hue −0.1937"`` (four decimals, typographic minus)."""
    return ", ".join(f"{name} {number(value, 4)}" for name, value in values)
