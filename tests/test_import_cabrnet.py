"""Importing CaBRNet ProtoPNet checkpoint folders (``model_arch.yml`` + ``model_state.pth``), built in the
test with CaBRNet's module layout and key names."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from explorer.errors import CheckpointError
from explorer.models.checkpoint import load_model
from explorer.models.importers import detect_format, import_checkpoint
from tests.original_protopnet import CABRNET_SIZE, build_cabrnet, make_original, save_cabrnet
from tests.test_import_protopnet import _assert_refused, assert_same_outputs


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cabrnet")
    return {kind: make_original(kind, root) for kind in ("cabrnet", "cabrnet_legacy")}


@pytest.mark.parametrize("kind", ["cabrnet", "cabrnet_legacy"])
def test_a_cabrnet_folder_reproduces_its_own_forward(folders, tmp_path: Path, kind: str) -> None:
    path, network, options = folders[kind]
    assert detect_format(path) == "cabrnet"
    report = import_checkpoint(path, tmp_path / kind, **options)
    assert_same_outputs(tmp_path / kind, network)
    assert report.format == "cabrnet" and report.max_tensor_difference == 0.0
    assert report.max_logit_difference < 1e-9 and report.input_size == (CABRNET_SIZE, CABRNET_SIZE)
    arch = load_model(tmp_path / kind).spec.architecture
    if kind == "cabrnet":  # resnet18 at layer4, one 1x1 conv without bias + Sigmoid
        assert arch.backbone == "resnet18" and arch.add_on_layout == ("conv:16:nobias", "sigmoid")
        assert report.add_on == ("conv 512→16 (no bias)", "Sigmoid")
    else:  # vgg11 features, the original's add-on, the legacy similarity
        assert arch.backbone == "vgg11" and arch.add_on_layout == (
            "conv:16",
            "relu",
            "conv:16",
            "sigmoid",
        )


def test_prototypes_disabled_by_cabrnet_pruning_are_left_out(tmp_path: Path) -> None:
    model, config = build_cabrnet("cabrnet", seed=2)
    with torch.no_grad():  # CaBRNet's "disable" pruning: no class, zero last-layer weights
        model.classifier.proto_class_map[[1, 4]] = 0
        model.classifier.last_layer.weight[:, [1, 4]] = 0
    path = save_cabrnet(model, config, tmp_path / "pruned")
    report = import_checkpoint(path, tmp_path / "out")
    assert report.prototypes_per_class == (1, 2, 1) and "left out" in report.notes[0]
    x = torch.randn(2, 3, CABRNET_SIZE, CABRNET_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(
            load_model(tmp_path / "out").model(x).logits, model(x)[0], atol=1e-4, rtol=0
        )


@pytest.fixture(scope="module")
def base() -> tuple[dict, dict]:
    model, config = build_cabrnet("cabrnet")
    return model.state_dict(), config


def test_unsupported_cabrnet_configurations_are_refused(base, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def _folder_with(tmp_path: Path, name: str, change) -> Path:
        state, config = {k: v.clone() for k, v in base[0].items()}, copy.deepcopy(base[1])
        change(config, state)
        return save_cabrnet(state, config, tmp_path / name)

    def arch(config, state):
        config["extractor"]["backbone"]["arch"] = "wide_resnet50_2"

    _assert_refused(_folder_with(tmp_path, "arch", arch), out, "unknown backbone wide_resnet50_2")

    def layer(config, state):
        config["extractor"]["backbone"]["layer"] = "layer3"

    _assert_refused(_folder_with(tmp_path, "layer", layer), out, "cut at 'layer3' is not supported")

    def similarity(config, state):
        config["similarity"] = {"name": "CosineSimilarity"}

    _assert_refused(
        _folder_with(tmp_path, "sim", similarity), out, "CosineSimilarity is not supported"
    )

    def add_on(config, state):
        config["extractor"]["add_on"]["bn"] = {
            "type": "BatchNorm2d",
            "params": {"num_features": 16},
        }

    _assert_refused(_folder_with(tmp_path, "bn", add_on), out, "bn is a BatchNorm2d")

    def extra(config, state):
        state["classifier.extra"] = torch.zeros(2)

    _assert_refused(
        _folder_with(tmp_path, "extra", extra), out, "unexpected tensor 'classifier.extra'"
    )

    def missing(config, state):
        del state["extractor.convnet.layer2.0.conv1.weight"]

    _assert_refused(_folder_with(tmp_path, "missing", missing), out,
                    r"missing extractor\.convnet\.layer2\.0\.conv1\.weight")  # fmt: skip

    def nan(config, state):
        state["classifier.prototypes"][0, 0] = float("nan")

    _assert_refused(_folder_with(tmp_path, "nan", nan), out, "'classifier.prototypes' holds NaN")

    def classes(config, state):
        config["classifier"]["params"]["num_classes"] = 4

    _assert_refused(
        _folder_with(tmp_path, "classes", classes), out, "says 4 classes, the state has 3"
    )

    def shape(config, state):
        state["classifier.last_layer.weight"] = torch.zeros(3, 5)

    _assert_refused(_folder_with(tmp_path, "shape", shape), out, "do not fit 6 prototypes")


def test_a_yaml_file_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    model, config = build_cabrnet("cabrnet")
    folder = save_cabrnet(model, config, tmp_path / "evil")
    (folder / "model_arch.yml").write_text(
        f"top_arch: !!python/object/apply:os.system ['touch {marker}']\n"
        + yaml.safe_dump({k: v for k, v in config.items() if k != "top_arch"})
    )
    _assert_refused(folder, tmp_path / "out", "model_arch.yml is not valid YAML")
    assert not marker.exists()
    (folder / "model_arch.yml").unlink()
    with pytest.raises(CheckpointError, match="not a CaBRNet checkpoint folder"):
        import_checkpoint(folder, tmp_path / "out")


def test_a_cabrnet_state_alone_points_to_its_folder(folders, tmp_path: Path) -> None:
    state = folders["cabrnet"][0] / "model_state.pth"
    _assert_refused(state, tmp_path / "out", "import the folder holding it")


def test_a_whole_pickled_cabrnet_module_is_refused_by_name(tmp_path: Path) -> None:
    model, _ = build_cabrnet("cabrnet")
    path = tmp_path / "whole.pth"
    torch.save(nn.Sequential(model.extractor.add_on), path)
    _assert_refused(path, tmp_path / "out", "not an original ProtoPNet|refusing")
