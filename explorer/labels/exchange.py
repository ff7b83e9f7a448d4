"""Moving labels in and out of a :class:`~explorer.labels.store.LabelStore`.

* CSV and JSON exports of the current labels or of the whole history; importing either merges it
  into a store without duplicates (see :meth:`LabelStore.merge_events`), keeping the original
  reviewers and times, in one transaction (a malformed file adds nothing; the error names the line
  or event and the field). An import by a signed-in user (``imported_by``) keeps the events naming
  other reviewers as provenance only: in the history, never anyone's current label (see
  :mod:`explorer.labels.store`). A JSON file nesting deeper than :data:`MAX_JSON_DEPTH` levels is
  refused before it is parsed, and so is any event dated more than
  :data:`~explorer.labels.store.MAX_CLOCK_SKEW` ahead of this machine's clock.
* A ProtoPDebug export (Bontempelli et al., ICLR 2023; docs/method.md §6): the cut-outs of
  prototypes labelled *misleading* (``forbidden_prototypes/``) and *valid*
  (``remembering_prototypes/``), pasted on white square canvases, for ProtoPDebug-style retraining.

Both file formats hold the same columns: ``id, model_hash, model_id, prototype, case, verdict,
reason, comment, reviewer, time, reverses``. In CSV an empty cell means "none" for ``case``,
``verdict`` (a reversal), ``reason`` and ``reverses``; comments may hold commas, quotes, newlines
and any Unicode (UTF-8, quoted as RFC 4180 says).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from explorer.files import atomic_write
from explorer.labels.store import LabelError, LabelEvent, LabelImport, LabelStore, check_events

if TYPE_CHECKING:
    from explorer.analysis.nearest import NearestPatches
    from explorer.models.checkpoint import ModelBundle

log = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "FORBIDDEN_DIR",
    "FORMAT_TAG",
    "FORMAT_VERSION",
    "REMEMBERING_DIR",
    "export_current_csv",
    "export_history_csv",
    "export_json",
    "export_protopdebug",
    "import_csv",
    "import_file",
    "import_json",
]

FORMAT_TAG = "prototype-explorer-labels"
FORMAT_VERSION = 1
COLUMNS = (
    "id", "model_hash", "model_id", "prototype", "case", "verdict", "reason", "comment",
    "reviewer", "time", "reverses",
)  # fmt: skip
_REQUIRED_CSV = ("model_hash", "prototype", "verdict", "reviewer", "time")
FORBIDDEN_DIR = "forbidden_prototypes"
REMEMBERING_DIR = "remembering_prototypes"
MAX_IMPORT_BYTES = 256 * 1024**2
#: The deepest nesting of ``[ ]`` and ``{ }`` a JSON labels file may have (an export has 3).
MAX_JSON_DEPTH = 32

_INTEGER = re.compile(r"-?[0-9]+")
# A JSON string (possessive, and allowed to run to the end of the text, so scanning stays linear on
# any input) or a bracket: brackets inside strings are skipped with their string.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\[\s\S]?)*+(?:"|\Z)|[\[\]{}]')


# --- writing files ------------------------------------------------------------------------------


def _write_atomically(path: Path, write: Callable[[io.TextIOBase], None]) -> None:
    """Writes UTF-8 text to a temporary file beside ``path``, then renames it into place."""
    with atomic_write(path) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        write(text)
        text.flush()
        text.detach()  # leave the binary stream open for atomic_write to sync and close


def _event_row(event: LabelEvent) -> dict[str, Any]:
    row = asdict(event)
    return {column: row[column] for column in COLUMNS}


def _write_csv(path: Path, events: Sequence[LabelEvent]) -> int:
    def write(stream: io.TextIOBase) -> None:
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for event in events:
            writer.writerow("" if v is None else v for v in _event_row(event).values())

    _write_atomically(path, write)
    log.info("wrote %d label events to %s", len(events), path)
    return len(events)


def export_current_csv(store: LabelStore, path: str | Path, model_hash: str | None = None) -> int:
    """Writes the current labels (after reversals) as CSV with a header.

    Args:
        store: the label store.
        path: the CSV file (replaced atomically).
        model_hash: only this model's labels.

    Returns:
        The number of rows written.
    """
    return _write_csv(Path(path), store.current(model_hash=model_hash))


def export_history_csv(store: LabelStore, path: str | Path, model_hash: str | None = None) -> int:
    """Writes every event (labels and reversals, oldest first) as CSV with a header.

    Returns:
        The number of rows written.
    """
    return _write_csv(Path(path), store.history(model_hash=model_hash))


def export_json(
    store: LabelStore, path: str | Path, model_hash: str | None = None, history: bool = True
) -> int:
    """Writes labels as JSON: ``{"format", "version", "kind", "model_hash", "exported", "events"}``.

    Args:
        store: the label store.
        path: the JSON file (replaced atomically).
        model_hash: only this model's labels.
        history: every event (``kind: "history"``), or only the current labels (``"current"``).

    Returns:
        The number of events written.
    """
    events = (
        store.history(model_hash=model_hash) if history else store.current(model_hash=model_hash)
    )
    document = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "kind": "history" if history else "current",
        "model_hash": model_hash,
        "exported": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": [_event_row(event) for event in events],
    }

    def write(stream: io.TextIOBase) -> None:
        json.dump(document, stream, ensure_ascii=False, indent=1)
        stream.write("\n")

    _write_atomically(Path(path), write)
    log.info("wrote %d label events to %s", len(events), path)
    return len(events)


# --- reading files ------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise LabelError(f"{path.name} is larger than {MAX_IMPORT_BYTES // 1024**2} MiB")
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LabelError(f"labels file {path} does not exist") from None
    except UnicodeDecodeError as error:
        raise LabelError(f"{path.name} is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise LabelError(f"cannot read labels file {path}: {error}") from None


#: What a reader returns: the events, where event ``i`` is in the file (for messages), its name.
_Read = tuple[list[LabelEvent], Callable[[int], str], str]


def _merge(store: LabelStore, read: _Read, imported_by: str | None) -> LabelImport:
    """Checks every event first (errors name the place), then merges them in one transaction."""
    events, where, name = read
    try:
        checked = check_events(events)
    except LabelError as error:
        index = error.index if error.index is not None else 0
        field = f", field '{error.field}'" if error.field else ""
        raise LabelError(f"{name} {where(index)}{field}: {error}", error.field, index) from None
    result = store.merge_events(checked, imported_by)
    log.info(
        "imported %s: %d events, %d new (%d provenance only)",
        name, len(checked), result.added, result.provenance_only,
    )  # fmt: skip
    return result


def _csv_int(text: str, column: str, place: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise LabelError(f"{place}, field '{column}': {text!r} is not an integer", column)
    return int(text)


def _csv_event(row: list[str], position: dict[str, int], number: int, place: str) -> LabelEvent:
    """One CSV row as an event (types converted; fields are checked later, by ``check_events``)."""

    def cell(column: str) -> str:
        return row[position[column]] if column in position else ""

    def optional(column: str) -> str | None:
        return cell(column) or None

    identity = cell("id").strip()
    reverses = optional("reverses")
    return LabelEvent(
        id=_csv_int(identity, "id", place) if identity else number,
        model_hash=cell("model_hash"),
        model_id=cell("model_id"),
        prototype=_csv_int(cell("prototype"), "prototype", place),
        case=optional("case"),
        verdict=optional("verdict"),
        reason=optional("reason"),
        comment=cell("comment"),
        reviewer=cell("reviewer"),
        time=cell("time"),
        reverses=_csv_int(reverses, "reverses", place) if reverses is not None else None,
    )


def import_csv(store: LabelStore, path: str | Path, imported_by: str | None = None) -> int:
    """Merges a CSV export (current labels or history) into ``store``.

    The header must name at least ``model_hash, prototype, verdict, reviewer, time``; ``id``,
    ``model_id``, ``case``, ``reason``, ``comment`` and ``reverses`` are optional (without ``id``,
    rows are numbered 1, 2, ...); other columns are ignored. Events already in the store are
    skipped, so importing a file twice adds nothing.

    Args:
        store: the label store.
        path: the CSV file.
        imported_by: the signed-in user who imports (see :meth:`LabelStore.merge_events`).

    Returns:
        The number of events added.

    Raises:
        LabelError: the file is unreadable or malformed (the message names the line and field);
            then nothing is added.
    """
    return _merge(store, _read_csv(Path(path)), imported_by).added


def _read_csv(path: Path) -> _Read:
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise LabelError(f"{path.name} line 1: {error}") from None
    if not header:
        raise LabelError(
            f"{path.name} is empty; expected a header line naming {', '.join(COLUMNS)}"
        )
    header = [name.strip() for name in header]
    missing = [name for name in _REQUIRED_CSV if name not in header]
    if missing:
        raise LabelError(f"{path.name} line 1: the header lacks the column(s) {', '.join(missing)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise LabelError(f"{path.name} line 1: the header repeats {', '.join(duplicated)}")
    position = {name: header.index(name) for name in COLUMNS if name in header}
    events: list[LabelEvent] = []
    lines: list[int] = []
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise LabelError(f"{path.name} line {line}: {error}") from None
        start, line = line, reader.line_num + 1
        if not row or row == [""]:
            continue  # a blank line
        place = f"{path.name} line {start}"
        if len(row) != len(header):
            raise LabelError(f"{place}: {len(row)} fields, but the header names {len(header)}")
        events.append(_csv_event(row, position, len(events) + 1, place))
        lines.append(start)
    return events, lambda index: f"line {lines[index]}", path.name


def import_json(store: LabelStore, path: str | Path, imported_by: str | None = None) -> int:
    """Merges a JSON export (current labels or history) into ``store``.

    Events already in the store are skipped, so importing a file twice adds nothing.

    Args:
        store: the label store.
        path: the JSON file.
        imported_by: the signed-in user who imports (see :meth:`LabelStore.merge_events`).

    Returns:
        The number of events added.

    Raises:
        LabelError: the file is unreadable, nests deeper than :data:`MAX_JSON_DEPTH`, is of another
            format or version, or malformed (the message names the line, or the event and field);
            then nothing is added.
    """
    return _merge(store, _read_json(Path(path)), imported_by).added


def import_file(store: LabelStore, path: str | Path, imported_by: str | None = None) -> LabelImport:
    """Merges a JSON or CSV export into ``store``, by the file's suffix (``.json``, else CSV).

    Returns:
        How many events were added, and how many of them are provenance only.

    Raises:
        LabelError: as :func:`import_json` and :func:`import_csv`; then nothing is added.
    """
    path = Path(path)
    read = _read_json if path.suffix.lower() == ".json" else _read_csv
    return _merge(store, read(path), imported_by)


def _check_depth(text: str, name: str) -> None:
    """Refuses JSON nesting deeper than :data:`MAX_JSON_DEPTH` before it reaches the parser (whose
    recursion would otherwise fail with a RecursionError); brackets inside strings do not count."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return  # too few brackets to nest that deep
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                line = text.count("\n", 0, token.start()) + 1
                raise LabelError(
                    f"{name} nests too deeply: more than {MAX_JSON_DEPTH} levels of [ ] and {{ }} "
                    f"(line {line}; a labels export has 3)"
                )
        elif bracket in "]}":
            depth -= 1


