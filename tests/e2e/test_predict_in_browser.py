"""A person's path through the Explain and Prototypes tabs, in Debian Chromium."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from explorer.api import Explorer
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def off_host(requests: list[str]) -> set[str | None]:
    return {
        urlparse(url).hostname for url in requests if not url.startswith(("data:", "blob:"))
    } - {"127.0.0.1"}


def test_explain_an_upload_then_browse_a_prototype(page, app_url: str) -> None:
    page.get_by_text("Upload an image or click an example.").wait_for(timeout=30_000)
    explorer = Explorer()
    example = explorer.bundle(explorer.default_model).examples()[-1]
    started = time.perf_counter()
    page.locator("input[type=file]").first.set_input_files(str(example))
    page.get_by_text("The strongest evidence").first.wait_for(timeout=30_000)
    print(f"first explanation shown {time.perf_counter() - started:.2f} s after upload")
    page.wait_for_timeout(800)  # let the gallery and charts paint
    screenshot(page, "explain")

    page.get_by_role("tab", name="Prototypes").click()
    page.get_by_role("button", name="Show prototype").click()
    page.get_by_text("Projected onto training image").first.wait_for(timeout=30_000)
    page.wait_for_timeout(800)
    screenshot(page, "prototypes")
    assert off_host(page.requests) == set()
