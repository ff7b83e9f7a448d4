"""Every tab of every shipped model in Debian Chromium: each panel that should show something at once
does (a picture has loaded, a chart has data), with no computation pass: the shipped analyses
(``weights/<model>/analyses/``) are all the app needs, so nothing is written to its cache."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from explorer.api import WEIGHTS_DIR, Explorer
from tests.conftest import SHIPPED_MODELS
from tests.serving import served_app

# The one skip: until every shipped model folder carries its analyses, showing them would need first
# passes, which this test forbids. Remove it when weights/<model>/analyses/ land for all three.
WITHOUT_ANALYSES = [m for m in SHIPPED_MODELS if not (WEIGHTS_DIR / m / "analyses").is_dir()]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(WITHOUT_ANALYSES),
        reason="shipped model folders without their analyses/ yet: " + ", ".join(WITHOUT_ANALYSES),
    ),
]

SCREENSHOTS = Path("/tmp/every-tab")  # for a person to look at; not kept in the repository
TIMEOUT_MS = 60_000
# The panels each tab must fill (by the start of their label). Explain: after clicking an example.
EXPECTED = {
    "Explain": [
        "Evidence: contributions",
        "This looks like that",
        "Why this and not that",
        "Attribution",
        "Prototype similarity map",
        "Local φ on this image",
    ],
    "Prototypes": [
        "Prototypes: their source patches (click one)",
        "Source training image and box",
        "Self-activation on its source image",
        "Last-layer weights",
        "Nearest training patches",
        "Nearest test patches",
        "Global Φ: train beside test",  # the shipped global attribute explanation
        "Dose-response",
    ],
    "Redundancy": ["Prototype distances"],  # and the clusters' patches when there are clusters
    "Labels": [],
    "Model card": ["Scoring sheet: non-zero weights"],
}


def panels(explorer: Explorer, model_id: str, tab: str) -> list[str]:
    """The panels of ``tab`` for this model: a family without push (PIP-Net) names its pictures
    by the nearest training patches that stand in for sources."""
    from explorer.ui.events.prototypes import PICTURE_LABELS

    labels = EXPECTED[tab]
    if tab == "Prototypes" and explorer.not_applicable(model_id, "push") is not None:
        pushed, nearest = PICTURE_LABELS[True], PICTURE_LABELS[False]
        labels = [nearest[pushed.index(x)] if x in pushed else x for x in labels]
    return labels


def says(explorer: Explorer, model_id: str) -> dict[str, list[re.Pattern]]:
    """What each tab says once it is filled for this model (visible text; the class names tell one
    model's content from the previous model's)."""
    names = "|".join(map(re.escape, explorer.class_names(model_id)))
    return {
        "Explain": [re.compile(rf"Predicted ({names})")],
        "Prototypes": [
            re.compile(rf"Prototype \d+ — class ({names})"),
            re.compile("from its own class"),
        ],
        "Redundancy": [re.compile("clusters at threshold"), re.compile(rf"^({names})$")],
        "Labels": [re.compile(rf"prototypes reviewed for {re.escape(model_id)}")],
        "Model card": [
            re.compile(re.escape(explorer.content_hash(model_id))),
            re.compile("Nearest patches.*test split: shipped with the model"),
        ],
    }


# For each label: "missing" (no visible panel of that label), "empty", or what it shows. Panels are
# Gradio blocks; a picture counts when its <img> has a source and has loaded, a chart when its plotly
# figure has data. A panel still waiting is scrolled into view (images load lazily).
PANELS_JS = """
(labels) => {
  const shown = (el) => el.offsetParent !== null && el.getBoundingClientRect().width > 0;
  const blocks = [...document.querySelectorAll('.block')].filter(shown);
  const state = {};
  for (const want of labels) {
    const block = blocks.find((b) => {
      const label = b.querySelector('[data-testid="block-label"], [data-testid="block-info"]');
      return label && label.textContent.trim().startsWith(want);
    });
    if (!block) { state[want] = 'missing'; continue; }
    const pictures = [...block.querySelectorAll('img')].filter(
      (i) => (i.getAttribute('src') || '').length > 0 && i.complete && i.naturalWidth > 0);
    const charts = [...block.querySelectorAll('.js-plotly-plot')].filter(
      (g) => Array.isArray(g.data) && g.data.length > 0);
    const busy = block.querySelector('.eta-bar, .progress-bar') !== null;
    state[want] = busy ? 'busy' : pictures.length ? `${pictures.length} pictures`
      : charts.length ? 'chart' : 'empty';
    if (state[want] === 'empty' || state[want] === 'busy') block.scrollIntoView();
  }
  return state;
}
"""
CLUSTER_ROWS_JS = """
() => { const b = [...document.querySelectorAll('.block')].find((x) => x.offsetParent !== null
          && (x.querySelector('[data-testid="block-info"], [data-testid="block-label"]')?.textContent
              || '').trim().startsWith('Clusters (text view)'));
        return b ? b.querySelectorAll('tbody tr').length : 0; }
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The app on a fresh cache: whatever a tab computed would be written there."""
    cache = tmp_path_factory.mktemp("every-tab-cache")
    labels = tmp_path_factory.mktemp("every-tab-labels") / "labels.sqlite3"
    with served_app(Explorer(cache_root=cache, label_path=labels)) as url:
        yield url, cache


def stored_results(cache: Path) -> set[Path]:
    return {p for p in cache.rglob("*") if p.is_file()}


def test_every_tab_of_every_shipped_model_shows_its_panels_without_a_first_pass(served) -> None:
    url, cache = served
    before = stored_results(cache)
    # Playwright's sync API refuses a thread with a running asyncio loop (an earlier test in the same
    # process may leave one on the main thread), so the browser is driven from a fresh thread.
    with ThreadPoolExecutor(1) as pool:
        problems = pool.submit(visit_every_tab, url).result(timeout=600)
    assert problems == [], "\n".join(problems)
    assert stored_results(cache) == before, (
        "a tab computed an analysis instead of using the shipped one"
    )


def visit_every_tab(url: str) -> list[str]:
    """Visits each tab of each shipped model (the default first, then by the Model dropdown); returns
    what was wrong, one line per panel, with the screenshot to look at."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    explorer = Explorer()
    models = [explorer.default_model, *(m for m in SHIPPED_MODELS if m != explorer.default_model)]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 2800}).new_page()
            page.goto(url)
            page.get_by_text("Prototype explanation explorer").first.wait_for(timeout=TIMEOUT_MS)
            for model_id in models:
                if model_id != explorer.default_model:
                    page.get_by_label("Model", exact=True).click()
                    page.get_by_role("option", name=model_id, exact=True).click()
                for tab in EXPECTED:
                    problems += check_tab(page, explorer, model_id, tab)
        finally:
            browser.close()
    return problems


