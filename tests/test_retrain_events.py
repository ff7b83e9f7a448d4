"""The Labels tab's retrain and before/after event functions, without a browser: what each state of
a retrain says, and what a model that cannot be retrained says instead of a button that fails."""

from __future__ import annotations

import time

import gradio as gr
import pytest

from explorer import Explorer
from explorer.jobs import JobStatus
from explorer.ui.events import retrain


def status(state: str, **changes) -> JobStatus:
    started = time.time() - 90
    base = JobStatus("m", state, "fine-tuning add-on and prototypes (5 epochs)", 30, 120, started)
    return JobStatus(**{**base.__dict__, **changes})


def test_each_state_of_a_retrain_reads_plainly() -> None:
    assert retrain.status_text(None) == ""
    running = retrain.status_text(status("running"))
    assert running.startswith("**Retraining**: fine-tuning add-on and prototypes (5 epochs) — 25% done")
    assert "about 4.5 min left." in running  # 90 s for a quarter: 270 s for the rest
    done = retrain.status_text(
        status("done", finished=time.time(), result={
            "model_id": "m-debugged",
            "accuracy": {"after_last_layer": 0.985, "parent_after_last_layer": 0.877},
        })
    )  # fmt: skip
    assert "**m-debugged** is in the model selector. Test accuracy 87.7% → 98.5%." in done
    failed = retrain.status_text(status("failed", error="error: the data set is gone"))
    assert failed == "**Failed**: error: the data set is gone"
    cancelled = retrain.status_text(status("cancelled", finished=time.time()))
    assert cancelled.endswith("nothing was written.")


def test_a_model_that_cannot_be_retrained_says_why_in_the_note(tmp_path) -> None:
    explorer = Explorer(label_path=tmp_path / "labels.sqlite3", models_out=tmp_path / "made")
    assert retrain.retrain_note(explorer, "synthetic_pipnet").startswith(
        "Not available: retraining from labels (ProtoPDebug),"
    )
    assert retrain.retrain_note(explorer, "synthetic").startswith("Nothing to retrain from yet")
    explorer.label("synthetic", 4, "misleading", "ana", reason="background")
    explorer.label("synthetic", 7, "valid", "ana")
    note = retrain.retrain_note(explorer, "synthetic")
    assert "labelled **misleading** (P4)" in note and "labelled **valid** close to theirs (P7)" in note
    assert "Estimated time: about 3.3 min" in note  # 4.6 min × (5 + 10 + 2) / (2 + 20 + 2)
    assert str(tmp_path / "made") in note


def test_before_after_needs_two_different_known_models(tmp_path) -> None:
    explorer = Explorer(label_path=tmp_path / "labels.sqlite3")
    with pytest.raises(gr.Error, match="Choose two models of one lineage"):
        retrain.compare(explorer, "synthetic", None)
    with pytest.raises(gr.Error, match=r"Choose two different models \(both are 'synthetic'\)"):
        retrain.compare(explorer, "synthetic", "synthetic")
    with pytest.raises(gr.Error, match="different classes; compare models of one data set"):
        retrain.compare(explorer, "synthetic", "elpv")
    family, before, after = retrain._lineage_choices(explorer, "synthetic")
    assert (family, before, after) == (["synthetic"], "synthetic", None)
