"""A full single-image explanation: prediction, "this looks like that" pairs, evidence, attribution."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from explorer.analysis.activations import ImageActivations, image_activations
from explorer.analysis.attributions import AttributionMap, attribute
from explorer.analysis.whatif import disabled_weight
from explorer.boxes import high_activation_box
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

    @property
    def predicted(self) -> int:
        return self.activations.predicted


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
    """
    model = bundle.model
    x = model.preprocess([rgb])
    with torch.inference_mode():
        output = model(x)
    weight = model.class_weights.detach().numpy()
    if disabled:
        weight = disabled_weight(weight, disabled).astype(weight.dtype)
        logits = output.scores @ torch.from_numpy(weight).t()
        if model.class_bias is not None:
            logits = logits + model.class_bias.detach()
        output = replace(output, logits=logits)
    acts = image_activations(output, weight, model.prototype_classes, bundle.spec.input_size)
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
    attribution_map = None
    if attribution_target not in ("class", "prototype"):
        raise ValueError(
            f"attribution_target must be 'class' or 'prototype', not {attribution_target!r}"
        )
    if attribution is not None and attribution_target == "class":
        attribution_map = attribute(
            model, x, attribution, class_index=target, smoothgrad=smoothgrad
        )
    elif attribution is not None:
        chosen = pairs[0].prototype if attribution_prototype is None else int(attribution_prototype)
        attribution_map = attribute(model, x, attribution, prototype=chosen, smoothgrad=smoothgrad)
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
    )
