"""What an importer reads from a checkpoint, and rebuilding our model from it.

Every importer turns its file into an :class:`ImportedNetwork`: the architecture in our terms, the tensors
under our state-dict keys (with the checkpoint key each came from), the prototype classes, the activation,
and what the independent reference forward needs. :func:`build_model` then rebuilds the network and
refuses any missing, extra or misshapen tensor by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.errors import CheckpointError
from explorer.models.importers.layout import Backbone
from explorer.models.importers.reference import (
    cabrnet_head,
    compare_trees,
    protopnet_head,
    run,
    tree_from_module,
)
from explorer.models.importers.safe_pickle import PickledModule
from explorer.models.protopnet import ProtoPNet
from explorer.spec import ArchitectureSpec, ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the original code's preprocess.py
IMAGENET_STD = (0.229, 0.224, 0.225)
CLASS_IDENTITY_KEY = "_class_identity"


@dataclass
class ImportedNetwork:
    """A checkpoint's network, read but not yet rebuilt.

    Attributes:
        format: the importer's name.
        where: the checkpoint's file (or folder) name, for messages.
        backbone: the recognised backbone.
        add_on_widths: original-layout add-on stages (``None`` with ``add_on_layout``).
        add_on_layout: another add-on layout, layer by layer (CaBRNet), or ``None``.
        prototype_dim: ``D``.
        tensors: our state-dict key → tensor (everything but the class identity buffer).
        source_keys: our key → the checkpoint's key (for messages and the equality report).
        prototype_classes: the class of every prototype.
        num_classes: ``C`` (rows of the last layer).
        activation: ``log`` or ``linear``.
        epsilon: ``ε`` of the log activation.
        input_size: ``(height, width)`` the network was trained at.
        mean: normalisation mean (RGB).
        std: normalisation standard deviation.
        head: ``protopnet`` (the original prototype layer) or ``cabrnet``.
        ones: the ``ones`` kernel of the original ``_l2_convolution`` (or CaBRNet's summation kernel;
            ``None`` for CaBRNet's ``cdist`` similarity).
        features_tree: the pickled backbone graph (``None`` for a state dict: ours is used).
        add_on_tree: the pickled add-on graph (``None`` for a state dict).
        notes: what the reader assumed or changed, for the report.
        epoch: the epoch in the checkpoint's file name (``10push0.7822.pth`` → 10), if any.
        key_prefixes: (our prefix, the checkpoint's prefix) pairs, to name a missing tensor as the
            checkpoint names it.
    """

    format: str
    where: str
    backbone: Backbone
    add_on_widths: tuple[int, ...] | None
    add_on_layout: tuple[str, ...] | None
    prototype_dim: int
    tensors: dict[str, torch.Tensor]
    source_keys: dict[str, str]
    prototype_classes: tuple[int, ...]
    num_classes: int
    activation: str
    epsilon: float
    input_size: tuple[int, int]
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    head: str = "protopnet"
    ones: torch.Tensor | None = None
    features_tree: PickledModule | None = None
    add_on_tree: PickledModule | None = None
    notes: list[str] = field(default_factory=list)
    epoch: int | None = None
    key_prefixes: tuple[tuple[str, str], ...] = ()

    def checkpoint_key(self, ours: str) -> str:
        """The checkpoint's name for our key ``ours``."""
        if ours in self.source_keys:
            return self.source_keys[ours]
        for mine, theirs in self.key_prefixes:
            if ours.startswith(mine):
                return theirs + ours.removeprefix(mine)
        return ours

    @property
    def num_prototypes(self) -> int:
        return len(self.prototype_classes)

    def architecture(self) -> ArchitectureSpec:
        counts = np.bincount(self.prototype_classes, minlength=self.num_classes)
        per_class = int(counts.max()) if len(counts) else 1
        contiguous = self.num_prototypes == per_class * self.num_classes and list(
            self.prototype_classes
        ) == [j // per_class for j in range(self.num_prototypes)]
        widths = self.add_on_widths
        return ArchitectureSpec(
            backbone=self.backbone.name,
            prototypes_per_class=max(1, per_class),
            prototype_dim=self.prototype_dim,
            backbone_options=dict(self.backbone.options),
            prototype_classes=None if contiguous else tuple(self.prototype_classes),
            add_on_widths=None if widths is None or widths == (self.prototype_dim,) else widths,
            activation=self.activation,
            epsilon=self.epsilon,
            add_on_layout=self.add_on_layout,
        )


def epoch_from_name(name: str) -> int | None:
    """The epoch of an original checkpoint's file name: ``10push0.7822.pth``, ``10_9push0.78.pth``,
    ``5nopush0.70.pth`` → 10, 10, 5."""
    match = re.match(r"^(\d+)(?:_\d+)?(?:no)?push", name)
    return int(match.group(1)) if match else None


def check_finite(tensors: dict[str, torch.Tensor], where: str) -> None:
    """Refuses NaN or infinite weights, naming the tensor. A finite sum means every element is finite
    (one NaN or infinity makes the sum non-finite), so only a non-finite sum needs the element check."""
    for key, tensor in tensors.items():
        if not tensor.is_floating_point() or bool(torch.isfinite(tensor.sum())):
            continue
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{where}: tensor '{key}' holds NaN or infinite values")


def class_identity_classes(
    identity: Any, num_prototypes: int, num_classes: int, where: str
) -> tuple[int, ...]:
    """The class of every prototype from a ``[P, C]`` one-hot identity matrix, checked."""
    if not isinstance(identity, torch.Tensor) or identity.ndim != 2:
        raise CheckpointError(f"{where}: prototype_class_identity is not a [P, C] matrix")
    if tuple(identity.shape) != (num_prototypes, num_classes):
        raise CheckpointError(
            f"{where}: the class identity is {tuple(identity.shape)} but the checkpoint has "
            f"{num_prototypes} prototypes and a last layer for {num_classes} classes"
        )
    values = identity.detach().double()
    ones = (values == 1).sum(dim=1)
    if not ((values == 0) | (values == 1)).all() or not (ones == 1).all():
        row = int(torch.nonzero(ones != 1)[0, 0]) if (ones != 1).any() else 0
        raise CheckpointError(f"{where}: prototype_class_identity row {row} is not one-hot")
    return tuple(int(c) for c in values.argmax(dim=1).tolist())


def build_model(net: ImportedNetwork, spec: ModelSpec) -> ProtoPNet:
    """Our model for ``spec`` with the checkpoint's tensors, every key and shape checked.

    Raises:
        CheckpointError: a tensor the rebuilt network needs is missing, one is left over, or a shape
            differs (naming the checkpoint's key).
    """
    model = ProtoPNet(spec)
    convs = [m for m in model.add_on if isinstance(m, torch.nn.Conv2d)]
    width = convs[-1].out_channels if convs else model.features.out_channels
    if width != net.prototype_dim:
        raise CheckpointError(
            f"{net.where}: the add-on gives {width} channels but the prototypes have "
            f"{net.prototype_dim}"
        )
    expected = {k: v for k, v in model.state_dict().items() if k != CLASS_IDENTITY_KEY}
    missing = [net.checkpoint_key(k) for k in expected if k not in net.tensors]
    extra = [net.checkpoint_key(k) for k in net.tensors if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
        raise CheckpointError(
            f"{net.where}: the tensors do not fit a {net.backbone.description} ProtoPNet "
            f"({'; '.join(parts)})"
        )
    for key, tensor in net.tensors.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{net.where}: tensor '{net.checkpoint_key(key)}' has shape {tuple(tensor.shape)}, the "
                f"rebuilt {net.backbone.description} needs {tuple(expected[key].shape)}"
            )
    cast = sorted({str(v.dtype) for k, v in net.tensors.items() if v.dtype != expected[k].dtype})
    if cast:
        net.notes.append(f"tensors stored as {', '.join(cast)} were converted to float32")
    state = {k: v.to(expected[k].dtype) for k, v in net.tensors.items()}
    state[CLASS_IDENTITY_KEY] = model.state_dict()[CLASS_IDENTITY_KEY]
    model.load_state_dict(state)
    model.eval()
    if net.features_tree is not None:
        compare_trees(
            net.features_tree, tree_from_module(model.features.tail), "features", net.where
        )
    if net.add_on_tree is not None:
        compare_trees(net.add_on_tree, tree_from_module(model.add_on), "add_on_layers", net.where)
    return model


@torch.no_grad()
def reference_forward(
    net: ImportedNetwork, model: ProtoPNet, x: torch.Tensor, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits, min distances and scores of the checkpoint's own math on ``x`` (see
    :mod:`~explorer.models.importers.reference`), in ``dtype``."""
    features_tree = net.features_tree or tree_from_module(model.features.tail)
    add_on_tree = net.add_on_tree or tree_from_module(model.add_on)
    features = run(add_on_tree, run(features_tree, x.to(dtype)))
    prototypes = net.tensors["prototype_vectors"].detach().to(dtype)
    weight = net.tensors["last_layer.weight"].detach().to(dtype)
    ones = None if net.ones is None else net.ones.detach().to(dtype)
    if net.head == "cabrnet":
        return cabrnet_head(features, prototypes, ones, weight, net.epsilon)
    assert ones is not None
    return protopnet_head(features, prototypes, ones, weight, net.activation, net.epsilon)


@dataclass(frozen=True)
class ReadOptions:
    """What a user may state about a checkpoint that its file does not hold.

    Attributes:
        class_identity: the class of every prototype, or ``"contiguous"`` (blocks of ``P / C``), or a
            file holding them; needed by state dicts, which do not store it.
        input_size: the square input size (state dicts and CaBRNet folders do not store the original's
            ``img_size``; default 224).
        activation: ``log`` or ``linear`` for a state dict (default ``log``).
        epsilon: ``ε`` for a state dict (default 1e-4).
    """

    class_identity: Any = None
    input_size: int | None = None
    activation: str | None = None
    epsilon: float | None = None


class Importer:
    """A checkpoint format: recognises its files and reads them into an :class:`ImportedNetwork`."""

    name: str = ""
    description: str = ""

    def recognises(self, path: Path) -> bool:
        """Whether ``path`` looks like this format (cheap, reads nothing but names and headers)."""
        raise NotImplementedError

    def read(self, path: Path, options: ReadOptions) -> ImportedNetwork:
        raise NotImplementedError
