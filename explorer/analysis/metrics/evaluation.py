"""One pass over a split that measures every metric of a model's prototypes (computation only).

The metrics and their exact definitions live in their own modules (:mod:`.consistency`,
:mod:`.stability`, :mod:`.purity`, :mod:`.background`, :mod:`.deletion`); this module runs the
model once on the clean images and once on the noisy ones, batch by batch, keeps only the small
per-pair results (part vectors, background shares) and reads the deletion/insertion curves on a
class-stratified subset of the images. What needs annotations is measured only where the data set
has them (keypoints for consistency and stability, masks for the object share and the background
share); the result says which were measured and on how many images.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from explorer.analysis.metrics.background import upsampled_background_share
from explorer.analysis.metrics.consistency import Consistency, consistency
from explorer.analysis.metrics.deletion import (
    STEPS,
    Curves,
    batch_curves,
    evidence_map,
    evidence_order,
)
from explorer.analysis.metrics.parts import half_size, part_vector
from explorer.analysis.metrics.purity import class_purity, object_share
from explorer.analysis.metrics.stability import perturb, stability, stability_score
from explorer.analysis.nearest import NearestPatches
from explorer.boxes import upsample_map
from explorer.data.base import ImageSet
from explorer.models.base import PrototypeModel, model_device

CURVE_FIELDS = tuple(f.name for f in dataclasses.fields(Curves))
FAITHFULNESS_IMAGES = 120
"""Images read for deletion/insertion by default (stratified by class): 4 curves of 17 points
each cost 68 forward passes per image."""


@dataclass(frozen=True)
class ModelMetrics:
    """Every metric of a model's prototypes on one split.

    Per-prototype arrays are ``[P]`` (NaN where a prototype has no image of its class or the
    data set lacks the annotation).

    Attributes:
        split: the split measured.
        dataset: its name.
        num_images: images in the split.
        prototype_classes: ``[P]``.
        part_names: the annotated parts (empty without keypoints).
        consistency: per prototype (``None`` without keypoints).
        stability: ``[P]`` share of unchanged part vectors (``None`` without keypoints).
        class_purity: ``[P]`` share of the top-k patches from the prototype's class.
        object_share: ``[P]`` share of the top-k patches on the object (``None`` without masks).
        background_share: ``[P]`` activation mass outside the object (``None`` without masks).
        top_k: patches per prototype in the purity.
        curves: deletion / insertion curves.
        noise_seed: the seed of the stability noise and the random pixel orders.
    """

    split: str
    dataset: str
    num_images: int
    prototype_classes: np.ndarray
    part_names: tuple[str, ...]
    consistency: Consistency | None
    stability: np.ndarray | None
    class_purity: np.ndarray
    object_share: np.ndarray | None
    background_share: np.ndarray | None
    top_k: int
    curves: Curves
    noise_seed: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def num_prototypes(self) -> int:
        return len(self.prototype_classes)

    def summary(self) -> dict[str, float | None]:
        """The model-level figures (None where not measured)."""

        def mean(values: np.ndarray | None) -> float | None:
            if values is None or np.all(np.isnan(values)):
                return None
            return float(np.nanmean(values))

        return {
            "consistency": None if self.consistency is None else self.consistency.score,
            "stability": None if self.stability is None else stability_score(self.stability),
            "class_purity": mean(self.class_purity),
            "object_share": mean(self.object_share),
            "background_share": mean(self.background_share),
            "deletion_auc": self.curves.auc("deletion"),
            "random_deletion_auc": self.curves.auc("random_deletion"),
            "insertion_auc": self.curves.auc("insertion"),
            "random_insertion_auc": self.curves.auc("random_insertion"),
        }

    def per_prototype(self) -> list[dict[str, object]]:
        """One record per prototype (``None`` where not measured)."""

        def value(array: np.ndarray | None, j: int) -> float | None:
            if array is None or np.isnan(array[j]):
                return None
            return round(float(array[j]), 4)

        rows = []
        for j in range(self.num_prototypes):
            row: dict[str, object] = {"prototype": j, "class": int(self.prototype_classes[j])}
            if self.consistency is not None:
                rates = self.consistency.rates[j]
                row["consistent"] = bool(self.consistency.consistent[j])
                row["best_part"] = self.part_names[int(rates.argmax())] if len(rates) else None
                row["best_part_rate"] = round(float(rates.max()), 4) if len(rates) else None
            row["stability"] = value(self.stability, j)
            row["class_purity"] = value(self.class_purity, j)
            row["object_share"] = value(self.object_share, j)
            row["background_share"] = value(self.background_share, j)
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, object]:
        """Everything, for JSON: where it was measured, the model-level figures, per prototype."""
        return {
            "split": self.split,
            "dataset": self.dataset,
            "images": self.num_images,
            "parts": list(self.part_names),
            "faithfulness": {
                "images": len(self.curves.images),
                "steps": self.curves.steps,
                "explained_class": "the model's prediction on each clean image",
            },
            "noise_seed": self.noise_seed,
            "top_k": self.top_k,
            "summary": {k: (None if v is None else round(v, 4)) for k, v in self.summary().items()},
            "prototypes": self.per_prototype(),
        }

    # --- storage -----------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {
            "split": np.array(self.split),
            "dataset": np.array(self.dataset),
            "num_images": np.array(self.num_images),
            "prototype_classes": self.prototype_classes,
            "part_names": np.array(self.part_names, dtype=str),
            "class_purity": self.class_purity,
            "top_k": np.array(self.top_k),
            "noise_seed": np.array(self.noise_seed),
            "notes": np.array(self.notes, dtype=str),
        }
        for name in CURVE_FIELDS:
            arrays[f"curves_{name}"] = getattr(self.curves, name)
        if self.consistency is not None:
            arrays["consistency_rates"] = self.consistency.rates
            arrays["consistency_consistent"] = self.consistency.consistent
            arrays["consistency_images"] = self.consistency.images
        for name in ("stability", "object_share", "background_share"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ModelMetrics:
        curves = Curves(**{name: arrays[f"curves_{name}"] for name in CURVE_FIELDS})
        found = (
            Consistency(
                rates=arrays["consistency_rates"],
                consistent=arrays["consistency_consistent"].astype(bool),
                images=arrays["consistency_images"],
            )
            if "consistency_rates" in arrays
            else None
        )
        return cls(
            split=str(arrays["split"]),
            dataset=str(arrays["dataset"]),
            num_images=int(arrays["num_images"]),
            prototype_classes=arrays["prototype_classes"],
            part_names=tuple(str(n) for n in arrays["part_names"]),
            consistency=found,
            stability=arrays.get("stability"),
            class_purity=arrays["class_purity"],
            object_share=arrays.get("object_share"),
            background_share=arrays.get("background_share"),
            top_k=int(arrays["top_k"]),
            curves=curves,
            noise_seed=int(arrays["noise_seed"]),
            notes=tuple(str(n) for n in arrays["notes"]),
        )


def visible_parts(data: ImageSet) -> np.ndarray | None:
    """``[N, K]`` which parts are annotated per image (``None`` without keypoints): the
    ``part_visible`` extra, else every keypoint with finite coordinates."""
    if "keypoints" not in data.extras:
        return None
    if "part_visible" in data.extras:
        return data.extras["part_visible"].astype(bool)
    return np.isfinite(data.extras["keypoints"]).all(axis=-1)


def stratified(labels: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` image indices, the same number from each class (the first of each, in order;
    classes with fewer give all they have)."""
    labels = np.asarray(labels)
    if count <= 0 or count >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    chosen: list[int] = []
    per_class = max(1, count // len(classes))
    for cls in classes:
        chosen.extend(np.flatnonzero(labels == cls)[:per_class].tolist())
    return np.sort(np.asarray(chosen[:count], dtype=np.int64))


def _forward_maps(model: PrototypeModel, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out = model(x.to(model_device(model)))
    return out.similarity_maps.detach().cpu().numpy(), out.logits.detach().cpu().numpy()


def evaluate(
    model: PrototypeModel,
    data: ImageSet,
    nearest: NearestPatches,
    *,
    faithfulness_images: int = FAITHFULNESS_IMAGES,
    steps: int = STEPS,
    seed: int = 0,
    batch_size: int = 100,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> ModelMetrics:
    """Measures every metric of ``model``'s prototypes on ``data``.

    Args:
        model: the network (eval mode).
        data: the split, with ``keypoints`` / ``mask`` extras where known.
        nearest: the prototypes' top-k patches *in this split* (for the purity).
        faithfulness_images: images read for deletion/insertion (stratified; 0: all).
        steps: deletion/insertion steps.
        seed: seeds the stability noise and the random pixel orders.
        batch_size: images per forward pass.
        progress: wraps the batch iterator.
    """
    model.eval()
    classes = np.asarray(model.prototype_classes)
    labels = np.asarray(data.labels)
    size = tuple(model.spec.input_size)
    visible = visible_parts(data)
    keypoints = data.extras.get("keypoints")
    masks = data.extras.get("mask")
    half = half_size(size)
    num_images, num_prototypes = len(labels), len(classes)
    num_parts = 0 if keypoints is None else keypoints.shape[1]
    clean = np.zeros((num_images, num_prototypes, num_parts), dtype=bool)
    noisy = np.zeros_like(clean)
    background = np.zeros((num_images, num_prototypes))
    own = labels[:, None] == classes[None, :]  # [N, P] the pairs read
    chosen = stratified(labels, faithfulness_images)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    weight = model.class_weights.detach().cpu().numpy()
    forward = _logits_of(model)
    curves: dict[str, list[np.ndarray]] = {}
    explained: list[np.ndarray] = []
    for first in progress(range(0, num_images, batch_size)):
        rows = np.arange(first, min(first + batch_size, num_images))
        x = model.preprocess(data.images[rows])
        maps, logits = _forward_maps(model, x)
        noisy_maps = _forward_maps(model, perturb(x, generator))[0] if num_parts else None
        for b, i in enumerate(rows):
            for p in np.flatnonzero(own[i]):
                upsampled = upsample_map(maps[b, p], size)  # once: the peak and the mass read it
                if num_parts:
                    clean[i, p] = part_vector(upsampled, keypoints[i], visible[i], half)
                    noisy_upsampled = upsample_map(noisy_maps[b, p], size)
                    noisy[i, p] = part_vector(noisy_upsampled, keypoints[i], visible[i], half)
                if masks is not None:  # read at the mask's size (a named set's may differ)
                    at_mask = (
                        upsampled
                        if masks[i].shape == upsampled.shape
                        else upsample_map(maps[b, p], masks[i].shape)
                    )
                    background[i, p] = upsampled_background_share(at_mask, masks[i])
        picked = np.flatnonzero(np.isin(rows, chosen))
        if len(picked):
            targets = logits[picked].argmax(axis=1)
            orders = np.stack(
                [
                    evidence_order(evidence_map(maps[b], weight, int(c), size))
                    for b, c in zip(picked, targets, strict=True)
                ]
            )
            randoms = np.stack([rng.permutation(size[0] * size[1]) for _ in picked])
            for order_name, pixel_orders in (("", orders), ("random_", randoms)):
                for mode, values in batch_curves(
                    forward, x[picked], pixel_orders, targets, steps
                ).items():
                    curves.setdefault(order_name + mode, []).append(values)
            explained.append(targets)
    found = consistency(clean, visible, labels, classes) if num_parts else None
    stable = stability(clean, noisy, labels, classes) if num_parts else None
    share = None
    if masks is not None:
        share = np.array(
            [
                background[own[:, p], p].mean() if own[:, p].any() else np.nan
                for p in range(num_prototypes)
            ]
        )
    empty = np.zeros((0, steps + 1))
    return ModelMetrics(
        split=data.split,
        dataset=data.name,
        num_images=num_images,
        prototype_classes=classes,
        part_names=_part_names(data, num_parts),
        consistency=found,
        stability=stable,
        class_purity=class_purity(nearest.labels, classes),
        object_share=None if masks is None else object_share(nearest.images, nearest.boxes, masks),
        background_share=share,
        top_k=nearest.images.shape[1],
        curves=Curves(
            deletion=np.concatenate(curves.get("deletion", [empty])),
            insertion=np.concatenate(curves.get("insertion", [empty])),
            random_deletion=np.concatenate(curves.get("random_deletion", [empty])),
            random_insertion=np.concatenate(curves.get("random_insertion", [empty])),
            images=chosen,
            classes=np.concatenate(explained) if explained else np.zeros(0, dtype=np.int64),
        ),
        noise_seed=seed,
    )


def _part_names(data: ImageSet, num_parts: int) -> tuple[str, ...]:
    names = tuple(data.part_names)
    return names if len(names) == num_parts else tuple(f"part {k}" for k in range(num_parts))


def _logits_of(model: PrototypeModel) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        return model(x).logits

    return forward
