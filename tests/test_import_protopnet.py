"""Importing original ProtoPNet checkpoints (whole pickles in both formats, state dicts): equality with the
pickled network's own forward, push folders, ImageFolder sources, and every refusal (nothing run, nothing
written)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from explorer.cli import main as cli_main
from explorer.errors import CheckpointError
from explorer.models.checkpoint import load_model
from explorer.models.importers import FORMATS, detect_format, import_checkpoint
from explorer.models.importers.sources import NEAREST, PUSH, UNKNOWN
from tests.original_protopnet import (
    PICKLE_KINDS,
    PPNet,
    build_original,
    input_size,
    make_image_folder,
    make_original,
    original_modules,
    original_outputs,
    push_like_original,
    save_original,
)

FLOAT64_ATOL = 1e-5  # both sides in float64: tests the architecture, not rounding
FLOAT32_ATOL = 1e-3  # both sides in float32 (ours computes distances in float64)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory):
    """Checkpoints by kind, built once per module: ``kind -> (path, network, options)``."""
    root = tmp_path_factory.mktemp("checkpoints")
    cache: dict[str, tuple[Path, nn.Module, dict]] = {}

    def get(kind: str) -> tuple[Path, nn.Module, dict]:
        if kind not in cache:
            cache[kind] = make_original(kind, root / kind)
        return cache[kind]

    return get


def assert_same_outputs(folder: Path, network: nn.Module, images: int = 3) -> None:
    """Our imported model's logits, scores and min distances equal the network's own forward."""
    size = input_size(network)
    x = torch.randn(images, 3, size, size, generator=torch.Generator().manual_seed(1))
    model = load_model(folder).model
    with torch.no_grad():
        ours32 = model(x)
        theirs32 = original_outputs(network.float(), x)
        ours64 = model.double()(x.double())
        theirs64 = original_outputs(network.double(), x.double())
    network.float()
    for ours, theirs, atol in ((ours64, theirs64, FLOAT64_ATOL), (ours32, theirs32, FLOAT32_ATOL)):
        torch.testing.assert_close(ours.logits, theirs[0], atol=atol, rtol=0)
        torch.testing.assert_close(ours.min_distances, theirs[1], atol=atol, rtol=0)
        torch.testing.assert_close(ours.scores, theirs[2], atol=atol, rtol=0)


@pytest.mark.parametrize("kind", [*PICKLE_KINDS, "state_dict"])
def test_import_reproduces_the_pickled_networks_own_forward(
    made, tmp_path: Path, kind: str
) -> None:
    path, network, options = made(kind)
    report = import_checkpoint(path, tmp_path / kind, **options)
    assert_same_outputs(tmp_path / kind, network)
    assert report.max_tensor_difference == 0.0
    assert report.max_logit_difference < 1e-9
    assert report.max_score_difference < 1e-9
    assert report.format == ("protopnet-state-dict" if kind == "state_dict" else "protopnet")
    assert report.num_classes == 3 and report.input_size == (input_size(network),) * 2
    spec = load_model(tmp_path / kind).spec
    assert spec.training["imported_from"] == path.name and spec.training["sources"] == UNKNOWN
    assert spec.class_names == ("class_0", "class_1", "class_2")


def test_each_backbone_family_is_recognised(made, tmp_path: Path) -> None:
    expected = {
        "resnet": ("resnet18", {"layers": [1, 1, 1, 1]}),
        "resnet_bottleneck": ("resnet50", {"layers": [1, 1, 1, 1]}),
        "vgg": ("vgg11_bn", {"cfg": [16, "M", 32, "M", 32, "M"]}),
        "densenet": ("densenet121", {"growth_rate": 8, "block_config": [2, 2],
                                     "num_init_features": 16, "bn_size": 2}),
    }  # fmt: skip
    for kind, (backbone, options) in expected.items():
        report = import_checkpoint(made(kind)[0], tmp_path / kind)
        assert (report.backbone, report.backbone_options) == (backbone, options)


def test_a_pruned_model_keeps_its_non_contiguous_class_identity(made, tmp_path: Path) -> None:
    path, network, _ = made("pruned")
    report = import_checkpoint(path, tmp_path / "pruned")
    classes = tuple(network.prototype_class_identity.argmax(dim=1).tolist())
    assert classes == (0, 0, 1, 2, 2, 2)  # 9 prototypes, 1, 4 and 5 pruned as the original does
    spec = load_model(tmp_path / "pruned").spec
    assert spec.architecture.prototype_classes == classes
    assert report.prototypes_per_class == (2, 1, 3)


def test_linear_activation_and_bottleneck_add_on_are_kept(made, tmp_path: Path) -> None:
    import_checkpoint(made("linear")[0], tmp_path / "linear")
    assert load_model(tmp_path / "linear").spec.architecture.activation == "linear"
    report = import_checkpoint(made("bottleneck")[0], tmp_path / "bottleneck")
    assert load_model(tmp_path / "bottleneck").spec.architecture.add_on_widths == (32, 16, 8)
    assert report.add_on[-1] == "Sigmoid" and len(report.add_on) == 12


def test_both_save_formats_give_the_same_model(made, tmp_path: Path) -> None:
    zip_path, network, _ = made("resnet")
    legacy_path = save_original(network, tmp_path / "legacy.pth", legacy=True)
    assert zipfile.is_zipfile(zip_path) and not zipfile.is_zipfile(legacy_path)
    import_checkpoint(zip_path, tmp_path / "a")
    import_checkpoint(legacy_path, tmp_path / "b")
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    assert a.spec.architecture == b.spec.architecture
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_detect_format(made, tmp_path: Path) -> None:
    assert FORMATS == ("auto", "protopnet", "protopnet-state-dict", "cabrnet", "pipnet")
    assert detect_format(made("vgg")[0]) == "protopnet"
    assert detect_format(made("legacy")[0]) == "protopnet"
    assert detect_format(made("state_dict")[0]) == "protopnet-state-dict"


# --- sources -------------------------------------------------------------------------------------
def test_a_push_folder_gives_the_sources_and_boxes_of_the_original_push(tmp_path: Path) -> None:
    network = build_original("vgg", seed=3)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(12) % 3
    epoch_dir = push_like_original(network, images, labels, tmp_path / "run", epoch=10)
    path = save_original(network, tmp_path / "run" / "10push0.9000.pth")
    report = import_checkpoint(path, tmp_path / "out", push_dir=tmp_path / "run")
    assert report.sources == PUSH and report.sources_detail.endswith("epoch-10")
    bundle = load_model(tmp_path / "out")
    rows = np.load(epoch_dir / "bb10.npy")
    for j, record in enumerate(bundle.projection):
        assert record.source_index == rows[j, 0] and record.box == tuple(rows[j, 1:5])
        assert record.class_index == rows[j, 5] == labels[rows[j, 0]]
        np.testing.assert_array_equal(bundle.source_image(j), images[rows[j, 0]])
        with torch.no_grad():  # the cell is where the pushed prototype sits: distance ~0 there
            distances = bundle.model(bundle.model.preprocess([images[rows[j, 0]]])).distance_maps
        assert float(distances[0, j][record.cell]) < 1e-5
    assert_same_outputs(tmp_path / "out", network)


def test_a_push_folder_with_missing_files_is_refused(tmp_path: Path) -> None:
    network = build_original("vgg")
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    epoch_dir = push_like_original(network, images, np.arange(6) % 3, tmp_path / "run", epoch=10)
    path = save_original(network, tmp_path / "run" / "10push0.9000.pth")
    (epoch_dir / "prototype-img-original4.png").unlink()
    with pytest.raises(
        CheckpointError, match=r"lacks 1 source images \(prototype-img-original4.png"
    ):
        import_checkpoint(path, tmp_path / "out", push_dir=tmp_path / "run")
    (epoch_dir / "bb10.npy").unlink()
    with pytest.raises(CheckpointError, match=r"lacks its bb<N>\.npy"):
        import_checkpoint(path, tmp_path / "out", push_dir=tmp_path / "run")
    with pytest.raises(CheckpointError, match="does not exist"):
        import_checkpoint(path, tmp_path / "out", push_dir=tmp_path / "nowhere")
    assert not (tmp_path / "out").exists()


def test_a_push_folder_of_another_model_is_refused(made, tmp_path: Path) -> None:
    network = build_original("vgg")
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    epoch_dir = push_like_original(network, images, np.arange(6) % 3, tmp_path / "run", epoch=10)
    rows = np.load(epoch_dir / "bb10.npy")
    rows[0, 5] = 2
    np.save(epoch_dir / "bb10.npy", rows)
    path = save_original(network, tmp_path / "run" / "10push0.9000.pth")
    with pytest.raises(CheckpointError, match="prototype 0 a source of class 2"):
        import_checkpoint(path, tmp_path / "out", push_dir=tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"\[6, 6\] integers"):  # the pruned model has 6
        import_checkpoint(made("pruned")[0], tmp_path / "out", push_dir=epoch_dir)


def test_an_image_folder_gives_the_nearest_own_class_patches_without_changing_prototypes(
    made, tmp_path: Path
) -> None:
    path = made("vgg")[0]
    data = make_image_folder(tmp_path / "data", ("cat", "dog", "owl"), per_class=4, size=32)
    report = import_checkpoint(path, tmp_path / "out", data=data)
    assert report.sources == NEAREST and report.max_tensor_difference == 0.0
    bundle = load_model(tmp_path / "out")
    assert bundle.spec.class_names == ("cat", "dog", "owl")
    assert bundle.spec.dataset["name"] == str(data.resolve())
    assert len(bundle.examples()) == 6  # two test images per class
    assert 0 <= bundle.spec.accuracy["test"] <= 1 and bundle.spec.dataset["test_images"] == 12
    from explorer.data.folder import load_image_folder

    train = load_image_folder(data, "train", 32)
    model = bundle.model
    with torch.no_grad():
        distances = model(model.preprocess(train.images)).distance_maps.double()  # [N, P, h, w]
    for record in bundle.projection:
        j = record.index
        assert train.labels[record.source_index] == record.class_index == model.prototype_classes[j]
        own = distances[train.labels == record.class_index, j]
        assert float(distances[record.source_index, j][record.cell]) == pytest.approx(
            float(own.min()), rel=1e-5
        )
        y0, y1, x0, x1 = record.box
        assert 0 <= y0 < y1 <= 32 and 0 <= x0 < x1 <= 32
        np.testing.assert_array_equal(bundle.source_image(j), train.images[record.source_index])


def test_without_push_folder_or_data_the_sources_are_unknown_and_the_model_still_explains(
    made, tmp_path: Path
) -> None:
    from explorer.api import Explorer

    import_checkpoint(made("densenet")[0], tmp_path / "weights" / "dense")
    bundle = load_model(tmp_path / "weights" / "dense")
    assert bundle.projection == () and bundle.spec.training["sources"] == UNKNOWN
    assert (
        "Prototype sources: unknown" in (tmp_path / "weights" / "dense" / "README.md").read_text()
    )
    explorer = Explorer(model_dirs=[tmp_path / "weights"])
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3)).astype(np.uint8)
    prediction = explorer.predict(image, model_id="dense", top_k=3)
    assert len(prediction.top_prototypes) == 3
    explanation = explorer.explain(image, "dense", top_k=2, attribution=None)
    assert len(explanation.pairs) == 2


# --- bad input: each one clear line, nothing run, nothing written --------------------------------
class _RunsCode:
    """Pickles as a call of ``function(*args)``: what a malicious checkpoint hides inside."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _assert_refused(path: Path, out: Path, match: str, **options) -> CheckpointError:
    with pytest.raises(CheckpointError, match=match) as caught:
        import_checkpoint(path, out, **options)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.import-")]
    return caught.value


