"""The label store: append-only history, undo, schema migrations, concurrency, crashes, exchange."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.errors import ExplorerError
from explorer.labels import exchange
from explorer.labels import store as store_module
from explorer.labels.exchange import (
    export_current_csv,
    export_history_csv,
    export_json,
    export_protopdebug,
    import_csv,
    import_json,
)
from explorer.labels.store import (
    REASONS,
    VERDICTS,
    LabelError,
    LabelEvent,
    LabelStore,
    default_labels_path,
)
from explorer.types import PrototypeRecord

REPO = Path(__file__).resolve().parents[1]
H = "0123456789abcdef"  # a model content hash
TRICKY_COMMENTS = (
    "",
    "plain",
    "commas, \"quotes\", and 'apostrophes'",
    "two\nlines\r\nand a CR\rhere",
    "unicode: Grüße, 日本語, emoji 🙂, ×−‖",
    "=SUM(A1:A2) looks like a formula",
    "  leading and trailing spaces  ",
    "tab\there, semicolon; pipe |",
)

# Worker processes load only the labels package: a stub ``explorer`` package stands in for the
# real one, whose ``__init__`` would import torch (seconds per process on a small machine).
_PRELUDE = f"""
import sys, types
package = types.ModuleType("explorer")
package.__path__ = [{str(REPO / "explorer")!r}]
sys.modules["explorer"] = package
from explorer.labels.store import LabelStore
"""

_WRITER = (
    _PRELUDE
    + """
import os, time
path, worker, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
while not os.path.exists(go):
    time.sleep(0.005)
store = LabelStore(path)
for i in range(count):
    store.add("0123456789abcdef", "m", i, "valid", f"worker{worker}", comment=f"w{worker}-{i}")
"""
)

_ENDLESS_WRITER = (
    _PRELUDE
    + """
store = LabelStore(sys.argv[1])
i = 0
while True:
    event = store.add("0123456789abcdef", "m", i % 7, ("valid", "misleading")[i % 2], "killed",
                      comment=f"n{i}")
    print(event.id, i, flush=True)
    i += 1
"""
)


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite3")


def content(events: list[LabelEvent]) -> list[tuple]:
    """Events without their row ids; a reversal names its target by position in the list."""
    position = {e.id: i for i, e in enumerate(events)}
    return [
        (e.model_hash, e.model_id, e.prototype, e.case, e.verdict, e.reason, e.comment,
         e.reviewer, e.time, None if e.reverses is None else position[e.reverses])
        for e in events
    ]  # fmt: skip


def raw(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A plain connection, bypassing the store (closed when the block ends)."""
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def raw_rows(path: Path) -> list[tuple]:
    with raw(path) as conn:
        return conn.execute("SELECT * FROM events ORDER BY id").fetchall()


def fill(store: LabelStore) -> None:
    """A varied history: two models, cases, every verdict and reason, tricky comments, undos."""
    for i, comment in enumerate(TRICKY_COMMENTS):
        store.add(
            H, "elpv", i % 4, VERDICTS[i % 4], f"reviewer {i % 3}",
            reason=(None, *REASONS)[i % 6], comment=comment,
            case=None if i % 3 else f"img-{i}.png",
        )  # fmt: skip
    store.undo(H, 1, "ann")
    store.add("fedcba9876543210", "fashion", 0, "misleading", "bob", reason="shortcut")
    store.add(H, "elpv", 1, "misleading", "carol", comment="after the undo")
    store.undo(H, 0, "ann", case="img-0.png")


# --- current labels, undo, history ----------------------------------------------------------------


def test_latest_label_wins_and_undo_restores_the_previous(store: LabelStore) -> None:
    first = store.add(H, "elpv", 3, "valid", "ann")
    second = store.add(H, "elpv", 3, "misleading", "bob", reason="background", comment="sky")
    assert [e.id for e in store.current(H)] == [second.id]
    assert store.disabled(H) == {3}

    reversal = store.undo(H, 3, "ann")
    assert reversal is not None
    assert (
        reversal.reverses == second.id and reversal.verdict is None and reversal.reviewer == "ann"
    )
    assert store.current(H) == [first]
    assert store.disabled(H) == set()
    # appended, nothing overwritten
    assert store.history() == [first, second, reversal]