def _read_json(path: Path) -> _Read:
    text = _read_text(path)
    _check_depth(text, path.name)
    try:
        document = json.loads(text)
    except RecursionError:  # not reached after _check_depth; kept so that no traceback escapes
        raise LabelError(f"{path.name} nests too deeply to be read") from None
    except json.JSONDecodeError as error:
        raise LabelError(
            f"{path.name} line {error.lineno}, column {error.colno}: not valid JSON ({error.msg})"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_TAG:
        raise LabelError(f"{path.name} is not a labels export (its 'format' is not {FORMAT_TAG!r})")
    version = document.get("version")
    if version != FORMAT_VERSION:
        raise LabelError(
            f"{path.name} has format version {version!r}; this explorer reads version "
            f"{FORMAT_VERSION}"
        )
    rows = document.get("events")
    if not isinstance(rows, list):
        raise LabelError(f"{path.name}: 'events' must be a list")
    events: list[LabelEvent] = []
    for number, row in enumerate(rows, start=1):
        place = f"{path.name} event {number}"
        if not isinstance(row, dict):
            raise LabelError(f"{place}: an event must be an object")
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise LabelError(f"{place}: missing field(s) {', '.join(missing)}", missing[0])
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise LabelError(
                f"{place}, field '{unknown[0]}': not a field of a label event", unknown[0]
            )
        for column in ("id", "reverses"):
            value = row[column]
            if (value is None and column == "id") or (
                value is not None and (isinstance(value, bool) or not isinstance(value, int))
            ):
                raise LabelError(f"{place}, field '{column}': {value!r} is not an integer", column)
        events.append(LabelEvent(**{name: row[name] for name in COLUMNS}))
    return events, lambda index: f"event {index + 1}", path.name


# --- ProtoPDebug --------------------------------------------------------------------------------


def _save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image)).save(path, format="PNG")


