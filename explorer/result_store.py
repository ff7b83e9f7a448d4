"""Where a model's stored analyses come from, and how several users share them without waiting.

A result (``nearest_test``, ``attributes_reference_train``, ...) is looked up in order in

1. memory (results already read in this process; a file that changed on disk is read again),
2. the user's cache (:mod:`explorer.cache`): results computed here, always exact and complete,
3. the model folder's shipped ``analyses/`` (:mod:`explorer.folder_analyses`, verified), which may be
   packed (a sample of the test scores, JPEG outside the boxes) to keep the folder small,

and only then computed. Reads take no lock that a computation holds: a user reading a stored result
never waits for another user's computation. Computations lock per (model, result): two users computing
different results proceed together, and a second request for a result being computed waits for the
first and then reads its result instead of computing it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from explorer.cache import AnalysisCache
from explorer.folder_analyses import FolderAnalyses

MEMORY_RESULTS = 32  # decoded results kept in memory (each a few MB at most)


class Storable(Protocol):
    def to_arrays(self) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class StoredResult:
    """Where one result is stored, and since when.

    Attributes:
        name: the result's file name (without ``.npz``).
        where: ``shipped`` (in the model folder's ``analyses/``), ``cache`` (the user's cache) or
            ``None`` (not computed).
        created: the UTC date it was made (ISO 8601), when stored.
        path: its file, when stored.
    """

    name: str
    where: str | None
    created: str | None
    path: Path | None


def _file_stamp(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (str(path), stat.st_mtime_ns, stat.st_size)


class ResultStore:
    """Stored analyses of every model an :class:`~explorer.api.Explorer` serves (thread-safe)."""

    def __init__(self, cache_root: Path) -> None:
        self.cache_root = Path(cache_root)
        self._guard = threading.Lock()  # held only for dictionary updates, never for I/O or compute
        self._memory: OrderedDict[tuple[str, str], tuple[tuple[str, int, int], Any]] = OrderedDict()
        self._computing: dict[tuple[str, str], threading.Lock] = {}
        self._shipped: dict[tuple[str, str], FolderAnalyses] = {}

    # --- where things are ----------------------------------------------------------------------
    def cache(self, content_hash: str) -> AnalysisCache:
        return AnalysisCache(content_hash, self.cache_root)

    def shipped(self, folder: Path, content_hash: str) -> FolderAnalyses:
        """The folder's shipped analyses for the model (its manifest read once per process)."""
        key = (str(folder), content_hash)
        with self._guard:
            known = self._shipped.get(key)
        if known is None:
            known = FolderAnalyses(folder, content_hash)
            with self._guard:
                known = self._shipped.setdefault(key, known)
        return known

    def forget_folder(self, folder: Path) -> None:
        """Reads the folder's manifest again next time (after ``analyse --into-folder``)."""
        with self._guard:
            for key in [k for k in self._shipped if k[0] == str(folder)]:
                del self._shipped[key]

    def status(self, folder: Path, content_hash: str, name: str) -> StoredResult:
        """Where the result used for ``name`` is stored (the user's cache first), without reading
        it."""
        path = self.cache(content_hash).path(name)
        stamp = _file_stamp(path)
        if stamp is not None:
            created = datetime.fromtimestamp(stamp[1] / 1e9, UTC).replace(microsecond=0)
            return StoredResult(name, "cache", created.isoformat(), path)
        shipped = self.shipped(folder, content_hash)
        if shipped.has(name):
            return StoredResult(name, "shipped", shipped.results[name].created, shipped.path(name))
        return StoredResult(name, None, None, None)

    def has(self, folder: Path, content_hash: str, name: str) -> bool:
        return self.status(folder, content_hash, name).where is not None

    # --- reading and computing -------------------------------------------------------------------
    def _remembered(self, key: tuple[str, str], stamp: tuple[str, int, int]) -> Any:
        with self._guard:
            entry = self._memory.get(key)
            if entry is None or entry[0] != stamp:
                return None
            self._memory.move_to_end(key)
            return entry[1]

    def _remember(self, key: tuple[str, str], stamp: tuple[str, int, int], result: Any) -> None:
        with self._guard:
            self._memory[key] = (stamp, result)
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_RESULTS:
                self._memory.popitem(last=False)

    def read(
        self,
        folder: Path,
        content_hash: str,
        name: str,
        load: Callable[[dict[str, np.ndarray]], Any],
        use_shipped: bool = True,
    ) -> Any:
        """The stored result (cached, else shipped), or ``None``; takes no computation's lock.
        ``use_shipped=False`` looks in the user's cache only (for exact, complete results)."""
        key = (content_hash, name)
        cache = self.cache(content_hash)
        sources: list[tuple[Path, Callable[[], dict[str, np.ndarray] | None]]] = [
            (cache.path(name), lambda: cache.load(name))
        ]
        shipped = self.shipped(folder, content_hash)
        if use_shipped and shipped.has(name):
            sources.append((shipped.path(name), lambda: shipped.load(name)))
        for path, read in sources:
            stamp = _file_stamp(path)
            if stamp is None:
                continue
            result = self._remembered(key, stamp)
            if result is not None:
                return result
            arrays = read()
            if arrays is None:
                continue  # not to be trusted: the next source, else recompute
            result = load(arrays)
            self._remember(key, stamp, result)
            return result
        return None

    def _lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._computing.setdefault(key, threading.Lock())

    def get(
        self,
        folder: Path,
        content_hash: str,
        name: str,
        compute: Callable[[], Storable],
        load: Callable[[dict[str, np.ndarray]], Any],
        use_shipped: bool = True,
    ) -> Any:
        """The stored result, or computed once (per model and result) and saved to the cache."""
        result = self.read(folder, content_hash, name, load, use_shipped)
        if result is not None:
            return result
        with self._lock_for((content_hash, name)):
            # made meanwhile by another user?
            result = self.read(folder, content_hash, name, load, use_shipped)
            if result is not None:
                return result
            result = compute()
            path = self.cache(content_hash).save(name, result.to_arrays())
            stamp = _file_stamp(path)
            if stamp is not None:
                self._remember((content_hash, name), stamp, result)
            return result