def test_undo_walks_back_like_a_stack_and_never_reverses_a_reversal(store: LabelStore) -> None:
    a = store.add(H, "m", 0, "valid", "ann")
    b = store.add(H, "m", 0, "redundant", "ann")
    c = store.add(H, "m", 0, "misleading", "bob")
    assert store.undo(H, 0, "ann").reverses == c.id
    assert store.current(H) == [b]
    assert store.undo(H, 0, "ann").reverses == b.id  # undo of an undo walks one label further back
    assert store.current(H) == [a]
    assert store.undo(H, 0, "ann").reverses == a.id
    assert store.current(H) == []
    assert store.undo(H, 0, "ann") is None  # nothing left
    d = store.add(H, "m", 0, "unsure", "ann")  # a label comes back by adding it again
    assert store.current(H) == [d]
    history = store.history(H, prototype=0)
    assert [e.verdict for e in history] == [
        "valid",
        "redundant",
        "misleading",
        None,
        None,
        None,
        "unsure",
    ]
    assert [e.id for e in history] == sorted(e.id for e in history)


def test_cases_and_models_are_separate_keys(store: LabelStore) -> None:
    general = store.add(H, "m", 2, "valid", "ann")
    case = store.add(H, "m", 2, "misleading", "ann", case="sha256:abc")
    other = store.add("ffff", "n", 2, "misleading", "ann")
    assert store.current(H) == [general, case]  # general label first
    assert store.disabled(H) == set()  # a single case's verdict does not disable the prototype
    assert store.disabled("ffff") == {2}
    assert store.undo(H, 2, "ann", case="sha256:abc").reverses == case.id
    assert store.current() == [general, other]  # sorted by model hash, prototype, case
    assert store.undo(H, 5, "ann") is None


def test_current_filters_progress_and_history_filters(store: LabelStore) -> None:
    store.add(H, "m", 0, "valid", "ann")
    store.add(H, "m", 1, "misleading", "bob")
    store.add(H, "m", 2, "unsure", "ann")
    store.add(H, "m", 2, "valid", "bob")  # replaces ann's label
    store.add(H, "m", 4, "valid", "ann", case="x.png")  # a case label: not "reviewed"
    store.add("other", "o", 0, "valid", "ann")
    assert {e.prototype for e in store.current(H, verdict="valid")} == {0, 2, 4}
    assert {e.prototype for e in store.current(H, reviewer="ann")} == {0, 4}
    assert [e.prototype for e in store.current(H, verdict="valid", reviewer=" bob ")] == [2]
    assert store.progress(H, 50) == (3, 50)
    assert store.progress(H, 2) == (2, 2)
    assert store.progress("unknown", 10) == (0, 10)
    assert [e.prototype for e in store.history(H, prototype=2)] == [2, 2]
    assert len(store.history()) == 6
    with pytest.raises(LabelError):
        store.current(verdict="wrong")


def test_history_is_append_only_by_trigger(store: LabelStore) -> None:
    store.add(H, "m", 0, "valid", "ann")
    store.undo(H, 0, "ann")
    before = raw_rows(store.path)
    with raw(store.path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET verdict = 'misleading' WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events WHERE id = 2")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events")
        with pytest.raises(sqlite3.IntegrityError):  # an event is reversed at most once
            conn.execute(
                "INSERT INTO events (model_hash, model_id, prototype, comment, reviewer, time, "
                "reverses) VALUES ('h', 'm', 0, '', 'x', 't', 1)"
            )
    assert raw_rows(store.path) == before


def test_add_stamps_utc_time_and_trims_reviewer(store: LabelStore) -> None:
    event = store.add(H, " elpv ", np.int64(7), "valid", "  Ada Lovelace \n")
    assert event.reviewer == "Ada Lovelace" and event.model_id == "elpv" and event.prototype == 7
    assert event.time.endswith("+00:00") and "." in event.time
    later = store.add(H, "elpv", 7, "misleading", "Ada Lovelace")
    assert later.time > event.time


