"""The trust signals in Debian Chromium, on the shipped synthetic model: an explained example shows a
robustness badge on every pair and the rule once; the Labels tab shows the review queue at once (its
metrics measured and stored before the page opens; *Rank prototypes to review* ranks it again), a row clicked brings its
prototype up there and in the Prototypes tab, and a label given there takes it out of the queue; the
Model card shows the metrics without a button.

Screenshots of the queue and of the badges land in ``artifacts/e2e/`` for a person to look at
(``docs/screenshots/review_queue.png`` is the queue's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from explorer.api import WEIGHTS_DIR, Explorer
from tests.e2e.conftest import ARTIFACTS
from tests.serving import served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODEL = "synthetic"
BADGE = re.compile(r"^P\d+ \(\w+\) · (✓ robust|⚠ fragile: [\w ,]+) · sim ")


def test_badges_in_explain_and_the_review_queue_in_labels(browser, tmp_path: Path) -> None:
    explorer = Explorer(
        [WEIGHTS_DIR / MODEL], default_model=MODEL,
        label_path=tmp_path / "labels.sqlite3",
    )  # fmt: skip
    explorer.evaluate(MODEL)  # stored in the session's test cache (at once if already measured)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with served_app(explorer) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1400})
        page = context.new_page()
        page.goto(url)
        page.get_by_label("Your name (for labels; remembered in this browser)").fill("Dr Ana")

        # Explain: every pair's caption carries its badge; the summary counts the fragile ones
        examples = page.locator("#explain-examples")
        examples.get_by_label("Thumbnail 1 of", exact=False).first.click(timeout=60_000)
        page.get_by_text("Robustness:").first.wait_for(timeout=60_000)
        pairs = page.locator("#explain-pairs")
        pairs.get_by_text(BADGE).first.wait_for(timeout=30_000)
        assert pairs.get_by_text(BADGE).count() == 10
        assert page.locator("#explain-table").get_by_text("robustness", exact=True).count()
        rule = page.locator("#explain-robustness-rule")
        assert "more than 20% of its value" in rule.inner_text()
        page.locator("#explain-pairs-section").screenshot(path=str(ARTIFACTS / "badges.png"))

        # Labels: the queue at once; ranked again; the top row clicked and labelled leaves it
        page.get_by_role("tab", name="Labels").click()
        section = page.locator("#review-queue-section")
        assert "Score = mean of the measured signals" in section.inner_text()
        status = page.locator("#review-queue-status")
        status.get_by_text("30 left, worst first").wait_for(timeout=30_000)
        page.get_by_role("button", name="Rank prototypes to review").click()
        status.get_by_text("30 left, worst first").wait_for(timeout=30_000)
        top = explorer.review_queue(MODEL).entries[0].prototype
        name = explorer.prototype_labels(MODEL)[top]
        queue = page.locator("#review-queue")
        visible(queue.get_by_text(name, exact=True)).click()
        detail = page.locator("#review-queue-detail")
        detail.get_by_text(f"{name} (rank 1, score").wait_for(timeout=30_000)
        section.get_by_text(f"P{top} has no current label").wait_for()
        section.screenshot(path=str(ARTIFACTS / "review-queue.png"))
        section.get_by_role("button", name="misleading [m]").click()
        status.get_by_text("1 of 30 prototypes reviewed").wait_for(timeout=30_000)
        assert "29 left" in status.inner_text()
        page.wait_for_function(  # the table is drawn again without it
            "(name) => ![...document.querySelectorAll('#review-queue td')].some("
            "(td) => td.offsetParent !== null && td.innerText.trim() === name)",
            arg=name, timeout=30_000,
        )  # fmt: skip
        assert explorer.current_labels(MODEL)[0].prototype == top

        # the Prototypes tab follows the prototype picked in the queue
        page.get_by_role("tab", name="Prototypes").click()
        visible(page.get_by_text(f"Prototype {top} — class")).wait_for(timeout=30_000)

        # Model card: the shipped metrics, without a button
        page.get_by_role("tab", name="Model card").click()
        metrics = page.locator("#prototype-metrics")
        metrics.get_by_text("Consistency", exact=True).wait_for(timeout=30_000)
        assert not page.get_by_role("button", name="Measure the prototype metrics").is_visible()
        context.close()


def visible(locator):
    """The first of the elements ``locator`` finds that is visible (the table also renders a
    hidden copy of its widest cells, to measure them)."""
    return locator.locator("visible=true").first


def test_measuring_and_ranking_a_model_that_stores_nothing_yet(
    browser, tiny_run, tmp_path: Path
) -> None:
    folder, _ = tiny_run
    explorer = Explorer(
        [folder], cache_root=tmp_path / "cache", label_path=tmp_path / "labels.sqlite3"
    )
    with served_app(explorer) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1400})
        page = context.new_page()
        page.goto(url)

        # Model card: what to press; pressed, the table replaces it and the button goes
        page.get_by_role("tab", name="Model card").click()
        metrics = page.locator("#prototype-metrics")
        metrics.get_by_text("Not measured yet for tiny_synthetic").wait_for(timeout=30_000)
        page.get_by_role("button", name="Measure the prototype metrics").click()
        metrics.get_by_text("Consistency", exact=True).wait_for(timeout=120_000)
        page.get_by_role("button", name="Measure the prototype metrics").wait_for(
            state="hidden", timeout=10_000
        )

        # Labels: not ranked yet; ranked (the nearest patches found now), the table fills
        page.get_by_role("tab", name="Labels").click()
        status = page.locator("#review-queue-status")
        status.get_by_text("Not ranked yet for tiny_synthetic").wait_for(timeout=30_000)
        page.get_by_role("button", name="Rank prototypes to review").click()
        status.get_by_text("left, worst first").wait_for(timeout=120_000)
        first = explorer.prototype_labels("tiny_synthetic")[
            explorer.review_queue("tiny_synthetic").entries[0].prototype
        ]
        visible(page.locator("#review-queue").get_by_text(first, exact=True)).wait_for()
        context.close()
