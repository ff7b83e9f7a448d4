"""Retraining from labels through the facade, the command line and the background jobs, on a tiny
ProtoPNet trained here on an ImageFolder (so a child process can read its data too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer import Explorer, JobRefused
from explorer.cli import main
from explorer.train.debug import partial_folder

QUICK = {"warm_epochs": 1, "joint_epochs": 1, "last_epochs": 2}


@pytest.fixture
def explorer(tiny_folder_model: Path, tmp_path: Path) -> Explorer:
    return Explorer(
        [tiny_folder_model], label_path=tmp_path / "labels.sqlite3", models_out=tmp_path / "made"
    )


def test_the_cli_retrains_from_the_labels_and_reports_what_changed(
    tiny_folder_model: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("EXPLORER_LABELS_DB", str(tmp_path / "labels.sqlite3"))
    labels = Explorer([tiny_folder_model])
    labels.label("tiny_folder", 0, "misleading", "ana", reason="background")
    labels.label("tiny_folder", 3, "valid", "ana")
    out = tmp_path / "child"
    argv = ["debug", "--model", str(tiny_folder_model), "--out", str(out), "--warm-epochs", "1",
            "--last-epochs", "2"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == str(out.resolve()) and result["model_id"] == "tiny_folder-debugged"
    assert result["parent"]["model_id"] == "tiny_folder"
    spec = json.loads((out / "spec.json").read_text())
    assert [(r["prototype"], r["verdict"]) for r in spec["lineage"]["labels"]] == [
        (0, "misleading"), (3, "valid"),
    ]  # fmt: skip
    assert spec["lineage"]["cut_outs"]["forbidden"][0]["prototype"] == 0
    argv = ["before-after", "--before", str(tiny_folder_model), "--after", str(out)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["related"] and report["before"] == "tiny_folder"
    assert [c["prototype"] for c in report["confounds"]] == [0, 3]
    assert report["confounds"][0]["verdict"] == "misleading"
    assert len(report["prototypes"]) == 12 and report["test_images"] == 24
    assert main([*argv, "--markdown"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("## `tiny_folder` → `tiny_folder-debugged`")
    assert "was retrained from `tiny_folder`" in text and "| P0 | misleading |" in text


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], "Nothing to retrain from yet: label prototypes misleading"),
        (["--rounds", "0"], "rounds must be from 1 to 20, not 0"),
        (["--model-id", "../x"], "the model id '../x' is not usable"),
    ],
)
def test_bad_retrain_requests_get_one_line(
    tiny_folder_model: Path, tmp_path: Path, capsys, monkeypatch, extra, expected
) -> None:
    monkeypatch.setenv("EXPLORER_LABELS_DB", str(tmp_path / "labels.sqlite3"))
    if extra:
        Explorer([tiny_folder_model]).label("tiny_folder", 1, "misleading", "ana")
    assert main(["debug", "--model", str(tiny_folder_model), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1


def test_a_pipnet_cannot_be_retrained_and_says_why(capsys) -> None:
    assert main(["debug", "--model", "synthetic_pipnet"]) == 2
    err = capsys.readouterr().err
    assert "Not available: retraining from labels (ProtoPDebug)" in err and "PIP-Net" in err


def test_a_background_retrain_is_one_per_model_cancellable_and_registered_when_done(
    explorer: Explorer, tmp_path: Path
) -> None:
    explorer.label("tiny_folder", 2, "misleading", "ana", reason="shortcut")
    first = explorer.start_retrain("tiny_folder", **QUICK)
    assert first.state == "running"
    with pytest.raises(JobRefused, match="a retrain of 'tiny_folder' is already running"):
        explorer.start_retrain("tiny_folder", **QUICK)
    cancelled = explorer.cancel_retrain("tiny_folder")
    assert cancelled is not None and cancelled.state == "cancelled"
    made = tmp_path / "made"
    assert not any(made.iterdir()), list(made.iterdir())  # no folder, no partial folder
    status = explorer.start_retrain("tiny_folder", **QUICK)
    status = explorer.retrain_jobs.wait("tiny_folder", 300)
    assert status is not None and status.state == "done", status
    assert "tiny_folder-debugged" in explorer.model_ids()
    assert explorer.lineage("tiny_folder-debugged") == ["tiny_folder", "tiny_folder-debugged"]
    folder = made / "tiny_folder-debugged"
    assert (folder / "spec.json").is_file() and not partial_folder(folder).exists()
    assert explorer.retrain_status("tiny_folder").result["model_id"] == "tiny_folder-debugged"
    change = explorer.before_after("tiny_folder", "tiny_folder-debugged")
    assert change.related and change.confounds[0].prototype == 2