@pytest.mark.parametrize(
    ("changes", "column"),
    [
        ({"verdict": "maybe"}, "verdict"),
        ({"verdict": None}, "verdict"),
        ({"reason": "sky"}, "reason"),
        ({"reviewer": ""}, "reviewer"),
        ({"reviewer": "   "}, "reviewer"),
        ({"reviewer": "x" * 101}, "reviewer"),
        ({"reviewer": "two\nlines"}, "reviewer"),
        ({"prototype": -1}, "prototype"),
        ({"prototype": 1.0}, "prototype"),
        ({"prototype": True}, "prototype"),
        ({"prototype": "3"}, "prototype"),
        ({"model_hash": ""}, "model_hash"),
        ({"case": ""}, "case"),
        ({"comment": "nul\x00byte"}, "comment"),
        ({"comment": 5}, "comment"),
    ],
)
def test_invalid_fields_are_refused(store: LabelStore, changes: dict, column: str) -> None:
    arguments = {"model_hash": H, "model_id": "m", "prototype": 0, "verdict": "valid",
                 "reviewer": "ann", "reason": None, "comment": "", "case": None} | changes  # fmt: skip
    with pytest.raises(LabelError) as caught:
        store.add(**arguments)
    assert isinstance(caught.value, ExplorerError) and isinstance(caught.value, ValueError)
    assert caught.value.field == column
    assert str(caught.value)
    assert store.history() == []
    with pytest.raises(LabelError):
        store.undo(H, -1, "ann")
    with pytest.raises(LabelError):
        store.undo(H, 0, "")


def test_a_reviewer_of_100_characters_is_accepted(store: LabelStore) -> None:
    assert store.add(H, "m", 0, "valid", "x" * 100).reviewer == "x" * 100


# --- schema, file, settings -----------------------------------------------------------------------


def test_pragmas_wal_full_sync_and_busy_timeout(store: LabelStore) -> None:
    with store._connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    assert store.integrity_ok()


def test_default_path_is_outside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXPLORER_LABELS_DB", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".local" / "share" / "prototype-explorer" / "labels.sqlite3"
    assert default_labels_path() == expected
    monkeypatch.setenv("EXPLORER_LABELS_DB", str(tmp_path / "deep" / "er" / "l.db"))
    store = LabelStore()  # creates the parent folders
    assert store.path == tmp_path / "deep" / "er" / "l.db" and store.path.is_file()
    assert store.schema_version() == store_module.SCHEMA_VERSION == 2


def test_an_empty_v0_file_is_migrated_to_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "v0.sqlite3"
    path.touch()  # an empty file is an SQLite database of user_version 0
    store = LabelStore(path)
    assert store.schema_version() == store_module.SCHEMA_VERSION
    store.add(H, "m", 0, "valid", "ann")
    assert len(store.history()) == 1


def test_a_current_file_is_opened_as_it_is_and_a_new_migration_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "current.sqlite3"
    first = LabelStore(path)
    fill(first)
    before = first.history()
    again = LabelStore(path)  # reopening a current file runs no migration
    assert again.schema_version() == store_module.SCHEMA_VERSION and again.history() == before

    def to_next(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE reviewers (name TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO reviewers SELECT DISTINCT reviewer FROM events")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, to_next])
    upgraded = LabelStore(path)
    assert upgraded.schema_version() == store_module.SCHEMA_VERSION + 1
    assert upgraded.history() == before
    with raw(path) as conn:
        assert conn.execute("SELECT count(*) FROM reviewers").fetchone()[0] == len(
            {e.reviewer for e in before}
        )


def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "labels.sqlite3"
    LabelStore(path).add(H, "m", 0, "valid", "ann")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration failed")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, broken])
    with pytest.raises(RuntimeError, match="migration failed"):
        LabelStore(path)
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables


def test_newer_or_foreign_files_are_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    with raw(newer) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(LabelError, match="newer"):
        LabelStore(newer)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LabelError, match=r"garbage\.sqlite3"):
        LabelStore(garbage)


# --- concurrency and crashes ----------------------------------------------------------------------


def test_threads_sharing_one_store_lose_nothing(store: LabelStore) -> None:
    for i in range(40):
        store.add(H, "m", 99, "valid", "seed", comment=str(i))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(40):
                store.add(H, "m", i, "valid", f"thread{worker}", comment=f"t{worker}-{i}")
                if i % 8 == 0:
                    store.undo(H, 99, f"thread{worker}")  # 5 undos per thread on one key
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    history = store.history()
    assert len(history) == 40 + 8 * 40 + 8 * 5
    comments = [e.comment for e in history if e.reviewer.startswith("thread") and e.verdict]
    assert sorted(comments) == sorted(f"t{w}-{i}" for w in range(8) for i in range(40))
    reversed_ids = [e.reverses for e in history if e.reverses is not None]
    assert len(set(reversed_ids)) == 40  # every seed label undone exactly once
    assert not [e for e in store.current(H) if e.prototype == 99]
    assert store.integrity_ok()


def _spawn(script: str, *args: str, **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *args], **kwargs)  # type: ignore[call-overload]


