"""The allocator bounds the server sets (``explorer/ui/allocator.py``); their effect on memory is
measured by ``tests/test_memory_under_load.py``."""

from __future__ import annotations

import platform

import pytest

from explorer.ui import allocator


def test_the_trim_interval_comes_from_the_environment_within_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for text, expected in {"0.5": 0.5, "": allocator.TRIM_INTERVAL_S, "abc": allocator.TRIM_INTERVAL_S,
                           "0": allocator.TRIM_INTERVAL_S, "nan": allocator.TRIM_INTERVAL_S,
                           "1e9": allocator.TRIM_INTERVAL_S}.items():  # fmt: skip
        monkeypatch.setenv(allocator.INTERVAL, text)
        assert allocator._interval_from_env() == expected, text


def test_the_switch_turns_the_bounds_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(allocator.SWITCH, "0")
    assert allocator.bound_server_memory() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the bounds are glibc's")
def test_launching_twice_starts_one_trimming_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(allocator.SWITCH, raising=False)
    assert allocator.bound_server_memory() is True
    first = allocator._trimmer
    assert allocator.bound_server_memory() is True
    assert allocator._trimmer is first and first is not None and first.is_alive()
