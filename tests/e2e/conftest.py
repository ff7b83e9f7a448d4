"""Real-browser fixtures: the app on 127.0.0.1 and Debian Chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from explorer.api import Explorer
from explorer.ui.warm_up import WarmUp
from tests.serving import served_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"


@pytest.fixture(scope="session")
def served_explorer(tmp_path_factory: pytest.TempPathFactory) -> Explorer:
    return Explorer(cache_root=tmp_path_factory.mktemp("analysis-cache"))


@pytest.fixture(scope="session")
def warm_up(served_explorer: Explorer) -> WarmUp:
    """The served app's warm-up (a test can wait for it as a user's first seconds would)."""
    return WarmUp(served_explorer)


@pytest.fixture(scope="session")
def app_url(served_explorer: Explorer, warm_up: WarmUp) -> Iterator[str]:
    with served_app(served_explorer, warm=warm_up) as url:  # warmed as python app.py is
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("Debian chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url: str):
    # tall enough that lazily loaded images below the fold load too
    context = browser.new_context(viewport={"width": 1400, "height": 2800})
    requests: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.goto(app_url)
    page.requests = requests  # type: ignore[attr-defined]
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