@pytest.mark.slow
def test_eight_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path, go = tmp_path / "shared.sqlite3", tmp_path / "go"
    workers = [_spawn(_WRITER, str(path), str(w), "100", str(go)) for w in range(8)]
    time.sleep(0.5)
    go.touch()  # all start together, on a file none of them has created yet
    for worker in workers:
        assert worker.wait(timeout=60) == 0
    store = LabelStore(path)
    history = store.history()
    assert len(history) == 800
    assert sorted(e.comment for e in history) == sorted(
        f"w{w}-{i}" for w in range(8) for i in range(100)
    )
    assert [e.id for e in history] == list(range(1, 801))
    assert store.integrity_ok()


@pytest.mark.slow
def test_labels_reported_committed_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite3"
    writer = _spawn(_ENDLESS_WRITER, str(path), stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    reported: dict[int, int] = {}
    try:
        for line in writer.stdout:
            event_id, i = map(int, line.split())
            reported[event_id] = i
            if len(reported) >= 150:
                break
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        rest, _ = writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    for line in rest.splitlines(keepends=True):
        if line.endswith("\n"):  # a complete line was printed after its commit
            event_id, i = map(int, line.split())
            reported[event_id] = i
    store = LabelStore(path)  # recovers from the WAL left behind
    assert store.integrity_ok()
    history = store.history()
    by_id = {e.id: e for e in history}
    for event_id, i in reported.items():
        assert by_id[event_id].comment == f"n{i}"
        assert by_id[event_id].prototype == i % 7
    # no partial rows: ids are contiguous and every row is a whole, valid event
    assert [e.id for e in history] == list(range(1, len(history) + 1))
    assert len(history) >= len(reported)
    for e in history:
        assert e.comment == f"n{e.id - 1}" and e.verdict in ("valid", "misleading")
        assert e.reviewer == "killed" and e.time.endswith("+00:00")
    store.add(H, "m", 0, "valid", "after")  # and it is writable again
    assert store.integrity_ok()


# --- export and import ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_export_import_round_trips_exactly_and_is_idempotent(tmp_path: Path, kind: str) -> None:
    source = LabelStore(tmp_path / "source.sqlite3")
    fill(source)
    file = tmp_path / f"history.{kind}"
    if kind == "json":
        assert export_json(source, file, history=True) == len(source.history())
    else:
        assert export_history_csv(source, file) == len(source.history())
    target = LabelStore(tmp_path / "target.sqlite3")
    load = import_json if kind == "json" else import_csv
    assert load(target, file) == len(source.history())
    assert content(target.history()) == content(source.history())
    assert content(target.current()) == content(source.current())
    assert load(target, file) == 0  # importing twice adds nothing
    assert content(target.history()) == content(source.history())
    # one model only
    only = tmp_path / f"one.{kind}"
    (export_json if kind == "json" else export_history_csv)(source, only, "fedcba9876543210")
    third = LabelStore(tmp_path / "third.sqlite3")
    assert load(third, only) == 1
    assert third.current()[0].reason == "shortcut"


def test_current_exports_hold_only_current_labels(tmp_path: Path, store: LabelStore) -> None:
    fill(store)
    export_current_csv(store, tmp_path / "current.csv", model_hash=H)
    export_json(store, tmp_path / "current.json", H, history=False)
    document = json.loads((tmp_path / "current.json").read_text(encoding="utf-8"))
    assert document["format"] == exchange.FORMAT_TAG and document["version"] == 1
    assert document["kind"] == "current" and document["model_hash"] == H
    expected = content(store.current(H))
    assert [e["reverses"] for e in document["events"]] == [None] * len(expected)
    for name, load in (("current.csv", import_csv), ("current.json", import_json)):
        other = LabelStore(tmp_path / f"{name}.sqlite3")
        assert load(other, tmp_path / name) == len(expected)
        assert content(other.current()) == expected
        assert load(other, tmp_path / name) == 0
        assert load(store, tmp_path / name) == 0  # already there


def test_import_merges_by_time_and_skips_what_is_present(tmp_path: Path) -> None:
    alice = LabelStore(tmp_path / "alice.sqlite3")
    old = alice.add(H, "m", 0, "valid", "alice")
    alice.add(H, "m", 1, "valid", "alice")
    export_json(alice, tmp_path / "alice.json")
    bob = LabelStore(tmp_path / "bob.sqlite3")
    import_json(bob, tmp_path / "alice.json")
    newer = bob.add(H, "m", 0, "misleading", "bob")
    bob.undo(H, 1, "bob")
    export_json(bob, tmp_path / "bob.json")
    assert import_json(alice, tmp_path / "bob.json") == 2  # bob's label and undo; alice's skipped
    assert len(alice.history()) == 4
    current = {e.prototype: e for e in alice.current(H)}
    assert current == {0: replace(newer, id=current[0].id)}
    assert old.time < newer.time
    # a stale label imported later does not hide a newer one (latest by time, not by import)
    carol = LabelStore(tmp_path / "carol.sqlite3")
    carol.add(H, "m", 0, "redundant", "carol")
    import_json(carol, tmp_path / "alice.json")  # alice's older labels arrive afterwards
    assert [e.verdict for e in carol.current(H) if e.prototype == 0] == ["redundant"]


def _csv_lines(*rows: str) -> str:
    return "\r\n".join(["id,model_hash,model_id,prototype,case,verdict,reason,comment,reviewer,time,reverses", *rows]) + "\r\n"  # fmt: skip


T = "2024-05-01T12:00:00.000000+00:00"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (_csv_lines(f'1,{H},m,0,,valid,,"a\nb",ann,{T},', f"2,{H},m,1,,maybe,,,ann,{T},"),
         "line 4, field 'verdict'"),
        (_csv_lines(f"1,{H},m,0,,valid,,,ann,{T},", f"2,{H},m,x,,valid,,,ann,{T},"),
         "line 3, field 'prototype'"),
        (_csv_lines(f"1,{H},m,0,,valid,,,ann,{T},", f"2,{H},m,-4,,valid,,,ann,{T},"),
         "line 3, field 'prototype'"),
        (_csv_lines(f"1,{H},m,0,,valid,,,,{T},"), "line 2, field 'reviewer'"),
        (_csv_lines(f"1,{H},m,0,,valid,sky,,ann,{T},"), "line 2, field 'reason'"),
        (_csv_lines(f"1,{H},m,0,,valid,,,ann,yesterday,"), "line 2, field 'time'"),
        (_csv_lines(f"1,{H},m,0,,valid,,,ann,2024-05-01T12:00:00,"), "line 2, field 'time'"),
        (_csv_lines(f"1,{H},m,0,,,,,ann,{T},7"), "line 2, field 'reverses'"),
        (_csv_lines(f"1,{H},m,0,,valid,,,ann,{T},", f"1,{H},m,1,,valid,,,ann,{T},"),
         "line 3, field 'id'"),
        (_csv_lines(f"1,{H},m,0,,valid,,,ann,{T}"), "line 2: 10 fields"),
        ("id,model_hash,prototype\r\n1,h,0\r\n", "lacks the column(s) verdict, reviewer, time"),
        ("", "empty"),
    ],
)  # fmt: skip
def test_malformed_csv_is_refused_with_its_place_and_adds_nothing(
    tmp_path: Path, store: LabelStore, text: str, needle: str
) -> None:
    store.add(H, "m", 0, "valid", "ann")
    before = store.history()
    file = tmp_path / "bad.csv"
    file.write_bytes(text.encode("utf-8"))
    with pytest.raises(LabelError) as caught:
        import_csv(store, file)
    assert needle in str(caught.value) and "bad.csv" in str(caught.value)
    assert store.history() == before


