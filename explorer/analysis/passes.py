"""A global pass over a data set as *map → combine → finish*, and the in-process engine that runs one.

* **prepare** (:meth:`GlobalPass.prepare`): the CPU work on one image before the network (its
  modified versions, for the attribute explanation); worker threads modify the next chunks while the
  network runs on this one (:func:`pass_workers`, :func:`prefetched`; OpenCV and torch release the
  GIL), so a pass runs at about the pace of the slower stage, not their sum;
* **map** (:meth:`GlobalPass.map`): a chunk of prepared images and their keys → a *partial*, plain
  arrays aggregated per prototype (running top-k, weighted sums, counts; never per-image maps);
* **combine** (:meth:`GlobalPass.combine`): two partials of disjoint images → one; associative and
  order-independent, so an engine may combine in any order and grouping (the nearest-patch top-k
  exactly; sums of floats up to their rounding);
* **finish**: each pass's own function turning the combined partial into the stored result.

The engines run the same map and combine: :func:`run_local` here (the default, batch after batch in
this process) and Ray Data (:mod:`explorer.engines.ray_engine`, whose actors run :func:`map_keys` on their blocks).
Images come from an :class:`explorer.data.sources.ImageSource` by key; a key the source cannot read,
or whose preparation fails, is reported with its path and reason in the partial
(:data:`FAILED_KEYS`, :data:`FAILED_REASONS`) and skipped — no other image stops — by every engine
alike, and :class:`PassOutcome` maps what was used back onto the split.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
import torch

from explorer.data.sources import ImageSource, readable_keys
from explorer.models.base import PrototypeModel

log = logging.getLogger(__name__)

Partial = dict[str, np.ndarray]
"""A pass's partial result: plain arrays (what a distributed engine ships between workers)."""

FAILED_KEYS = "failed_keys"
FAILED_REASONS = "failed_reasons"
AHEAD = 2
"""Chunks prepared ahead of the network at most (what bounds the memory a pass holds)."""
PREPARE_THREAD = "explorer-prepare"


class GlobalPass(Protocol):
    """One pass's prepare, map and combine (its finish is a function of its own module)."""

    title: str  # what the pass computes, for progress and messages
    prepares: bool  # whether prepare does real work (then the cores are shared: pass_workers)

    def prepare(self, model: PrototypeModel, image: np.ndarray) -> Any:
        """The CPU work on one image (uint8, as the source reads it) before the network; runs in a
        worker thread, so it must not change shared state."""
        ...

    def map(self, model: PrototypeModel, prepared: list[Any], keys: np.ndarray) -> Partial:
        """A chunk of prepared images and their keys → its partial."""
        ...

    def combine(self, a: Partial, b: Partial) -> Partial:
        """Two partials of disjoint images → one (associative, order-independent)."""
        ...


@dataclass(frozen=True)
class Prepared:
    """A chunk after the prepare stage: what prepared, their keys, and the failures with reasons."""

    items: list[Any]
    keys: np.ndarray
    failures: list[tuple[int, str]]


def prepare_keys(
    step: GlobalPass, model: PrototypeModel, source: ImageSource, keys: np.ndarray
) -> Prepared:
    """Reads the images of ``keys`` and prepares each; an image that cannot be read or prepared is
    a failure with its reason, and the others go on."""
    images, read, failures = source.read(keys)
    items, kept = [], []
    for image, key in zip(images, read.tolist(), strict=True):
        try:
            items.append(step.prepare(model, image))
            kept.append(key)
        except Exception as error:  # one image's failure is reported, not raised
            failures.append((key, f"{type(error).__name__}: {error}"))
    return Prepared(items, np.asarray(kept, dtype=np.int64), failures)


def map_prepared(step: GlobalPass, model: PrototypeModel, prepared: Prepared) -> Partial:
    """The map step on a prepared chunk, its failures listed (a chunk where nothing prepared has only
    that list)."""
    partial = step.map(model, prepared.items, prepared.keys) if prepared.items else {}
    partial[FAILED_KEYS] = np.asarray([key for key, _ in prepared.failures], dtype=np.int64)
    partial[FAILED_REASONS] = np.asarray([reason for _, reason in prepared.failures], dtype=str)
    return partial


T = TypeVar("T")
R = TypeVar("R")


def prefetched(
    items: Iterable[T], work: Callable[[T], R], ahead: int = AHEAD, workers: int = 1
) -> Iterator[R]:
    """``work(item)`` for every item, in order, computed in ``workers`` threads up to ``ahead`` items
    before the caller asks for them (the caller's own work on the previous results runs meanwhile).

    An exception of ``work`` is raised to the caller when it reaches that item. When the caller stops
    (done, an exception, an interrupt, the generator closed), the items not started are cancelled and
    the threads are joined: nothing keeps running after the pass.
    """
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=PREPARE_THREAD)
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


NETWORK_THREADS = 1
"""Torch threads of each worker of a preparing pass (:func:`pass_workers`)."""


