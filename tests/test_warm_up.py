"""The server's warm-up (explorer/ui/warm_up.py) runs the Explain tab's first click once per model,
in the background, and never takes the server down.

The library's calls are counted through the public API (tests/counting.py); the explanations are the
real ones, on the shipped synthetic model and on a copy of it without bundled examples.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import gradio as gr
import pytest

from explorer import Explorer
from explorer.api import WEIGHTS_DIR
from explorer.ui.app import build_app
from explorer.ui.warm_up import WarmUp
from tests.counting import counting

MODEL = "synthetic"  # the fastest shipped model


def fresh(tmp_path: Path, *folders: Path) -> Explorer:
    return Explorer(
        list(folders) or [WEIGHTS_DIR], default_model=MODEL, cache_root=tmp_path / "cache",
        label_path=tmp_path / "labels.sqlite3",
    )  # fmt: skip


def test_a_warm_up_runs_the_first_click_once_per_model(tmp_path: Path) -> None:
    explorer = fresh(tmp_path)
    calls = counting(explorer)
    warm_up = WarmUp(explorer)
    assert not warm_up.wait(MODEL, timeout=0)  # nothing started yet
    warm_up.start(MODEL)
    warm_up.start(MODEL)  # asked again while it runs (a second user picks the model): nothing more
    assert warm_up.wait(MODEL, timeout=300)
    warm_up.start(MODEL)  # and after it finished
    assert warm_up.wait(MODEL, timeout=0)
    # the explanation with its Grad-CAM, and the strongest match's attribute explanation
    assert calls["explain"] == 1, calls
    assert calls["match_attributes"] == 1, calls
    assert calls["predict"] == 0, calls


def test_a_model_the_explorer_does_not_serve_is_not_warmed(tmp_path: Path) -> None:
    explorer = fresh(tmp_path)
    calls = counting(explorer)
    warm_up = WarmUp(explorer)
    for model_id in ("no-such-model", None, ""):
        warm_up.start(model_id)
    assert not warm_up.wait("no-such-model", timeout=0)
    assert sum(calls.values()) == 0


def test_a_model_without_examples_is_warmed_on_a_grey_image(tmp_path: Path) -> None:
    folder = tmp_path / "models" / MODEL
    shutil.copytree(WEIGHTS_DIR / MODEL, folder, ignore=shutil.ignore_patterns("examples"))
    explorer = fresh(tmp_path, folder.parent)
    assert explorer.bundle(MODEL).examples() == []
    calls = counting(explorer)
    WarmUp(explorer).run(MODEL)  # in this thread: raises if the grey image cannot be explained
    assert calls["explain"] == 1, calls


def test_a_failed_warm_up_is_logged_and_the_server_keeps_its_thread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    explorer = fresh(tmp_path)

    def broken(*args, **kwargs):  # the model's explanation fails (e.g. its weights went missing)
        raise RuntimeError("weights unreadable")

    explorer.explain = broken  # type: ignore[method-assign]
    warm_up = WarmUp(explorer)
    with caplog.at_level(logging.WARNING, logger="explorer.ui.warm_up"):
        warm_up.start(MODEL)
        assert warm_up.wait(MODEL, timeout=120)
    assert f"warming up {MODEL} failed" in caplog.text


def test_picking_another_model_in_the_app_warms_it(tmp_path: Path) -> None:
    """The model picker's change event ends with the warm-up of the model picked."""
    explorer = fresh(tmp_path)
    warm_up = WarmUp(explorer)
    app = build_app(explorer, warm_up)
    picker = next(
        block for block in app.blocks.values()
        if isinstance(block, gr.Dropdown) and block.label == "Model"
    )  # fmt: skip
    warming = [
        fn for fn in app.fns.values()
        if fn.fn == warm_up.start and [b._id for b in fn.inputs] == [picker._id]
    ]  # fmt: skip
    assert len(warming) == 1
    assert not warming[0].queue  # it only starts a thread: it never waits in the queue
