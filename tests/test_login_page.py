"""Nothing about the app before sign-in (``python app.py --auth FILE``): every route Gradio serves,
fetched with a plain HTTP client and no session, names no model, class, prototype or endpoint;
signed in, the app is served as before (also in Debian Chromium)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from explorer.api import Explorer
from explorer.auth import Credentials, SignIn, add_user
from explorer.ui.app import launch
from tests.serving import free_port

PASSWORD = "correct horse battery"
OPEN = {"/", "/login", "/login/", "/gradio_api/startup-events"}  # answered without a session


@pytest.fixture(scope="module")
def signed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    users = tmp_path_factory.mktemp("users") / "users.txt"
    add_user(users, "alice", PASSWORD)
    add_user(users, "carol", PASSWORD)
    port = free_port()
    # The sign-in clock stands still, so waits never run out during these tests.
    sign_in = SignIn(Credentials.load(users), clock=lambda: 1000.0)
    app = launch(Explorer(), port=port, sign_in=sign_in, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        app.close()
        sign_in.close()


def routes(app_routes: list, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path, method) of every route, into included routers (FastAPI keeps them nested)."""
    for route in app_routes:
        if hasattr(route, "path"):
            for method in getattr(route, "methods", None) or ("GET",):
                yield prefix + route.path, method
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from routes(inner.routes, prefix + route.include_context.prefix)


def concrete(path: str) -> str:
    """A path with its parameters filled in (a real file for ``file=`` routes)."""
    path = path.replace("{path_or_url:path}", str(Path(__file__).resolve()))
    return re.sub(r"\{[^}]+\}", "x", path)


def fetch(client: httpx.Client, method: str, url: str) -> tuple[int, str]:
    """Status and the start of the body and headers (a stream is read for 5 s at most)."""
    deadline, body = time.monotonic() + 5, b""
    with client.stream(method, url) as response:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > 2**21 or time.monotonic() > deadline:
                break
    return response.status_code, body.decode("utf-8", "replace") + str(response.headers)


def secrets_of(explorer: Explorer, model_ids: list[str]) -> set[str]:
    """What the page must not show before sign-in about these models: ids and titles, class names
    and prototype labels."""
    found = set()
    for model_id in model_ids:
        info = explorer.model_info(model_id)
        found |= {model_id, info.title, *explorer.prototype_labels(model_id)}
        found |= {name for name in info.class_names if len(name) >= 5}  # "Coat" is too common
    return found


def test_nothing_about_the_app_is_served_before_sign_in(signed_app) -> None:
    url, app = signed_app
    with httpx.Client(timeout=30) as alice:
        assert alice.post(
            f"{url}/login", data={"username": "alice", "password": PASSWORD}
        ).is_success
        info = alice.get(f"{url}/gradio_api/info").json()
        api_names = list(info["named_endpoints"])
        signed_in = alice.get(f"{url}/").text + alice.get(f"{url}/config").text
    assert len(api_names) > 10
    explorer = Explorer()
    # Endpoint names quoted, as in an API description (``</label>`` is no leak).
    shown = {f'"{name}"' for name in api_names} | {*explorer.model_ids()}
    shown |= secrets_of(explorer, [explorer.default_model])
    # Not vacuous: signed in, the page does show these (the other models' details on request).
    assert [s for s in shown if s not in signed_in] == []
    secrets = shown | secrets_of(explorer, explorer.model_ids())

    paths = sorted(set(routes(app.server_app.routes)))
    assert len(paths) > 50 and ("/gradio_api/info", "GET") in paths
    leaks, answered = [], {}
    with httpx.Client(timeout=30) as anonymous:
        for path, method in paths:
            answered[method, path], text = fetch(anonymous, method, url + concrete(path))
            leaks += [(method, path, s) for s in secrets if s in text]
    assert leaks == []
    for (method, path), status in answered.items():
        if path in OPEN and method in ("GET", "HEAD"):
            assert status == 200, (method, path)
        elif path in ("/login", "/login/"):  # POST without a name and password
            assert status == 400, (method, path)
        else:
            assert status == 401, (method, path, status)


def test_the_sign_in_page_is_self_contained_and_names_nothing(signed_app) -> None:
    url, _ = signed_app
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and "<form" in page.text and 'name="password"' in page.text
    assert "gradio_config" not in page.text and "gradio_api_info" not in page.text
    assert not re.search(r"""(src|href)=["']""", page.text), "loads nothing else"
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_a_plain_form_post_without_script_signs_in_too(signed_app) -> None:
    url, _ = signed_app
    html = {"Accept": "text/html,application/xhtml+xml"}
    with httpx.Client(timeout=30) as client:
        wrong = client.post(f"{url}/login", data={"username": "bob", "password": "x"}, headers=html)
        assert wrong.status_code == 400 and "Incorrect user name or password." in wrong.text
        assert "<form" in wrong.text and client.get(f"{url}/config").status_code == 401
        right = client.post(
            f"{url}/login", data={"username": "alice", "password": PASSWORD}, headers=html
        )
        assert right.status_code == 303 and right.headers["location"] == "./"
        assert client.get(f"{url}/config").status_code == 200  # the session cookie was set
        assert client.get(f"{url}/logout").status_code in (200, 302)
        assert client.get(f"{url}/config").status_code == 401  # and /logout still ends it


def test_oversized_or_malformed_sign_in_requests_are_refused(signed_app) -> None:
    url, _ = signed_app
    assert httpx.post(f"{url}/login", content=b"u" * 20_000).status_code == 413
    assert httpx.post(f"{url}/login", data={"username": "alice"}).status_code == 400
    files = {"username": ("name.txt", b"alice"), "password": (None, PASSWORD)}
    assert httpx.post(f"{url}/login", files=files).status_code == 400  # no file fields


def test_the_backoff_reaches_http_clients_with_when_to_retry(signed_app) -> None:
    url, _ = signed_app
    address = {"X-Forwarded-For": "192.0.2.50"}  # uvicorn takes it from loopback, as from a proxy
    with httpx.Client(timeout=30, headers=address) as client:
        for n in range(5):
            wrong = client.post(f"{url}/login", data={"username": "carol", "password": f"n{n}"})
            assert wrong.status_code == 400
        assert wrong.json()["detail"].endswith("try again in 1 second.")
        right = client.post(f"{url}/login", data={"username": "carol", "password": PASSWORD})
        assert right.status_code == 429 and right.headers["retry-after"] == "1"
        assert right.json() == {
            "detail": "Too many failed sign-ins for this name or from this address: "
            "try again in 1 second.",
            "retry_after": 1,
        }
        assert client.get(f"{url}/config").status_code == 401


@pytest.mark.browser
@pytest.mark.slow
def test_signing_in_in_the_browser_opens_the_app(signed_app) -> None:
    # Playwright's sync API refuses a thread with a running asyncio loop (an earlier test in the same
    # process may leave one on the main thread), so the browser is driven from a fresh thread.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(_sign_in_in_the_browser, signed_app).result(timeout=300)


def _sign_in_in_the_browser(signed_app) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    url, _ = signed_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password").fill("not the password")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Incorrect user name or password.").wait_for(timeout=30_000)
            assert "Prototype explanation explorer" not in page.content()
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Prototype explanation explorer").first.wait_for(timeout=60_000)
            page.get_by_text("Upload an image or click an example.").wait_for(timeout=30_000)
        finally:
            browser.close()
