"""Human labels of prototypes, kept in an append-only SQLite history.

A label belongs to one model (its content hash) and one prototype, and optionally to one image *case*
(a string id such as the image's SHA-256 or file name; ``None`` labels the prototype in general). Every
change is an appended event; nothing is ever updated or deleted (triggers refuse it):

* ``add`` appends a *label event* (a verdict, an optional reason, a comment, the reviewer, the time).
* ``undo`` appends a *reversal event* that names the label event it cancels.

The **current label** of a (model, prototype, case) is its latest *effective* label event: a label
event that *counts* (see below) and that no reversal that counts names. "Latest" orders by the event
time, then by id (ties), so labels merged in from another store take their place by when they were
made, not by when they were imported -- but an imported event never ranks later than the moment it
was imported (its ``recorded`` time), so a label dated ahead cannot outrank the labels made after it.

**Imported events and provenance** (:meth:`LabelStore.merge_events`, schema version 2). Every event
records whether it was made here or merged in from a file (``imported``), who imported it
(``imported_by``: the signed-in user, ``None`` without a login) and when this store wrote it
(``recorded``). An imported event keeps its original reviewer and time as *provenance*. It
**counts** -- it can be a current label, reverse one, feed :meth:`LabelStore.disabled` (the what-if
"disable misleading" switch) and :meth:`LabelStore.progress` -- only when it was imported without a
login (single-user mode: whoever can run the import can write the database anyway, so an import
works as it always did) or when the reviewer it names *is* the signed-in importer (then it is that
reviewer's own label). Otherwise it is **provenance only**: kept in the history, exported, never
anyone's current label. So with ``--auth`` alice can import bob's labels to read them, but cannot
make them bob's current labels, nor undo bob's labels by importing reversals under his name.

**The clock.** A new label or undo is stamped now, but strictly after the ranking time of every event
of its (model, prototype, case) that counts, so a clock stepping back never hides a label; imported
events rank at most at the moment they were imported, so they never move the clock. Imported times
more than :data:`MAX_CLOCK_SKEW` ahead of this machine's clock are refused (the whole import adds
nothing): a forged row dated 2099 neither enters the store nor drags later labels to 2099. Events
written before schema version 2 (the migration cannot tell where they came from) count as written
here.

**Undo semantics** (a stack, like an editor's undo without redo): ``undo`` always reverses the current
label, so it restores the label that was current before it; a second ``undo`` reverses that one too,
and so on until nothing is left (then ``undo`` returns ``None``). A reversal is never itself reversed:
to bring a label back, add it again. ``undo`` acts on the (model, prototype, case) as a whole, whoever
wrote its current label; the reversal records who undid it.

Concurrency and durability: the database runs in WAL mode with ``synchronous=FULL`` (a committed label
survives a crash of the process or of the machine) and a busy timeout (concurrent writers wait for
each other instead of failing). Each call opens its own short-lived connection, so one
:class:`LabelStore` may be shared by the threads of a web server and many processes may open the same
file. Every write runs in one ``BEGIN IMMEDIATE`` transaction, so an undo's read-then-append cannot
race another writer, and a unique index guarantees an event is reversed at most once.

Schema versions live in ``PRAGMA user_version``; :data:`MIGRATIONS` lists one function per version,
applied in order inside one transaction when a store is opened (append a function to add version 3).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.validation import InputError, bounded_text, whole_number

log = logging.getLogger(__name__)

__all__ = [
    "MAX_CLOCK_SKEW",
    "MIGRATIONS",
    "REASONS",
    "SCHEMA_VERSION",
    "VERDICTS",
    "LabelError",
    "LabelEvent",
    "LabelImport",
    "LabelStore",
    "check_events",
    "default_labels_path",
    "normalize_time",
]

VERDICTS = ("valid", "misleading", "redundant", "unsure")
REASONS = ("background", "artefact", "marker or text", "shortcut", "other")

MAX_REVIEWER_CHARS = 100
MAX_MODEL_HASH_CHARS = 128
MAX_MODEL_ID_CHARS = 200
MAX_CASE_CHARS = 512
MAX_COMMENT_CHARS = 10_000
DEFAULT_BUSY_TIMEOUT_S = 10.0
MAX_PROTOTYPE = 2**63 - 1  # SQLite's largest INTEGER
#: How far ahead of this machine's clock an imported event may be dated (clock differences).
MAX_CLOCK_SKEW = timedelta(minutes=5)

_COLUMNS = (
    "id, model_hash, model_id, prototype, case_id, verdict, reason, comment, reviewer, time, "
    "reverses, imported, imported_by, recorded"
)


def _counts(alias: str) -> str:
    """SQL: whether the event ``alias`` counts (made here, imported without a login, or imported by
    the reviewer it names); the others are provenance only."""
    return (
        f"({alias}.imported = 0 OR {alias}.imported_by IS NULL "
        f"OR {alias}.imported_by = {alias}.reviewer)"
    )


def _ranked_time(alias: str) -> str:
    """SQL: the time the event ``alias`` ranks at: its own, but an imported one at most when it was
    imported."""
    return (
        f"(CASE WHEN {alias}.imported = 1 AND {alias}.recorded < {alias}.time "
        f"THEN {alias}.recorded ELSE {alias}.time END)"
    )


class LabelError(ExplorerError, ValueError):
    """A label, a labels file or the labels database cannot be used (the message says why).

    Attributes:
        field: the field at fault (a column name such as ``verdict``), when known.
        index: position of the event at fault in a batch of events (see :func:`check_events`).
    """

    def __init__(self, message: str, field: str | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.index = index


@dataclass(frozen=True)
class LabelEvent:
    """One event of the label history.

    Attributes:
        id: the event's row id (ascending in insertion order).
        model_hash: content hash of the model the label is about.
        model_id: the model's name, for display.
        prototype: prototype index ``j``.
        case: the image case the label is about, or ``None`` for the prototype in general.
        verdict: one of :data:`VERDICTS`, or ``None`` for a reversal event.
        reason: one of :data:`REASONS`, or ``None``.
        comment: free text (may be empty).
        reviewer: who made the event.
        time: UTC time, ISO 8601 with microseconds (``2024-05-01T12:00:00.000000+00:00``).
        reverses: for a reversal event, the id of the label event it cancels; else ``None``.
        imported: whether the event was merged in from a file (not compared: it is where the
            event is kept, not what it says; so are the next two).
        imported_by: the signed-in user who imported it (``None``: made here, or no login).
        recorded: when this store wrote it (``None`` for events written before schema version 2).
    """

    id: int
    model_hash: str
    model_id: str
    prototype: int
    case: str | None
    verdict: str | None
    reason: str | None
    comment: str
    reviewer: str
    time: str
    reverses: int | None
    imported: bool = field(default=False, compare=False)
    imported_by: str | None = field(default=None, compare=False)
    recorded: str | None = field(default=None, compare=False)

    @property
    def is_reversal(self) -> bool:
        """Whether this event cancels an earlier label event."""
        return self.reverses is not None

    @property
    def provenance_only(self) -> bool:
        """Whether the event is kept as provenance only: imported by a signed-in user other than
        the reviewer it names, so it is never a current label nor reverses one."""
        return self.imported and self.imported_by is not None and self.imported_by != self.reviewer


@dataclass(frozen=True)
class LabelImport:
    """What :meth:`LabelStore.merge_events` added.

    Attributes:
        added: events added (events already present are skipped).
        provenance_only: how many of them are kept as provenance only (they name another reviewer
            than the signed-in importer: in the history, but no one's current label).
        importer: the signed-in user who imported, or ``None`` without a login.
    """

    added: int
    provenance_only: int = 0
    importer: str | None = None


def default_labels_path() -> Path:
    """``$EXPLORER_LABELS_DB``, else ``~/.local/share/prototype-explorer/labels.sqlite3``."""
    env = os.environ.get("EXPLORER_LABELS_DB")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "prototype-explorer" / "labels.sqlite3"


# --- schema -------------------------------------------------------------------------------------


def _migrate_to_v1(conn: sqlite3.Connection) -> None:
    """Version 1: the append-only ``events`` table, its indexes and the triggers that guard it."""
    verdicts = ", ".join(f"'{v}'" for v in VERDICTS)
    reasons = ", ".join(f"'{r}'" for r in REASONS)
    conn.execute(
        f"""
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model_hash TEXT NOT NULL CHECK (length(model_hash) > 0),
            model_id TEXT NOT NULL,
            prototype INTEGER NOT NULL CHECK (typeof(prototype) = 'integer' AND prototype >= 0),
            case_id TEXT CHECK (case_id IS NULL OR length(case_id) > 0),
            verdict TEXT CHECK (verdict IS NULL OR verdict IN ({verdicts})),
            reason TEXT CHECK (reason IS NULL OR reason IN ({reasons})),
            comment TEXT NOT NULL,
            reviewer TEXT NOT NULL CHECK (length(reviewer) BETWEEN 1 AND {MAX_REVIEWER_CHARS}),
            time TEXT NOT NULL,
            reverses INTEGER REFERENCES events (id),
            CHECK ((verdict IS NULL) = (reverses IS NOT NULL))
        )
        """
    )
    conn.execute("CREATE INDEX events_by_key ON events (model_hash, prototype, case_id, time, id)")
    conn.execute("CREATE UNIQUE INDEX events_reversed_once ON events (reverses)")
    conn.execute(
        """
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'the label history is append-only: events cannot be changed'); END
        """
    )
    conn.execute(
        """
        CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'the label history is append-only: events cannot be deleted'); END
        """
    )


def _migrate_to_v2(conn: sqlite3.Connection) -> None:
    """Version 2: where each event came from (see *Imported events and provenance* above).

    ``imported`` (1: merged in from a file), ``imported_by`` (the signed-in importer; NULL without a
    login) and ``recorded`` (when this store wrote the event; NULL for older events) are added;
    existing events read as written here. Adding columns changes no row, so the append-only
    triggers stay as they are. The at-most-once index of reversals now covers only reversals that
    count, so a provenance-only reversal never blocks a real undo.
    """
    conn.execute(
        "ALTER TABLE events ADD COLUMN imported INTEGER NOT NULL DEFAULT 0 "
        "CHECK (imported IN (0, 1))"
    )
    conn.execute(
        "ALTER TABLE events ADD COLUMN imported_by TEXT CHECK (imported_by IS NULL OR "
        f"(imported = 1 AND length(imported_by) BETWEEN 1 AND {MAX_REVIEWER_CHARS}))"
    )
    conn.execute(
        "ALTER TABLE events ADD COLUMN recorded TEXT CHECK (imported = 0 OR recorded IS NOT NULL)"
    )
    conn.execute("DROP INDEX events_reversed_once")
    conn.execute(
        "CREATE UNIQUE INDEX events_reversed_once ON events (reverses) "
        "WHERE imported = 0 OR imported_by IS NULL OR imported_by = reviewer"
    )
    conn.execute("CREATE INDEX events_by_reversed ON events (reverses)")


#: One function per schema version: ``MIGRATIONS[v - 1]`` turns version ``v - 1`` into ``v``.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_to_v1, _migrate_to_v2]
SCHEMA_VERSION = len(MIGRATIONS)


# --- validation ---------------------------------------------------------------------------------


_FIELD_NAMES = {
    "model_hash": "model hash",
    "model_id": "model id",
    "case": "image case",
    "imported_by": "importer",
}


def _checked(field: str, check: Callable[..., object], value: object, *args, **options):
    """``check(value, name, ...)`` (from :mod:`explorer.validation`), its error as a LabelError."""
    try:
        return check(value, _FIELD_NAMES.get(field, field), *args, **options)
    except InputError as error:
        raise LabelError(str(error), field) from None


def _text(value: object, field: str, *, max_chars: int) -> str:
    """Text of at most ``max_chars`` characters."""
    return _checked(field, bounded_text, value, max_chars)


def _one_line(value: object, field: str, *, max_chars: int) -> str:
    """Trimmed, non-empty text on one line, of at most ``max_chars`` characters once trimmed."""
    return _checked(
        field, bounded_text, value, max_chars, strip=True, allow_empty=False, one_line=True
    )


def _prototype(value: object) -> int:
    """A prototype index: an integer (numpy integers too; floats, text and booleans refused), ≥ 0."""
    return _checked(
        "prototype", whole_number, value, minimum=0, maximum=MAX_PROTOTYPE, floats=False
    )


def _validate(
    model_hash: object,
    model_id: object,
    prototype: object,
    verdict: object,
    reviewer: object,
    reason: object,
    comment: object,
    case: object,
) -> tuple[str, str, int, str | None, str, str | None, str, str | None]:
    """Checks and normalises a label's fields (``verdict=None`` is allowed here, for reversals).

    Raises:
        LabelError: with ``field`` set to the column at fault.
    """
    model_hash = _one_line(model_hash, "model_hash", max_chars=MAX_MODEL_HASH_CHARS)
    model_id = _text(model_id, "model_id", max_chars=MAX_MODEL_ID_CHARS).strip()
    prototype = _prototype(prototype)
    if verdict is not None and verdict not in VERDICTS:
        raise LabelError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}", "verdict")
    if reason is not None and reason not in REASONS:
        raise LabelError(
            f"reason {reason!r} is not one of {', '.join(REASONS)} (or none)", "reason"
        )
    reviewer = _one_line(reviewer, "reviewer", max_chars=MAX_REVIEWER_CHARS)
    comment = _text(comment, "comment", max_chars=MAX_COMMENT_CHARS)
    if case is not None:
        case = _one_line(case, "case", max_chars=MAX_CASE_CHARS)
    return model_hash, model_id, prototype, verdict, reviewer, reason, comment, case  # type: ignore[return-value]


_TIME_FORMAT_EXAMPLE = "2024-05-01T12:00:00.000000+00:00"


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def normalize_time(value: object) -> str:
    """An ISO 8601 time with a zone, as the store writes it (UTC, microseconds).

    Raises:
        LabelError: not text, not ISO 8601, or without a time zone.
    """
    if not isinstance(value, str):
        raise LabelError(f"time must be text like {_TIME_FORMAT_EXAMPLE}", "time")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise LabelError(
            f"time {value!r} is not ISO 8601 (like {_TIME_FORMAT_EXAMPLE})", "time"
        ) from None
    if moment.tzinfo is None:
        raise LabelError(f"time {value!r} has no time zone (like {_TIME_FORMAT_EXAMPLE})", "time")
    return _format_time(moment)


def _not_ahead(time: str, now: datetime) -> None:
    """Refuses an imported time more than :data:`MAX_CLOCK_SKEW` ahead of ``now``."""
    if datetime.fromisoformat(time) > now + MAX_CLOCK_SKEW:
        minutes = int(MAX_CLOCK_SKEW.total_seconds() // 60)
        raise LabelError(
            f"time {time} lies in the future: this machine's clock says "
            f"{now:%Y-%m-%d %H:%M} UTC, and imported labels may be dated at most {minutes} minutes "
            "ahead of it (for clock differences between machines)",
            "time",
        )


def check_events(events: Iterable[LabelEvent], now: datetime | None = None) -> list[LabelEvent]:
    """Validates and normalises events from elsewhere (an export) before they are merged.

    Every field is checked as :meth:`LabelStore.add` checks it; times must be ISO 8601 with a zone
    (they are rewritten in UTC with microseconds) and at most :data:`MAX_CLOCK_SKEW` after ``now``
    (default: this machine's clock); ids must be unique; a reversal must name an
    earlier label event of the same model, prototype and case, and a label event no reversal.

    Returns:
        The events with normalised fields, in the same order.

    Raises:
        LabelError: with ``index`` (position in ``events``) and ``field`` set.
    """
    now = now or datetime.now(UTC)
    checked: list[LabelEvent] = []
    kinds: dict[int, tuple] = {}
    for index, event in enumerate(events):
        try:
            fields = _validate(
                event.model_hash, event.model_id, event.prototype, event.verdict,
                event.reviewer, event.reason, event.comment, event.case,
            )  # fmt: skip
            time = normalize_time(event.time)
            _not_ahead(time, now)
            model_hash, model_id, prototype, verdict, reviewer, reason, comment, case = fields
            if isinstance(event.id, bool) or not isinstance(event.id, int):
                raise LabelError(f"id must be an integer, not {event.id!r}", "id")
            if event.id in kinds:
                raise LabelError(f"id {event.id} appears twice", "id")
            if (verdict is None) == (event.reverses is None):
                field = "verdict" if verdict is None else "reverses"
                raise LabelError(
                    "an event has either a verdict (a label) or the id of the event it reverses "
                    "(a reversal), not both or neither",
                    field,
                )
            key = (model_hash, prototype, case)
            if event.reverses is not None:
                target = kinds.get(event.reverses)
                if target is None:
                    raise LabelError(
                        f"reverses event {event.reverses}, which is not an earlier event",
                        "reverses",
                    )
                if target != (*key, "label"):
                    raise LabelError(
                        f"reverses event {event.reverses}, which is not a label of the same model, "
                        "prototype and case",
                        "reverses",
                    )
        except LabelError as error:
            error.index = index
            raise
        kinds[event.id] = (*key, "label" if verdict is not None else "reversal")
        normalised = (model_hash, model_id, prototype, case, verdict, reason, comment, reviewer)
        checked.append(LabelEvent(event.id, *normalised, time, event.reverses))
    return checked


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """Whether an error only says that another connection holds a lock (worth retrying)."""
    text = str(error).lower()
    return "locked" in text or "busy" in text


def _row_to_event(row: tuple) -> LabelEvent:
    """An event from a row of :data:`_COLUMNS` (or from ``id`` and the values inserted)."""
    *fields, imported, imported_by, recorded = row
    return LabelEvent(*fields, imported=bool(imported), imported_by=imported_by, recorded=recorded)


# --- the store ----------------------------------------------------------------------------------


class LabelStore:
    """The label database: append-only history, current labels, undo.

    Safe to share between threads (every call uses its own connection) and to open from several
    processes at once (SQLite's locking, WAL mode, a busy timeout).

    Args:
        path: the database file; default :func:`default_labels_path`. Parent folders are created.
        timeout: seconds a writer waits for another's transaction before giving up.

    Raises:
        LabelError: the file is not a labels database, or was written by a newer version.
    """

    def __init__(
        self, path: str | Path | None = None, timeout: float = DEFAULT_BUSY_TIMEOUT_S
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_labels_path()
        self.timeout = timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LabelError(
                f"cannot create the folder of the labels database {self.path}: {error}"
            ) from None
        with self._connect() as conn:
            self._use_wal(conn)
            self._migrate(conn)

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switches the file to WAL mode (a persistent setting), waiting out concurrent openers.

        Changing the journal mode needs an exclusive lock and SQLite does not wait for it through
        the busy timeout, so several processes creating the same file at once retry here.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() > deadline:
                    raise self._error("cannot open", error) from None
                time.sleep(random.uniform(0.002, 0.02))
            except sqlite3.DatabaseError as error:
                raise self._error("cannot open", error) from None
        if str(mode).lower() != "wal":
            log.warning("labels database %s runs in %s mode, not WAL", self.path, mode)

    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    # -- connections and transactions --

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection (autocommit mode: transactions are explicit), closed afterwards."""
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=True
            )
        except sqlite3.Error as error:
            raise self._error("cannot open", error) from None
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.IntegrityError):
                raise
            raise self._error("cannot use", error) from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, ``BEGIN IMMEDIATE``: it takes the write lock before reading.

        Commits when the block ends normally; rolls back on any exception.
        """
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _error(self, action: str, error: sqlite3.Error) -> LabelError:
        return LabelError(f"{action} the labels database {self.path}: {error}")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise LabelError(
                    f"the labels database {self.path} has schema version {version}, newer than "
                    f"this explorer understands ({len(MIGRATIONS)}); update the explorer"
                )
            for target in range(version + 1, len(MIGRATIONS) + 1):
                log.info("migrating labels database %s to schema version %d", self.path, target)
                MIGRATIONS[target - 1](conn)
                conn.execute(f"PRAGMA user_version={target}")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def schema_version(self) -> int:
        """The database's schema version (``PRAGMA user_version``)."""
        with self._connect() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    # -- writing --

    @staticmethod
    def _latest_time(
        conn: sqlite3.Connection, model_hash: str, prototype: int, case: str | None
    ) -> str | None:
        """The latest ranking time among the key's events that count (see the module's clock)."""
        row = conn.execute(
            f"SELECT max({_ranked_time('e')}) FROM events AS e WHERE model_hash = ? "
            f"AND prototype = ? AND case_id IS ? AND {_counts('e')}",
            (model_hash, prototype, case),
        ).fetchone()
        return row[0]

    def _now(
        self, conn: sqlite3.Connection, model_hash: str, prototype: int, case: str | None
    ) -> str:
        """Now, but strictly after every event of the key that counts, as it ranks (a clock stepping
        back never hides a label; imported events rank at most when they were imported, so they
        never move this clock)."""
        now = datetime.now(UTC)
        latest = self._latest_time(conn, model_hash, prototype, case)
        if latest is not None:
            after = datetime.fromisoformat(latest) + timedelta(microseconds=1)
            now = max(now, after)
        return _format_time(now)

    @staticmethod
    def _insert(conn: sqlite3.Connection, values: tuple) -> LabelEvent:
        """Appends one row: ``values`` are the columns of :data:`_COLUMNS` after ``id``."""
        cursor = conn.execute(
            "INSERT INTO events (model_hash, model_id, prototype, case_id, verdict, reason, comment,"
            " reviewer, time, reverses, imported, imported_by, recorded)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        return _row_to_event((cursor.lastrowid, *values))

    def add(
        self,
        model_hash: str,
        model_id: str,
        prototype: int,
        verdict: str,
        reviewer: str,
        reason: str | None = None,
        comment: str = "",
        case: str | None = None,
    ) -> LabelEvent:
        """Appends a label; it becomes the current label of (model, prototype, case).

        Args:
            model_hash: the model's content hash.
            model_id: the model's name (for display).
            prototype: prototype index, 0 or more.
            verdict: one of :data:`VERDICTS`.
            reviewer: who labels (trimmed; 1–100 characters on one line).
            reason: one of :data:`REASONS`, or ``None``.
            comment: free text.
            case: an image case id, or ``None`` for the prototype in general.

        Returns:
            The appended event (time stamped now, in UTC).

        Raises:
            LabelError: a field is invalid (the message names it).
        """
        if verdict is None:
            raise LabelError(f"verdict must be one of {', '.join(VERDICTS)}", "verdict")
        fields = _validate(
            model_hash, model_id, prototype, verdict, reviewer, reason, comment, case
        )
        model_hash, model_id, prototype, verdict, reviewer, reason, comment, case = fields
        with self._transaction() as conn:
            time = self._now(conn, model_hash, prototype, case)
            event = self._insert(
                conn,
                (
                    model_hash,
                    model_id,
                    prototype,
                    case,
                    verdict,
                    reason,
                    comment,
                    reviewer,
                    time,
                    None,
                    0,
                    None,
                    _format_time(datetime.now(UTC)),
                ),
            )
        log.debug("label %d: %s p%d %s by %s", event.id, model_hash, prototype, verdict, reviewer)
        return event

    @staticmethod
    def _current_of_key(
        conn: sqlite3.Connection, model_hash: str, prototype: int, case: str | None
    ) -> LabelEvent | None:
        row = conn.execute(
            f"""
            SELECT {_COLUMNS} FROM events AS e
            WHERE model_hash = ? AND prototype = ? AND case_id IS ? AND verdict IS NOT NULL
              AND {_counts("e")}
              AND NOT EXISTS (SELECT 1 FROM events AS r WHERE r.reverses = e.id AND {_counts("r")})
            ORDER BY {_ranked_time("e")} DESC, id DESC LIMIT 1
            """,
            (model_hash, prototype, case),
        ).fetchone()
        return _row_to_event(row) if row else None

    def undo(
        self, model_hash: str, prototype: int, reviewer: str, case: str | None = None
    ) -> LabelEvent | None:
        """Reverses the current label of (model, prototype, case) by appending a reversal event.

        The label current before it becomes current again; repeated undos walk further back. A
        reversal is never reversed itself (to bring a label back, add it again).

        Args:
            model_hash: the model's content hash.
            prototype: prototype index.
            reviewer: who undoes (recorded on the reversal event).
            case: an image case id, or ``None`` for the prototype's general label.

        Returns:
            The reversal event, or ``None`` when there was no label left to undo.

        Raises:
            LabelError: a field is invalid.
        """
        fields = _validate(model_hash, "", prototype, None, reviewer, None, "", case)
        model_hash, _, prototype, _, reviewer, _, _, case = fields
        with self._transaction() as conn:
            target = self._current_of_key(conn, model_hash, prototype, case)
            if target is None:
                return None
            time = self._now(conn, model_hash, prototype, case)
            event = self._insert(
                conn,
                (
                    model_hash,
                    target.model_id,
                    prototype,
                    case,
                    None,
                    None,
                    "",
                    reviewer,
                    time,
                    target.id,
                    0,
                    None,
                    _format_time(datetime.now(UTC)),
                ),
            )
        log.debug("undo %d reverses label %d (%s p%d)", event.id, target.id, model_hash, prototype)
        return event

    def merge_events(
        self, events: Iterable[LabelEvent], imported_by: str | None = None
    ) -> LabelImport:
        """Appends events from elsewhere (an export), keeping their times; skips those already here.

        ``events`` are in their source's order; their ``id`` is the source's id and ``reverses``
        names a source id of an earlier event in ``events``. An event is already present when an
        event with the same model hash, prototype, case, verdict, reason, comment, reviewer, time
        (and, for a reversal, the same reversed event) exists -- and, for an event that will count,
        when that event counts too (so importing your own labels confirms copies someone else
        imported as provenance); each stored event matches at most one incoming event, so merging
        the same events twice adds nothing and merging into an empty store reproduces the history
        exactly (with new ids). A reversal that counts whose target is already reversed here is
        skipped (its effect is already present). All events are added in one transaction: on any
        error nothing is added.

        Args:
            events: the events to merge.
            imported_by: the signed-in user who imports (``None`` without a login). Events naming
                another reviewer are then kept as provenance only (see the module's docstring).

        Returns:
            How many events were added, and how many of them are provenance only.

        Raises:
            LabelError: an event is invalid, dated more than :data:`MAX_CLOCK_SKEW` ahead, or names
                a reversal target it does not contain.
        """
        if imported_by is not None:
            imported_by = _one_line(imported_by, "imported_by", max_chars=MAX_REVIEWER_CHARS)
        try:
            checked = check_events(events)
        except LabelError as error:
            raise LabelError(
                f"event {error.index + 1}: {error}", error.field, error.index
            ) from None
        added = provenance = 0
        with self._transaction() as conn:
            recorded = _format_time(datetime.now(UTC))
            mapped: dict[int, int] = {}  # source id -> id here
            claimed: set[int] = set()
            for event in checked:
                counts = imported_by is None or event.reviewer == imported_by
                values = (
                    event.model_hash, event.model_id, event.prototype, event.case, event.verdict,
                    event.reason, event.comment, event.reviewer, event.time,
                )  # fmt: skip
                reverses = mapped[event.reverses] if event.reverses is not None else None
                match = self._find_same(conn, values, reverses, claimed, counts)
                if match is None and reverses is not None and counts:
                    other = conn.execute(
                        f"SELECT id FROM events AS r WHERE reverses = ? AND {_counts('r')}",
                        (reverses,),
                    ).fetchone()
                    if other is not None:
                        log.warning(
                            "skipping imported reversal %d: event %d is already reversed by %d",
                            event.id, reverses, other[0],
                        )  # fmt: skip
                        match = other[0]
                if match is None:
                    match = self._insert(conn, (*values, reverses, 1, imported_by, recorded)).id
                    added += 1
                    provenance += not counts
                claimed.add(match)
                mapped[event.id] = match
        log.info(
            "merged %d events into %s (%d added, %d of them provenance only; importer %s)",
            len(checked), self.path, added, provenance, imported_by or "none",
        )  # fmt: skip
        return LabelImport(added, provenance, imported_by)

    @staticmethod
    def _find_same(
        conn: sqlite3.Connection,
        values: tuple,
        reverses: int | None,
        claimed: set[int],
        counts: bool,
    ) -> int | None:
        """A stored event with the same content not yet matched (one that counts, for ``counts``)."""
        model_hash, _model_id, prototype, case, verdict, reason, comment, reviewer, time = values
        rows = conn.execute(
            f"""
            SELECT id FROM events AS e
            WHERE model_hash = ? AND prototype = ? AND case_id IS ? AND verdict IS ? AND reason IS ?
              AND comment = ? AND reviewer = ? AND time = ? AND reverses IS ?
              {f"AND {_counts('e')}" if counts else ""}
            ORDER BY id
            """,
            (model_hash, prototype, case, verdict, reason, comment, reviewer, time, reverses),
        ).fetchall()
        return next((row[0] for row in rows if row[0] not in claimed), None)

    # -- reading --

    def current(
        self,
        model_hash: str | None = None,
        verdict: str | None = None,
        reviewer: str | None = None,
    ) -> list[LabelEvent]:
        """The current labels (after reversals), sorted by model, prototype and case; events kept
        as provenance only are never among them.

        Args:
            model_hash: only this model's labels.
            verdict: only current labels with this verdict.
            reviewer: only current labels written by this reviewer.
        """
        if verdict is not None and verdict not in VERDICTS:
            raise LabelError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
        filters, params = [], []
        if model_hash is not None:
            filters.append("model_hash = ?")
            params.append(model_hash)
        outer, outer_params = ["rank = 1"], []
        if verdict is not None:
            outer.append("verdict = ?")
            outer_params.append(verdict)
        if reviewer is not None:
            outer.append("reviewer = ?")
            outer_params.append(
                _checked("reviewer", bounded_text, reviewer, MAX_REVIEWER_CHARS, strip=True)
            )
        where = " AND ".join(["verdict IS NOT NULL", _counts("e"), *filters])
        query = f"""
            WITH effective AS (
                SELECT {_COLUMNS}, {_ranked_time("e")} AS ranked_time FROM events AS e
                WHERE {where} AND NOT EXISTS (
                    SELECT 1 FROM events AS r WHERE r.reverses = e.id AND {_counts("r")}
                )
            ), ranked AS (
                SELECT *, row_number() OVER (
                    PARTITION BY model_hash, prototype, case_id ORDER BY ranked_time DESC, id DESC
                ) AS rank FROM effective
            )
            SELECT {_COLUMNS} FROM ranked WHERE {" AND ".join(outer)}
            ORDER BY model_hash, prototype, case_id IS NOT NULL, case_id
        """
        with self._connect() as conn:
            rows = conn.execute(query, [*params, *outer_params]).fetchall()
        return [_row_to_event(row) for row in rows]

    def history(
        self, model_hash: str | None = None, prototype: int | None = None
    ) -> list[LabelEvent]:
        """Every event (labels and reversals, provenance-only ones too), oldest first (ids
        ascending).

        Raises:
            LabelError: ``prototype`` is not an integer ≥ 0 (2.5 is refused, not read as 2).
        """
        filters, params = [], []
        if model_hash is not None:
            filters.append("model_hash = ?")
            params.append(model_hash)
        if prototype is not None:
            filters.append("prototype = ?")
            params.append(_prototype(prototype))
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events {where} ORDER BY id", params
            ).fetchall()
        return [_row_to_event(row) for row in rows]

    def disabled(self, model_hash: str) -> set[int]:
        """Prototypes whose current general label (no image case) is *misleading*."""
        return {
            e.prototype
            for e in self.current(model_hash=model_hash, verdict="misleading")
            if e.case is None
        }

    def progress(self, model_hash: str, num_prototypes: int) -> tuple[int, int]:
        """``(reviewed, total)``: prototypes ``0..num_prototypes-1`` with a current general label.

        A prototype counts as reviewed once it has a current label without an image case, whatever
        its verdict (*unsure* included); labels of single image cases do not count.
        """
        return len(self.reviewed(model_hash, num_prototypes)), num_prototypes

    def reviewed(self, model_hash: str, num_prototypes: int) -> set[int]:
        """The prototypes ``0..num_prototypes-1`` with a current general label (see
        :meth:`progress`)."""
        return {
            e.prototype
            for e in self.current(model_hash=model_hash)
            if e.case is None and e.prototype < num_prototypes
        }

    def integrity_ok(self) -> bool:
        """Whether SQLite's ``PRAGMA integrity_check`` reports ``ok``."""
        with self._connect() as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        ok = [tuple(r) for r in rows] == [("ok",)]
        if not ok:
            log.error("labels database %s fails its integrity check: %s", self.path, rows[:5])
        return ok