def test_malformed_json_is_refused_with_its_place_and_adds_nothing(
    tmp_path: Path, store: LabelStore
) -> None:
    store.add(H, "m", 0, "valid", "ann")
    export_json(store, tmp_path / "good.json")
    good = json.loads((tmp_path / "good.json").read_text(encoding="utf-8"))
    event = good["events"][0]
    before = store.history()
    cases = [
        ('{"format": "prototype-explorer-labels",\n "version": 1,\n "events": [,]}', "line 3"),
        (json.dumps({"format": "something else", "version": 1, "events": []}), "format"),
        (json.dumps(good | {"version": 2}), "version 2"),
        (json.dumps(good | {"events": {}}), "'events' must be a list"),
        (json.dumps(good | {"events": [event, event | {"id": 5, "verdict": "bad"}]}),
         "event 2, field 'verdict'"),
        (json.dumps(good | {"events": [event | {"id": 2}, event | {"id": "3"}]}),
         "event 2, field 'id'"),
        (json.dumps(good | {"events": [event | {"prototype": 1.5}]}), "event 1, field 'prototype'"),
        (json.dumps(good | {"events": [event | {"colour": "red"}]}), "field 'colour'"),
        (json.dumps(good | {"events": [{k: v for k, v in event.items() if k != "time"}]}),
         "event 1: missing field(s) time"),
        (json.dumps(good | {"events": [event | {"id": 9, "time": "2024-01-01T00:00:00+00:00"},
                                       event | {"id": 10, "verdict": None, "reverses": 11}]}),
         "event 2, field 'reverses'"),
    ]  # fmt: skip
    for text, needle in cases:
        file = tmp_path / "bad.json"
        file.write_text(text, encoding="utf-8")
        with pytest.raises(LabelError) as caught:
            import_json(store, file)
        assert needle in str(caught.value), (needle, str(caught.value))
        assert store.history() == before
    with pytest.raises(LabelError, match="does not exist"):
        import_json(store, tmp_path / "missing.json")


