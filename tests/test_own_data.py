"""A user's own ImageFolder, end to end at the model's input size (issue 16, "your own data").

A 64 px folder must stay 64 px: loaded for training without the old 64 → 224 → 64 round trip, and
loaded again at 64 px by every analysis of the trained model; ``--push-on-object`` without masks is
refused before any training; a relative ``--data`` is stored as an absolute path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import Explorer, ExplorerError
from explorer.cli import main
from explorer.data import load_split

SIDE = 64


def image_folder(root: Path, per_class: int = 4) -> dict[str, list[np.ndarray]]:
    """``root/{train,test}/{dark,light}/*.png`` of SIDE x SIDE noise images; the train images."""
    rng = np.random.default_rng(0)
    written: dict[str, list[np.ndarray]] = {}
    for split in ("train", "test"):
        for label, name in enumerate(("dark", "light")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                base = 60 + 120 * label
                rgb = np.clip(rng.normal(base, 30, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(rgb).save(folder / f"{i}.png")
                if split == "train":
                    written.setdefault(name, []).append(rgb)
    return written


def test_an_image_folder_is_loaded_at_the_size_asked_for_without_resampling(tmp_path: Path) -> None:
    written = image_folder(tmp_path / "data")
    native = load_split(str(tmp_path / "data"), "train", (SIDE, SIDE))
    assert native.images.shape == (8, SIDE, SIDE, 3) and native.class_names == ("dark", "light")
    np.testing.assert_array_equal(native.images[0], written["dark"][0])  # the very pixels
    wider = load_split(str(tmp_path / "data"), "test", (32, 48))
    assert wider.images.shape[1:3] == (32, 48)
    assert load_split(str(tmp_path / "data"), "test").images.shape[1:3] == (224, 224)  # default


def test_input_size_64_keeps_64_px_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = image_folder(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "models" / "own"
    code = main([
        "train", "--data", "data", "--backbone", "small_cnn", "--input-size", str(SIDE),
        "--out", str(out), "--model-id", "own", "--warm-epochs", "1", "--joint-epochs", "1",
        "--last-epochs", "1",
        "--prototypes-per-class", "1", "--seed", "0",
    ])  # fmt: skip
    assert code == 0
    spec = json.loads((out / "spec.json").read_text())
    assert spec["input_size"] == [SIDE, SIDE]
    assert spec["dataset"]["name"] == str((tmp_path / "data").resolve())  # not the relative "data"
    monkeypatch.chdir(os.sep)  # the model is used from anywhere
    explorer = Explorer([out.parent], cache_root=tmp_path / "cache")
    train = explorer.dataset("own", "train")  # what every analysis of the model reads
    assert train.images.shape[1:3] == (SIDE, SIDE)
    np.testing.assert_array_equal(train.images[0], written["dark"][0])
    source = explorer.source_image(0, "own")
    assert source is not None and source.shape[:2] == (SIDE, SIDE)

    # every command reaches a model outside weights/: by its folder, or by --models
    image = tmp_path / "data" / "test" / "light" / "0.png"
    assert main(["predict", str(image), "--model", str(out)]) == 0
    assert main(["redundancy", "--models", str(out.parent), "--model", "own"]) == 0
    assert main(["models", "--models", str(out)]) == 0


def test_push_on_object_without_masks_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image_folder(tmp_path / "data", per_class=1)
    code = main([
        "train", "--data", str(tmp_path / "data"), "--backbone", "small_cnn", "--input-size", "32",
        "--out", str(tmp_path / "out"), "--push-on-object",
    ])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--push-on-object needs object masks" in err[0]
    assert not (tmp_path / "out" / "spec.json").exists()
    with pytest.raises(ExplorerError, match="needs object masks"):
        Explorer(model_dirs=()).train(
            tmp_path / "out", data=tmp_path / "data", backbone="small_cnn", input_size=32,
            push_on_object=True,
        )  # fmt: skip


def test_a_models_folder_that_does_not_exist_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "--models", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --models {tmp_path / 'nowhere'}: no such folder"]


def test_the_recovery_bench_reads_another_generators_class_names() -> None:
    from bench.attribute_recovery import defining_attribute

    assert defining_attribute("hue") == "hue" and defining_attribute("base") is None  # ours
    assert defining_attribute("1_Saturation") == "saturation"
    assert defining_attribute("texture-changed") == "texture"
    assert defining_attribute("0_base_class") is None
    for bad in ("cats", "hue_and_shape"):
        with pytest.raises(SystemExit, match="name each class after the one attribute"):
            defining_attribute(bad)
