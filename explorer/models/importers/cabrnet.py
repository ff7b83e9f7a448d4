"""CaBRNet ProtoPNet checkpoint folders: ``model_arch.yml`` + ``model_state.pth`` (+ ``dataset.yml``).

``model_arch.yml`` is parsed with ``yaml.safe_load`` (plain data, no tags); CaBRNet itself would import the
modules it names, we only compare the names with the one architecture we rebuild:
``cabrnet.archs.protopnet.model.ProtoPNet`` with ``ProtoPNetClassifier`` and the similarity
``LegacyProtoPNetSimilarity`` (the original's expansion, with a ``_summation_kernel`` buffer) or
``ProtoPNetSimilarity`` (``cdist``²), both ``log((d + 1) / (d + ε))`` with ``ε`` = ``stability_factor``.
``model_state.pth`` is a state dict, loaded with ``weights_only=True``.

Key mapping (ours ← CaBRNet): ``features.tail.X`` ← ``extractor.convnet.X`` (torchvision's own names, the
feature extractor cut at ``layer4`` for a ResNet, at ``features`` for a VGG or DenseNet),
``add_on.{i}.*`` ← ``extractor.add_on.{name}.*`` (the i-th layer of the YAML's add-on),
``prototype_vectors`` ← ``classifier.prototypes``, ``last_layer.weight`` ← ``classifier.last_layer.weight``;
the class of each prototype from ``classifier.proto_class_map``. Prototypes that CaBRNet's pruning disabled
(an all-zero row, zero last-layer weights) are left out: the logits do not change.

The image size, mean and std come from ``dataset.yml`` (its ``Resize`` and ``Normalize``) when the folder
has one, else 224 px and ImageNet's statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from explorer.errors import CheckpointError
from explorer.models.importers.layout import infer_backbone
from explorer.models.importers.network import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImportedNetwork,
    Importer,
    ReadOptions,
    check_finite,
)
from explorer.models.importers.protopnet_state_dict import load_state_dict_file
from explorer.spec import DEFAULT_EPSILON, TORCHVISION_BACKBONES

ARCH_FILE = "model_arch.yml"
STATE_FILE = "model_state.pth"
DATASET_FILE = "dataset.yml"
MAX_YAML_BYTES = 1024**2
SIMILARITIES = ("LegacyProtoPNetSimilarity", "ProtoPNetSimilarity")
CUT_LAYERS = {"resnet": "layer4", "vgg": "features", "densenet": "features"}
PREFIX, ADD_ON, CLASSIFIER = "extractor.convnet.", "extractor.add_on.", "classifier."


def _yaml(path: Path, where: str) -> dict[str, Any]:
    if path.stat().st_size > MAX_YAML_BYTES:
        raise CheckpointError(f"{where}: {path.name} is larger than 1 MiB")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise CheckpointError(f"{where}: {path.name} is not valid YAML ({reason})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: {path.name} does not hold a mapping")
    return data


def _get(mapping: Any, key: str, where: str, label: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise CheckpointError(f"{where}: {ARCH_FILE} lacks '{label}'")
    return mapping[key]


def _extractor(config: dict[str, Any], where: str) -> tuple[str, str, dict[str, Any] | None]:
    """(torchvision arch, cut layer, add-on config) from both of CaBRNet's extractor layouts."""
    extractor = _get(config, "extractor", where, "extractor")
    backbone = _get(extractor, "backbone", where, "extractor.backbone")
    arch = str(_get(backbone, "arch", where, "extractor.backbone.arch")).lower()
    if backbone.get("params") or backbone.get("postprocess"):
        raise CheckpointError(
            f"{where}: backbone parameters or post-processing (e.g. a stride divider) are not supported"
        )
    if backbone.get("layer"):
        return arch, str(backbone["layer"]), extractor.get("add_on")
    pipelines = {k: v for k, v in extractor.items() if k != "backbone"}
    if len(pipelines) != 1:
        raise CheckpointError(f"{where}: only a single-layer feature extractor is supported")
    pipeline = next(iter(pipelines.values()))
    layer = _get(pipeline, "source_layer", where, "extractor.<pipeline>.source_layer")
    return arch, str(layer), pipeline.get("add_on")


