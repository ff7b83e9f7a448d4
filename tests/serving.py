"""Starting the real app (as ``python app.py`` configures it) on a free loopback port for tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from explorer.api import Explorer
from explorer.ui.app import launch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served_app(explorer: Explorer | None = None) -> Iterator[str]:
    """Yields the URL of the app served in this process; closes it afterwards."""
    port = free_port()
    app = launch(explorer or Explorer(), port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()
