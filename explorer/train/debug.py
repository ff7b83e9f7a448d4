"""ProtoPDebug: retrain a ProtoPNet so that it forgets the concepts reviewers flagged as misleading.

Bontempelli, Teso, Giunchiglia and Passerini, "Concept-level Debugging of Part-Prototype Networks",
ICLR 2023; public code abonte/protopdebug (``train_and_test.py``: ``_forbidding_loss``,
``_remembering_loss_exp``, ``_compute_total_loss``; ``main.py``; ``conf/experiment/*.yaml``).

A reviewer labels prototypes *misleading* (a confound: background, artefact, marker) or *valid*. Each
labelled prototype's cut-outs (:mod:`explorer.analysis.cut_outs`: the 95th-percentile boxes of its
source and nearest training patches, pasted at their own size on a white canvas of the input size)
become concept images, and fine-tuning adds two terms to ProtoPNet's loss:

* **forgetting** ``L_f = mean_i Σ_p m_ip · s_p(x_i)`` over the forbidden cut-outs ``x_i``, where
  ``s_p(x) = log((d + 1) / (d + ε_f))`` with ``ε_f = 1e-8`` (the public code's ``Debug.epsilon``,
  not the model's 1e-4) and ``d`` the squared distance of prototype ``p`` read at the centre cell of
  the cut-out's map (``act_place: center``) or its minimum over the map (``all``); ``m_ip = 1`` for
  every prototype, or only for the cut-out's class's prototypes (``class_specific_penalization``).
* **remembering** ``L_r = mean_i Σ_p [class(p) = class(x_i)] · s_p(x_i)`` over the remembered
  cut-outs, with the model's own ``ε``; always class-specific, and *subtracted*.

``loss = ProtoPNet's loss + λ_f · L_f − λ_r · L_r``, ``λ_f = 100`` in every configuration of the public
code, ``λ_r = 10`` in the one that uses remembering (covid). With nothing labelled both terms are
absent, and the run is exactly the plain fine-tuning (same seed, same steps, same weights).

A round fine-tunes from the parent's weights — warm-up epochs as the public code's configurations
run every epoch (the add-on and the prototypes train, the backbone is frozen), then, ours, joint epochs
with the backbone's tail at the parent's joint rates — then pushes and trains the last layer again.
Also ours, documented: the concept images go through the backbone with its batch-norm layers in
evaluation mode, so that white canvases never enter its running statistics (the public code's VGG
backbones have no batch norm); rounds beyond the first repeat the same cut-outs (the public code's
later rounds add a reviewer's new labels, which a command line cannot ask for). The defaults (5 warm-up
and 10 joint epochs, class-specific forgetting at the best cell) were chosen on the planted-shortcut
benchmark's data seed 0 and measured, frozen, on its data seed 1 (docs/method.md §6).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.analysis.cut_outs import CutOut
from explorer.data import ImageSet, load_split
from explorer.errors import ExplorerError
from explorer.models.card import model_card_markdown
from explorer.models.checkpoint import ModelBundle, load_model, read_png, save_model
from explorer.models.device import model_device
from explorer.models.protopnet import ProtoPNet, similarity_from_distance, squared_distances
from explorer.spec import ModelSpec
from explorer.train.config import TrainConfig
from explorer.train.trainer import (
    accuracy,
    last_layer_stage,
    push_stage,
    pushed_records,
    run_stage,
    trunk_outputs,
)

log = logging.getLogger(__name__)

ACT_PLACES = ("all", "center")
METHOD = "ProtoPDebug (Bontempelli et al., ICLR 2023)"
PARTIAL_SUFFIX = ".partial"


class Cancelled(ExplorerError):
    """The run was asked to stop; nothing was written."""


@dataclass(frozen=True)
class DebugConfig:
    """One ProtoPDebug retrain, recorded in the new model's ``spec.json`` (``lineage.config``).

    Attributes:
        forget_weight: ``λ_f`` (100 in every configuration of the public code).
        remember_weight: ``λ_r`` (10 in its covid configuration, the one that remembers).
        act_place: where a prototype's similarity to a cut-out is read: ``all`` (the best cell of the
            cut-out's map, the public code's natural and covid configurations) or ``center`` (its
            centre cell, the artificial-confound configuration).
        class_specific: forget only with the cut-out's class's prototypes, as the public code's
            artificial-confound configuration does (``False``: with every prototype, as its natural
            and covid configurations do).
        forget_epsilon: ``ε`` of the forgetting similarity (the public code's ``Debug.epsilon``).
        warm_epochs: fine-tuning epochs of the add-on and prototypes, backbone frozen (the public
            code's configurations run every epoch so: 5 natural, 2 covid, 15 artificial).
        joint_epochs: further epochs with the backbone's tail too, at the parent's joint rates (ours:
            a backbone that learned a shortcut keeps it when only the head is fine-tuned; see
            docs/method.md §6 for what each choice measured).
        last_epochs: last-layer epochs after the push (``None``: the parent's).
        rounds: fine-tune, push and last layer, repeated with the same cut-outs.
        seed: the run's seed (order of the batches, flips, initial state of the optimisers).
    """

    forget_weight: float = 100.0
    remember_weight: float = 10.0
    act_place: str = "all"
    class_specific: bool = True
    forget_epsilon: float = 1e-8
    warm_epochs: int = 5
    joint_epochs: int = 10
    last_epochs: int | None = None
    rounds: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.act_place not in ACT_PLACES:
            raise ValueError(f"act_place must be one of {ACT_PLACES}, not {self.act_place!r}")
        for name in ("warm_epochs", "joint_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
                raise ValueError(f"{name} must be a whole number from 0 to 1000, not {value!r}")
        if self.warm_epochs + self.joint_epochs == 0:
            raise ValueError("a retrain needs at least one warm-up or joint epoch")
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int):
            raise ValueError(f"rounds must be a whole number, not {self.rounds!r}")
        if not 1 <= self.rounds <= 20:
            raise ValueError(f"rounds must be from 1 to 20, not {self.rounds}")
        if self.last_epochs is not None and not 0 <= self.last_epochs <= 1000:
            raise ValueError(f"last_epochs must be from 0 to 1000, not {self.last_epochs}")
        for name in ("forget_weight", "remember_weight"):
            if not 0 <= getattr(self, name) <= 1e6:
                raise ValueError(f"{name} must be from 0 to 1e6, not {getattr(self, name)}")
        if not 0 < self.forget_epsilon < 1:
            raise ValueError(f"forget_epsilon must lie in (0, 1), not {self.forget_epsilon}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


# --- the two terms ---------------------------------------------------------------------------------


def concept_similarities(
    model: ProtoPNet, trunk_output: torch.Tensor, act_place: str, epsilon: float
) -> torch.Tensor:
    """``[N, P]`` every prototype's log-similarity to every concept image.

    Args:
        model: the network being fine-tuned.
        trunk_output: the concept images through the (frozen) trunk.
        act_place: ``center`` (the map's centre cell, ``h // 2, w // 2``) or ``all`` (its minimum
            distance).
        epsilon: ``ε`` of ``log((d + 1) / (d + ε))``.
    """
    tail = model.features.tail
    was_training = tail.training
    tail.eval()  # batch norm: concept images never enter the running statistics
    try:
        trainable = any(p.requires_grad for p in tail.parameters())
        with torch.set_grad_enabled(trainable and torch.is_grad_enabled()):
            tail_output = tail(trunk_output)
    finally:
        tail.train(was_training)
    features = model.add_on(tail_output)
    distances = squared_distances(features, model.prototype_vectors.flatten(1))  # [N, P, h, w]
    if act_place == "center":
        height, width = distances.shape[-2:]
        read = distances[:, :, height // 2, width // 2]
    else:
        read = distances.flatten(2).amin(dim=2)
    activation = model.spec.architecture.activation
    return similarity_from_distance(read, activation, epsilon)


def forgetting_loss(
    similarities: torch.Tensor,
    classes: torch.Tensor,
    identity: torch.Tensor,
    class_specific: bool,
) -> torch.Tensor:
    """``mean_i Σ_p m_ip · s_ip`` (zero without cut-outs).

    Args:
        similarities: ``[N, P]`` prototypes' similarities to the forbidden cut-outs.
        classes: ``[N]`` each cut-out's class.
        identity: ``[P, C]`` the prototypes' class identity.
        class_specific: ``m_ip = 1`` only for prototypes of the cut-out's class (else for all).
    """
    if similarities.shape[0] == 0:
        return similarities.new_zeros(())
    if class_specific:
        mask = identity[:, classes].t().to(similarities.dtype)  # [N, P]
        return (similarities * mask).sum(dim=1).mean()
    return similarities.sum(dim=1).mean()


def remembering_loss(
    similarities: torch.Tensor, classes: torch.Tensor, identity: torch.Tensor
) -> torch.Tensor:
    """``mean_i Σ_p [class(p) = class(x_i)] · s_ip`` over the remembered cut-outs (zero without)."""
    return forgetting_loss(similarities, classes, identity, class_specific=True)


@dataclass
class Concepts:
    """Concept images ready for the loss: their trunk outputs and classes."""

    trunk_output: torch.Tensor  # [N, ...]
    classes: torch.Tensor  # [N]

    @classmethod
    def from_cut_outs(cls, model: ProtoPNet, cut_outs: Sequence[CutOut]) -> Concepts:
        spec = model.spec
        if not cut_outs:
            return cls(torch.zeros(0), torch.zeros(0, dtype=torch.long))
        canvases = [c.on_canvas(spec.input_size) for c in cut_outs]
        with torch.no_grad():
            model.features.trunk.eval()
            trunk = model.features.trunk(model.preprocess(canvases))
        classes = torch.tensor([c.class_index for c in cut_outs], dtype=torch.long)
        classes = classes.to(trunk.device)
        return cls(trunk, classes)

    def __len__(self) -> int:
        return len(self.classes)


@dataclass
class DebugTerms:
    """``λ_f · L_f − λ_r · L_r`` for one model, called at every step (``None`` when nothing is
    labelled: the step is then the plain one)."""

    forbidden: Concepts
    remembered: Concepts
    config: DebugConfig
    last: dict[str, float] = field(default_factory=dict)

    def __call__(self, model: ProtoPNet) -> torch.Tensor | None:
        if not len(self.forbidden) and not len(self.remembered):
            return None
        identity = model.prototype_class_identity
        total = torch.zeros((), dtype=torch.float64, device=identity.device)
        if len(self.forbidden):
            s = concept_similarities(
                model, self.forbidden.trunk_output, self.config.act_place,
                self.config.forget_epsilon,
            )  # fmt: skip
            forget = forgetting_loss(
                s, self.forbidden.classes, identity, self.config.class_specific
            )
            total = total + self.config.forget_weight * forget
            self.last["forget"] = float(forget.detach())
        if len(self.remembered):
            epsilon = model.spec.architecture.epsilon
            s = concept_similarities(
                model, self.remembered.trunk_output, self.config.act_place, epsilon
            )
            remember = remembering_loss(s, self.remembered.classes, identity)
            total = total - self.config.remember_weight * remember
            self.last["remember"] = float(remember.detach())
        return total.float()


# --- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebugProgress:
    """Where a retrain is: ``done`` of ``total`` steps (a training batch is one step; a push and a
    last-layer stage count as an epoch's worth each)."""

    stage: str
    done: int
    total: int


ProgressHook = Callable[[DebugProgress], None]


def parent_config(parent: ModelBundle) -> TrainConfig:
    """The parent's training configuration, from its spec.

    Raises:
        ExplorerError: the parent records none (an imported model): it cannot be fine-tuned here.
    """
    try:
        return TrainConfig.from_dict(parent.spec.training)
    except (ValueError, TypeError) as error:
        raise ExplorerError(
            f"model '{parent.spec.model_id}' records no training configuration that can be run "
            f"again ({error}); a retrain needs a model trained by this explorer"
        ) from None


def load_training_data(config: TrainConfig) -> tuple[ImageSet, ImageSet]:
    """The parent's training and test splits (its recorded data set)."""
    try:
        return (
            load_split(config.dataset, "train", config.input_size),
            load_split(config.dataset, "test", config.input_size),
        )
    except (ValueError, OSError) as error:
        raise ExplorerError(
            f"cannot read the data set the model was trained on ({config.dataset}): {error}"
        ) from None


def fine_tune(
    model: ProtoPNet,
    config: TrainConfig,
    debug: DebugConfig,
    data: tuple[torch.Tensor, torch.Tensor],
    train_set: ImageSet,
    rng: np.random.Generator,
    extra_loss: DebugTerms | None = None,
    progress: ProgressHook | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[dict[str, object]]:
    """One or more rounds of fine-tuning, push and last layer, in place.

    Returns:
        The last push's records.
    """
    batches_per_epoch = -(-len(data[1]) // config.batch_size)
    per_round = (debug.warm_epochs + debug.joint_epochs + 2) * batches_per_epoch
    total, done = debug.rounds * per_round, 0
    stage = "starting"

    def step(count: int = 1) -> None:
        nonlocal done
        if should_stop():
            raise Cancelled("the retrain was cancelled; nothing was written")
        done += count
        if progress is not None:
            progress(DebugProgress(stage, done, total))

    pushed: list[dict[str, object]] = []
    for round_ in range(1, debug.rounds + 1):
        prefix = f"round {round_}/{debug.rounds}: " if debug.rounds > 1 else ""
        if debug.warm_epochs:
            stage = prefix + f"fine-tuning add-on and prototypes ({debug.warm_epochs} epochs)"
            run_stage("warm", model, config, debug.warm_epochs, data, rng, extra_loss, step)
        if debug.joint_epochs:
            stage = prefix + f"fine-tuning with the backbone ({debug.joint_epochs} epochs)"
            run_stage("joint", model, config, debug.joint_epochs, data, rng, extra_loss, step)
        stage = prefix + "push"
        pushed, _ = push_stage(model, config, data, train_set)
        step(batches_per_epoch)
        stage = prefix + "last layer"
        last_layer_stage(model, config, data, rng, debug.last_epochs)
        step(batches_per_epoch)
    model.eval()
    return pushed


def start_run(
    parent: ModelBundle,
    config: DebugConfig,
    train_set: ImageSet,
    test_set: ImageSet,
    threads: int,
) -> tuple[
    ProtoPNet,
    tuple[torch.Tensor, torch.Tensor],
    tuple[torch.Tensor, torch.Tensor],
    np.random.Generator,
]:
    """A fresh copy of the parent (its bundle is never touched), seeded, with the splits through its
    frozen trunk: the state every retrain, and the plain fine-tuning it is compared with, start from.

    Returns:
        The model, ``(train inputs, labels)``, ``(test inputs, labels)`` and the run's generator.
    """
    torch.manual_seed(config.seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(config.seed)
    model = load_model(parent.folder, model_device(parent.model)).model  # where the parent runs
    if not isinstance(model, ProtoPNet):
        raise ExplorerError(f"model '{parent.spec.model_id}' is not a ProtoPNet")
    train_x = trunk_outputs(model, train_set.images, "trunk (train)")
    test_x = trunk_outputs(model, test_set.images, "trunk (test)")
    train_y = torch.from_numpy(train_set.labels)
    test_y = torch.from_numpy(test_set.labels)
    return model, (train_x, train_y), (test_x, test_y), rng


def estimated_minutes(
    training: dict[str, Any], config: DebugConfig = DebugConfig()
) -> float | None:
    """A retrain's minutes estimated from the parent's recorded training time, in proportion to the
    epochs of each (a push and a last-layer stage counted as one epoch each); ``None`` without a
    recorded time."""
    minutes = training.get("minutes")
    epochs = [training.get(k) for k in ("warm_epochs", "joint_epochs")]
    if not isinstance(minutes, int | float) or not all(isinstance(e, int) for e in epochs):
        return None
    parent_units = sum(epochs) + 2  # type: ignore[arg-type]
    units = config.rounds * (config.warm_epochs + config.joint_epochs + 2)
    return float(minutes) * units / parent_units


def partial_folder(out: Path) -> Path:
    """Where a run writes before its folder is complete (renamed to ``out`` at the end)."""
    return out.parent / f".{out.name}{PARTIAL_SUFFIX}"


def check_output_folder(out: Path) -> None:
    """Raises :class:`ExplorerError` unless ``out`` is free (missing, or an empty folder)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExplorerError(
            f"{out} already exists; a retrain writes a new model folder and never replaces one"
        )


def _examples(parent: ModelBundle) -> dict[str, np.ndarray]:
    return {path.name: read_png(path) for path in parent.examples()}


def debug_model(
    parent: ModelBundle,
    forbidden: Sequence[CutOut],
    remembered: Sequence[CutOut],
    out: Path,
    model_id: str,
    labels: Sequence[dict[str, Any]] = (),
    config: DebugConfig = DebugConfig(),
    train_set: ImageSet | None = None,
    test_set: ImageSet | None = None,
    progress: ProgressHook | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    threads: int | None = None,
) -> ModelSpec:
    """Retrains ``parent`` with ProtoPDebug's terms and writes a new model folder at ``out``.

    The parent's folder is only read. The new folder is written beside ``out`` under a hidden
    ``.partial`` name and renamed to ``out`` once complete, so a cancelled or failed run leaves
    nothing behind.

    Args:
        parent: the model to retrain (a ProtoPNet trained by this explorer).
        forbidden: cut-outs of the prototypes labelled misleading.
        remembered: cut-outs of the prototypes labelled valid.
        out: the new model folder (must not exist, or be empty).
        model_id: the new model's id.
        labels: the label events used, as plain records (for the lineage).
        config: the retrain's settings.
        train_set, test_set: the parent's splits (default: loaded from its recorded data set).
        progress: called after every step.
        should_stop: polled at every step; ``True`` cancels the run (:class:`Cancelled`).
        threads: torch threads (default: the parent's training configuration's).

    Returns:
        The new model's spec (lineage, configuration, accuracies).

    Raises:
        ExplorerError: the parent cannot be retrained here, ``out`` is taken, or the data cannot be
            read. Cancelled: ``should_stop`` said so.
    """
    if parent.spec.architecture.family != "protopnet":
        raise ExplorerError(
            f"model '{parent.spec.model_id}' is a {parent.model.family}: ProtoPDebug retrains "
            "ProtoPNets (its terms act on prototype vectors, which this family has not)"
        )
    out = Path(out)
    check_output_folder(out)
    started = time.perf_counter()
    train_config = parent_config(parent).with_overrides(model_id=model_id)
    if train_set is None or test_set is None:
        train_set, test_set = load_training_data(train_config)
    model, data, test_data, rng = start_run(
        parent, config, train_set, test_set, threads or train_config.threads
    )
    train_x, train_y = data
    test_x, test_y = test_data
    terms = DebugTerms(
        Concepts.from_cut_outs(model, forbidden), Concepts.from_cut_outs(model, remembered), config
    )
    accuracies = {"parent": accuracy(model, test_x, test_y)}
    pushed = fine_tune(
        model, train_config, config, data, train_set, rng, terms, progress, should_stop
    )
    accuracies["after_last_layer"] = accuracy(model, test_x, test_y)
    accuracies["train_after_last_layer"] = accuracy(model, train_x, train_y)
    if should_stop():
        raise Cancelled("the retrain was cancelled; nothing was written")
    minutes = (time.perf_counter() - started) / 60
    spec = child_spec(parent, train_config, config, labels, forbidden, remembered, accuracies,
                      minutes, len(train_set), len(test_set))  # fmt: skip
    model.spec = spec
    records, sources = pushed_records(model, pushed, train_set)
    partial = partial_folder(out)
    shutil.rmtree(partial, ignore_errors=True)  # a run killed before it could clean up
    try:
        save_model(model, partial, records, sources, _examples(parent))
        (partial / "README.md").write_text(model_card_markdown(spec))
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("retrained %s as %s in %.1f min: %s", parent.spec.model_id, model_id, minutes,
             accuracies)  # fmt: skip
    return spec


def child_spec(
    parent: ModelBundle,
    train_config: TrainConfig,
    config: DebugConfig,
    labels: Sequence[dict[str, Any]],
    forbidden: Sequence[CutOut],
    remembered: Sequence[CutOut],
    accuracies: dict[str, float],
    minutes: float,
    train_images: int,
    test_images: int,
) -> ModelSpec:
    """The retrained model's spec: the parent's, with a new id, its lineage and its measurements."""
    pspec = parent.spec
    parent_minutes = pspec.training.get("minutes")
    return ModelSpec(
        **{
            **pspec.__dict__,
            "model_id": train_config.model_id,
            "title": f"{pspec.title} — retrained without what was flagged",
            "description": (
                f"{pspec.model_id} retrained with {METHOD}: {len(labels)} labelled prototypes "
                f"({len(forbidden)} forbidden and {len(remembered)} remembered cut-outs). "
                + pspec.description
            ),
            "dataset": {**pspec.dataset, "train_images": train_images, "test_images": test_images},
            "training": {
                **train_config.to_dict(),
                "minutes": round(minutes, 2),
                "torch": torch.__version__,
            },
            "accuracy": {
                "parent_after_last_layer": round(accuracies["parent"], 4),
                "after_last_layer": round(accuracies["after_last_layer"], 4),
                "train_after_last_layer": round(accuracies["train_after_last_layer"], 4),
            },
            "lineage": {
                "method": METHOD,
                "parent": {
                    "model_id": pspec.model_id,
                    "content_hash": parent.content_hash,
                    "folder": str(parent.folder),
                    "training_minutes": parent_minutes,
                },
                "labels": list(labels),
                "cut_outs": {
                    "forbidden": [_cut_out_record(c) for c in forbidden],
                    "remembered": [_cut_out_record(c) for c in remembered],
                },
                "config": config.to_dict(),
            },
        }
    )


def _cut_out_record(cut: CutOut) -> dict[str, Any]:
    return {
        "prototype": cut.prototype,
        "class_index": cut.class_index,
        "image_index": cut.image_index,
        "box": list(cut.box),
    }
