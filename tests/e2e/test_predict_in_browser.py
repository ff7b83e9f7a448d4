"""A person's path through the Explain and Prototypes tabs, in Debian Chromium."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from explorer.api import Explorer
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def off_host(requests: list[str]) -> set[str | None]:
    return {
        urlparse(url).hostname for url in requests if not url.startswith(("data:", "blob:"))
    } - {"127.0.0.1"}


def wait_for_images(page, at_least: int = 10) -> None:
    """Until every image on the page has loaded (Gradio keeps a connection open, so the network
    never goes idle)."""
    page.wait_for_function(
        f"""() => {{ const im = Array.from(document.images);
        return im.length >= {at_least} && im.every(i => i.complete && i.naturalWidth > 0); }}""",
        timeout=30_000,
    )
    page.wait_for_timeout(300)


def test_explain_an_upload_then_browse_a_prototype(page, app_url: str) -> None:
    page.get_by_text("Upload an image or click an example.").wait_for(timeout=30_000)
    explorer = Explorer()
    example = explorer.bundle(explorer.default_model).examples()[-1]
    started = time.perf_counter()
    page.locator("input[type=file]").first.set_input_files(str(example))
    page.get_by_text("The strongest evidence").first.wait_for(timeout=30_000)
    print(f"first explanation shown {time.perf_counter() - started:.2f} s after upload")
    page.get_by_text("post-hoc estimate").first.wait_for(timeout=30_000)
    wait_for_images(page)
    screenshot(page, "explain")
    page.get_by_label("Thumbnail 1 of 10").first.click()  # the strongest pair picks its prototype
    page.wait_for_function(
        "() => [...document.querySelectorAll('input')].some(i => /^P[0-9]+ · /.test(i.value))",
        timeout=30_000,
    )

    picked = page.evaluate(
        "() => [...document.querySelectorAll('input')].map(i => i.value).find(v => /^P[0-9]+ · /.test(v))"
    )
    number = picked.split(" ")[0].removeprefix("P")

    page.get_by_role("tab", name="Prototypes").click()  # the browser follows the picked prototype
    page.get_by_role("button", name="Show prototype").click()
    page.get_by_text(f"Prototype {number} — class").first.wait_for(timeout=30_000)
    page.get_by_text("Projected onto training image").first.wait_for(timeout=30_000)
    # the nearest patches ship with the model: shown at once, no pass over the data set
    page.get_by_text("Nearest test patches").first.wait_for(timeout=30_000)
    page.get_by_text("from its own class").first.wait_for(timeout=60_000)
    wait_for_images(page)
    screenshot(page, "prototypes")

    page.get_by_role("tab", name="Redundancy").click()
    page.get_by_role("button", name="Find clusters").click()  # reuses the stored test-split scores
    page.get_by_text("clusters at threshold").first.wait_for(timeout=120_000)
    page.get_by_label("Disable prototypes (e.g. 3, 7, 12)").fill("12")
    page.get_by_role("button", name="Compute accuracy").click()
    page.get_by_text("Disabled P12").first.wait_for(timeout=30_000)
    wait_for_images(page, at_least=1)
    screenshot(page, "redundancy")
    assert off_host(page.requests) == set()


def test_review_prototypes_with_the_keyboard_and_use_the_what_if_model(page) -> None:
    page.get_by_text("Upload an image or click an example.").wait_for(timeout=30_000)
    page.get_by_label("Your name (for labels; remembered in this browser)").fill("Dr Ana")
    page.get_by_role("tab", name="Prototypes").click()
    page.get_by_role("button", name="Show prototype").click()
    page.get_by_text("Projected onto training image 617").first.wait_for(timeout=30_000)
    page.locator("body").click(position={"x": 5, "y": 5})  # focus out of the text fields
    page.keyboard.press("n")  # next prototype
    page.get_by_text("Prototype 1 — class").first.wait_for(timeout=30_000)
    page.keyboard.press("m")  # misleading
    page.get_by_text("current label of P1: misleading").first.wait_for(timeout=30_000)

    page.get_by_role("tab", name="Labels").click()
    page.get_by_role("button", name="Show labels").click()
    page.get_by_text("1 of 20 prototypes reviewed for elpv").first.wait_for(timeout=30_000)
    page.locator('text="Dr Ana" >> visible=true').first.wait_for(timeout=10_000)
    screenshot(page, "labels")

    page.get_by_label("What-if: disable the prototypes labelled misleading").check()
    page.get_by_role("tab", name="Explain").click()
    explorer = Explorer()
    example = explorer.bundle(explorer.default_model).examples()[0]
    page.locator("input[type=file]").first.set_input_files(str(example))
    page.get_by_text("prototype(s) labelled misleading disabled (P1)").first.wait_for(
        timeout=60_000
    )
    page.reload()  # the reviewer's name is remembered in this browser
    page.wait_for_function(
        "() => document.querySelector('#reviewer-name textarea, #reviewer-name input')?.value === 'Dr Ana'",
        timeout=30_000,
    )


def test_switch_model_download_the_case_report_and_read_the_model_card(page) -> None:
    page.get_by_text("Upload an image or click an example.").wait_for(timeout=30_000)
    page.get_by_label("Model", exact=True).click()
    page.get_by_role("option", name="synthetic", exact=True).click()
    page.get_by_text("Model changed: upload or pick an image.").wait_for(timeout=30_000)
    page.get_by_text("Synthetic attributes ProtoPNet").first.wait_for(timeout=30_000)
    explorer = Explorer()
    example = explorer.bundle("synthetic").examples()[0]
    page.locator("input[type=file]").first.set_input_files(str(example))
    page.get_by_text("The strongest evidence").first.wait_for(timeout=30_000)
    predicted = explorer.predict(example, "synthetic").predicted_class
    page.get_by_text(f"Predicted {predicted}").first.wait_for(timeout=10_000)

    page.get_by_role("button", name="Explain the match").click()
    page.get_by_text("Text view of the chart").first.wait_for(timeout=60_000)
    # the set and reading that pass the known-answer test: disentangled, relative
    page.get_by_label("disentangled").first.check()
    page.get_by_label("relative (percentile of its share among prototypes)").first.check()
    page.get_by_role("button", name="Explain the match").click()
    page.get_by_text("Chart: this image's bars — relative reading").first.wait_for(timeout=60_000)
    page.get_by_text("percentile of its share among prototypes").first.wait_for(timeout=10_000)
    screenshot(page, "explain-relative")
    page.get_by_role("button", name="Make case report (HTML + PDF)").click()
    link = page.locator("a[download$='-case.html']").first
    link.wait_for(timeout=120_000)
    with page.expect_download() as download:
        link.click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert explorer.bundle("synthetic").content_hash in text and predicted in text
    assert "data:image/png;base64," in text and "https://" not in text
    wait_for_images(page, at_least=5)
    screenshot(page, "explain-synthetic-report")
    shown = page.eval_on_selector_all(  # every picture a person sees has a text alternative
        "img", "els => els.filter(e => e.getBoundingClientRect().width > 40).map(e => e.alt)"
    )
    assert len(shown) >= 5 and all(alt.strip() for alt in shown), shown

    page.get_by_role("tab", name="Model card").click()
    page.get_by_text("content hash").first.wait_for(timeout=30_000)
    screenshot(page, "model-card")
    assert off_host(page.requests) == set()
