"""The Gradio app on 127.0.0.1, driven through gradio_client as a remote user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from explorer.api import Explorer
from explorer.ui.app import build_app
from tests.conftest import SHIPPED_MODELS
from tests.corpus import bad_image_corpus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    app = build_app(Explorer())
    app.queue(default_concurrency_limit=2)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        app.close()


@pytest.mark.parametrize("model_id", SHIPPED_MODELS)
def test_predict_answers_for_every_shipped_model(client: Client, model_id: str) -> None:
    example = Explorer().bundle(model_id).examples()[0]
    summary, label, table, gallery = client.predict(
        handle_file(str(example)), model_id, api_name="/predict"
    )
    assert summary.startswith("Predicted **")
    assert label["label"] in summary
    assert len(table["data"]) == 10
    assert [row[0] for row in table["data"]] == list(range(1, 11))
    assert len(gallery) == 5


def test_bad_upload_gets_a_clear_message_and_the_app_keeps_serving(
    client: Client, tmp_path: Path
) -> None:
    corpus = bad_image_corpus(tmp_path)
    for name in ("text.png", "truncated.png", "huge.png"):
        path, expect = corpus[name]
        with pytest.raises(AppError, match=expect):
            client.predict(handle_file(str(path)), "fashion_mnist", api_name="/predict")
    rgba, _ = corpus["rgba.png"]
    summary, *_ = client.predict(handle_file(str(rgba)), "synthetic", api_name="/predict")
    assert summary.startswith("Predicted")


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


@pytest.mark.slow
def test_python_app_py_serves_the_default_model_on_loopback_only() -> None:
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "EXPLORER_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        started = time.perf_counter()
        page = ""
        while time.perf_counter() - started < 90 and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                    break
            except OSError:
                time.sleep(0.25)
        print(f"app ready after {time.perf_counter() - started:.1f} s")
        assert "Prototype explanation explorer" in page
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
    finally:
        process.kill()
        process.wait(timeout=10)
