"""A global pass over a data set as *map → combine → finish*, and the in-process engine that runs one.

* **map** (:meth:`GlobalPass.map`): a batch of images and their keys → a *partial*, plain arrays
  aggregated per prototype (running top-k, weighted sums, counts; never per-image maps);
* **combine** (:meth:`GlobalPass.combine`): two partials of disjoint images → one; associative and
  order-independent, so an engine may combine in any order and grouping (the nearest-patch top-k
  exactly; sums of floats up to their rounding);
* **finish**: each pass's own function turning the combined partial into the stored result.

The engines run the same map and combine: :func:`run_local` here (the default, batch after batch in
this process) and Ray Data (:mod:`explorer.engines.ray_engine`). Images come from an
:class:`explorer.data.sources.ImageSource` by key; a key the source cannot read is reported with its
path and reason in the partial (:data:`FAILED_KEYS`, :data:`FAILED_REASONS`) and skipped, by every
engine alike, and :class:`PassOutcome` maps what was read back onto the split.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from explorer.data.sources import ImageSource, readable_keys
from explorer.models.base import PrototypeModel

log = logging.getLogger(__name__)

Partial = dict[str, np.ndarray]
"""A pass's partial result: plain arrays (what a distributed engine ships between workers)."""

FAILED_KEYS = "failed_keys"
FAILED_REASONS = "failed_reasons"


class GlobalPass(Protocol):
    """One pass's map and combine (its finish is a function of its own module)."""

    title: str  # what the pass computes, for progress and messages

    def map(self, model: PrototypeModel, images: list[np.ndarray], keys: np.ndarray) -> Partial:
        """A batch of images (uint8, as the source reads them) and their keys → its partial."""
        ...

    def combine(self, a: Partial, b: Partial) -> Partial:
        """Two partials of disjoint images → one (associative, order-independent)."""
        ...


def map_keys(
    step: GlobalPass, model: PrototypeModel, source: ImageSource, keys: np.ndarray
) -> Partial:
    """The map step with the reading: the images of ``keys`` that read are mapped, the others are
    listed with their reason (a batch where none reads has only that list)."""
    images, read, failures = source.read(keys)
    partial = step.map(model, images, read) if len(read) else {}
    partial[FAILED_KEYS] = np.asarray([key for key, _ in failures], dtype=np.int64)
    partial[FAILED_REASONS] = np.asarray([reason for _, reason in failures], dtype=str)
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
    """A pass's combined partial over a whole source, and what it could not read.

    Attributes:
        partial: the combined aggregates (keys are the source's).
        size: keys in the source.
        failures: ``(path, reason)`` of every key that did not read, in key order.
        engine: which engine ran the pass.
    """

    partial: Partial
    size: int
    failures: tuple[tuple[str, str], ...]
    failed_keys: np.ndarray
    engine: str = "local"

    @property
    def readable(self) -> np.ndarray:
        """The keys that read, in order: the *n*-th is the split's image *n*."""
        return readable_keys(self.size, self.failed_keys)

    def split_index(self, keys: np.ndarray) -> np.ndarray:
        """The split's image index of each (readable) key."""
        return np.searchsorted(self.readable, keys).astype(np.int64)


def outcome(
    partial: Partial | None, source: ImageSource, title: str, engine: str = "local"
) -> PassOutcome:
    """The finished map/combine of a pass: failures named (and logged) by path, in key order.

    Raises:
        ValueError: the source has no images, or none of them could be read.
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
            f"{title}: none of the {len(source)} images could be read "
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
    """The in-process engine: map batch after batch in key order, each folded into the running
    partial."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    model.eval()
    partial: Partial | None = None
    for start in progress(range(0, len(source), batch_size)):
        keys = np.arange(start, min(start + batch_size, len(source)), dtype=np.int64)
        batch = map_keys(step, model, source, keys)
        partial = batch if partial is None else combine(step, partial, batch)
    return outcome(partial, source, step.title)


__all__ = [
    "FAILED_KEYS",
    "FAILED_REASONS",
    "GlobalPass",
    "Partial",
    "PassOutcome",
    "combine",
    "map_keys",
    "outcome",
    "run_local",
]
