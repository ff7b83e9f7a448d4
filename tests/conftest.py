"""Shared fixtures: tiny hand-weighted models, shipped model folders, dataset availability."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import pytest
import torch

from explorer.api import WEIGHTS_DIR
from explorer.data.synthetic import generate
from explorer.models.protopnet import ProtoPNet
from explorer.spec import ArchitectureSpec, ModelSpec
from explorer.train.config import PRESETS
from explorer.train.trainer import train

SHIPPED_MODELS = ("fashion_mnist", "elpv", "synthetic", "synthetic_pipnet")

# Analyses computed by tests (and by the CLI and app they start) go to a fresh folder, never to the
# user's cache, so every run computes them once from the data as CI does.
os.environ["EXPLORER_CACHE_DIR"] = tempfile.mkdtemp(prefix="explorer-test-cache-")
os.environ["EXPLORER_LABELS_DB"] = os.path.join(
    tempfile.mkdtemp(prefix="explorer-test-labels-"), "labels.sqlite3"
)
os.environ["EXPLORER_MODELS_DIR"] = tempfile.mkdtemp(prefix="explorer-test-models-")


def tiny_spec(
    backbone: str = "identity",
    channels: int = 2,
    classes: int = 2,
    per_class: int = 1,
    dim: int = 2,
    size: int = 8,
    options: dict | None = None,
) -> ModelSpec:
    return ModelSpec(
        model_id="tiny",
        title="tiny",
        architecture=ArchitectureSpec(backbone, per_class, dim, options or {}),
        input_size=(size, size),
        channels=channels,
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
        class_names=tuple(f"class{c}" for c in range(classes)),
    )


@pytest.fixture
def random_model() -> ProtoPNet:
    """A small untrained ProtoPNet on the small CNN backbone (random but seeded weights)."""
    torch.manual_seed(0)
    spec = tiny_spec(
        backbone="small_cnn", channels=3, classes=3, per_class=2, dim=8, size=16,
        options={"widths": [4, 8], "pools": 2},
    )  # fmt: skip
    return ProtoPNet(spec).eval()


def shipped_folder(model_id: str) -> Path:
    folder = WEIGHTS_DIR / model_id
    if not (folder / "spec.json").is_file():
        pytest.fail(f"shipped model {model_id} is missing from {WEIGHTS_DIR}")
    return folder


def tiny_config():
    return PRESETS["synthetic"].with_overrides(
        model_id="tiny_synthetic",
        input_size=(32, 32),
        prototypes_per_class=2,
        prototype_dim=16,
        backbone_options={"widths": [8, 16], "pools": 2},
        warm_epochs=1,
        joint_epochs=2,
        last_epochs=3,
        batch_size=32,
        examples_per_class=1,
    )


def tiny_pipnet_setup():
    """A tiny PIP-Net run's configuration (8 prototypes, 32 px, one epoch per stage) and its splits
    (6 training and 3 test images per class of the synthetic set)."""
    from explorer.data.synthetic import load_synthetic
    from explorer.train.pipnet_trainer import PIPNET_PRESETS

    config = PIPNET_PRESETS["synthetic_pipnet"].with_overrides(
        model_id="tiny_pipnet", input_size=(32, 32), num_prototypes=8,
        backbone_options={"widths": [8, 16], "pools": 2},
        pretrain_epochs=1, finetune_epochs=1, train_epochs=1, batch_size=32,
        examples_per_class=1,
    )  # fmt: skip
    train = load_synthetic("train", n_per_class=6, size=32)
    test = load_synthetic("test", n_per_class=3, size=32)
    return config, train, test


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    # with masks: the synthetic preset projects prototypes onto the object only (push_on_object)
    train_set = generate(16, "train", seed=0, size=32, with_masks=True)
    test_set = generate(8, "test", seed=1, size=32)
    folder = tmp_path_factory.mktemp("run") / "tiny"
    spec = train(tiny_config(), folder, train_set, test_set)
    return folder, (train_set, test_set, spec)


@pytest.fixture(scope="session")
def tiny_folder_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ProtoPNet (2 prototypes per class, 32 px) trained on an ImageFolder of the synthetic
    set (8 training and 4 test images per class); returns its model folder."""
    root = tmp_path_factory.mktemp("retrain")
    data = root / "data"
    for split, images in (
        ("train", generate(8, "train", 0, 32)),
        ("test", generate(4, "test", 1, 32)),
    ):
        for i, (image, label) in enumerate(zip(images.images, images.labels, strict=True)):
            path = data / split / images.class_names[label] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    config = tiny_config().with_overrides(
        model_id="tiny_folder", dataset=str(data), push_on_object=False
    )
    folder = root / "tiny_folder"
    train(config, folder)
    return folder