@pytest.mark.filterwarnings("ignore:Couldn't retrieve source code")
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(
    tmp_path: Path, legacy: bool
) -> None:
    marker = tmp_path / "marker"
    payloads = {
        "os.system": _RunsCode(os.system, f"touch {marker}"),
        "builtins.exec": _RunsCode(exec, f"open({str(marker)!r}, 'w').write('x')"),
        "builtins.open": _RunsCode(open, str(marker), "w"),
    }
    for name, payload in payloads.items():
        network = build_original("vgg")
        network.add_on_layers.extra = payload  # hidden in an attribute of a real PPNet
        path = tmp_path / f"{name}.pth"
        with original_modules():
            torch.save(network, path, _use_new_zipfile_serialization=not legacy)
        assert not marker.exists()
        error = _assert_refused(path, tmp_path / "out", "refusing to load it")
        assert "nothing from the file was run" in str(error)
        assert not marker.exists()
        torch.save({"x": payload}, path, _use_new_zipfile_serialization=not legacy)
        _assert_refused(
            path, tmp_path / "out", "refusing to load it", format="protopnet-state-dict"
        )
        assert not marker.exists()


def test_an_allowed_class_called_with_arguments_is_refused(tmp_path: Path) -> None:
    with original_modules():
        path = tmp_path / "ppnet_args.pth"
        torch.save(_RunsCode(PPNet, "rm -rf /"), path)
    _assert_refused(path, tmp_path / "out", "constructs model.PPNet with arguments")


