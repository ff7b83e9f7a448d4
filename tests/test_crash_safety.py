"""Crash safety: labels survive a SIGKILL of the app; a damaged analysis cache is recomputed.

The store's own guarantees (WAL, synchronous writes, triggers, migrations) are tested in
``tests/test_labels.py``; the unit-level round trip of :class:`AnalysisCache` with a half-written file
in ``tests/test_explanation.py::test_cache_round_trip_and_corrupt_files_are_recomputed``. Here the
whole path is exercised: the real app killed mid-stream of label writes, and a fresh Explorer meeting
damaged cache files of a real analysis.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import struct
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client

from explorer.api import WEIGHTS_DIR, Explorer
from explorer.cache import AnalysisCache
from tests.serving import app_server

MODEL = "synthetic"
WRITERS = 3
LABELS_BEFORE_KILL = 30
CALL_TIMEOUT_S = 30.0


def integrity(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


@pytest.mark.slow
def test_every_label_whose_call_returned_survives_a_sigkill_of_the_app(tmp_path: Path) -> None:
    db = tmp_path / "labels.sqlite3"
    env = {"EXPLORER_LABELS_DB": str(db), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    prototypes = Explorer().bundle(MODEL).spec.num_prototypes
    returned: list[tuple[int, str]] = []  # (prototype, comment) of every call that returned
    failures: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()
    in_flight = [0]

    with app_server(**env) as server:
        assert server.page, "the app did not start"
        clients = [
            Client(server.url, verbose=False, analytics_enabled=False) for _ in range(WRITERS)
        ]

        def writer(index: int) -> None:
            for i in range(10_000):
                prototype, comment = (index * 11 + i) % prototypes, f"writer {index}, label {i}"
                with lock:
                    in_flight[0] += 1
                try:
                    status = (
                        clients[index]
                        .submit(MODEL, prototype, "", comment, f"writer{index}", api_name="/label")
                        .result(timeout=CALL_TIMEOUT_S)
                    )
                except Exception as error:  # the kill ends the stream; before it, nothing may fail
                    if not killed.is_set():
                        with lock:
                            failures.append(f"{type(error).__name__}: {error}")
                    return
                with lock:
                    in_flight[0] -= 1
                    if status.startswith("Saved.") and f"P{prototype}" in status:
                        returned.append((prototype, comment))
                    else:
                        failures.append(status)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        while len(returned) < LABELS_BEFORE_KILL and time.monotonic() < deadline and not failures:
            time.sleep(0.05)
        with lock:
            killed.set()
            os.kill(server.pid, signal.SIGKILL)  # mid-stream: the writers have calls in flight
            pending = in_flight[0]
        server.process.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=CALL_TIMEOUT_S + 5)
        assert server.process.returncode == -signal.SIGKILL
    assert not failures, failures[:3]
    assert len(returned) >= LABELS_BEFORE_KILL
    with lock:
        acknowledged = list(returned)

    assert integrity(db) == [("ok",)]  # as the kill left it, before anything reopened it
    with app_server(**env) as server:  # the app started again on the same database
        assert server.page, "the app did not start again on the database it was killed on"
        history = Explorer(label_path=db).label_history(MODEL)
        stored = [(event.prototype, event.comment) for event in history]
        missing = [label for label in acknowledged if label not in stored]
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged labels lost"
        assert all(stored.count(label) == 1 for label in acknowledged)  # and none written twice
        print(
            f"\n{len(acknowledged)} labels acknowledged before the SIGKILL, all stored; {pending} "
            f"calls in flight at the kill, {len(stored) - len(acknowledged)} of them stored"
        )
        client = Client(server.url, verbose=False, analytics_enabled=False)
        status = client.predict(MODEL, 3, "", "after the crash", "Ana", api_name="/label")
        assert status.startswith("Saved.") and "current label of P3: **valid** by Ana" in status
        rows = client.predict(MODEL, 3, api_name="/label_history")["data"]
        assert "after the crash" in [row[4] for row in rows]
    assert integrity(db) == [("ok",)]
    assert Explorer(label_path=db).labels.integrity_ok()


# --------------------------------------------------------------------------- the analysis cache


def largest_member_data(npz: bytes) -> tuple[str, int, int]:
    """``(name, start, end)`` of the compressed bytes of the largest member of an ``.npz``."""
    with zipfile.ZipFile(io.BytesIO(npz)) as archive:
        info = max(archive.infolist(), key=lambda i: i.compress_size)
    assert info.compress_type == zipfile.ZIP_DEFLATED
    name_length, extra_length = struct.unpack(
        "<HH", npz[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_length + extra_length
    return info.filename, start, start + info.compress_size


def garbled_deflate_stream(npz: bytes) -> bytes:
    """``npz`` with 64 bytes inside its largest compressed member overwritten so that zlib itself
    fails (not only the CRC check): the damage that once escaped the cache as ``zlib.error``."""
    name, start, end = largest_member_data(npz)
    rng = np.random.default_rng(0)
    for offset in range(start, end - 64, max(1, (end - start) // 64)):
        damaged = bytearray(npz)
        damaged[offset : offset + 64] = rng.bytes(64)
        try:
            with zipfile.ZipFile(io.BytesIO(bytes(damaged))) as archive:
                archive.read(name)
        except zlib.error:
            return bytes(damaged)
        except Exception:
            continue
    pytest.fail("no damage inside the compressed data made zlib fail")


def test_any_damage_to_a_cache_file_is_refused_never_raised_or_trusted(tmp_path: Path) -> None:
    """Flipped bytes, overwritten blocks and cuts anywhere in a stored file: ``load`` returns None
    (recompute) or exactly the stored arrays, and never raises."""
    cache = AnalysisCache("0123456789abcdef", tmp_path)
    rng = np.random.default_rng(0)
    stored = {
        "scores": rng.normal(size=(30, 60)),
        "images": np.arange(150).reshape(30, 5),
        "names": np.array(["base", "hue"]),
    }
    good = cache.save("x", stored).read_bytes()
    outcomes = {"refused": 0, "intact": 0}
    for trial in range(900):
        damaged = bytearray(good)
        position = int(rng.integers(0, len(good) - 16))
        if trial % 3 == 0:
            damaged[position] ^= int(rng.integers(1, 256))
        elif trial % 3 == 1:
            damaged[position : position + 16] = rng.bytes(16)
        else:
            damaged = damaged[:position]
        cache.path("x").write_bytes(bytes(damaged))
        loaded = cache.load("x")  # must not raise
        if loaded is None:
            outcomes["refused"] += 1
        else:
            assert loaded.keys() == stored.keys(), trial
            for key, value in stored.items():
                np.testing.assert_array_equal(loaded[key], value)
            outcomes["intact"] += 1
    cache.path("x").write_bytes(garbled_deflate_stream(good))
    assert cache.load("x") is None
    assert outcomes["refused"] > 500, outcomes  # most damage is caught, the rest hit unread bytes


@pytest.mark.slow
def test_a_damaged_nearest_patch_cache_is_recomputed_by_a_fresh_explorer(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    folder = tmp_path / MODEL  # without its shipped analyses: the cache is all there is
    shutil.copytree(WEIGHTS_DIR / MODEL, folder, ignore=shutil.ignore_patterns("analyses"))
    explorer = Explorer(folder, cache_root=root)
    reference = explorer.nearest(MODEL, "test").to_arrays()
    cache = explorer.cache(MODEL)
    path = cache.path("nearest_test")
    good = path.read_bytes()
    damages = {
        "cut in half (a write cut short)": good[: len(good) // 2],
        "garbage bytes of the same size": np.random.default_rng(1).bytes(len(good)),
        "garbled compressed data": garbled_deflate_stream(good),
        "empty file": b"",
    }
    for what, damaged in damages.items():
        path.write_bytes(damaged)
        assert cache.load("nearest_test") is None, what  # detected
        recomputed = Explorer(folder, cache_root=root).nearest(MODEL, "test").to_arrays()
        assert recomputed.keys() == reference.keys(), what
        for key, value in reference.items():
            np.testing.assert_array_equal(recomputed[key], value, err_msg=f"{what}: {key}")
        assert path.read_bytes() != damaged, what  # replaced, by a valid file of the same result
        again = cache.load("nearest_test")
        assert again is not None, what
        for key, value in reference.items():
            np.testing.assert_array_equal(again[key], value, err_msg=f"{what}: {key}")
    assert not list(root.rglob("*.tmp"))  # no temporary file left behind
