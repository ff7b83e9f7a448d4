"""Atomic file writes: a reader (or a crash) sees the old file or the whole new one, never a part."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "write_atomically"]


@contextmanager
def atomic_write(path: str | Path, permissions: int = 0o644) -> Iterator[BinaryIO]:
    """Yields a binary stream to a temporary file beside ``path``; on success it is synced to disk
    and renamed into place with ``permissions``, on any error it is removed and ``path`` untouched.
    The parent folder is created if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, permissions)
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomically(path: str | Path, data: bytes, permissions: int = 0o644) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, permissions) as stream:
        stream.write(data)