def test_csv_without_ids_numbers_rows_and_accepts_a_bom(tmp_path: Path, store: LabelStore) -> None:
    file = tmp_path / "sheet.csv"
    rows = ["model_hash,prototype,verdict,reviewer,time,notes",
            f"{H},0,valid,ann,{T},ignored", f"{H},0,misleading,bob,2024-05-01T14:00:00+02:00,x"]  # fmt: skip
    file.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8-sig"))
    assert import_csv(store, file) == 2
    history = store.history()
    assert [e.verdict for e in history] == ["valid", "misleading"]
    assert history[1].time == T  # normalised to UTC with microseconds
    assert store.current(H) == [history[1]]  # same time: the later event wins


# --- ProtoPDebug ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeSpec:
    class_names: tuple[str, ...] = ("ok", "crack", "finger")
    input_size: tuple[int, int] = (16, 16)
    prototype_classes: tuple[int, ...] = (0, 1, 2, 0)
    num_prototypes: int = 4


@dataclass(frozen=True)
class FakeBundle:
    """What the export needs of a :class:`~explorer.models.checkpoint.ModelBundle`."""

    content_hash: str
    projection: tuple[PrototypeRecord, ...]
    images: dict[int, np.ndarray] = field(default_factory=dict)
    spec: FakeSpec = FakeSpec()

    def source_image(self, prototype: int) -> np.ndarray:
        return self.images[prototype]


@dataclass(frozen=True)
class FakeNearest:
    split: str
    images: np.ndarray
    boxes: np.ndarray
    pixels: np.ndarray