def test_other_pickle_protocols_and_instructions_are_refused(tmp_path: Path) -> None:
    network = build_original("vgg")
    path = tmp_path / "protocol4.pth"
    with original_modules():
        torch.save(network, path, pickle_protocol=4)
    _assert_refused(
        path, tmp_path / "out", "instruction (FRAME|SHORT_BINUNICODE|STACK_GLOBAL|MEMOIZE)"
    )
    raw = tmp_path / "raw.pth"
    raw.write_bytes(pickle.dumps(os.system, protocol=0))
    _assert_refused(raw, tmp_path / "out", "neither a zip nor a legacy|instruction")


def test_an_unexpected_class_name_is_refused_by_name(tmp_path: Path) -> None:
    network = build_original("vgg")
    network.features.features.append(nn.LayerNorm([32, 4, 4]))
    path = save_original(network, tmp_path / "layernorm.pth")
    _assert_refused(
        path, tmp_path / "out", r"references torch\.nn\.modules\.normalization\.LayerNorm"
    )


@pytest.mark.parametrize("kind", ["vgg", "legacy"])
def test_a_truncated_or_corrupt_file_is_refused(made, tmp_path: Path, kind: str) -> None:
    data = made(kind)[0].read_bytes()
    for cut in (len(data) // 2, len(data) - 5, 200):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(data[:cut])
        _assert_refused(path, tmp_path / "out", "truncated or corrupt|could not be read safely")
    (tmp_path / "empty.pth").write_bytes(b"")
    _assert_refused(tmp_path / "empty.pth", tmp_path / "out", "truncated or corrupt")
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    _assert_refused(
        tmp_path / "noise.pth", tmp_path / "out", "truncated or corrupt|instruction|neither"
    )


def _state(made) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in made("state_dict")[1].state_dict().items()}


