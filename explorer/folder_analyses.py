"""The analyses a model folder ships, so that a shipped model shows everything without a first pass.

Layout of ``<model folder>/analyses/`` (written by ``python -m explorer analyse --into-folder``)::

    manifest.json     {"format": 1, "content_hash": "<16 hex>", "results": {
                         "<name>": {"file": "<name>.npz", "sha256": "...", "bytes": n,
                                    "created": "<UTC ISO date>", "title": "..."}, ...}}
    <name>.npz        plain arrays, stamped with the format and the content hash (as the user's cache)

Each result is trusted only when the manifest is made for the model's content hash (else the whole
folder is *stale*: it is ignored and results are computed into the user's cache when asked), the
file's SHA-256 is the manifest's, and the file's own stamp matches. A result that fails a check is
ignored with a warning, never half-used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from explorer.cache import load_stamped, save_stamped
from explorer.files import write_atomically

log = logging.getLogger(__name__)

ANALYSES_DIR = "analyses"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
SIZE_SHARE_LIMIT = 0.25  # shipped analyses stay at most this share of their model folder


@dataclass(frozen=True)
class ShippedResult:
    """One entry of a folder's manifest."""

    name: str
    file: str
    sha256: str
    bytes: int
    created: str
    title: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def now_utc() -> str:
    """The current UTC time as the manifests write it (ISO 8601, seconds)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class FolderAnalyses:
    """The ``analyses/`` part of one model folder, for the model with ``content_hash``."""

    def __init__(self, model_folder: Path, content_hash: str) -> None:
        self.folder = Path(model_folder) / ANALYSES_DIR
        self.content_hash = content_hash
        self.manifest_hash: str | None = None
        self.problem: str | None = None  # why the folder's analyses are not used, if they are not
        self.results: dict[str, ShippedResult] = {}
        self.rejected: set[str] = set()  # results that failed their check (not offered again)
        self.note = ""  # how the results were packed (what is exact), from the manifest
        self._read_manifest()

    def _read_manifest(self) -> None:
        path = self.folder / MANIFEST_FILE
        if not path.is_file():
            return
        try:
            document = json.loads(path.read_text())
            if document.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format {document.get('format')!r}, not {MANIFEST_FORMAT}")
            self.manifest_hash = str(document["content_hash"])
            self.note = str(document.get("packing", ""))
            results = {
                name: ShippedResult(
                    name=name,
                    file=str(entry["file"]),
                    sha256=str(entry["sha256"]),
                    bytes=int(entry["bytes"]),
                    created=str(entry["created"]),
                    title=str(entry.get("title", name)),
                )
                for name, entry in document["results"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            self.problem = f"{path} is unreadable ({error})"
            log.warning("ignoring the shipped analyses: %s", self.problem)
            return
        if self.manifest_hash != self.content_hash:
            self.problem = (
                f"made for the model {self.manifest_hash}, not {self.content_hash} (stale: the "
                "weights changed since); results are computed when asked"
            )
            log.warning("ignoring the shipped analyses in %s: %s", self.folder, self.problem)
            return
        for result in results.values():
            if Path(result.file).name != result.file or not result.file.endswith(".npz"):
                self.problem = f"{path} names a file outside the folder ({result.file!r})"
                log.warning("ignoring the shipped analyses: %s", self.problem)
                return
        self.results = results

    @property
    def stale(self) -> bool:
        return self.manifest_hash is not None and self.manifest_hash != self.content_hash

    def has(self, name: str) -> bool:
        """Whether the folder ships ``name`` for this model (its bytes are checked by :meth:`load`)."""
        return (
            name in self.results
            and name not in self.rejected
            and (self.folder / self.results[name].file).is_file()
        )

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.npz"

    def load(self, name: str) -> dict[str, np.ndarray] | None:
        """The shipped arrays of ``name``, or ``None`` when not shipped or not to be trusted."""
        if not self.has(name):
            return None
        entry = self.results[name]
        path = self.folder / entry.file
        try:
            actual = _sha256(path)
        except OSError as error:
            log.warning("ignoring shipped analysis %s (%s)", path, error)
            self.rejected.add(name)
            return None
        if actual != entry.sha256:
            log.warning(
                "ignoring shipped analysis %s: its SHA-256 is not the manifest's (changed or "
                "damaged); it will be recomputed",
                path,
            )
            self.rejected.add(name)
            return None
        arrays = load_stamped(path, self.content_hash)
        if arrays is None:
            self.rejected.add(name)
        return arrays


def write_folder_analyses(
    model_folder: Path,
    content_hash: str,
    results: dict[str, tuple[str, dict[str, np.ndarray]]],
    created: str | None = None,
    note: str = "",
) -> dict[str, ShippedResult]:
    """Writes results into ``<model_folder>/analyses/`` and its manifest (entries of other names made
    for the same model are kept; a stale manifest is replaced).

    Args:
        results: name → (title, arrays).
        created: the date to record (default: now, UTC).
        note: how the results were packed (what is exact), shown with them.

    Returns:
        The manifest's entries after writing.
    """
    folder = Path(model_folder) / ANALYSES_DIR
    existing = FolderAnalyses(model_folder, content_hash)
    entries = dict(existing.results)
    stamp = created or now_utc()
    for name, (title, arrays) in results.items():
        path = save_stamped(folder / f"{name}.npz", arrays, content_hash)
        entries[name] = ShippedResult(
            name=name,
            file=path.name,
            sha256=_sha256(path),
            bytes=path.stat().st_size,
            created=stamp,
            title=title,
        )
    for stale in sorted(folder.glob("*.npz")):
        if stale.name not in {entry.file for entry in entries.values()}:
            stale.unlink()
    document = {
        "format": MANIFEST_FORMAT,
        "content_hash": content_hash,
        "packing": note,
        "results": {
            name: {
                "file": e.file,
                "sha256": e.sha256,
                "bytes": e.bytes,
                "created": e.created,
                "title": e.title,
            }
            for name, e in sorted(entries.items())
        },
    }
    write_atomically(folder / MANIFEST_FILE, (json.dumps(document, indent=1) + "\n").encode())
    return entries


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def analyses_share(model_folder: Path) -> float:
    """The share of a model folder's bytes its ``analyses/`` take (0 without them)."""
    total = folder_bytes(model_folder)
    shipped = folder_bytes(Path(model_folder) / ANALYSES_DIR)
    return shipped / total if total else 0.0
