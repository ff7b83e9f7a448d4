"""The model specification that travels with the weights (``spec.json``), validated on load."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from explorer.errors import CheckpointError

SPEC_VERSION = 1
TORCHVISION_BACKBONES = (
    *(f"resnet{n}" for n in (18, 34, 50, 101, 152)),
    *(f"vgg{n}{bn}" for n in (11, 13, 16, 19) for bn in ("", "_bn")),
    *(f"densenet{n}" for n in (121, 161, 169, 201)),
)
PIPNET_BACKBONES = ("convnext_tiny_26", "convnext_tiny_13", "resnet50_pipnet")
KNOWN_BACKBONES = (
    "small_cnn", "efficientnet_lite0", "identity", *TORCHVISION_BACKBONES, *PIPNET_BACKBONES,
)  # fmt: skip
ACTIVATIONS = ("log", "linear")
FAMILIES = ("protopnet", "pipnet")
ADD_ON_LAYER = re.compile(r"^(conv:[1-9][0-9]{0,4}(:nobias)?|relu|sigmoid)$")
DEFAULT_EPSILON = 1e-4


@dataclass(frozen=True)
class ArchitectureSpec:
    """Everything needed to rebuild the network before its weights are loaded.

    Attributes:
        backbone: registered backbone name (see :mod:`explorer.models.backbones`).
        backbone_options: keyword arguments of the backbone builder (e.g. channel widths).
        prototypes_per_class: ``m``; ``P = m * C`` prototypes.
        prototype_dim: ``D``, channels of the add-on output and of each prototype.
        prototype_classes: the class of every prototype, for models whose prototypes are not in
            contiguous blocks of ``m`` per class (pruned or imported); ``None`` means blocks.
        add_on_widths: output widths of the add-on's (1x1 conv, ReLU, 1x1 conv) stages, the last equal
            to ``D`` (ProtoPNet's "bottleneck" halves the width stage by stage; ours and its "shallow"
            variant have one stage). ``None`` means one stage of width ``D``.
        activation: distance → similarity: ``log`` = ``log((d + 1) / (d + ε))``, ``linear`` = ``−d``.
        epsilon: ``ε`` of the log activation.
        family: the network family: ``protopnet`` (ProtoPNet and its imports: L2 prototypes) or
            ``pipnet`` (PIP-Net: a softmax over the channels at every cell, every channel a
            prototype; ``prototype_dim`` is then the number of prototypes and ``prototype_classes``
            the class each weighs most for).
        bias: the last layer has a bias (PIP-Net's ``--bias``; never ProtoPNet's).
        add_on_layout: an add-on of another layout, layer by layer (imported CaBRNet models):
            ``conv:W`` (1x1 conv to ``W`` channels, with bias), ``conv:W:nobias``, ``relu``, ``sigmoid``;
            the last conv's ``W`` is ``D`` (no conv: the backbone's output is compared directly).
            ``None`` means the stages of ``add_on_widths``.
    """

    backbone: str
    prototypes_per_class: int
    prototype_dim: int
    backbone_options: dict[str, Any] = field(default_factory=dict)
    prototype_classes: tuple[int, ...] | None = None
    add_on_widths: tuple[int, ...] | None = None
    activation: str = "log"
    epsilon: float = DEFAULT_EPSILON
    add_on_layout: tuple[str, ...] | None = None
    family: str = "protopnet"
    bias: bool = False

    def identity(self) -> dict[str, Any]:
        """The fields that change what the network computes; new fields at their defaults are left
        out, so the content hash of a model saved before they existed does not change."""
        data = asdict(self)
        defaults = {"prototype_classes": None, "add_on_widths": None, "activation": "log",
                    "epsilon": DEFAULT_EPSILON, "add_on_layout": None, "family": "protopnet",
                    "bias": False}  # fmt: skip
        for key, default in defaults.items():
            if data[key] == default:
                del data[key]
            elif isinstance(data[key], tuple):
                data[key] = list(data[key])
        return data


@dataclass(frozen=True)
class ModelSpec:
    """A shipped or user model's description (``spec.json``).

    Attributes:
        model_id: folder name and identifier (``fashion_mnist``, ...).
        title: human-readable name.
        description: one paragraph for the model card.
        architecture: see :class:`ArchitectureSpec`.
        input_size: ``(height, width)`` the network sees.
        channels: 1 (grey) or 3 (RGB) input channels of the network.
        grey_input: convert images to grey before use (a 3-channel network then sees grey repeated).
        mean: per-channel normalisation mean (after scaling to [0, 1]).
        std: per-channel normalisation standard deviation.
        class_names: one name per class index.
        dataset: dataset name, split and source description.
        training: the training configuration as run (seed included).
        accuracy: measured test accuracies (``before_push``, ``after_push``, ``after_last_layer``, ...).
        licence: licence of the weights / training data.
        lineage: for a model made from another one (a ProtoPDebug retrain): the parent's id and
            content hash, the label events used and the configuration; empty for a model trained
            from scratch or imported (and then not written, so older specs stay byte-equal).
    """

    model_id: str
    title: str
    architecture: ArchitectureSpec
    input_size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    description: str = ""
    grey_input: bool = False
    dataset: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    licence: str = ""
    spec_version: int = SPEC_VERSION
    lineage: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_prototypes(self) -> int:
        classes = self.architecture.prototype_classes
        if classes is not None:
            return len(classes)
        return self.num_classes * self.architecture.prototypes_per_class

    @property
    def prototype_classes(self) -> tuple[int, ...]:
        """The class index of every prototype."""
        classes = self.architecture.prototype_classes
        if classes is not None:
            return classes
        per_class = self.architecture.prototypes_per_class
        return tuple(j // per_class for j in range(self.num_prototypes))

    def identity(self) -> dict[str, Any]:
        """The fields that change what the model computes (part of its content hash)."""
        return {
            "architecture": self.architecture.identity(),
            "input_size": list(self.input_size),
            "channels": self.channels,
            "grey_input": self.grey_input,
            "mean": list(self.mean),
            "std": list(self.std),
            "class_names": list(self.class_names),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        arch = data["architecture"]
        for key in ("prototype_classes", "add_on_widths", "add_on_layout"):
            if arch[key] is None:
                del arch[key]
            else:
                arch[key] = list(arch[key])
        for key, default in (("family", "protopnet"), ("bias", False)):
            if arch[key] == default:  # written only where it differs: older specs stay byte-equal
                del arch[key]
        data["input_size"] = list(self.input_size)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        data["class_names"] = list(self.class_names)
        if not self.lineage:
            del data["lineage"]
        return data

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> ModelSpec:
        """Reads and validates ``spec.json``.

        Raises:
            CheckpointError: the file is missing, not JSON, or has missing or absurd fields.
        """
        if not path.is_file():
            raise CheckpointError(f"{path.parent.name}: spec.json is missing")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(
                f"{path.parent.name}: spec.json is not valid JSON ({error})"
            ) from None
        except RecursionError:
            raise CheckpointError(f"{path.parent.name}: spec.json is nested too deeply") from None
        return cls.from_dict(data, where=path.parent.name)

    @classmethod
    def from_dict(cls, data: Any, where: str = "spec") -> ModelSpec:
        """Builds a spec from parsed JSON, checking every field the network depends on."""
        if not isinstance(data, dict):
            raise CheckpointError(f"{where}: spec.json must hold a JSON object")

        def need(
            mapping: dict[str, Any], key: str, kind: type | tuple[type, ...], label: str
        ) -> Any:
            if key not in mapping:
                raise CheckpointError(f"{where}: spec.json lacks the field '{label}'")
            value = mapping[key]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise CheckpointError(f"{where}: spec.json field '{label}' has the wrong type")
            return value

        arch = need(data, "architecture", dict, "architecture")
        backbone = need(arch, "backbone", str, "architecture.backbone")
        if backbone not in KNOWN_BACKBONES:
            raise CheckpointError(
                f"{where}: unknown backbone '{backbone}' (known: {', '.join(KNOWN_BACKBONES)})"
            )
        per_class = need(arch, "prototypes_per_class", int, "architecture.prototypes_per_class")
        dim = need(arch, "prototype_dim", int, "architecture.prototype_dim")
        if not 1 <= per_class <= 1000 or not 1 <= dim <= 4096:
            raise CheckpointError(f"{where}: prototypes_per_class or prototype_dim out of range")
        options = arch.get("backbone_options", {})
        if not isinstance(options, dict):
            raise CheckpointError(f"{where}: architecture.backbone_options must be an object")
        activation = arch.get("activation", "log")
        if activation not in ACTIVATIONS:
            raise CheckpointError(
                f"{where}: architecture.activation must be one of {', '.join(ACTIVATIONS)}, "
                f"not {activation!r}"
            )
        epsilon = arch.get("epsilon", DEFAULT_EPSILON)
        if not isinstance(epsilon, int | float) or not 0 < epsilon < 1:
            raise CheckpointError(f"{where}: architecture.epsilon must be a number in (0, 1)")
        family = arch.get("family", "protopnet")
        if family not in FAMILIES:
            raise CheckpointError(
                f"{where}: architecture.family must be one of {', '.join(FAMILIES)}, not {family!r}"
            )
        bias = arch.get("bias", False)
        if not isinstance(bias, bool) or (bias and family != "pipnet"):
            raise CheckpointError(
                f"{where}: architecture.bias must be true or false (true only for pipnet)"
            )
        widths = _int_list(arch, "add_on_widths", where, 1, 16384)
        if widths is not None and (not widths or widths[-1] != dim):
            raise CheckpointError(
                f"{where}: architecture.add_on_widths must end with prototype_dim ({dim})"
            )
        layout = _add_on_layout(arch, dim, where)
        if layout is not None and widths is not None:
            raise CheckpointError(
                f"{where}: architecture has both add_on_widths and add_on_layout; give one"
            )

        size = need(data, "input_size", list, "input_size")
        if len(size) != 2 or not all(isinstance(s, int) and 8 <= s <= 2048 for s in size):
            raise CheckpointError(f"{where}: input_size must be [height, width] between 8 and 2048")
        channels = need(data, "channels", int, "channels")
        if channels not in (1, 3):
            raise CheckpointError(f"{where}: channels must be 1 or 3, not {channels}")
        mean = need(data, "mean", list, "mean")
        std = need(data, "std", list, "std")
        for name, values in (("mean", mean), ("std", std)):
            if len(values) != channels or not all(
                isinstance(v, int | float) and math.isfinite(v) for v in values
            ):
                raise CheckpointError(f"{where}: {name} must hold {channels} finite numbers")
        if any(v <= 0 for v in std):
            raise CheckpointError(f"{where}: std must be positive")
        names = need(data, "class_names", list, "class_names")
        if not 2 <= len(names) <= 10_000 or not all(isinstance(n, str) and n for n in names):
            raise CheckpointError(f"{where}: class_names must list at least two non-empty names")
        model_id = need(data, "model_id", str, "model_id")
        classes = _int_list(arch, "prototype_classes", where, 0, len(names) - 1)
        if classes is not None and not 1 <= len(classes) <= 100_000:
            raise CheckpointError(f"{where}: architecture.prototype_classes must list 1 to 100000")
        if family == "pipnet" and (classes is None or len(classes) != dim):
            raise CheckpointError(
                f"{where}: a pipnet architecture lists prototype_classes, one per channel of "
                f"prototype_dim ({dim})"
            )
        return cls(
            model_id=model_id,
            title=str(data.get("title", model_id)),
            description=str(data.get("description", "")),
            architecture=ArchitectureSpec(
                backbone=backbone,
                prototypes_per_class=per_class,
                prototype_dim=dim,
                backbone_options=options,
                prototype_classes=classes,
                add_on_widths=widths,
                add_on_layout=layout,
                activation=activation,
                epsilon=float(epsilon),
                family=family,
                bias=bias,
            ),
            input_size=(size[0], size[1]),
            channels=channels,
            grey_input=bool(data.get("grey_input", channels == 1)),
            mean=tuple(float(v) for v in mean),
            std=tuple(float(v) for v in std),
            class_names=tuple(names),
            dataset=dict(data.get("dataset", {})),
            training=dict(data.get("training", {})),
            accuracy={k: float(v) for k, v in dict(data.get("accuracy", {})).items()},
            licence=str(data.get("licence", "")),
            spec_version=int(data.get("spec_version", SPEC_VERSION)),
            lineage=_lineage(data.get("lineage", {}), where),
        )


def _lineage(value: Any, where: str) -> dict[str, Any]:
    """The optional ``lineage`` object; its parent, when given, names an id and a content hash."""
    if not isinstance(value, dict):
        raise CheckpointError(f"{where}: spec.json field 'lineage' must be an object")
    parent = value.get("parent")
    if parent is not None and not (
        isinstance(parent, dict)
        and isinstance(parent.get("model_id"), str)
        and isinstance(parent.get("content_hash"), str)
    ):
        raise CheckpointError(
            f"{where}: spec.json field 'lineage.parent' must name a model_id and a content_hash"
        )
    return dict(value)


def _add_on_layout(arch: dict[str, Any], dim: int, where: str) -> tuple[str, ...] | None:
    """The optional ``add_on_layout``: layer names, the last conv ``D`` wide."""
    layout = arch.get("add_on_layout")
    if layout is None:
        return None
    if not isinstance(layout, list) or not all(
        isinstance(v, str) and ADD_ON_LAYER.match(v) for v in layout
    ):
        raise CheckpointError(
            f"{where}: architecture.add_on_layout must list layers 'conv:W', 'conv:W:nobias', "
            "'relu' or 'sigmoid'"
        )
    convs = [int(v.split(":")[1]) for v in layout if v.startswith("conv:")]
    if convs and convs[-1] != dim:
        raise CheckpointError(
            f"{where}: architecture.add_on_layout's last conv must be prototype_dim ({dim}) wide"
        )
    return tuple(layout)


def _int_list(
    mapping: dict[str, Any], key: str, where: str, low: int, high: int
) -> tuple[int, ...] | None:
    """An optional list of integers in ``[low, high]`` (``None`` when absent)."""
    if mapping.get(key) is None:
        return None
    values = mapping[key]
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in values
    ):
        raise CheckpointError(
            f"{where}: architecture.{key} must be a list of integers between {low} and {high}"
        )
    return tuple(values)