def _save_state(state: dict, tmp_path: Path, name: str) -> Path:
    torch.save(state, tmp_path / name)
    return tmp_path / name


def test_a_state_dict_with_missing_extra_or_misshapen_tensors_is_refused(
    made, tmp_path: Path
) -> None:
    options = {"class_identity": "contiguous", "input_size": 32}
    state = _state(made)
    del state["features.features.4.weight"]
    _assert_refused(_save_state(state, tmp_path, "missing.pth"), tmp_path / "out",
                    r"missing features\.features\.4\.weight", **options)  # fmt: skip
    state = _state(made)
    state["features.features.1.extra"] = torch.zeros(3)
    _assert_refused(_save_state(state, tmp_path, "extra.pth"), tmp_path / "out",
                    r"unexpected features\.features\.1\.extra", **options)  # fmt: skip
    state = _state(made)
    state["classifier.weight"] = torch.zeros(3)
    _assert_refused(_save_state(state, tmp_path, "top.pth"), tmp_path / "out",
                    r"unexpected classifier\.weight", **options)  # fmt: skip
    state = _state(made)
    del state["ones"]
    _assert_refused(
        _save_state(state, tmp_path, "ones.pth"), tmp_path / "out", "missing ones", **options
    )
    state = _state(made)
    state["features.features.4.weight"] = torch.zeros(32, 16, 5, 5)
    _assert_refused(_save_state(state, tmp_path, "shape.pth"), tmp_path / "out",
                    r"features\.features\.4\.weight", **options)  # fmt: skip
    state = _state(made)
    state["add_on_layers.2.weight"] = torch.zeros(8, 4, 1, 1)
    _assert_refused(_save_state(state, tmp_path, "addon.pth"), tmp_path / "out",
                    r"add_on_layers\.2\.weight.*shape \(8, 4, 1, 1\)", **options)  # fmt: skip


def test_nan_weights_are_refused(made, tmp_path: Path) -> None:
    state = _state(made)
    state["add_on_layers.0.bias"][3] = float("nan")
    _assert_refused(_save_state(state, tmp_path, "nan.pth"), tmp_path / "out",
                    r"'add_on_layers\.0\.bias' holds NaN", class_identity="contiguous")  # fmt: skip
    network = build_original("vgg")
    with torch.no_grad():
        network.prototype_vectors[0, 0] = float("inf")
    _assert_refused(save_original(network, tmp_path / "inf.pth"), tmp_path / "out",
                    "'prototype_vectors' holds NaN or infinite")  # fmt: skip


def test_an_unknown_backbone_is_refused(made, tmp_path: Path) -> None:
    state = {k: v for k, v in _state(made).items() if not k.startswith("features.")}
    state["features.stem.weight"] = torch.zeros(32, 3, 3, 3)
    _assert_refused(_save_state(state, tmp_path, "unknown.pth"), tmp_path / "out",
                    "unknown backbone", class_identity="contiguous")  # fmt: skip