def fake_bundle() -> FakeBundle:
    rng = np.random.default_rng(0)
    boxes = [(2, 10, 4, 8), (0, 4, 0, 16), (5, 6, 5, 6), (3, 9, 3, 9)]  # tall, wide, 1×1, square
    records = tuple(
        PrototypeRecord(index=j, class_index=j % 3, source_index=100 + j, cell=(0, 0),
                        box=boxes[j], source_file=f"p{j}.png")
        for j in range(4)
    )  # fmt: skip
    images = {j: rng.integers(0, 200, (16, 16, 3), dtype=np.uint8) for j in range(4)}
    return FakeBundle(H, records, images)


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_protopdebug_export_writes_forbidden_and_remembered_cutouts(
    tmp_path: Path, store: LabelStore
) -> None:
    bundle = fake_bundle()
    store.add(H, "m", 0, "misleading", "ann", reason="background")  # class 0 → forbidden
    store.add(H, "m", 1, "valid", "ann")  # class 1 → remembering
    store.add(H, "m", 2, "redundant", "ann")  # neither
    store.add(H, "m", 3, "misleading", "ann")
    store.undo(H, 3, "ann")  # undone: neither
    store.add(H, "m", 2, "misleading", "ann", case="one-image.png")  # a case label: ignored
    store.add("another model", "m", 1, "misleading", "ann")  # another model: ignored
    out = tmp_path / "protopdebug"
    counts = export_protopdebug(store, bundle, out)
    assert counts == {"forbidden_prototypes": 1, "remembering_prototypes": 1,
                      "forbidden_files": 1, "remembering_files": 1}  # fmt: skip
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "forbidden_prototypes/class_idx_0/c=0_p=0_i=100.png",
        "remembering_prototypes/class_idx_1/c=1_p=1_i=101.png",
    ]
    # each crop at its own size, centred on a white canvas of the model's input size (16×16), as
    # ProtoPDebug's prepare_cut_out_image pastes it
    forbidden = read_png(
        out / files[0]
    )  # box rows 2:10, cols 4:8 → 8×4 crop at rows 4:12, cols 6:10
    assert forbidden.shape == (16, 16, 3)
    assert (forbidden[4:12, 6:10] == bundle.images[0][2:10, 4:8]).all()
    white = np.ones((16, 16), dtype=bool)
    white[4:12, 6:10] = False
    assert (forbidden[white] == 255).all()
    remembered = read_png(out / files[1])  # rows 0:4, all 16 columns → rows 6:10
    assert remembered.shape == (16, 16, 3)
    assert (remembered[6:10] == bundle.images[1][0:4]).all()
    assert (remembered[:6] == 255).all() and (remembered[10:] == 255).all()


def test_protopdebug_export_adds_nearest_training_patches(
    tmp_path: Path, store: LabelStore
) -> None:
    bundle = fake_bundle()
    store.add(H, "m", 2, "misleading", "ann")
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 200, (4, 3, 16, 16, 1), dtype=np.uint8)  # grey training images
    images = np.array([[0, 1, 2], [3, 4, 5], [102, 7, -1], [8, 9, 10]])  # 102: the source again
    boxes = np.array([[[0, 4, 0, 2]] * 3] * 4)
    nearest = FakeNearest("train", images, boxes, pixels)
    counts = export_protopdebug(store, bundle, tmp_path, nearest_train=nearest)
    assert counts["forbidden_files"] == 2 and counts["forbidden_prototypes"] == 1
    folder = tmp_path / "forbidden_prototypes" / "class_idx_2"
    assert sorted(p.name for p in folder.iterdir()) == ["c=2_p=2_i=102.png", "c=2_p=2_i=7.png"]
    patch = read_png(folder / "c=2_p=2_i=7.png")
    assert patch.shape == (16, 16, 3)  # a 4×2 grey crop at rows 6:10, cols 7:9
    assert (patch[6:10, 7:9, 0] == pixels[2, 1, 0:4, 0:2, 0]).all() and (patch[:, :7] == 255).all()
    with pytest.raises(LabelError, match="training split"):
        export_protopdebug(store, bundle, tmp_path, FakeNearest("test", images, boxes, pixels))
    with pytest.raises(LabelError, match="prototypes"):
        export_protopdebug(store, bundle, tmp_path, FakeNearest("train", images[:2], boxes, pixels))


def test_protopdebug_export_of_an_unlabelled_model_writes_nothing(
    tmp_path: Path, store: LabelStore
) -> None:
    counts = export_protopdebug(store, fake_bundle(), tmp_path / "out")
    assert set(counts.values()) == {0}
    assert not (tmp_path / "out").exists()


def test_an_import_failing_inside_its_transaction_adds_nothing(
    tmp_path: Path, store: LabelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = LabelStore(tmp_path / "source.sqlite3")
    fill(source)
    export_json(source, tmp_path / "all.json")
    original = LabelStore._insert
    calls = []

    def failing(conn: sqlite3.Connection, values: tuple) -> LabelEvent:
        calls.append(values)
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error")
        return original(conn, values)

    monkeypatch.setattr(LabelStore, "_insert", staticmethod(failing))
    with pytest.raises(LabelError, match="disk I/O error"):
        import_json(store, tmp_path / "all.json")
    monkeypatch.undo()
    assert store.history() == []
    assert import_json(store, tmp_path / "all.json") == len(source.history())
