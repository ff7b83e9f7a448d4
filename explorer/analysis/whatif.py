"""What-if analyses of the last layer: disable or merge prototypes, read the new test accuracy.

ProtoPNet's logits are linear in the prototype scores, ``logits = scores @ W.T`` (no bias), and the
prototype scores do not depend on the last layer. So the test accuracy of a model whose last layer
is changed — prototypes disabled (their columns zeroed, as PIP-Net's authors correct models) or
merged (their columns added to the one kept) — follows exactly from the test split's stored scores
``[N, P]`` (``NearestPatches.all_scores``) with one small matrix product, without a forward pass.
A what-if for Fashion-MNIST (``N = 10,000``, ``P = 100``, ``C = 10``) takes a few milliseconds;
nothing that depends on the chosen subset is precomputed.

:func:`modified_last_layer` applies the same change to a real model for the duration of a ``with``
block, which is how the tests check that the stored-score answer is the model's answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=nn.Module)


@dataclass(frozen=True)
class WhatIf:
    """The test accuracy of a modified last layer next to the unmodified one.

    Attributes:
        accuracy: share of test images the modified model classifies correctly.
        per_class_accuracy: ``[C]`` the same per true class (NaN for a class without test images).
        baseline_accuracy: the unmodified model's accuracy on the same images.
        baseline_per_class: ``[C]`` the unmodified model's per-class accuracy.
        changed_predictions: how many test images' predicted class changes.
        predictions: ``[N]`` the modified model's predicted classes.
        split_images: how many images the test split has, when the scores cover a sample of it
            (a model folder's shipped analyses may keep a stratified sample); ``None``: all of them.
    """

    accuracy: float
    per_class_accuracy: np.ndarray
    baseline_accuracy: float
    baseline_per_class: np.ndarray
    changed_predictions: int
    predictions: np.ndarray
    split_images: int | None = None

    @property
    def images(self) -> int:
        """How many test images the accuracies are measured on."""
        return len(self.predictions)

    @property
    def measured_on(self) -> str:
        """Which images the accuracies are measured on, in words."""
        if self.split_images is None or self.split_images == self.images:
            return f"all {self.images:,} test images"
        return (
            f"a stratified sample of {self.images:,} of the {self.split_images:,} test images "
            "(shipped with the model; `python -m explorer analyse` scores them all)"
        )

    @property
    def accuracy_change(self) -> float:
        """``accuracy − baseline_accuracy`` (negative: the change costs accuracy)."""
        return self.accuracy - self.baseline_accuracy


def as_weight(weight: Any) -> np.ndarray:
    """A last-layer weight ``[C, P]`` as a float numpy array (torch tensors are detached first).

    Raises:
        ValueError: not a finite 2-D array.
    """
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().cpu().numpy()
    array = np.asarray(weight)
    if array.ndim != 2:
        raise ValueError(f"a last-layer weight must be [C, P], got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError("the last-layer weight holds NaN or infinite values")
    return array


def _prototype_indices(indices: Iterable[int], num_prototypes: int, what: str) -> list[int]:
    """Validated, de-duplicated prototype indices in their first-seen order."""
    result: list[int] = []
    seen: set[int] = set()
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise ValueError(f"{what}: prototype indices must be integers, got {index!r}")
        j = int(index)
        if not 0 <= j < num_prototypes:
            raise ValueError(
                f"{what}: prototype {j} is out of range (the model has {num_prototypes}, "
                f"0..{num_prototypes - 1})"
            )
        if j not in seen:
            seen.add(j)
            result.append(j)
    return result


def disabled_weight(weight: Any, disabled: Iterable[int]) -> np.ndarray:
    """The last layer with some prototypes disabled: their columns set to zero.

    Args:
        weight: ``[C, P]`` the last-layer weight (numpy or torch; not modified).
        disabled: prototype indices to disable (repeats are ignored; may be empty).

    Returns:
        ``[C, P]`` a new array.

    Raises:
        ValueError: the weight is not ``[C, P]`` or an index is out of range.
    """
    new = as_weight(weight).copy()
    columns = _prototype_indices(disabled, new.shape[1], "disabled")
    new[:, columns] = 0
    return new


def merged_weight(weight: Any, keep: int, merge: Iterable[int]) -> np.ndarray:
    """The last layer with prototypes merged into one: columns added to ``keep``'s, then zeroed.

    For prototypes with identical scores (exact duplicates) the logits do not change, since
    ``W[:, keep]·s + Σ W[:, m]·s = (W[:, keep] + Σ W[:, m])·s``.

    Args:
        weight: ``[C, P]`` the last-layer weight (numpy or torch; not modified).
        keep: the prototype that stays.
        merge: the prototypes folded into it (repeats, and ``keep`` itself, are ignored, so a whole
            cluster's members may be passed).

    Returns:
        ``[C, P]`` a new array.

    Raises:
        ValueError: the weight is not ``[C, P]`` or an index is out of range.
    """
    new = as_weight(weight).copy()
    (kept,) = _prototype_indices([keep], new.shape[1], "keep")
    others = [j for j in _prototype_indices(merge, new.shape[1], "merge") if j != kept]
    if others:
        new[:, kept] += new[:, others].sum(axis=1)
        new[:, others] = 0
    return new


def _per_class_accuracy(correct: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)  # [C]
    hits = np.bincount(labels, weights=correct, minlength=num_classes)  # [C]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def what_if(
    scores: Any, labels: Any, weight: Any, new_weight: Any, split_images: int | None = None
) -> WhatIf:
    """The accuracy of a modified last layer from stored prototype scores, without a forward pass.

    ``logits = scores @ W.T`` in float64 for both layers; predictions are the first maximal logit
    (as ``torch.argmax``).

    Args:
        scores: ``[N, P]`` every test image's prototype scores (``NearestPatches.all_scores``).
        labels: ``[N]`` their true classes.
        weight: ``[C, P]`` the model's last-layer weight (the baseline).
        new_weight: ``[C, P]`` the modified weight (:func:`disabled_weight`,
            :func:`merged_weight`).
        split_images: the test split's size when ``scores`` cover a sample of it
            (``NearestPatches.split_size``); recorded in the result.

    Returns:
        The modified and the baseline accuracies on the same images.

    Raises:
        ValueError: shapes disagree, there are no images, a label is out of range, or values are not
            finite.
    """
    old = as_weight(weight)
    new = as_weight(new_weight)
    if new.shape != old.shape:
        raise ValueError(f"new_weight has shape {new.shape}, the model's weight {old.shape}")
    num_classes, num_prototypes = old.shape
    s = np.asarray(scores)
    if s.ndim != 2 or s.shape[1] != num_prototypes:
        raise ValueError(f"scores must be [N, {num_prototypes}] (one per prototype), got {s.shape}")
    if s.shape[0] == 0:
        raise ValueError("scores hold no images")
    y = np.asarray(labels)
    if y.shape != (s.shape[0],):
        raise ValueError(f"labels must be [{s.shape[0]}] (one per scored image), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {y.min()}..{y.max()}")
    s64 = s.astype(np.float64, copy=False)  # [N, P]
    if not np.isfinite(s64).all():
        raise ValueError("scores hold NaN or infinite values")
    # both layers in one product (several times faster than two for C = 10)
    stacked = np.concatenate([old, new]).astype(np.float64, copy=False)  # [2C, P]
    logits = (s64 @ stacked.T).reshape(len(y), 2, num_classes)  # [N, 2, C]
    baseline, predictions = np.ascontiguousarray(logits.argmax(axis=2).T)  # [N] each
    correct = (predictions == y).astype(np.float64)
    baseline_correct = (baseline == y).astype(np.float64)
    return WhatIf(
        accuracy=float(correct.mean()),
        per_class_accuracy=_per_class_accuracy(correct, y, num_classes),
        baseline_accuracy=float(baseline_correct.mean()),
        baseline_per_class=_per_class_accuracy(baseline_correct, y, num_classes),
        changed_predictions=int((predictions != baseline).sum()),
        predictions=predictions,
        split_images=split_images,
    )


@contextmanager
def modified_last_layer(model: ModelT, new_weight: Any) -> Iterator[ModelT]:
    """Temporarily replaces the model's class weights (``class_weights``, in place), restoring them
    on exit.

    The original values are restored even when the block raises (the pattern of zennit's
    canonizers). The parameter object stays the same, so hooks and optimisers referring to it are
    unaffected. Not thread-safe: the model is changed for everyone holding it while the block runs,
    so do not use it on a model other threads are predicting with (:func:`what_if` needs no model).

    Args:
        model: a :class:`~explorer.models.base.PrototypeModel`.
        new_weight: ``[C, P]`` the weight to use inside the block (numpy or torch).

    Yields:
        The same model, modified.

    Raises:
        ValueError: the model has no last layer, or the new weight's shape differs from the model's.
    """
    parameter = getattr(model, "class_weights", None)
    if not isinstance(parameter, torch.Tensor):
        raise ValueError(f"{type(model).__name__} has no class_weights to modify")
    new = torch.as_tensor(as_weight(new_weight), dtype=parameter.dtype, device=parameter.device)
    if new.shape != parameter.shape:
        raise ValueError(
            f"new weight has shape {tuple(new.shape)}, the model's last layer "
            f"{tuple(parameter.shape)}"
        )
    with torch.no_grad():
        saved = parameter.detach().clone()
        parameter.copy_(new)
    try:
        yield model
    finally:
        with torch.no_grad():
            parameter.copy_(saved)
        log.debug("restored the last layer of %s", type(model).__name__)
