"""Two models of one lineage side by side: what a retrain (ProtoPDebug) changed.

For a parent and a model retrained from it (or any two models of one data set and architecture):

* test accuracy overall and per class;
* every prototype: whether its push source moved (image and cell), its own-class weight before and
  after, and the label that the parent's prototype carried;
* how much each labelled confound still activates the model: per labelled prototype's cut-outs, the
  similarity of the *most* similar prototype to each cut-out (the cut-out's best cell, the model's own
  similarity), averaged and maximised over the cut-outs;
* the test images whose prediction changed.

Computation only: words and tables are made by the callers (the facade's Markdown, the CLI's JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from explorer.analysis.cut_outs import CutOut
from explorer.models.base import PrototypeModel
from explorer.models.checkpoint import ModelBundle
from explorer.models.preprocess import forward_batch_size


@dataclass(frozen=True)
class ClassAccuracy:
    name: str
    images: int
    before: float
    after: float


@dataclass(frozen=True)
class PrototypeChange:
    """One prototype before and after.

    Attributes:
        prototype: its number (the same in both models: a retrain keeps the layout).
        class_name: its class.
        label: the parent's current label of it (``misleading``, ``valid``, ... or ``None``).
        source_before, source_after: ``(training image, row, column)`` of its push source, or ``None``
            for a model without push sources.
        moved: the source image or cell changed.
        weight_before, weight_after: its last-layer weight to its own class.
    """

    prototype: int
    class_name: str
    label: str | None
    source_before: tuple[int, int, int] | None
    source_after: tuple[int, int, int] | None
    moved: bool
    weight_before: float
    weight_after: float


@dataclass(frozen=True)
class ConfoundActivation:
    """How strongly one labelled prototype's cut-outs activate each model.

    Attributes:
        prototype: the parent's labelled prototype whose cut-outs these are.
        verdict: its label (``misleading``: a forbidden concept; ``valid``: a remembered one).
        cut_outs: how many.
        mean_before, max_before: over the cut-outs, of the best similarity any prototype of the
            parent has to the cut-out; ``mean_after``, ``max_after``: the same for the new model.
        class_mean_before, class_max_before, class_mean_after, class_max_after: the same over the
            prototypes of the labelled prototype's class only (those a class-specific forgetting
            term acts on; another class's prototype may resemble a marker without using it).
    """

    prototype: int
    verdict: str
    cut_outs: int
    mean_before: float
    max_before: float
    mean_after: float
    max_after: float
    class_mean_before: float
    class_max_before: float
    class_mean_after: float
    class_max_after: float


@dataclass(frozen=True)
class ChangedPrediction:
    image: int
    true_class: str
    before: str
    after: str


@dataclass(frozen=True)
class BeforeAfter:
    """What changed from ``before`` to ``after`` (see the module's docstring).

    Attributes:
        similarity_scale: for reading the confound figures: the similarity of a prototype to a patch
            identical to it (``log(1 / ε)``, 9.21 for ProtoPNet's ε = 1e-4).
    """

    before: str
    after: str
    related: bool
    test_images: int
    accuracy_before: float
    accuracy_after: float
    classes: tuple[ClassAccuracy, ...]
    prototypes: tuple[PrototypeChange, ...]
    confounds: tuple[ConfoundActivation, ...]
    changed: tuple[ChangedPrediction, ...]
    similarity_scale: float

    @property
    def moved(self) -> int:
        return sum(p.moved for p in self.prototypes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["moved"] = self.moved
        return data


@torch.inference_mode()
def predictions(model: PrototypeModel, images: np.ndarray) -> np.ndarray:
    """``[N]`` predicted classes of a split (batched forward passes)."""
    model.eval()
    size = forward_batch_size(model.spec)
    out = [
        model(model.preprocess(images[start : start + size])).logits.argmax(1).cpu().numpy()
        for start in range(0, len(images), size)
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


@torch.inference_mode()
def cut_out_scores(model: PrototypeModel, cut_outs: Sequence[CutOut]) -> np.ndarray:
    """``[N, P]`` every prototype's score on each cut-out (on its white canvas)."""
    if not cut_outs:
        return np.zeros((0, model.num_prototypes))
    canvases = [c.on_canvas(model.spec.input_size) for c in cut_outs]
    return model(model.preprocess(canvases)).scores.double().cpu().numpy()


def _source(bundle: ModelBundle, j: int) -> tuple[int, int, int] | None:
    if not bundle.projection:
        return None
    record = bundle.projection[j]
    return int(record.source_index), int(record.cell[0]), int(record.cell[1])


def _own_weight(model: PrototypeModel) -> np.ndarray:
    weight = model.class_weights.detach().double().cpu().numpy()  # [C, P]
    classes = np.asarray(model.spec.prototype_classes)
    return weight[classes, np.arange(len(classes))]


def before_after(
    before: ModelBundle,
    after: ModelBundle,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    labels: dict[int, str],
    cut_outs: dict[int, list[CutOut]],
) -> BeforeAfter:
    """Compares two models of one data set and prototype layout.

    Args:
        before, after: the parent and the retrained model.
        test_images, test_labels: the test split.
        labels: the parent's current labels (prototype → verdict).
        cut_outs: labelled prototype → its cut-outs (from the parent).

    Raises:
        ValueError: the models' classes or prototype layouts differ.
    """
    if before.spec.class_names != after.spec.class_names:
        raise ValueError(
            f"{before.spec.model_id} and {after.spec.model_id} have different classes; compare "
            "models of one data set"
        )
    if before.spec.prototype_classes != after.spec.prototype_classes:
        raise ValueError(
            f"{before.spec.model_id} and {after.spec.model_id} have different prototypes; a "
            "before/after compares a model with one retrained from it"
        )
    names = before.spec.class_names
    truth = np.asarray(test_labels)
    old, new = predictions(before.model, test_images), predictions(after.model, test_images)
    classes = tuple(
        ClassAccuracy(
            name=name,
            images=int((truth == c).sum()),
            before=float((old[truth == c] == c).mean()) if (truth == c).any() else float("nan"),
            after=float((new[truth == c] == c).mean()) if (truth == c).any() else float("nan"),
        )
        for c, name in enumerate(names)
    )
    w_old, w_new = _own_weight(before.model), _own_weight(after.model)
    prototypes = []
    for j, c in enumerate(before.spec.prototype_classes):
        s_old, s_new = _source(before, j), _source(after, j)
        prototypes.append(
            PrototypeChange(
                prototype=j, class_name=names[c], label=labels.get(j),
                source_before=s_old, source_after=s_new,
                moved=s_old != s_new if s_old and s_new else False,
                weight_before=float(w_old[j]), weight_after=float(w_new[j]),
            )
        )  # fmt: skip
    confounds = []
    proto_classes = np.asarray(before.spec.prototype_classes)
    for j, cuts in sorted(cut_outs.items()):
        b, a = cut_out_scores(before.model, cuts), cut_out_scores(after.model, cuts)
        own = proto_classes == proto_classes[j]
        confounds.append(
            ConfoundActivation(
                prototype=j, verdict=labels.get(j, "misleading"), cut_outs=len(cuts),
                mean_before=float(b.max(1).mean()), max_before=float(b.max()),
                mean_after=float(a.max(1).mean()), max_after=float(a.max()),
                class_mean_before=float(b[:, own].max(1).mean()),
                class_max_before=float(b[:, own].max()),
                class_mean_after=float(a[:, own].max(1).mean()),
                class_max_after=float(a[:, own].max()),
            )
        )  # fmt: skip
    changed = tuple(
        ChangedPrediction(int(i), names[truth[i]], names[old[i]], names[new[i]])
        for i in np.flatnonzero(old != new)
    )
    epsilon = before.spec.architecture.epsilon
    lineage_parent = after.spec.lineage.get("parent", {})
    return BeforeAfter(
        before=before.spec.model_id,
        after=after.spec.model_id,
        related=lineage_parent.get("content_hash") == before.content_hash,
        test_images=len(truth),
        accuracy_before=float((old == truth).mean()),
        accuracy_after=float((new == truth).mean()),
        classes=classes,
        prototypes=tuple(prototypes),
        confounds=tuple(confounds),
        changed=changed,
        similarity_scale=float(np.log(1 / epsilon)),
    )
