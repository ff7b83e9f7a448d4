"""Shared fixtures: tiny hand-weighted models, shipped model folders, dataset availability."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer.api import WEIGHTS_DIR
from explorer.models.protopnet import ProtoPNet
from explorer.spec import ArchitectureSpec, ModelSpec

SHIPPED_MODELS = ("fashion_mnist", "elpv", "synthetic")


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
