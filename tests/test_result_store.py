"""Stored results are read without waiting for computations; computations lock per (model, result).

The store is the real one (real files, real locks); the computations are stand-ins that block on an
event so that the test controls when they finish. Every wait has a hang guard (a test that would
deadlock fails after ``GUARD`` seconds instead); nothing here measures time.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from explorer.result_store import ResultStore

GUARD = 60  # seconds: a hang guard, not a timing


class Result:
    def __init__(self, value: float) -> None:
        self.value = value

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"value": np.array(self.value)}

    @classmethod
    def load(cls, arrays: dict[str, np.ndarray]) -> Result:
        return cls(float(arrays["value"]))


def _in_thread(target, *args) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = target(*args)
        except BaseException as error:  # reported by the test
            out["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_stored_result_is_read_while_another_result_of_the_same_model_is_computing(
    tmp_path: Path,
) -> None:
    store = ResultStore(tmp_path / "cache")
    folder = tmp_path / "model"
    store.cache("m1").save("stored", {"value": np.array(1.0)})
    started, release = threading.Event(), threading.Event()

    def slow() -> Result:
        started.set()
        assert release.wait(GUARD), "never released"
        return Result(2.0)

    worker, out = _in_thread(store.get, folder, "m1", "slow", slow, Result.load)
    assert started.wait(GUARD)
    # the other computation holds its lock now; the read must not wait for it
    reader, read = _in_thread(store.get, folder, "m1", "stored", lambda: Result(-1.0), Result.load)
    reader.join(GUARD)
    assert not reader.is_alive(), "a cached read waited for a computation"
    assert read["result"].value == 1.0
    assert worker.is_alive() and not release.is_set()  # it really was still computing
    release.set()
    worker.join(GUARD)
    assert out["result"].value == 2.0
    assert store.read(folder, "m1", "slow", Result.load).value == 2.0  # stored for the next reader


def test_two_requests_for_one_result_compute_it_once(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "cache")
    folder = tmp_path / "model"
    calls = []
    started, release = threading.Event(), threading.Event()

    def compute() -> Result:
        calls.append(1)
        started.set()
        assert release.wait(GUARD)
        return Result(3.0)

    first, out1 = _in_thread(store.get, folder, "m1", "r", compute, Result.load)
    assert started.wait(GUARD)
    second, out2 = _in_thread(store.get, folder, "m1", "r", compute, Result.load)
    release.set()
    first.join(GUARD)
    second.join(GUARD)
    assert "error" not in out1 and "error" not in out2
    assert out1["result"].value == out2["result"].value == 3.0
    assert len(calls) == 1, "the second request computed the result again"


def test_two_different_results_compute_together(tmp_path: Path) -> None:
    """Each computation waits until the other has started: with one lock for all, this deadlocks
    (and fails on the barrier's guard)."""
    store = ResultStore(tmp_path / "cache")
    folder = tmp_path / "model"
    both = threading.Barrier(2, timeout=GUARD)

    def compute(value: float):
        def run() -> Result:
            both.wait()
            return Result(value)

        return run

    a, out_a = _in_thread(store.get, folder, "m1", "a", compute(1.0), Result.load)
    b, out_b = _in_thread(store.get, folder, "m2", "b", compute(2.0), Result.load)
    a.join(GUARD)
    b.join(GUARD)
    assert "error" not in out_a and "error" not in out_b, (out_a, out_b)
    assert (out_a["result"].value, out_b["result"].value) == (1.0, 2.0)


def test_a_result_replaced_on_disk_is_read_again(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "cache")
    folder = tmp_path / "model"
    store.cache("m1").save("r", {"value": np.array(1.0)})
    assert store.read(folder, "m1", "r", Result.load).value == 1.0
    store.cache("m1").save("r", {"value": np.array(5.0, dtype=np.float64)})
    path = store.cache("m1").path("r")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later write
    assert store.read(folder, "m1", "r", Result.load).value == 5.0


def test_a_failed_computation_leaves_nothing_stored_and_can_be_retried(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "cache")
    folder = tmp_path / "model"

    def broken() -> Result:
        raise RuntimeError("data set missing")

    with pytest.raises(RuntimeError):
        store.get(folder, "m1", "r", broken, Result.load)
    assert store.read(folder, "m1", "r", Result.load) is None
    assert store.get(folder, "m1", "r", lambda: Result(4.0), Result.load).value == 4.0


def test_results_computed_here_come_before_the_folders_shipped_ones(tmp_path: Path) -> None:
    from explorer.folder_analyses import write_folder_analyses

    store = ResultStore(tmp_path / "cache")
    folder = tmp_path / "model"
    write_folder_analyses(folder, "m1", {"r": ("a result", {"value": np.array(1.0)})})
    assert store.read(folder, "m1", "r", Result.load).value == 1.0
    assert store.status(folder, "m1", "r").where == "shipped"
    store.cache("m1").save("r", {"value": np.array(2.0)})  # exact and complete, computed here
    assert store.read(folder, "m1", "r", Result.load).value == 2.0
    assert store.status(folder, "m1", "r").where == "cache"
    assert store.read(folder, "m1", "r", Result.load, use_shipped=False).value == 2.0
