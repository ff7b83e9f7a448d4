"""Imported labels: provenance under a login, today's merge without one, and a clock no file can move.

The rule (explorer/labels/store.py): an imported event keeps its reviewer and time as provenance; it
counts (current label, reversals, the what-if switch) only when imported without a login or by the
reviewer it names; times more than MAX_CLOCK_SKEW ahead are refused; imported events never move the
clock of later labels. The store itself: tests/test_labels.py.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from explorer.api import Explorer
from explorer.auth import Credentials, hash_password
from explorer.labels import store as store_module
from explorer.labels.exchange import FORMAT_TAG, MAX_JSON_DEPTH, import_file, import_json
from explorer.labels.store import LabelError, LabelImport, LabelStore
from explorer.ui.app import launch
from tests.serving import free_port

H = "0123456789abcdef"
PASSWORD = "correct horse battery"


def row(number: int, prototype: int, verdict: str | None, reviewer: str, time: str, **more) -> dict:
    """One event of a JSON labels export."""
    return {
        "id": number, "model_hash": H, "model_id": "m", "prototype": prototype, "case": None,
        "verdict": verdict, "reason": None, "comment": "", "reviewer": reviewer, "time": time,
        "reverses": None,
    } | more  # fmt: skip


def export_file(path: Path, *events: dict, model_hash: str = H) -> Path:
    for event in events:
        event["model_hash"] = model_hash
    document = {"format": FORMAT_TAG, "version": 1, "kind": "history", "events": list(events)}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def moment(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat(timespec="microseconds")


PAST = "2024-05-01T12:00:00.000000+00:00"


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite3")


def test_signed_in_import_of_another_reviewer_is_provenance_only(
    tmp_path: Path, store: LabelStore
) -> None:
    file = export_file(tmp_path / "bob.json", row(1, 9, "misleading", "bob", PAST))
    result = import_file(store, file, imported_by="alice")
    assert result == LabelImport(added=1, provenance_only=1, importer="alice")
    assert store.current() == [] and store.disabled(H) == set()
    assert store.current(reviewer="bob") == [] and store.progress(H, 20) == (0, 20)
    (kept,) = store.history()
    assert (kept.reviewer, kept.time, kept.verdict) == ("bob", PAST, "misleading")  # provenance
    assert kept.imported and kept.imported_by == "alice" and kept.provenance_only
    assert import_file(store, file, imported_by="alice") == LabelImport(0, 0, "alice")  # idempotent
    # bob importing his own file confirms the labels: they count, once
    assert import_file(store, file, imported_by="bob") == LabelImport(1, 0, "bob")
    assert store.disabled(H) == {9}
    assert import_file(store, file, imported_by="bob").added == 0
    assert len(store.history()) == 2


def test_the_importers_own_events_count_as_theirs(tmp_path: Path, store: LabelStore) -> None:
    file = export_file(
        tmp_path / "mixed.json",
        row(1, 3, "misleading", "alice", PAST),
        row(2, 4, "misleading", "bob", PAST),
    )
    assert import_file(store, file, imported_by="alice") == LabelImport(2, 1, "alice")
    assert [(e.prototype, e.reviewer) for e in store.current()] == [(3, "alice")]
    assert store.disabled(H) == {3}


def test_an_imported_reversal_under_another_name_undoes_nothing(
    tmp_path: Path, store: LabelStore
) -> None:
    carol = store.add(H, "m", 5, "valid", "carol")
    original = row(1, 5, "valid", "carol", carol.time)  # carol's own label, as an export holds it
    reversal = row(2, 5, None, "bob", moment(seconds=1), reverses=1)
    file = export_file(tmp_path / "undo.json", original, reversal)
    assert import_file(store, file, imported_by="alice") == LabelImport(1, 1, "alice")
    assert [e.id for e in store.current()] == [carol.id]
    # the provenance-only reversal does not block a real undo (reversed-once covers counted ones)
    undo = store.undo(H, 5, "alice")
    assert undo is not None and undo.reverses == carol.id and store.current() == []


def test_without_a_login_an_import_works_as_it_always_did(
    tmp_path: Path, store: LabelStore
) -> None:
    file = export_file(tmp_path / "bob.json", row(1, 9, "misleading", "bob", PAST))
    assert import_file(store, file) == LabelImport(1, 0, None)
    assert store.disabled(H) == {9} and store.current()[0].reviewer == "bob"
    assert import_json(store, file) == 0


@pytest.mark.parametrize("importer", [None, "alice"])
def test_an_event_dated_in_the_future_is_refused_and_nothing_is_imported(
    tmp_path: Path, store: LabelStore, importer: str | None
) -> None:
    store.add(H, "m", 0, "valid", "ann")
    before = store.history()
    file = export_file(
        tmp_path / "forged.json",
        row(1, 9, "valid", "alice", PAST),
        row(2, 9, "misleading", "alice", "2099-01-01T00:00:00+00:00"),
    )
    with pytest.raises(LabelError) as caught:
        import_file(store, file, imported_by=importer)
    message = str(caught.value)
    assert "forged.json event 2, field 'time'" in message and "lies in the future" in message
    assert "at most 5 minutes ahead" in message
    assert store.history() == before


def test_imported_events_never_move_the_clock(
    tmp_path: Path, store: LabelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # within the allowed clock difference: imported, but later genuine labels are stamped now
    ahead = moment(minutes=4)
    import_file(store, export_file(tmp_path / "ahead.json", row(1, 2, "misleading", "ann", ahead)))
    assert store.disabled(H) == {2}
    genuine = store.add(H, "m", 2, "valid", "ann")
    assert genuine.time < ahead
    assert abs(datetime.fromisoformat(genuine.time) - datetime.now(UTC)) < timedelta(seconds=30)
    assert store.current()[0].id == genuine.id and store.disabled(H) == set()
    # even a 2099 row that got in (as if the limit were off) neither drags later labels to 2099
    # nor outranks them: it ranks at the moment it was imported
    monkeypatch.setattr(store_module, "MAX_CLOCK_SKEW", timedelta(days=365 * 100))
    forged = export_file(
        tmp_path / "2099.json", row(1, 7, "misleading", "ann", "2099-01-01T00:00:00+00:00")
    )
    import_file(store, forged)
    later = store.add(H, "m", 7, "valid", "ann")
    assert later.time.startswith(str(datetime.now(UTC).year))
    assert [e.verdict for e in store.current() if e.prototype == 7] == ["valid"]
    assert store.undo(H, 7, "ann").time < "2099"  # undos are stamped by the same clock


def test_a_version_1_file_is_migrated_keeping_its_history_and_triggers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v1.sqlite3"
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
    LabelStore(path)  # the version 1 schema, written as version 1 wrote its events
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.executemany(
            "INSERT INTO events (model_hash, model_id, prototype, case_id, verdict, reason, "
            "comment, reviewer, time, reverses) VALUES (?, 'm', ?, NULL, ?, NULL, '', 'ann', ?, ?)",
            [(H, 1, "misleading", PAST, None), (H, 2, "valid", PAST, None),
             (H, 2, None, "2024-05-01T12:00:01.000000+00:00", 2)],
        )  # fmt: skip
    monkeypatch.undo()
    store = LabelStore(path)
    assert store.schema_version() == store_module.SCHEMA_VERSION == 2
    history = store.history()
    assert [(e.prototype, e.verdict, e.reverses) for e in history] == [
        (1, "misleading", None), (2, "valid", None), (2, None, 2),
    ]  # fmt: skip
    assert not any(e.imported or e.recorded for e in history)  # they count as written here
    assert store.disabled(H) == {1}
    assert store.add(H, "m", 2, "redundant", "ann").time > PAST
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET verdict = 'valid' WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError):  # reversed at most once, still
            conn.execute(
                "INSERT INTO events (model_hash, model_id, prototype, comment, reviewer, time, "
                "reverses) VALUES (?, 'm', 2, '', 'x', ?, 2)",
                (H, moment()),
            )
    assert store.integrity_ok()


def test_json_nesting_is_bounded_before_parsing(tmp_path: Path, store: LabelStore) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(
        LabelError, match=rf"deep\.json nests too deeply: more than {MAX_JSON_DEPTH} levels"
    ):
        import_json(store, deep)
    # brackets inside strings do not count
    brackets = "[" * 100 + '"' + "{" * 100
    file = export_file(tmp_path / "ok.json", row(1, 0, "valid", "ann", PAST, comment=brackets))
    assert import_json(store, file) == 1 and store.history()[0].comment == brackets


def test_an_imported_label_of_a_prototype_the_model_lacks_disables_nothing(tmp_path: Path) -> None:
    explorer = Explorer(label_path=tmp_path / "labels.sqlite3")
    content_hash = explorer.content_hash("synthetic")
    file = export_file(
        tmp_path / "odd.json",
        row(1, 999, "misleading", "ann", PAST),
        row(2, 4, "misleading", "ann", PAST),
        model_hash=content_hash,
    )
    assert explorer.import_labels(file) == LabelImport(2, 0, None)
    assert explorer.misleading("synthetic") == {4}  # the what-if needs columns that exist


# --- through the app, signed in ------------------------------------------------------------------


@contextlib.contextmanager
def signed_in_app(explorer: Explorer) -> Iterator[str]:
    """The app with a login for alice and bob, served in this process."""
    hashes = {user: hash_password(PASSWORD, iterations=1_000) for user in ("alice", "bob")}
    port = free_port()
    app = launch(
        explorer, port=port, credentials=Credentials(hashes), prevent_thread_lock=True, quiet=True
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def test_signed_in_as_alice_an_import_cannot_label_for_bob(tmp_path: Path) -> None:
    explorer = Explorer(label_path=tmp_path / "labels.sqlite3")
    content_hash = explorer.content_hash("synthetic")
    file = export_file(
        tmp_path / "forged.json", row(1, 9, "misleading", "bob", PAST), model_hash=content_hash
    )
    example = explorer.bundle("synthetic").examples()[0]
    with signed_in_app(explorer) as url:
        alice = Client(url, auth=("alice", PASSWORD), verbose=False)
        answer = alice.predict("synthetic", handle_file(str(file)), api_name="/import_labels")
        assert answer.startswith("Imported 1 new events")
        assert "1 of them name another reviewer than you (alice)" in answer
        assert "provenance only" in answer
        progress, table = alice.predict("synthetic", "any", "", False, api_name="/labels")
        assert table["data"] == [] and "disabled by the what-if" not in progress
        assert explorer.misleading("synthetic") == set()
        summary, *_ = alice.predict(
            handle_file(str(example)), "synthetic", 10, "contribution", "predicted class", "jet",
            True, api_name="/explain",
        )  # fmt: skip
        assert "no prototype of this model is labelled *misleading* yet" in summary
        history = alice.predict("synthetic", 9, api_name="/label_history")
        assert history["data"][0][2] == "misleading (imported by alice: provenance only)"
        assert history["data"][0][5] == "bob"
        again = alice.predict("synthetic", handle_file(str(file)), api_name="/import_labels")
        assert again.startswith("Imported 0 new events")
        # bob, signed in, importing his own label makes it his current label
        bob = Client(url, auth=("bob", PASSWORD), verbose=False)
        bob.predict("synthetic", handle_file(str(file)), api_name="/import_labels")
        assert explorer.misleading("synthetic") == {9}
