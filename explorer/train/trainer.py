"""Runs ProtoPNet's training stages for a :class:`TrainConfig` and writes a model folder."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from explorer.data import ImageSet, load_split
from explorer.errors import ExplorerError
from explorer.models.card import model_card_markdown
from explorer.models.checkpoint import save_model
from explorer.models.device import describe_device, model_device
from explorer.models.preprocess import to_model_pixels
from explorer.models.protopnet import ProtoPNet
from explorer.spec import ArchitectureSpec, ModelSpec
from explorer.train.config import TrainConfig
from explorer.train.losses import off_class_l1, protopnet_loss
from explorer.train.push import (
    object_cells,
    prototypes_on_object,
    push_prototypes,
    self_activation_box,
)
from explorer.types import PrototypeRecord

log = logging.getLogger(__name__)
PREPROCESS_CHUNK = 256


def spec_from_config(config: TrainConfig, class_names: tuple[str, ...]) -> ModelSpec:
    """The model spec a run produces (accuracies are filled in after training)."""
    return ModelSpec(
        model_id=config.model_id,
        title=config.title or config.model_id,
        description=config.description,
        architecture=ArchitectureSpec(
            backbone=config.backbone,
            prototypes_per_class=config.prototypes_per_class,
            prototype_dim=config.prototype_dim,
            backbone_options=dict(config.backbone_options),
        ),
        input_size=config.input_size,
        channels=config.channels,
        grey_input=config.grey_input,
        mean=config.mean,
        std=config.std,
        class_names=class_names,
        licence=config.licence,
    )


@torch.no_grad()
def trunk_outputs(model: ProtoPNet, images: np.ndarray, desc: str) -> torch.Tensor:
    """Preprocesses a split and runs the frozen trunk once on the model's device (the cache every
    stage trains on, kept in CPU memory; :func:`batches` moves each batch to the device)."""
    model.features.trunk.eval()
    chunks = []
    for start in tqdm(range(0, len(images), PREPROCESS_CHUNK), desc=desc, leave=False):
        x = model.preprocess(images[start : start + PREPROCESS_CHUNK])
        chunks.append(model.features.trunk(x).cpu())
    return torch.cat(chunks)


def batches(
    inputs: torch.Tensor,
    labels: torch.Tensor,
    size: int,
    rng: np.random.Generator | None = None,
    device: torch.device | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """``(inputs, labels, first_index)`` batches, shuffled when ``rng`` is given, on ``device``
    (default: where ``inputs`` are)."""
    order = rng.permutation(len(labels)) if rng is not None else np.arange(len(labels))
    for start in range(0, len(order), size):
        idx = torch.from_numpy(order[start : start + size]).to(inputs.device)
        yield inputs[idx].to(device), labels[idx.to(labels.device)].to(device), start


@torch.no_grad()
def accuracy(
    model: ProtoPNet, inputs: torch.Tensor, labels: torch.Tensor, size: int = 256
) -> float:
    """Top-1 accuracy from trunk outputs."""
    model.eval()
    correct = 0
    for x, y, _ in batches(inputs, labels, size, device=model_device(model)):
        correct += int((model.forward_from_trunk(x).logits.argmax(1) == y).sum())
    return correct / len(labels)


@torch.no_grad()
def prototype_scores(model: ProtoPNet, inputs: torch.Tensor, size: int = 256) -> torch.Tensor:
    """``[N, P]`` prototype scores from trunk outputs."""
    model.eval()
    return torch.cat(
        [
            model.forward_from_trunk(x).scores.cpu()
            for x, _, _ in batches(inputs, inputs[:, 0, 0, 0], size, device=model_device(model))
        ]
    )


def _set_trainable(model: ProtoPNet, stage: str) -> None:
    """warm: add-on + prototypes; joint: + backbone tail; last: last layer only. The trunk never trains."""
    for p in model.parameters():
        p.requires_grad_(False)
    groups: dict[str, list[nn.Parameter]] = {
        "warm": [*model.add_on.parameters(), model.prototype_vectors],
        "joint": [
            *model.features.tail.parameters(),
            *model.add_on.parameters(),
            model.prototype_vectors,
        ],
        "last": [model.last_layer.weight],
    }
    for p in groups[stage]:
        p.requires_grad_(True)


def _run_epochs(
    model: ProtoPNet,
    config: TrainConfig,
    stage: str,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    data: tuple[torch.Tensor, torch.Tensor],
    rng: np.random.Generator,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    extra_loss: Callable[[ProtoPNet], torch.Tensor | None] | None = None,
    step_hook: Callable[[], None] | None = None,
) -> None:
    """``epochs`` epochs of one stage over shuffled trunk outputs.

    Args:
        extra_loss: a term added to ProtoPNet's loss at every step (ProtoPDebug's); ``None``, or a
            term that returns ``None``, adds nothing (the step is then exactly the plain one).
        step_hook: called after every step (progress, or a request to stop by raising).
    """
    inputs, labels = data
    flip = config.hflip and isinstance(model.features.trunk, nn.Identity)
    for epoch in range(epochs):
        model.train()
        model.features.trunk.eval()
        total, seen = 0.0, 0
        progress = tqdm(
            batches(inputs, labels, config.batch_size, rng, model_device(model)),
            total=-(-len(labels) // config.batch_size),
            desc=f"{stage} {epoch + 1}/{epochs}",
            leave=False,
        )
        for x, y, _ in progress:
            if flip:
                mask = torch.from_numpy(rng.random(len(y)) < 0.5).to(x.device)
                x = torch.where(mask[:, None, None, None], x.flip(-1), x)
            loss = protopnet_loss(model, model.forward_from_trunk(x), y, config.loss)
            extra = extra_loss(model) if extra_loss is not None else None
            if extra is not None:
                loss = loss + extra
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            seen += len(y)
            progress.set_postfix(loss=f"{total / seen:.3f}")
            if step_hook is not None:
                step_hook()
        if scheduler is not None:
            scheduler.step()
        log.info("%s epoch %d/%d: loss %.4f", stage, epoch + 1, epochs, total / seen)


def _train_last_layer(
    model: ProtoPNet,
    config: TrainConfig,
    scores: torch.Tensor,
    labels: torch.Tensor,
    rng: np.random.Generator,
) -> None:
    """The convex last stage: CE + L1 on the (fixed) prototype scores of the pushed model."""
    _set_trainable(model, "last")
    optimizer = torch.optim.Adam([model.last_layer.weight], lr=config.lr_last)
    for _ in tqdm(range(config.last_epochs), desc="last layer", leave=False):
        for s, y, _ in batches(scores, labels, config.batch_size, rng, model_device(model)):
            loss = config.loss.cross_entropy * F.cross_entropy(model.last_layer(s), y)
            loss = loss + config.loss.l1 * off_class_l1(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


ExtraLoss = Callable[[ProtoPNet], torch.Tensor | None]
"""A term added to ProtoPNet's loss at every step (``None``: nothing added)."""