def _add_on(config: dict[str, Any] | None, where: str) -> list[tuple[str, str, bool]]:
    """The add-on layers as (YAML name, kind, has bias), kinds conv / relu / sigmoid."""
    layers = []
    for name, layer in (config or {}).items():
        if name == "init_mode":
            continue
        kind = _get(layer, "type", where, f"add_on.{name}.type")
        params = dict(layer.get("params") or {})
        if kind == "Conv2d":
            extra = {
                k: v for k, v in params.items() if k not in ("in_channels", "out_channels", "bias")
            }
            if extra not in ({}, {"kernel_size": 1}, {"kernel_size": [1, 1]}):
                raise CheckpointError(
                    f"{where}: add-on layer {name} is not a plain 1x1 convolution"
                )
            layers.append((name, "conv", bool(params.get("bias", True))))
        elif kind in ("ReLU", "Sigmoid"):
            layers.append((name, kind.lower(), False))
        else:
            raise CheckpointError(
                f"{where}: add-on layer {name} is a {kind}; only Conv2d, ReLU and Sigmoid are supported"
            )
    return layers


def _preprocessing(folder: Path, where: str) -> tuple[int | None, tuple | None, tuple | None]:
    """(size, mean, std) from ``dataset.yml``'s test or projection set transforms, when stated."""
    if not (folder / DATASET_FILE).is_file():
        return None, None, None
    data = _yaml(folder / DATASET_FILE, where)
    size = mean = std = None
    for split in ("test_set", "projection_set"):
        transforms = ((data.get(split) or {}).get("params") or {}).get("transform") or {}
        if not isinstance(transforms, dict):
            continue
        for step in transforms.values():
            if not isinstance(step, dict):
                continue
            params = step.get("params") or {}
            if step.get("type") == "Resize" and size is None:
                value = params.get("size")
                values = value if isinstance(value, list) else [value]
                if len(values) in (1, 2) and all(isinstance(v, int) for v in values):
                    if len(set(values)) != 1:
                        raise CheckpointError(
                            f"{where}: only square inputs are supported ({value})"
                        )
                    size = values[0]
            if step.get("type") == "Normalize" and mean is None:
                mean, std = tuple(params.get("mean", ())), tuple(params.get("std", ()))
        if size is not None:
            break
    if mean is not None and (len(mean) != 3 or len(std or ()) != 3):
        raise CheckpointError(f"{where}: {DATASET_FILE}'s Normalize needs 3 means and 3 stds")
    return size, mean, std


