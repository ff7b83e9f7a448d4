"""What each model-level figure of :meth:`ModelMetrics.summary` means: one small record per figure,
read by the model card, the CLI table and the docs (one wording, every view)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """One figure.

    Attributes:
        name: its key in :meth:`ModelMetrics.summary`.
        title: short name for a table.
        unit: ``%`` (0-100) or ``share`` (0-1) or ``auc`` (0-1).
        better: ``higher`` or ``lower``.
        definition: the exact definition, one or two sentences.
        needs: the annotation it needs (``keypoints``, ``masks``) or ``""``.
        reference: the paper.
    """

    name: str
    title: str
    unit: str
    better: str
    definition: str
    needs: str
    reference: str


EVALPROTOPNET = "Huang et al., CVPR 2023 (EvalProtoPNet)"
RISE = "Petsiuk et al., BMVC 2018 (RISE)"

METRICS: tuple[MetricInfo, ...] = (
    MetricInfo(
        "consistency", "Consistency", "%", "higher",
        "Share of prototypes for which some part falls inside the box (72 x 72 px at 224, scaled) "
        "around the upsampled map's peak on at least 80 % of their class's test images showing it.",
        "keypoints", EVALPROTOPNET,
    ),
    MetricInfo(
        "stability", "Stability", "%", "higher",
        "Mean over prototypes of the share of their class's test images whose part vector is exactly "
        "unchanged when Gaussian noise N(0, 0.2), clipped to ±0.25, is added to the normalised input.",
        "keypoints", EVALPROTOPNET,
    ),
    MetricInfo(
        "class_purity", "Class purity", "share", "higher",
        "Mean over prototypes of the share of their 5 nearest test patches that come from their own "
        "class.", "", "nearest patches (Chen et al., NeurIPS 2019)",
    ),
    MetricInfo(
        "object_share", "On the object", "share", "higher",
        "Mean over prototypes of the share of their 5 nearest test patches whose box lies at least "
        "half on the object mask.", "masks", "nearest patches",
    ),
    MetricInfo(
        "background_share", "Background share", "share", "lower",
        "Mean over prototypes (and their class's test images) of the share of the activation mass "
        "above the map's 95th percentile that lies outside the object mask.", "masks", "ours",
    ),
    MetricInfo(
        "deletion_auc", "Deletion AUC", "auc", "lower",
        "Probability of the predicted class as pixels are set to the mean colour in the order of the "
        "model's own evidence (Σ weight × upsampled similarity map), area under the curve.", "", RISE,
    ),
    MetricInfo(
        "random_deletion_auc", "Deletion AUC, random order", "auc", "lower",
        "The same curve with a random pixel order: what the evidence order has to beat.", "", RISE,
    ),
    MetricInfo(
        "insertion_auc", "Insertion AUC", "auc", "higher",
        "Probability of the predicted class as the original pixels are put back into a blurred copy "
        "in the evidence order, area under the curve.", "", RISE,
    ),
    MetricInfo(
        "random_insertion_auc", "Insertion AUC, random order", "auc", "higher",
        "The same curve with a random pixel order.", "", RISE,
    ),
)  # fmt: skip

BY_NAME = {m.name: m for m in METRICS}


def formatted(info: MetricInfo, value: float | None) -> str:
    """``value`` as the table shows it (``not measured (needs masks)`` when ``None``)."""
    if value is None:
        return f"not measured (needs {info.needs})" if info.needs else "not measured"
    if info.unit == "%":
        return f"{value:.1f} %"
    return f"{value:.3f}"
