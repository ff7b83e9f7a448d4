"""Original ProtoPNet state dicts: ``torch.save(model.state_dict())`` (the line ``save.py`` has commented
out), loaded with ``weights_only=True`` and no extra globals.

A state dict does not hold ``prototype_class_identity``, ``img_size``, the activation or ``epsilon``, nor the
layer hyper-parameters. The class identity must therefore be stated: a file or list with one class index
per prototype, or ``contiguous`` (blocks of ``P / C``, as a freshly constructed, never pruned PPNet has it)
— never guessed. The rest defaults to the original's values (224 px, ``log``, 1e-4) unless given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.errors import CheckpointError
from explorer.models.importers.network import (
    ImportedNetwork,
    Importer,
    ReadOptions,
    epoch_from_name,
)
from explorer.models.importers.original import network_from_original_state
from explorer.models.importers.safe_pickle import (
    TENSOR_GLOBALS,
    load_checkpoint,
    referenced_globals,
)
from explorer.spec import DEFAULT_EPSILON

CONTIGUOUS = "contiguous"
MAX_IDENTITY_BYTES = 16 * 1024**2
WRAPPERS = ("state_dict", "model_state_dict", "model")


def read_class_identity(
    value: Any, num_prototypes: int, num_classes: int, where: str
) -> tuple[int, ...]:
    """The class of every prototype from what the user stated.

    Args:
        value: ``"contiguous"``; a sequence of class indices; or a path to a ``.json`` (a list of
            indices or a ``[P, C]`` one-hot list), ``.npy`` (``[P]`` indices or ``[P, C]`` one-hot,
            read without pickle) or text file (indices separated by commas, spaces or new lines).

    Raises:
        CheckpointError: none given, unreadable, or not one class in ``0..C-1`` for each of ``P``.
    """
    if value is None:
        raise CheckpointError(
            f"{where}: a state dict does not store which class each prototype belongs to; give "
            "--class-identity FILE (one class index per prototype) or --class-identity contiguous "
            f"(blocks of P/C = {num_prototypes}/{num_classes})"
        )
    if isinstance(value, str) and value == CONTIGUOUS:
        if num_prototypes % num_classes:
            raise CheckpointError(
                f"{where}: {num_prototypes} prototypes do not split into contiguous blocks for "
                f"{num_classes} classes"
            )
        per_class = num_prototypes // num_classes
        return tuple(j // per_class for j in range(num_prototypes))
    values = _identity_file(Path(value)) if isinstance(value, str | Path) else value
    array = np.asarray(values)
    if array.ndim == 2:  # one-hot rows
        if (
            array.shape != (num_prototypes, num_classes)
            or not np.isin(array, (0, 1)).all()
            or not (array.sum(axis=1) == 1).all()
        ):
            raise CheckpointError(
                f"{where}: the class identity matrix must be one-hot [{num_prototypes}, {num_classes}], "
                f"not {list(array.shape)}"
            )
        array = array.argmax(axis=1)
    if array.ndim != 1 or (
        not np.issubdtype(array.dtype, np.integer)
        and not (np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array)))
    ):
        raise CheckpointError(f"{where}: the class identity must list one integer per prototype")
    classes = tuple(int(c) for c in array.tolist())
    if len(classes) != num_prototypes or not all(0 <= c < num_classes for c in classes):
        raise CheckpointError(
            f"{where}: the class identity does not match the last layer: it lists {len(classes)} "
            f"prototypes with classes {min(classes, default=0)}..{max(classes, default=0)}, the last "
            f"layer has {num_prototypes} prototypes and {num_classes} classes"
        )
    return classes


def _identity_file(path: Path) -> Sequence[Any] | np.ndarray:
    if not path.is_file():
        raise CheckpointError(f"class identity file {path} does not exist")
    if path.stat().st_size > MAX_IDENTITY_BYTES:
        raise CheckpointError(f"class identity file {path.name} is larger than 16 MiB")
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        text = path.read_text()
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return [int(v) for v in re.split(r"[\s,;]+", text.strip()) if v]
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"class identity file {path.name} is unreadable ({error})") from None


def load_state_dict_file(path: Path, where: str) -> dict[str, torch.Tensor]:
    """A ``torch.save`` of a dict of tensors, weights-only, with no global beyond tensor rebuilding;
    unwraps ``{"state_dict": ...}``-style wrappers and DataParallel's ``module.`` prefix."""
    loaded = load_checkpoint(path, (), where)
    for _ in range(2):
        if isinstance(loaded, dict):
            wrapped = [k for k in WRAPPERS if isinstance(loaded.get(k), dict)]
            if wrapped and not any(isinstance(v, torch.Tensor) for v in loaded.values()):
                loaded = loaded[wrapped[0]]
    if (
        not isinstance(loaded, dict)
        or not loaded
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items())
    ):
        raise CheckpointError(f"{where} does not hold a state dict (a dict of named tensors)")
    if all(k.startswith("module.") for k in loaded):
        loaded = {k.removeprefix("module."): v for k, v in loaded.items()}
    return dict(loaded)


def _mismatched_weights(weight: torch.Tensor, classes: tuple[int, ...]) -> int:
    """How many prototypes give their largest last-layer weight to another class than their own."""
    best = weight.detach().double().argmax(dim=0)
    return int((best != torch.tensor(classes)).sum())


class ProtoPNetStateDict(Importer):
    """``torch.save(model.state_dict())`` of an original ``model.PPNet``."""

    name = "protopnet-state-dict"
    description = "original ProtoPNet state dict (needs the class identity: a file or 'contiguous')"

    def recognises(self, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            return referenced_globals(path, path.name) <= TENSOR_GLOBALS
        except CheckpointError:
            return False

    def read(self, path: Path, options: ReadOptions) -> ImportedNetwork:
        where = path.name
        state = load_state_dict_file(path, where)
        if "classifier.prototypes" in state or any(
            k.startswith("extractor.convnet.") for k in state
        ):
            raise CheckpointError(
                f"{where} is a CaBRNet model state: import the folder holding it and its "
                "model_arch.yml (--format cabrnet)"
            )
        prototypes, weight = state.get("prototype_vectors"), state.get("last_layer.weight")
        if prototypes is None or weight is None or weight.ndim != 2:
            missing = [k for k in ("prototype_vectors", "last_layer.weight") if k not in state]
            raise CheckpointError(
                f"{where}: not an original ProtoPNet state dict (missing {', '.join(missing) or 'a 2-d last layer'})"
            )
        classes = read_class_identity(
            options.class_identity, int(prototypes.shape[0]), int(weight.shape[0]), where
        )
        wrong = _mismatched_weights(weight, classes)
        if wrong * 2 > len(classes):
            raise CheckpointError(
                f"{where}: the class identity does not match the last layer: {wrong} of "
                f"{len(classes)} prototypes give their largest weight to another class than the one "
                "stated; check --class-identity"
            )
        net = network_from_original_state(
            state,
            format=self.name,
            where=where,
            classes=classes,
            img_size=options.input_size or 224,
            activation=options.activation or "log",
            epsilon=options.epsilon if options.epsilon is not None else DEFAULT_EPSILON,
        )
        net.epoch = epoch_from_name(where)
        net.notes.append(
            "a state dict does not store the image size, activation or epsilon: used "
            f"{net.input_size[0]} px, {net.activation}, ε = {net.epsilon:g}"
        )
        if wrong:
            net.notes.append(
                f"{wrong} prototypes give their largest last-layer weight to another class"
            )
        return net
