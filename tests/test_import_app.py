"""An imported original ProtoPNet, with an ImageFolder made here, opens in the app like a trained model:
explained through ``gradio_client``, its nearest patches computed from the ImageFolder."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from explorer.api import Explorer
from tests.original_protopnet import make_image_folder, make_original_checkpoint
from tests.serving import served_app


@pytest.mark.slow
def test_an_imported_model_explains_and_finds_nearest_patches_in_the_app(tmp_path: Path) -> None:
    checkpoint = make_original_checkpoint("vgg", tmp_path / "checkpoints")
    data = make_image_folder(tmp_path / "birds", ("crow", "gull", "wren"), per_class=6, size=32)
    explorer = Explorer(model_dirs=[tmp_path / "weights"], cache_root=tmp_path / "cache")
    report = explorer.import_checkpoint(checkpoint, tmp_path / "weights" / "birds", data=data)
    assert report.sources == "nearest training patch" and "birds" in explorer.model_ids()
    example = explorer.bundle("birds").examples()[0]
    with served_app(explorer) as url:
        client = Client(url, verbose=False)
        summary, label, evidence, table, pairs, *_ = client.predict(
            handle_file(str(example)), "birds", 5, "contribution", "predicted class", "jet",
            api_name="/explain",
        )  # fmt: skip
        assert summary.startswith("Predicted *") and label["label"] in ("crow", "gull", "wren")
        assert len(table["data"]) == 5 and len(pairs) == 5 and evidence is not None
        details, _, _, _, train, test = client.predict("birds", 4, api_name="/nearest")
        assert "from its own class" in details
        assert len(train) == 5 and len(test) == 5
