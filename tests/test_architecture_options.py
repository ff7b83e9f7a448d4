"""The architecture options imported checkpoints need: explicit prototype classes, bottleneck add-ons,
the original code's linear activation and its epsilon, torchvision backbones — with answers on paper."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from explorer.errors import CheckpointError
from explorer.models.backbones import build_backbone
from explorer.models.protopnet import ProtoPNet, add_on_layers, similarity_from_distance
from explorer.spec import ModelSpec
from tests.conftest import shipped_folder, tiny_spec


def _with(spec: ModelSpec, **arch) -> ModelSpec:
    return replace(spec, architecture=replace(spec.architecture, **arch))


def test_linear_activation_is_minus_the_distance() -> None:
    d = torch.tensor([0.0, 0.5, 3.0], dtype=torch.float64)
    assert similarity_from_distance(d, "linear").tolist() == [0.0, -0.5, -3.0]


def test_log_activation_uses_the_given_epsilon() -> None:
    zero = torch.zeros(1, dtype=torch.float64)
    assert similarity_from_distance(zero, "log", 1e-2).item() == pytest.approx(math.log(100))


def test_a_model_with_linear_activation_scores_minus_its_min_distance() -> None:
    model = ProtoPNet(_with(tiny_spec(), activation="linear")).eval()
    with torch.no_grad():
        model.prototype_vectors.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1))
    features = torch.tensor([[[[0.0, 1.0]], [[0.0, 0.0]]]])  # cells (0, 0) and (1, 0)
    out = model.head(features)
    # p0 = (0, 0): distances 0 and 1 → min 0; p1 = (1, 1): distances 2 and 1 → min 1
    assert out.scores[0].tolist() == [0.0, -1.0]


def test_explicit_prototype_classes_set_the_class_identity() -> None:
    spec = _with(tiny_spec(classes=3), prototype_classes=(2, 0, 0, 1, 2))
    model = ProtoPNet(spec)
    assert spec.num_prototypes == 5
    assert model.prototype_classes.tolist() == [2, 0, 0, 1, 2]
    assert model.prototype_class_identity[0].tolist() == [0.0, 0.0, 1.0]
    assert tuple(model.last_layer.weight.shape) == (3, 5)
    # ProtoPNet's initialisation follows the identity: +1 own class, −0.5 others
    assert model.last_layer.weight[:, 0].tolist() == [-0.5, -0.5, 1.0]


def test_bottleneck_add_on_has_the_original_layout() -> None:
    layers = add_on_layers(16, (8, 4))
    kinds = [type(m).__name__ for m in layers]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "Sigmoid"]
    shapes = [tuple(m.weight.shape[:2]) for m in layers if isinstance(m, nn.Conv2d)]
    assert shapes == [(8, 16), (8, 8), (4, 8), (4, 4)]


def test_new_fields_at_their_defaults_keep_the_content_hash_identity() -> None:
    spec = ModelSpec.load(shipped_folder("synthetic") / "spec.json")
    assert set(spec.architecture.identity()) == {
        "backbone", "prototypes_per_class", "prototype_dim", "backbone_options",
    }  # fmt: skip
    changed = _with(spec, activation="linear").architecture.identity()
    assert changed["activation"] == "linear"


def test_spec_round_trips_the_new_fields(tmp_path) -> None:
    spec = _with(
        tiny_spec(classes=3, dim=4, channels=3),
        prototype_classes=(1, 0, 2),
        add_on_widths=(8, 4),
        activation="linear",
        epsilon=1e-3,
    )
    spec.save(tmp_path / "spec.json")
    assert ModelSpec.load(tmp_path / "spec.json") == spec


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("activation", "exp", "activation must be one of log, linear"),
        ("epsilon", 0, "epsilon must be a number in"),
        ("add_on_widths", [8, 3], "must end with prototype_dim"),
        ("prototype_classes", [0, 5], "between 0 and 1"),
        ("prototype_classes", "0,1", "must be a list of integers"),
    ],
)
def test_spec_refuses_bad_architecture_fields(field, value, message) -> None:
    data = tiny_spec(channels=3).to_dict()
    data["architecture"][field] = value
    with pytest.raises(CheckpointError, match=message):
        ModelSpec.from_dict(data)


@pytest.mark.parametrize(
    ("name", "options", "channels"),
    [
        ("resnet18", {"layers": [1, 1, 1, 1]}, 512),
        ("resnet50", {"layers": [1, 1, 1, 1]}, 2048),
        ("vgg11_bn", {"cfg": [8, "M", 16, "M"]}, 16),
        ("densenet121", {"growth_rate": 4, "block_config": [1, 1], "num_init_features": 8}, 10),
    ],
)
def test_torchvision_backbones_have_the_original_truncation(name, options, channels) -> None:
    backbone = build_backbone(name, 3, options).eval()
    out = backbone(torch.zeros(1, 3, 32, 32))
    assert backbone.out_channels == channels == out.shape[1]
    if name.startswith("densenet"):  # ends with the original's final ReLU after norm5
        assert isinstance(list(backbone.tail.features)[-1], nn.ReLU)
    if name.startswith("vgg"):  # keeps the last max-pool (32 → 8 after two pools)
        assert out.shape[-1] == 8


def test_torchvision_backbones_refuse_grey_input_and_pretrained_weights() -> None:
    with pytest.raises(ValueError, match="3 input channels"):
        build_backbone("resnet18", 1, {})
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_backbone("resnet18", 3, {}, pretrained=True)
