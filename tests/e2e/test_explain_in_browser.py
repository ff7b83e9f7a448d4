"""Clicking an example in Debian Chromium shows the whole explanation, and no panel stays empty.

The seconds from the click until the pairs gallery and the attribution image are on screen are
printed (run with ``-s``), never asserted: they depend on the machine and its load. The click comes
after the server's warm-up of the default model (:mod:`explorer.ui.warm_up`) has finished, as a
user's does who opens the page a few seconds after the server starts. Playwright's sync
API refuses a thread with a running asyncio loop (an earlier test in the same process may leave one
on the main thread), so the browser is driven from a fresh thread, as in ``tests/test_login_page.py``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from explorer import Explorer
from explorer.ui.warm_up import WarmUp
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOADED = """(ids) => ids.every(id => {
    const images = [...document.querySelectorAll(`#${id} img`)];
    return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0);
})"""
PLOTTED = "(ids) => ids.every(id => !!document.querySelector(`#${id} .js-plotly-plot`))"
SHOWN_AT_ONCE = ["explain-pairs", "explain-attribution", "explain-own-map"]
PLOTS = ["explain-evidence", "explain-comparison", "match-chart"]


def test_clicking_an_example_shows_every_panel_of_its_explanation(
    app_url: str, served_explorer: Explorer, warm_up: WarmUp
) -> None:
    # as a user who opens the page a few seconds after the server starts: its warm-up is done
    assert warm_up.wait(served_explorer.default_model, timeout=300), "the warm-up did not finish"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_click_an_example, app_url).result(timeout=600)


def _click_an_example(url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # tall enough that every panel of the tab is laid out (lazy images load too)
            page = browser.new_context(viewport={"width": 1400, "height": 3200}).new_page()
            page.goto(url)
            page.get_by_text("Upload an image or click an example.").wait_for(timeout=60_000)
            page.get_by_text("the runner-up class here").first.wait_for(timeout=10_000)
            # the chart code is loaded ahead, while the page is idle (explorer/ui/preload.py)
            page.wait_for_function(
                "() => performance.getEntriesByType('resource')"
                ".some(e => e.name.includes('/assets/PlotlyPlot-') && e.responseEnd > 0)",
                timeout=30_000,
            )
            example = page.locator("#explain-examples button.thumbnail-item").first
            example.wait_for(timeout=30_000)
            started = time.perf_counter()
            example.click()
            page.wait_for_function(LOADED, arg=SHOWN_AT_ONCE, timeout=120_000)
            shown = time.perf_counter() - started
            page.wait_for_function(PLOTTED, arg=PLOTS, timeout=120_000)
            page.get_by_text("The strongest match (pick another prototype above).").wait_for(
                timeout=120_000
            )
            defaults = time.perf_counter() - started
            print(
                f"\nexample clicked → pairs gallery and attribution shown after {shown:.2f} s; "
                f"the runner-up comparison and the strongest match's attributes after {defaults:.2f} s"
            )
            page.wait_for_timeout(500)  # plotly finishes drawing
            for plot in PLOTS:  # every chart has drawn bars, not an empty box
                bars = page.locator(f"#{plot} .js-plotly-plot g.point").count()
                assert bars > 0, plot
            pairs = page.locator("#explain-pairs button.thumbnail-item").count()
            assert pairs == 10, pairs
            assert page.get_by_text("The strongest evidence").first.is_visible()
            assert page.get_by_text("Why the explained class and not").first.is_visible()
            empty = page.evaluate(
                """() => [...document.querySelectorAll('.block .empty')]
                    .filter(e => e.getBoundingClientRect().height > 0)
                    .map(e => e.closest('.block')?.id || e.closest('.block')?.innerText.slice(0, 40))"""
            )
            print(f"empty boxes left on the page: {empty}")
            screenshot(page, "explain-example")
            # a pair clicked picks its prototype (by its place among the explanation's pairs)
            page.locator("#explain-pairs button.thumbnail-item").nth(1).click()
            page.wait_for_function(
                "() => [...document.querySelectorAll('input')].some(i => /^P[0-9]+ · /.test(i.value))",
                timeout=30_000,
            )
        finally:
            browser.close()