def check_tab(page, explorer: Explorer, model_id: str, tab: str) -> list[str]:
    """Opens ``tab`` (Explain: explains the model's first example) and waits until it says what it
    should and every panel it must fill has content; else returns what is missing or empty."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.get_by_role("tab", name=tab).click()
    shot = SCREENSHOTS / f"{model_id}-{tab.replace(' ', '-').lower()}.png"
    labels, expected = panels(explorer, model_id, tab), says(explorer, model_id)[tab]
    try:
        if tab == "Explain":  # once the gallery shows this model's examples, the first one
            examples = page.locator(".block:visible").filter(
                has=page.get_by_text("Examples from the test split")
            )
            first = explorer.examples(model_id)[0][1]
            examples.get_by_text(first, exact=True).first.wait_for(timeout=TIMEOUT_MS)
            examples.get_by_label("Thumbnail 1 of", exact=False).first.click()
        for pattern in expected:
            visible(page.get_by_text(pattern)).wait_for(timeout=TIMEOUT_MS)
        if tab == "Redundancy" and page.evaluate(CLUSTER_ROWS_JS):
            labels = [*labels, "Cluster members: source patches"]
        page.wait_for_function(
            f"(labels) => Object.values(({PANELS_JS})(labels)).every("
            "(s) => !['missing', 'empty', 'busy'].includes(s))",
            arg=labels,
            timeout=TIMEOUT_MS,
        )
    except PlaywrightTimeout:
        page.screenshot(path=str(shot), full_page=True)
        state = page.evaluate(PANELS_JS, labels)
        found = [
            f"{model_id} / {tab}: {name} is {what} (see {shot})"
            for name, what in state.items()
            if what in ("missing", "empty", "busy")
        ]
        found += [
            f"{model_id} / {tab}: never says {p.pattern!r} (see {shot})"
            for p in expected
            if not visible(page.get_by_text(p)).count()
        ]
        return found or [f"{model_id} / {tab}: timed out (see {shot})"]
    page.wait_for_timeout(300)
    page.screenshot(path=str(shot), full_page=True)
    return []


def visible(locator):
    """The first of the elements ``locator`` finds that is visible (other tabs' are hidden)."""
    return locator.locator("visible=true").first