def export_protopdebug(
    store: LabelStore,
    bundle: ModelBundle,
    out_dir: str | Path,
    nearest_train: NearestPatches | None = None,
) -> dict[str, int]:
    """Writes ProtoPDebug's concept folders from the model's current general labels.

    A prototype whose current label without an image case is *misleading* goes to
    ``forbidden_prototypes/class_idx_<c>/``, one labelled *valid* to
    ``remembering_prototypes/class_idx_<c>/`` (``c``: the prototype's class); other verdicts are
    skipped. Its cut-outs (:func:`explorer.analysis.cut_outs.prototype_cut_outs`: the 95th-percentile
    box on its source image, plus, when ``nearest_train`` is given, on its nearest training patches)
    are each pasted at their own size, centred, on a white canvas of the model's input size, as
    ProtoPDebug's ``prepare_cut_out_image`` does, and saved as
    ``c=<class>_p=<prototype>_i=<training image index>.png``. Files of the same name are replaced;
    nothing else in ``out_dir`` is touched.

    Args:
        store: the label store.
        bundle: the model (needs ``content_hash``, ``spec``, ``projection`` and ``source_image``).
        out_dir: the destination folder.
        nearest_train: nearest patches of the *training* split, for more cut-outs per prototype.

    Returns:
        ``forbidden_prototypes``, ``remembering_prototypes`` (prototypes written) and
        ``forbidden_files``, ``remembering_files`` (PNG files written).

    Raises:
        LabelError: a labelled prototype has nothing to cut out, or ``nearest_train`` does not fit.
    """
    from explorer.analysis.cut_outs import CutOutError, check_nearest_train, prototype_cut_outs

    out_dir = Path(out_dir)
    count = bundle.spec.num_prototypes
    labels = [e for e in store.current(model_hash=bundle.content_hash) if e.case is None]
    chosen = [e for e in labels if e.verdict in ("misleading", "valid")]
    counts = {
        "forbidden_prototypes": 0,
        "remembering_prototypes": 0,
        "forbidden_files": 0,
        "remembering_files": 0,
    }
    try:
        check_nearest_train(bundle, nearest_train)
        for label in chosen:
            j = label.prototype
            if j >= count:
                log.warning("skipping label of prototype %d: the model has %d", j, count)
                continue
            kind = "forbidden" if label.verdict == "misleading" else "remembering"
            cut_outs = prototype_cut_outs(bundle, j, nearest_train)
            for cut in cut_outs:
                folder = out_dir / (FORBIDDEN_DIR if kind == "forbidden" else REMEMBERING_DIR)
                name = f"c={cut.class_index}_p={j}_i={cut.image_index}.png"
                _save_png(folder / f"class_idx_{cut.class_index}" / name,
                          cut.on_canvas(bundle.spec.input_size))  # fmt: skip
            counts[f"{kind}_prototypes"] += 1
            counts[f"{kind}_files"] += len(cut_outs)
    except CutOutError as error:
        raise LabelError(f"model {bundle.content_hash}: {error}") from None
    log.info("ProtoPDebug export of model %s to %s: %s", bundle.content_hash, out_dir, counts)
    return counts
