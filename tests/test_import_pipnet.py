"""Importing PIP-Net checkpoints in the public code's layout (github M-Nauta/PIPNet): a dict with
``model_state_dict`` of an ``nn.DataParallel(PIPNet)`` (``module._net.*``, ``module._multiplier``,
``module._classification.*``) and optimiser states, built here from our own modules with the public
key names; logits equal a forward written in the public code's arithmetic from the file's tensors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.errors import CheckpointError
from explorer.models.checkpoint import load_model
from explorer.models.importers import import_checkpoint
from explorer.models.importers.pipnet import BACKBONES, pipnet_spec, read_pipnet
from explorer.models.pipnet import PIPNet
from explorer.spec import ArchitectureSpec, ModelSpec

SIZE = 64  # small inputs: the network is the real ConvNeXt-tiny, the images need not be 224 px
OURS_TO_PUBLIC = {
    "features.tail.": "_net.",
    "add_on.": "_add_on.",
    "classification.": "_classification.",
}


def _public_state(model: PIPNet, data_parallel: bool) -> dict[str, torch.Tensor]:
    prefix = "module." if data_parallel else ""
    state = {}
    for key, tensor in model.state_dict().items():
        if key == "_class_identity":
            continue
        ours = next(p for p in OURS_TO_PUBLIC if key.startswith(p))
        state[prefix + OURS_TO_PUBLIC[ours] + key.removeprefix(ours)] = tensor.clone()
    state[prefix + "_multiplier"] = state[prefix + "_classification.normalization_multiplier"]
    return state


def make_public_checkpoint(
    path: Path, backbone: str, classes: int = 3, *, bias: bool = False, num_features: int = 0,
    data_parallel: bool = True, seed: int = 0,
) -> Path:  # fmt: skip
    """A checkpoint as the public code's ``main.py`` saves it, with random weights."""
    torch.manual_seed(seed)
    ours = BACKBONES[backbone]
    prototypes = num_features or (2048 if backbone == "resnet50" else 768)
    spec = ModelSpec(
        model_id="public", title="public",
        architecture=ArchitectureSpec(
            backbone=ours, prototypes_per_class=1, prototype_dim=prototypes,
            prototype_classes=(0,) * prototypes,
            add_on_layout=(f"conv:{num_features}",) if num_features else None,
            family="pipnet", bias=bias,
        ),
        input_size=(SIZE, SIZE), channels=3, mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225), class_names=tuple(f"c{c}" for c in range(classes)),
    )  # fmt: skip
    model = PIPNet(spec)
    with torch.no_grad():
        weight = model.classification.weight
        weight.copy_(torch.rand_like(weight) * (torch.rand_like(weight) < 0.05))  # sparse, >= 0
        weight[0, :3] = -0.5  # negative weights the forward's relu ignores
        if bias:
            model.classification.bias.copy_(torch.tensor([0.1 * c for c in range(classes)]))
    state = _public_state(model, data_parallel)
    torch.save(
        {
            "model_state_dict": state,
            "optimizer_net_state_dict": {
                "state": {},
                "param_groups": [{"lr": 5e-4, "params": [0]}],
            },
            "optimizer_classifier_state_dict": {"state": {}, "param_groups": [{"lr": 0.05}]},
        },
        path,
    )
    return path


def _public_forward(path: Path, model: PIPNet, x: torch.Tensor) -> torch.Tensor:
    """The public ``forward(xs, inference=True)``, from the saved file's own tensors."""
    state = {k.removeprefix("module."): v for k, v in torch.load(path, weights_only=True)[
        "model_state_dict"].items()}  # fmt: skip
    features = model.features(x)
    if "_add_on.0.weight" in state:
        features = torch.nn.functional.conv2d(
            features, state["_add_on.0.weight"], state["_add_on.0.bias"]
        )
    proto = torch.softmax(features, dim=1)
    pooled = torch.nn.AdaptiveMaxPool2d((1, 1))(proto).flatten(1)
    clamped = torch.where(pooled < 0.1, 0.0, pooled)
    return torch.nn.functional.linear(
        clamped, torch.relu(state["_classification.weight"]), state.get("_classification.bias")
    )


