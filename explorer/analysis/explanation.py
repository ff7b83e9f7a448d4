"""A full single-image explanation: prediction, "this looks like that" pairs, evidence, attribution."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from explorer.analysis.activations import ImageActivations, model_activations
from explorer.analysis.attributions import SMOOTHGRAD_SUFFIX, AttributionMap, attribute
from explorer.analysis.match_robustness import MatchRobustness, match_robustness
from explorer.analysis.whatif import disabled_weight
from explorer.boxes import high_activation_box, upsample_map
from explorer.models.checkpoint import ModelBundle
from explorer.models.preprocess import to_model_pixels


@dataclass(frozen=True)
class PatchPair:
    """One prototype's match in the image ("this patch looks like that prototype").

    Attributes:
        prototype: prototype index.
        prototype_class: its class index.
        similarity: its score on this image.
        weight: its last-layer weight to the explained class.
        contribution: ``similarity * weight`` to the explained class.
        image_cell: the feature cell where it matches best.
        image_box: 95th-percentile box on the image (model-input pixels).
        source_box: its box on its source training image (model-input pixels), if pushed.
        activation: ``[H, W]`` its similarity map upsampled to the input (bicubic).
        robustness: its badge (the match re-read under JPEG, noise, a shift, noise outside its
            box), or ``None`` when not asked for.
    """

    prototype: int
    prototype_class: int
    similarity: float
    weight: float
    contribution: float
    image_cell: tuple[int, int]
    image_box: tuple[int, int, int, int]
    source_box: tuple[int, int, int, int] | None
    activation: np.ndarray
    robustness: MatchRobustness | None = None


@dataclass(frozen=True)
class Explanation:
    """Everything the Explain view shows for one image (plain data; see :mod:`explorer.viz`).

    Attributes:
        model_id, content_hash: which model explained it.
        class_names: the model's classes.
        pixels: the image as the model sees it (input size, uint8 ``[H, W, C]``).
        activations: every prototype's activation.
        target_class: the class whose evidence is listed (the predicted class unless asked otherwise).
        ranked_by: ``contribution`` or ``similarity``.
        pairs: the top prototypes.
        attribution: the post-hoc attribution map, if asked for.
        disabled: the prototypes left out (the what-if model); empty for the model as trained.
        trained: the activations under the model as trained, when prototypes were left out (the
            same forward pass, read through the whole last layer); ``None`` when none were.
    """

    model_id: str
    content_hash: str
    class_names: tuple[str, ...]
    pixels: np.ndarray
    activations: ImageActivations
    target_class: int
    ranked_by: str
    pairs: tuple[PatchPair, ...]
    attribution: AttributionMap | None
    disabled: frozenset[int] = frozenset()
    trained: ImageActivations | None = None

    @property
    def predicted(self) -> int:
        return self.activations.predicted

    @property
    def as_trained(self) -> ImageActivations:
        """The activations under the model as trained (:attr:`activations` when nothing is left
        out): what the what-if model is compared with, without a second forward pass."""
        return self.activations if self.trained is None else self.trained


def explain_image(
    bundle: ModelBundle,
    rgb: np.ndarray,
    top_k: int = 10,
    ranked_by: str = "contribution",
    class_index: int | None = None,
    attribution: str | None = "gradcam",
    attribution_target: str = "class",
    attribution_prototype: int | None = None,
    smoothgrad: bool = False,
    disabled: frozenset[int] | set[int] = frozenset(),
    robustness: bool = True,
) -> Explanation:
    """Explains one RGB uint8 image with one forward pass (plus the attribution's own passes).

    Args:
        bundle: the loaded model folder.
        rgb: the image (any size; see :func:`explorer.images.load_image`).
        top_k: how many prototype pairs.
        ranked_by: ``contribution`` (to ``class_index``) or ``similarity``.
        class_index: the class to explain; the predicted class when ``None``.
        attribution: one of :data:`explorer.analysis.attributions.METHODS`, or ``None`` for none.
        attribution_target: ``class`` (the explained class's logit) or ``prototype`` (a prototype's
            score).
        attribution_prototype: which prototype for a ``prototype`` target; the strongest pair's when
            ``None``.
        smoothgrad: average the attribution over noisy copies (SmoothGrad).
        disabled: prototypes whose last-layer columns count as zero (the what-if model without
            them: predictions, evidence and pairs change; attributions still explain the model as
            it is).
        robustness: re-read every pair's match under JPEG, noise, a one-cell shift and noise
            outside its box (:mod:`explorer.analysis.match_robustness`; one more forward pass of
            ``3 + top_k`` images).
    """
    model = bundle.model
    x = model.preprocess([rgb])
    with torch.inference_mode():
        output = model(x)
    weight = model.class_weights.detach().cpu().numpy()
    trained = None
    if disabled:
        trained = model_activations(model, output, bundle.spec.input_size)
        weight = disabled_weight(weight, disabled).astype(weight.dtype)
        logits = output.scores @ torch.from_numpy(weight).to(output.scores.device).t()
        if model.class_bias is not None:
            logits = logits + model.class_bias.detach()
        output = replace(output, logits=logits)
    acts = model_activations(model, output, bundle.spec.input_size, weight)
    target = acts.predicted if class_index is None else int(class_index)
    if not 0 <= target < bundle.spec.num_classes:
        raise ValueError(f"class index {target} is out of range (0..{bundle.spec.num_classes - 1})")
    pairs = []
    for j in acts.top(top_k, by=ranked_by, class_index=target):
        j = int(j)
        upsampled = acts.upsampled(j)
        pairs.append(
            PatchPair(
                prototype=j,
                prototype_class=int(acts.prototype_classes[j]),
                similarity=float(acts.scores[j]),
                weight=float(weight[target, j]),
                contribution=float(acts.contributions[target, j]),
                image_cell=acts.best_cell(j),
                image_box=high_activation_box(upsampled),
                source_box=bundle.projection[j].box if bundle.projection else None,
                activation=upsampled,
            )
        )
    if robustness and pairs:
        size = bundle.spec.input_size
        badges = match_robustness(
            model,
            rgb,
            [p.prototype for p in pairs],
            lambda cell_map: high_activation_box(upsample_map(cell_map, size)),
        )
        pairs = [replace(p, robustness=b) for p, b in zip(pairs, badges, strict=True)]
    _check_attribution_target(attribution_target)
    attribution_map = None
    if attribution is not None:
        explained = target
        if attribution_target == "prototype":
            chosen = attribution_prototype
            explained = pairs[0].prototype if chosen is None else int(chosen)
        attribution_map = _attribution(
            bundle, x, attribution, attribution_target, explained, smoothgrad
        )
    return Explanation(
        model_id=bundle.spec.model_id,
        content_hash=bundle.content_hash,
        class_names=bundle.spec.class_names,
        pixels=to_model_pixels(rgb, bundle.spec),
        activations=acts,
        target_class=target,
        ranked_by=ranked_by,
        pairs=tuple(pairs),
        attribution=attribution_map,
        disabled=frozenset(int(j) for j in disabled),
        trained=trained,
    )


def _check_attribution_target(attribution_target: str) -> None:
    if attribution_target not in ("class", "prototype"):
        raise ValueError(
            f"attribution_target must be 'class' or 'prototype', not {attribution_target!r}"
        )


def _attribution(
    bundle: ModelBundle, x: torch.Tensor, method: str, kind: str, target: int, smoothgrad: bool
) -> AttributionMap:
    """One attribution map of a class logit (``kind="class"``) or a prototype score."""
    if kind == "class":
        return attribute(bundle.model, x, method, class_index=target, smoothgrad=smoothgrad)
    return attribute(bundle.model, x, method, prototype=target, smoothgrad=smoothgrad)


def with_attribution(
    bundle: ModelBundle,
    explanation: Explanation,
    method: str = "gradcam",
    target: str = "class",
    class_index: int | None = None,
    prototype: int | None = None,
    smoothgrad: bool = False,
) -> Explanation:
    """The explanation with another post-hoc attribution; nothing else is computed again.

    The map is computed from the explanation's own pixels (the image as the model saw it, which the
    model's preprocessing leaves as they are), so the image is not needed again. When the stored
    attribution already is the one asked for, the explanation itself is returned.

    Args:
        bundle: the model folder that made ``explanation``.
        explanation: from :func:`explain_image`.
        method: one of :data:`explorer.analysis.attributions.METHODS`.
        target: ``class`` (a class logit) or ``prototype`` (a prototype's score).
        class_index: which class for a ``class`` target; the explained class when ``None``.
        prototype: which prototype for a ``prototype`` target; the strongest pair's when ``None``.
        smoothgrad: average the attribution over noisy copies (SmoothGrad).

    Raises:
        ValueError: another model made the explanation, or an option is invalid.
    """
    if explanation.content_hash != bundle.content_hash:
        raise ValueError(
            f"this explanation was made by another model ({explanation.model_id}, "
            f"{explanation.content_hash[:12]}), not {bundle.spec.model_id} "
            f"({bundle.content_hash[:12]}): explain the image again"
        )
    _check_attribution_target(target)
    if target == "class":
        index = explanation.target_class if class_index is None else int(class_index)
    elif prototype is None:
        if not explanation.pairs:
            raise ValueError("the explanation lists no pairs: name the prototype to attribute")
        index = explanation.pairs[0].prototype
    else:
        index = int(prototype)
    stored = explanation.attribution
    name = method + (SMOOTHGRAD_SUFFIX if smoothgrad else "")
    if stored is not None and (stored.method, stored.target_kind, stored.target) == (
        name,
        target,
        index,
    ):
        return explanation
    x = bundle.model.preprocess([explanation.pixels])
    return replace(
        explanation, attribution=_attribution(bundle, x, method, target, index, smoothgrad)
    )
