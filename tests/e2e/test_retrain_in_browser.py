"""Retrain without what we flagged, in Debian Chromium: a reviewer labels a prototype misleading,
starts the retrain in the Labels tab, follows its progress, finds the new model in the selector and
compares the two models (a tiny ProtoPNet, so that the retrain takes seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.api import Explorer
from tests.e2e.conftest import screenshot
from tests.serving import served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_retrain_from_the_labels_tab_and_compare_before_and_after(
    browser, tiny_folder_model: Path, tmp_path: Path
) -> None:
    explorer = Explorer(
        [tiny_folder_model], label_path=tmp_path / "labels.sqlite3",
        cache_root=tmp_path / "cache", models_out=tmp_path / "made",
    )  # fmt: skip
    with served_app(explorer) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 2400})
        page = context.new_page()
        page.goto(url)
        page.get_by_role("tab", name="Labels").click()
        page.get_by_text("Nothing to retrain from yet").first.wait_for(timeout=60_000)
        explorer.label("tiny_folder", 2, "misleading", "Dr Ana", reason="marker or text")
        page.get_by_role("tab", name="Model card").click()
        page.get_by_role("tab", name="Labels").click()  # opening the tab reads the labels again
        page.get_by_text("labelled misleading (P2)").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Retrain without what we flagged").click()
        page.get_by_text("Retraining").first.wait_for(timeout=30_000)
        screenshot(page, "retrain-running")
        page.get_by_text("tiny_folder-debugged").first.wait_for(timeout=240_000)
        page.get_by_text("is in the model selector").first.wait_for(timeout=10_000)
        assert "tiny_folder-debugged" in explorer.model_ids()
        page.get_by_role("button", name="Compare").click()
        page.get_by_text("was retrained from").first.wait_for(timeout=60_000)
        page.get_by_text(
            "The labelled concepts: do they still activate the model?"
        ).first.wait_for()
        screenshot(page, "retrain-done")
        page.get_by_label("Model", exact=True).click()  # the selector lists the new model
        page.get_by_role("option", name="tiny_folder-debugged").wait_for(timeout=10_000)
        context.close()
