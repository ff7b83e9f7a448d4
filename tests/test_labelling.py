"""Labelling through the app, the CLI and the what-if model (the store itself: tests/test_labels.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import Client

from explorer.analysis.whatif import modified_last_layer
from explorer.api import Explorer
from explorer.labels.exchange import COLUMNS
from tests.serving import app_process

ROOT = Path(__file__).resolve().parent.parent


def test_what_if_accuracy_equals_the_model_with_those_columns_zeroed(tmp_path: Path) -> None:
    explorer = Explorer(label_path=tmp_path / "labels.sqlite3", cache_root=tmp_path / "cache")
    for j in (3, 8, 20):
        explorer.label("synthetic", j, "misleading", "ana", reason="background")
    explorer.label("synthetic", 5, "valid", "ana")
    disabled = explorer.misleading("synthetic")
    assert disabled == {3, 8, 20}
    result = explorer.what_if("synthetic", disabled=disabled)
    model = explorer.bundle("synthetic").model
    test = explorer.dataset("synthetic", "test")
    zeroed = model.last_layer.weight.detach().clone()
    zeroed[:, sorted(disabled)] = 0
    with torch.inference_mode(), modified_last_layer(model, zeroed):
        logits = torch.cat(
            [
                model(model.preprocess(test.images[i : i + 100])).logits
                for i in range(0, len(test), 100)
            ]
        )
    accuracy = float((logits.argmax(1).numpy() == test.labels).mean())
    assert result.accuracy == pytest.approx(accuracy, abs=1e-12)
    np.testing.assert_array_equal(result.predictions, logits.argmax(1).numpy())
    # the explanation of an image under the what-if model uses the same zeroed columns
    example = explorer.bundle("synthetic").examples()[0]
    x = explorer.explain(example, "synthetic", attribution=None, disabled=disabled)
    with torch.inference_mode(), modified_last_layer(model, zeroed):
        expected = model(model.preprocess([np.asarray(x.pixels)])).logits[0].numpy()
    np.testing.assert_allclose(x.activations.logits, expected, atol=1e-5)
    assert all(p.prototype not in disabled or p.contribution == 0 for p in x.pairs)


@pytest.mark.slow
def test_labels_given_through_the_app_survive_a_restart(tmp_path: Path) -> None:
    store = str(tmp_path / "labels.sqlite3")
    with app_process(EXPLORER_LABELS_DB=store) as (url, _, _):
        client = Client(url, verbose=False)
        status = client.predict("elpv", 12, "artefact", "scanner edge", "Ana", api_name="/label")
        assert (
            "current label of P12: **valid**" in status and "1 of 20 prototypes reviewed" in status
        )
        undone = client.predict("elpv", 12, "Ana", api_name="/undo_label")
        assert "Undone" in undone and "no current label" in undone
        client.predict("elpv", 7, "", "", "Ben", api_name="/label")
    with app_process(EXPLORER_LABELS_DB=store) as (url, _, _):  # the app killed and started again
        client = Client(url, verbose=False)
        progress, table = client.predict("elpv", "any", "", False, api_name="/labels")
        assert "1 of 20 prototypes reviewed" in progress
        assert [row[1] for row in table["data"]] == [7] and table["data"][0][6] == "Ben"
        history = client.predict("elpv", 12, api_name="/label_history")
        assert [row[2] for row in history["data"]] == ["valid", "undo of #1"]
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError, match="reviewer"):
            client.predict(
                "elpv", 3, "", "", "", api_name="/label"
            )  # no name: refused, nothing saved
        with pytest.raises(AppError, match="out of range"):
            client.predict("elpv", 99, "", "", "Ana", api_name="/label")
        path = client.predict("elpv", "full history (JSON)", api_name="/export_labels")
        exported = json.loads(Path(path).read_text())
        assert len(exported["events"]) == 3


def test_cli_exports_and_imports_idempotently(tmp_path: Path) -> None:
    source = tmp_path / "a.sqlite3"
    explorer = Explorer(label_path=source)
    explorer.label(
        "fashion_mnist", 1, "misleading", "ana", reason="background", comment='says "hi", twice'
    )
    explorer.label("fashion_mnist", 2, "valid", "ben")
    explorer.undo_label("fashion_mnist", 2, "ben")

    def cli(db: Path, *args: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "explorer", "labels", *args], cwd=ROOT, capture_output=True,
            text=True, timeout=120, env={**__import__("os").environ, "EXPLORER_LABELS_DB": str(db)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    out = tmp_path / "history.json"
    assert cli(source, "export", str(out), "--history")["events"] == 3
    target = tmp_path / "b.sqlite3"
    assert cli(target, "import", str(out))["imported_events"] == 3
    assert cli(target, "import", str(out))["imported_events"] == 0
    again = Explorer(label_path=target)
    assert again.misleading("fashion_mnist") == {1}
    assert [e.comment for e in again.label_history("fashion_mnist", 1)] == ['says "hi", twice']
    as_csv = tmp_path / "history.csv"  # the suffix picks the format when --format is not given
    assert cli(source, "export", str(as_csv), "--history")["events"] == 3
    assert as_csv.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert cli(tmp_path / "c.sqlite3", "import", str(as_csv))["imported_events"] == 3
    folder = tmp_path / "protopdebug"
    counts = cli(
        source, "export", str(folder), "--format", "protopdebug", "--model", "fashion_mnist"
    )
    assert counts["counts"]
    assert list((folder / "forbidden_prototypes" / "class_idx_0").glob("c=0_p=1_i=*.png"))