class CaBRNetFolder(Importer):
    """A CaBRNet ProtoPNet checkpoint folder."""

    name = "cabrnet"
    description = f"CaBRNet ProtoPNet checkpoint folder ({ARCH_FILE} + {STATE_FILE})"

    def recognises(self, path: Path) -> bool:
        return path.is_dir() and (path / ARCH_FILE).is_file() and (path / STATE_FILE).is_file()

    def read(self, path: Path, options: ReadOptions) -> ImportedNetwork:
        where = path.name
        if not self.recognises(path):
            raise CheckpointError(
                f"{where} is not a CaBRNet checkpoint folder (it needs {ARCH_FILE} and {STATE_FILE})"
            )
        if options.class_identity is not None or options.activation is not None:
            raise CheckpointError(
                f"{where}: a CaBRNet checkpoint states its class identity and similarity itself"
            )
        config = _yaml(path / ARCH_FILE, where)
        top = _get(config, "top_arch", where, "top_arch")
        classifier = _get(config, "classifier", where, "classifier")
        if top.get("name") != "ProtoPNet" or classifier.get("name") != "ProtoPNetClassifier":
            raise CheckpointError(
                f"{where}: a CaBRNet {top.get('name')} with a {classifier.get('name')}; only ProtoPNet "
                "(ProtoPNetClassifier) is supported"
            )
        similarity = config.get("similarity") or {"name": "LegacyProtoPNetSimilarity"}
        if similarity.get("name") not in SIMILARITIES:
            raise CheckpointError(
                f"{where}: similarity {similarity.get('name')} is not supported (only "
                f"{' and '.join(SIMILARITIES)})"
            )
        epsilon = float((similarity.get("params") or {}).get("stability_factor", DEFAULT_EPSILON))
        arch, layer, add_on_config = _extractor(config, where)
        family = next((f for f in CUT_LAYERS if arch.startswith(f)), None)
        if arch not in TORCHVISION_BACKBONES or family is None:
            raise CheckpointError(
                f"{where}: unknown backbone {arch} (supported: {', '.join(TORCHVISION_BACKBONES)})"
            )
        if layer != CUT_LAYERS[family]:
            raise CheckpointError(
                f"{where}: a {arch} cut at '{layer}' is not supported (only at '{CUT_LAYERS[family]}')"
            )
        add_on = _add_on(add_on_config, where)

        state = load_state_dict_file(path / STATE_FILE, f"{where}/{STATE_FILE}")
        check_finite(state, where)
        tensors: dict[str, torch.Tensor] = {}
        source_keys: dict[str, str] = {}
        names = {name: i for i, (name, _, _) in enumerate(add_on)}
        handled = {f"{CLASSIFIER}{k}" for k in ("prototypes", "proto_class_map", "last_layer.weight",
                                                 "similarity_layer._summation_kernel")}  # fmt: skip
        for key, tensor in state.items():
            if key.startswith(PREFIX):
                ours = "features.tail." + key.removeprefix(PREFIX)
            elif key.startswith(ADD_ON):
                layer_name, _, rest = key.removeprefix(ADD_ON).partition(".")
                if layer_name not in names:
                    raise CheckpointError(
                        f"{where}: tensor '{key}' belongs to no add-on layer of {ARCH_FILE}"
                    )
                ours = f"add_on.{names[layer_name]}.{rest}"
            elif key in handled:
                continue
            else:
                raise CheckpointError(f"{where}: unexpected tensor '{key}' in {STATE_FILE}")
            tensors[ours] = tensor
            source_keys[ours] = key
        for key in ("prototypes", "proto_class_map", "last_layer.weight"):
            if CLASSIFIER + key not in state:
                raise CheckpointError(f"{where}: {STATE_FILE} lacks classifier.{key}")
        prototypes = state[CLASSIFIER + "prototypes"]
        class_map = state[CLASSIFIER + "proto_class_map"]
        weight = state[CLASSIFIER + "last_layer.weight"]
        kernel = state.get(CLASSIFIER + "similarity_layer._summation_kernel")
        legacy = similarity["name"] == "LegacyProtoPNetSimilarity"
        if legacy != (kernel is not None):
            raise CheckpointError(
                f"{where}: {'missing' if legacy else 'unexpected'} "
                "classifier.similarity_layer._summation_kernel for the similarity "
                f"{similarity['name']}"
            )
        if prototypes.ndim != 4 or prototypes.shape[2:] != (1, 1):
            raise CheckpointError(f"{where}: classifier.prototypes must be [P, D, 1, 1]")
        num_prototypes, dim = int(prototypes.shape[0]), int(prototypes.shape[1])
        if (
            class_map.ndim != 2
            or class_map.shape[0] != num_prototypes
            or weight.shape != (class_map.shape[1], num_prototypes)
        ):
            raise CheckpointError(
                f"{where}: proto_class_map {tuple(class_map.shape)} and last_layer.weight "
                f"{tuple(weight.shape)} do not fit {num_prototypes} prototypes"
            )
        num_classes = int(class_map.shape[1])
        if num_classes < 2:
            raise CheckpointError(f"{where}: the model has {num_classes} class; at least 2 needed")
        stated = (classifier.get("params") or {}).get("num_classes")
        if stated is not None and stated != num_classes:
            raise CheckpointError(
                f"{where}: {ARCH_FILE} says {stated} classes, the state has {num_classes}"
            )
        active = class_map.sum(dim=1) > 0
        if not ((class_map == 0) | (class_map == 1)).all() or (class_map.sum(dim=1) > 1).any():
            raise CheckpointError(f"{where}: proto_class_map is not one-hot per prototype")
        if (weight[:, ~active] != 0).any():
            raise CheckpointError(
                f"{where}: disabled prototypes (no class in proto_class_map) still have last-layer weights"
            )
        keep = torch.nonzero(active).flatten()
        notes = []
        if len(keep) < num_prototypes:
            notes.append(
                f"{num_prototypes - len(keep)} prototypes disabled by CaBRNet's pruning (zero weights) "
                "were left out; the logits are unchanged"
            )
        tensors["prototype_vectors"] = prototypes[keep]
        tensors["last_layer.weight"] = weight[:, keep]
        source_keys["prototype_vectors"] = CLASSIFIER + "prototypes"
        source_keys["last_layer.weight"] = CLASSIFIER + "last_layer.weight"
        if kernel is not None:
            if kernel.shape != prototypes.shape or not bool((kernel == 1).all()):
                raise CheckpointError(f"{where}: the similarity's summation kernel is not all ones")
            kernel = kernel[keep]
        backbone_state = {
            k.removeprefix("features.tail."): v
            for k, v in tensors.items()
            if k.startswith("features.tail.")
        }
        backbone = infer_backbone(backbone_state, where, prefix=PREFIX)
        if backbone.name != arch or backbone.options:
            raise CheckpointError(
                f"{where}: {ARCH_FILE} names {arch} but the tensors are a {backbone.description}"
            )
        options_ = {"final_relu": False} if family == "densenet" else {}
        backbone = type(backbone)(arch, options_, backbone.description, ())
        layout = []
        for name, kind, bias in add_on:
            if kind != "conv":
                layout.append(kind)
                continue
            if f"{ADD_ON}{name}.weight" not in state:
                raise CheckpointError(f"{where}: {STATE_FILE} lacks extractor.add_on.{name}.weight")
            width = int(state[f"{ADD_ON}{name}.weight"].shape[0])
            layout.append(f"conv:{width}" + ("" if bias else ":nobias"))
        size, mean, std = _preprocessing(path, where)
        if size is None:
            notes.append("no dataset.yml with a Resize: assumed 224 px inputs")
        if mean is None:
            notes.append("no dataset.yml with a Normalize: assumed ImageNet's mean and std")
        input_size = options.input_size or size or 224
        classes = tuple(int(c) for c in class_map[keep].argmax(dim=1).tolist())
        return ImportedNetwork(
            format=self.name,
            where=where,
            backbone=backbone,
            add_on_widths=None,
            add_on_layout=tuple(layout),
            prototype_dim=dim,
            tensors=tensors,
            source_keys=source_keys,
            prototype_classes=classes,
            num_classes=num_classes,
            activation="log",
            epsilon=epsilon,
            input_size=(input_size, input_size),
            mean=tuple(float(v) for v in (mean or IMAGENET_MEAN)),
            std=tuple(float(v) for v in (std or IMAGENET_STD)),
            head="cabrnet",
            ones=kernel,
            notes=notes,
            key_prefixes=(
                ("features.tail.", PREFIX),
                *((f"add_on.{i}.", f"{ADD_ON}{name}.") for i, (name, _, _) in enumerate(add_on)),
            ),
        )
