"""Starting the real app (as ``python app.py`` configures it) on a free loopback port for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from explorer.api import Explorer
from explorer.ui.app import launch
from explorer.ui.warm_up import WarmUp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served_app(explorer: Explorer | None = None, warm: bool | WarmUp = False) -> Iterator[str]:
    """Yields the URL of the app served in this process; closes it afterwards. ``warm``: warm the
    models up in the background as ``python app.py`` does (or with this WarmUp, to wait for it);
    off by default: a test that counts the library's calls must see only its own."""
    port = free_port()
    app = launch(explorer or Explorer(), port=port, warm=warm, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@dataclass
class AppServer:
    """``python app.py`` running in its own process (see :func:`app_server`)."""

    url: str
    page: str
    seconds: float
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def app_server(**env: str) -> Iterator[AppServer]:
    """Runs ``python app.py`` as a user would, in its own process, on a free loopback port.

    ``env`` is added to this process's environment (so the test label database and cache that
    ``tests/conftest.py`` sets are inherited unless overridden).

    Yields:
        the URL, the first page, the seconds until it was served, and the process (its pid for
        ``/proc`` or signals); the process is killed afterwards.
    """
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=root, env={**os.environ, **env, "EXPLORER_PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        started = time.perf_counter()
        page = ""
        while time.perf_counter() - started < 90 and process.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    page = response.read().decode()
                    break
            except OSError:
                time.sleep(0.25)
        yield AppServer(url, page, time.perf_counter() - started, process)
    finally:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def app_process(**env: str) -> Iterator[tuple[str, str, float]]:
    """Runs ``python app.py`` as a user would, in its own process, on a free loopback port.

    Yields:
        ``(url, first page, seconds until it was served)``; the process is killed afterwards
        (:func:`app_server` yields the process too).
    """
    with app_server(**env) as server:
        yield server.url, server.page, server.seconds