@pytest.mark.parametrize(
    ("backbone", "options"),
    [
        ("convnext_tiny_13", {"bias": True}),
        ("convnext_tiny_26", {"data_parallel": False, "num_features": 40}),
    ],
)
def test_a_public_checkpoint_imports_to_equal_logits(
    tmp_path: Path, backbone: str, options: dict
) -> None:
    path = make_public_checkpoint(tmp_path / "net_trained_last", backbone, **options)
    report = import_checkpoint(path, tmp_path / "model", format="pipnet", backbone=backbone,
                               class_names="a,b,c", input_size=SIZE)  # fmt: skip
    assert report.max_logit_difference < 1e-6
    assert report.notes and "3 negative class weights set to 0" in report.notes[0]
    bundle = load_model(tmp_path / "model")
    model = bundle.model
    assert isinstance(model, PIPNet) and bundle.spec.architecture.family == "pipnet"
    assert bundle.spec.class_names == ("a", "b", "c") and bundle.projection == ()
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(
            model(x).logits, _public_forward(path, model, x), atol=1e-5, rtol=1e-5
        )
    # every prototype is listed under the class it weighs most for
    weight = torch.relu(model.class_weights.detach())
    assert tuple(weight.argmax(dim=0).tolist()) == bundle.spec.prototype_classes


def test_the_cli_imports_with_a_classes_file_and_refuses_a_wrong_backbone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_public_checkpoint(tmp_path / "ckpt", "convnext_tiny_13", classes=2)
    names = tmp_path / "classes.txt"
    names.write_text("fracture\nno fracture\n")
    common = [
        "import",
        str(path),
        "--format",
        "pipnet",
        "--classes",
        str(names),
        "--input-size",
        str(SIZE),
    ]
    assert main([*common, "--backbone", "resnet50", "--out", str(tmp_path / "wrong")]) == 2
    assert "is --backbone right?" in capsys.readouterr().err
    assert not (tmp_path / "wrong").exists()
    assert main([*common, "--out", str(tmp_path / "nobackbone")]) == 2
    assert "give --backbone" in capsys.readouterr().err
    assert main([*common, "--backbone", "convnext_tiny_13", "--out", str(tmp_path / "ok")]) == 0
    assert load_model(tmp_path / "ok").spec.class_names == ("fracture", "no fracture")


def test_files_that_are_not_pipnet_checkpoints_are_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (print, ("ran code",))

    torch.save({"model_state_dict": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="not a PIP-Net checkpoint torch can read safely"):
        read_pipnet(tmp_path / "evil.pth", "convnext_tiny_13")
    torch.save({"model_state_dict": {"prototype_vectors": torch.zeros(2)}}, tmp_path / "ppnet.pth")
    with pytest.raises(CheckpointError, match="unexpected keys prototype_vectors"):
        read_pipnet(tmp_path / "ppnet.pth", "convnext_tiny_13")
    with pytest.raises(CheckpointError, match="unknown PIP-Net backbone"):
        read_pipnet(tmp_path / "ppnet.pth", "vgg16")
    nan = {"module._classification.weight": torch.full((2, 4), float("nan"))}
    torch.save({"model_state_dict": nan}, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match="NaN"):
        read_pipnet(tmp_path / "nan.pth", "convnext_tiny_13")


def test_the_spec_lists_unused_prototypes_and_keeps_imagenet_normalisation() -> None:
    weight = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]])
    checkpoint = replace(
        read_pipnet.__globals__["PIPNetCheckpoint"](
            state={"classification.weight": weight}, backbone="convnext_tiny_13", num_classes=2,
            num_prototypes=3, bias=False, add_on_conv=False, notes=(),
        )
    )  # fmt: skip
    spec = pipnet_spec(checkpoint, "m", ("a", "b"), 224, "file")
    assert spec.prototype_classes == (1, 0, 0)  # the last prototype weighs for no class: class 0
    assert spec.mean == (0.485, 0.456, 0.406) and spec.input_size == (224, 224)
    assert np.isclose(spec.std[0], 0.229)