@contextmanager
def pass_workers(step: GlobalPass) -> Iterator[int]:
    """How a pass shares the cores; yields the number of worker threads (0: none).

    A pass whose prepare stage does real work (the attribute explanation's modifications) runs one
    worker thread per torch thread the process had (its cores), each taking whole chunks — modify,
    then forward — with one torch thread and one OpenCV thread for the while: every core is busy with
    one stage or the other, so the pass runs near (modify + forward on one core) / cores per image,
    at or below the slower stage alone on all cores. Splitting threads instead was measured slower:
    torch's threads wait for one another whenever one is descheduled (ELPV on 2 cores: 293 ms per
    image with 2 torch and 2 OpenCV threads beside a modifying thread, 198 ms with 1 and 1). Other
    passes (yield 0) keep every torch thread for the network and prepare in one helper thread. The
    settings are the process's; they are restored afterwards."""
    if not step.prepares:
        yield 0
        return
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(NETWORK_THREADS)
    cv2.setNumThreads(1)
    try:
        yield max(1, threads)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)


def map_keys(
    step: GlobalPass,
    model: PrototypeModel,
    source: ImageSource,
    keys: np.ndarray,
    chunk: int,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> Partial:
    """Maps ``keys`` chunk by chunk and folds the partials in key order (so the result does not
    depend on which thread ran which chunk): a preparing pass on worker threads that each modify and
    forward whole chunks (:func:`pass_workers`), another pass with its chunks prepared in a helper
    thread while the network runs here."""
    if chunk < 1:
        raise ValueError("the chunk size must be at least 1")
    starts = range(0, len(keys), chunk)
    chunks = (keys[start : start + chunk] for start in starts)
    partial: Partial | None = None
    with pass_workers(step) as workers:
        if workers:  # each worker prepares and maps whole chunks
            stream = prefetched(
                chunks,
                lambda part: map_prepared(step, model, prepare_keys(step, model, source, part)),
                ahead=2 * workers,
                workers=workers,
            )
        else:  # a helper thread prepares, the network runs here
            stream = prefetched(chunks, lambda part: prepare_keys(step, model, source, part))
        try:
            for _ in progress(starts):  # a sized range, so that progress bars know the total
                item = next(stream)
                batch = item if workers else map_prepared(step, model, item)
                partial = batch if partial is None else combine(step, partial, batch)
        finally:
            stream.close()  # on an interrupt too: pending chunks cancelled, threads joined
    assert partial is not None, "map_keys needs at least one key"
    return partial


def combine(step: GlobalPass, a: Partial, b: Partial) -> Partial:
    """:meth:`GlobalPass.combine` with the failures of both kept (a side without images passes the
    other's aggregates through)."""
    failed = {
        FAILED_KEYS: np.concatenate([a[FAILED_KEYS], b[FAILED_KEYS]]),
        FAILED_REASONS: np.concatenate([a[FAILED_REASONS], b[FAILED_REASONS]]),
    }
    body_a, body_b = _body(a), _body(b)
    if not body_a or not body_b:
        return {**(body_a or body_b), **failed}
    return {**step.combine(body_a, body_b), **failed}


def _body(partial: Partial) -> Partial:
    return {name: v for name, v in partial.items() if name not in (FAILED_KEYS, FAILED_REASONS)}


@dataclass(frozen=True)
class PassOutcome:
    """A pass's combined partial over a whole source, and what it could not use.

    Attributes:
        partial: the combined aggregates (keys are the source's).
        size: keys in the source.
        failures: ``(path, reason)`` of every key that could not be read or prepared, in key order.
        failed_keys: those keys.
        engine: which engine ran the pass.
    """

    partial: Partial
    size: int
    failures: tuple[tuple[str, str], ...]
    failed_keys: np.ndarray
    engine: str = "local"

    @property
    def readable(self) -> np.ndarray:
        """The keys that were used, in order: the *n*-th is the split's image *n*."""
        return readable_keys(self.size, self.failed_keys)

    def split_index(self, keys: np.ndarray) -> np.ndarray:
        """The split's image index of each (readable) key."""
        return np.searchsorted(self.readable, keys).astype(np.int64)


def outcome(
    partial: Partial | None, source: ImageSource, title: str, engine: str = "local"
) -> PassOutcome:
    """The finished map/combine of a pass: failures named (and logged) by path, in key order.

    Raises:
        ValueError: the source has no images, or none of them could be used.
    """
    if partial is None:
        raise ValueError(f"{title}: the split has no images")
    order = np.argsort(partial[FAILED_KEYS], kind="stable")
    keys = partial[FAILED_KEYS][order]
    failures = tuple(
        (source.describe(int(key)), str(reason))
        for key, reason in zip(keys, partial[FAILED_REASONS][order], strict=True)
    )
    for path, reason in failures:
        log.warning("%s: skipping %s: %s", title, path, reason)
    body = _body(partial)
    if not body:
        raise ValueError(
            f"{title}: none of the {len(source)} images could be used "
            f"(the first: {failures[0][0]}: {failures[0][1]})"
        )
    return PassOutcome(body, len(source), failures, keys, engine)


def run_local(
    step: GlobalPass,
    model: PrototypeModel,
    source: ImageSource,
    batch_size: int,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> PassOutcome:
    """The in-process engine: every key, in chunks of ``batch_size`` images, the next chunk prepared
    while the network runs on the current one."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if len(source) == 0:
        return outcome(None, source, step.title)
    model.eval()
    keys = np.arange(len(source), dtype=np.int64)
    partial = map_keys(step, model, source, keys, batch_size, progress)
    return outcome(partial, source, step.title)


__all__ = [
    "AHEAD",
    "FAILED_KEYS",
    "FAILED_REASONS",
    "GlobalPass",
    "Partial",
    "PassOutcome",
    "Prepared",
    "combine",
    "map_keys",
    "map_prepared",
    "outcome",
    "pass_workers",
    "prefetched",
    "prepare_keys",
    "run_local",
]