def _warm_optimizer(model: ProtoPNet, config: TrainConfig) -> tuple[torch.optim.Optimizer, None]:
    """Warm-up: the add-on and the prototypes (Adam, ``lr_warm``); no schedule."""
    params = [{"params": model.add_on.parameters()}, {"params": [model.prototype_vectors]}]
    return torch.optim.Adam(params, lr=config.lr_warm), None


def _joint_optimizer(
    model: ProtoPNet, config: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Joint: the backbone's tail too, each part at its own rate, divided by 10 every
    ``joint_lr_step`` epochs."""
    joint = torch.optim.Adam(
        [
            {"params": model.features.tail.parameters(), "lr": config.lr_features},
            {"params": model.add_on.parameters(), "lr": config.lr_add_on},
            {"params": [model.prototype_vectors], "lr": config.lr_prototypes},
        ]
    )
    return joint, torch.optim.lr_scheduler.StepLR(joint, step_size=config.joint_lr_step, gamma=0.1)


STAGE_OPTIMIZERS = {"warm": _warm_optimizer, "joint": _joint_optimizer}
"""The optimiser (and schedule) of each gradient stage, by name (see :func:`_set_trainable`)."""


def run_stage(
    stage: str,
    model: ProtoPNet,
    config: TrainConfig,
    epochs: int,
    data: tuple[torch.Tensor, torch.Tensor],
    rng: np.random.Generator,
    extra_loss: ExtraLoss | None = None,
    step_hook: Callable[[], None] | None = None,
) -> None:
    """``epochs`` epochs of the ``warm`` stage (add-on and prototypes; the backbone frozen) or the
    ``joint`` stage (the backbone's tail too), with a fresh optimiser."""
    _set_trainable(model, stage)
    optimizer, schedule = STAGE_OPTIMIZERS[stage](model, config)
    _run_epochs(model, config, stage, optimizer, epochs, data, rng, schedule, extra_loss, step_hook)


def push_stage(
    model: ProtoPNet,
    config: TrainConfig,
    data: tuple[torch.Tensor, torch.Tensor],
    train_set: ImageSet,
) -> tuple[list[dict[str, object]], dict[str, float | int] | None]:
    """Push onto the unaugmented training split (onto the object only with ``push_on_object``).

    Returns:
        The push records, and how many prototypes sit on the object where masks are known.
    """
    train_x, train_y = data
    device = model_device(model)
    with torch.no_grad():
        grid = tuple(model.forward_from_trunk(train_x[:1].to(device)).similarity_maps.shape[-2:])
    masks = train_set.extras.get("mask")
    allowed = object_cells(masks, grid) if config.push_on_object else None
    pushed = push_prototypes(model, batches(train_x, train_y, 256, device=device), allowed)
    on_object = prototypes_on_object(masks, grid, pushed) if masks is not None else None
    return pushed, on_object


def last_layer_stage(
    model: ProtoPNet,
    config: TrainConfig,
    data: tuple[torch.Tensor, torch.Tensor],
    rng: np.random.Generator,
    epochs: int | None = None,
) -> None:
    """The convex last stage on the pushed model's prototype scores (``epochs`` or the config's)."""
    train_x, train_y = data
    if epochs is not None:
        config = config.with_overrides(last_epochs=epochs)
    _train_last_layer(model, config, prototype_scores(model, train_x), train_y, rng)


def pushed_records(
    model: ProtoPNet, pushed: list[dict[str, object]], train_set: ImageSet
) -> tuple[list[PrototypeRecord], dict[str, np.ndarray]]:
    """Per prototype its push record (source image, cell, 95th-percentile box) and the source images
    at model-input size by file name, for :func:`save_model`."""
    spec = model.spec
    records, sources = [], {}
    for j, info in enumerate(pushed):
        index = int(info["source_index"])  # type: ignore[call-overload]
        name = f"train{index}.png"
        pixels = to_model_pixels(train_set.images[index], spec)
        sources[name] = pixels
        box, _ = self_activation_box(model, model.preprocess([pixels]), j)
        records.append(
            PrototypeRecord(
                index=j,
                class_index=int(model.prototype_classes[j]),
                source_index=index,
                cell=info["cell"],  # type: ignore[arg-type]
                box=box,
                source_file=name,
            )
        )
    return records, sources


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _examples(test: ImageSet, per_class: int) -> dict[str, np.ndarray]:
    """The first ``per_class`` test images of every class, named ``<class>_<slug>_<k>_test<index>.png``."""
    out: dict[str, np.ndarray] = {}
    for c, name in enumerate(test.class_names):
        for k, i in enumerate(np.flatnonzero(test.labels == c)[:per_class]):
            out[f"{c:02d}_{_slug(name)}_{k}_test{i}.png"] = test.images[i]
    return out


def train(
    config: TrainConfig,
    out: Path,
    train_set: ImageSet | None = None,
    test_set: ImageSet | None = None,
    device: torch.device | str = "cpu",
) -> ModelSpec:
    """Trains a ProtoPNet on ``device`` and writes ``out`` (spec, weights, projection, sources,
    examples); the device is recorded in the spec's ``training`` (a GPU run is not bit-identical
    to a CPU run of the same seed).

    Returns:
        The written spec, with measured accuracies and the run's configuration.
    """
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    size = config.input_size
    train_set = train_set if train_set is not None else load_split(config.dataset, "train", size)
    if config.push_on_object and "mask" not in train_set.extras:  # before hours of training
        raise ExplorerError(
            f"--push-on-object needs object masks, and {config.dataset} has none (an ImageFolder "
            "has no masks): train without it"
        )
    test_set = test_set if test_set is not None else load_split(config.dataset, "test", size)
    spec = spec_from_config(config, train_set.class_names)
    device = torch.device(device)
    model = ProtoPNet(spec, pretrained_backbone=config.pretrained).to(device)

    train_x = trunk_outputs(model, train_set.images, "trunk (train)")
    test_x = trunk_outputs(model, test_set.images, "trunk (test)")
    train_y = torch.from_numpy(train_set.labels)
    test_y = torch.from_numpy(test_set.labels)
    data = (train_x, train_y)
    accuracies: dict[str, float] = {}

    run_stage("warm", model, config, config.warm_epochs, data, rng)
    accuracies["after_warm"] = accuracy(model, test_x, test_y)
    run_stage("joint", model, config, config.joint_epochs, data, rng)
    accuracies["before_push"] = accuracy(model, test_x, test_y)
    pushed, on_object = push_stage(model, config, data, train_set)
    accuracies["after_push"] = accuracy(model, test_x, test_y)
    last_layer_stage(model, config, data, rng)
    accuracies["after_last_layer"] = accuracy(model, test_x, test_y)
    accuracies["train_after_last_layer"] = accuracy(model, train_x, train_y)
    model.eval()

    records, sources = pushed_records(model, pushed, train_set)
    minutes = (time.perf_counter() - started) / 60
    spec = ModelSpec(
        **{
            **spec.__dict__,
            "dataset": {
                "name": config.dataset,
                "train_images": len(train_set),
                "test_images": len(test_set),
            },
            "training": {
                **config.to_dict(),
                "minutes": round(minutes, 1),
                "torch": torch.__version__,
                **({"device": describe_device(device)} if device.type != "cpu" else {}),
                **({"prototypes_on_object": on_object} if on_object else {}),
            },
            "accuracy": {k: round(v, 4) for k, v in accuracies.items()},
        }
    )
    model.spec = spec
    save_model(model, out, records, sources, _examples(test_set, config.examples_per_class))
    (out / "README.md").write_text(model_card_markdown(spec))
    log.info("trained %s in %.1f min: %s", config.model_id, minutes, accuracies)
    return spec
