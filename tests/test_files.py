"""Atomic writes: the old file or the whole new one, never a part; nothing left behind on failure."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from explorer.files import atomic_write, write_atomically


def test_write_replaces_whole_and_sets_permissions(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "file.bin"
    write_atomically(path, b"first")
    write_atomically(path, b"second, longer", permissions=0o600)
    assert path.read_bytes() == b"second, longer"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["file.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as stream:
        stream.write(b"half of the new")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]