def test_a_class_identity_that_does_not_match_the_last_layer_is_refused(
    made, tmp_path: Path
) -> None:
    path = made("state_dict")[0]
    out = tmp_path / "out"
    _assert_refused(path, out, "does not store which class each prototype belongs to")
    _assert_refused(path, out, "does not match the last layer", class_identity=[0, 1, 2])
    _assert_refused(
        path, out, "does not match the last layer", class_identity=[0, 0, 0, 1, 1, 1, 2, 2, 5]
    )
    (tmp_path / "identity.txt").write_text("2 2 2 0 0 0 1 1 1\n")  # a permutation of the blocks
    _assert_refused(path, out, "largest weight goes|largest weight to another class",
                    class_identity=tmp_path / "identity.txt", input_size=32)  # fmt: skip
    (tmp_path / "identity.json").write_text(json.dumps([0, 0, 0, 1, 1, 1, 2, 2, 2]))
    report = import_checkpoint(path, out, class_identity=tmp_path / "identity.json", input_size=32)
    assert report.prototypes_per_class == (3, 3, 3)
    pruned = made("pruned")[0]
    _assert_refused(pruned, tmp_path / "out2", "cannot be given", class_identity="contiguous")


def test_an_existing_output_folder_is_never_overwritten(made, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="already exists"):
        import_checkpoint(made("vgg")[0], tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    with pytest.raises(CheckpointError, match="does not exist"):
        import_checkpoint(tmp_path / "missing.pth", tmp_path / "new")
    with pytest.raises(CheckpointError, match="unknown format"):
        import_checkpoint(made("vgg")[0], tmp_path / "new", format="tensorflow")


def test_a_failure_after_reading_leaves_nothing_behind(made, tmp_path: Path) -> None:
    data = make_image_folder(
        tmp_path / "data", ("a", "b"), per_class=2, size=32
    )  # 2 classes, not 3
    _assert_refused(made("vgg")[0], tmp_path / "out", "ImageFolder has 2 classes", data=data)
    _assert_refused(
        made("vgg")[0], tmp_path / "out", "3 distinct non-empty names", class_names="a,b"
    )


# --- the command line ------------------------------------------------------------------------------
def test_the_import_command_prints_what_it_found_and_the_equality_check(
    made, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = made("pruned")[0]
    code = cli_main(["import", str(path), "--out", "weights/pruned", "--class-names", "a,b,c"])
    captured = capsys.readouterr()
    assert code == 0
    report = json.loads(captured.out)
    assert report["prototypes_per_class"] == [2, 1, 3] and report["max_tensor_difference"] == 0.0
    assert report["backbone"] == "vgg11" and report["activation"] == "log"
    assert "equality: max |Δ tensor| = 0" in captured.err and "1–3 per class" in captured.err
    assert load_model(tmp_path / "weights" / "pruned").spec.class_names == ("a", "b", "c")

    code = cli_main(["import", str(made("state_dict")[0]), "--out", "weights/sd"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert "--class-identity" in captured.err
    code = cli_main(["import", str(made("state_dict")[0]), "--out", "weights/sd",
                     "--class-identity", "contiguous", "--input-size", "32"])  # fmt: skip
    assert code == 0 and json.loads(capsys.readouterr().out)["format"] == "protopnet-state-dict"
    shutil.rmtree(tmp_path / "weights")


class _OldBackend:
    """What torch < 1.2 put in every module's ``_backend``: pickled as a call of
    ``torch.nn.backends.thnn._get_thnn_function_backend()``."""

    def __reduce__(self):
        from torch.nn.backends.thnn import _get_thnn_function_backend

        return _get_thnn_function_backend, ()


@pytest.mark.filterwarnings("ignore:Couldn't retrieve source code")
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_checkpoint_of_an_old_torch_with_module_backends_imports(
    tmp_path: Path, legacy: bool
) -> None:
    network = build_original("vgg")
    for module in network.modules():
        module._backend = _OldBackend()
    path = save_original(network, tmp_path / "old.pth", legacy=legacy)
    import_checkpoint(path, tmp_path / "out")
    for module in network.modules():
        del module._backend
    assert_same_outputs(tmp_path / "out", network)


def test_the_legacy_rewrites_helper_cannot_be_named_by_a_file(tmp_path: Path) -> None:
    from explorer.models.importers.safe_pickle import _container_class

    for legacy in (False, True):
        path = tmp_path / f"helper{legacy}.pth"
        torch.save(
            _RunsCode(_container_class, "module", int),
            path,
            _use_new_zipfile_serialization=not legacy,
        )
        _assert_refused(
            path, tmp_path / "out", r"references .*explorer\.models\.importers\.safe_pickle"
        )


def test_the_model_card_words_every_kind_of_prototype_source() -> None:
    from explorer.models.card import SOURCE_WORDS
    from explorer.models.importers.sources import NEAREST, PUSH, UNKNOWN

    assert set(SOURCE_WORDS) == {NEAREST, PUSH, UNKNOWN}
