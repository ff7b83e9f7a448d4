"""A person's path through the Predict tab, in Debian Chromium."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from explorer.api import Explorer
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_upload_an_image_and_see_the_prediction(page, app_url: str) -> None:
    page.get_by_text("Upload an image or click an example.").wait_for(timeout=30_000)
    explorer = Explorer()
    example = explorer.bundle(explorer.default_model).examples()[-1]
    started = time.perf_counter()
    page.locator("input[type=file]").first.set_input_files(str(example))
    page.get_by_text("(probability").first.wait_for(timeout=30_000)
    page.get_by_text("The strongest evidence").first.wait_for(timeout=10_000)
    print(f"first prediction shown {time.perf_counter() - started:.2f} s after upload")
    page.wait_for_timeout(500)  # let the gallery images paint
    screenshot(page, "predict")
    hosts = {
        urlparse(url).hostname for url in page.requests if not url.startswith(("data:", "blob:"))
    }
    assert hosts == {"127.0.0.1"}, hosts
