"""The review queue: every prototype ranked by a stated score from its trust signals.

Signals, each in ``[0, 1]`` (1 = worst), for prototype ``p``:

* ``background`` — its background share (:mod:`explorer.analysis.metrics.background`);
* ``instability`` — ``1 - stability`` (EvalProtoPNet, :mod:`explorer.analysis.metrics.stability`);
* ``impurity`` — ``1 - class purity`` of its top-k patches in the evaluated split;
* ``gap`` — its explanation not generalising from training to test: ``1 - r`` clipped to
  ``[0, 1]``, where ``r`` = median similarity of its ``k`` nearest *test* patches / median of its
  ``k`` nearest *training* patches (:func:`generalisation_ratio`; the median keeps the push
  source, at distance 0 by construction, from setting the bar);
* ``duplicate`` — 1 when it is an exact duplicate of a lower-numbered prototype (same push source
  and cell, or identical vector), else 0.

**Score** = the mean of the signals measured (a signal the data set cannot give, e.g. background
without masks, is left out), **plus 1 when the explanation does not generalise** (``r`` below
:data:`GENERALISES`: its test matches are less than half as similar as its training matches, which
is what a training-set artefact such as a marker looks like to new images). The mean is at most 1,
so every such prototype comes before every other. Prototypes already reviewed (a current general
label) leave the queue, and so do prototypes no class weighs (every last-layer weight zero: they
decide nothing). Ties: lower prototype number first.

The rule (the 0.5 and the flag) was set looking at the planted-shortcut model of data seed 0 and
then measured, unchanged, on data seed 1's (``python -m bench.trust_signals``; docs/method.md §9).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

SIGNALS = ("background", "instability", "impurity", "gap", "duplicate")
GENERALISES = 0.5


@dataclass(frozen=True)
class QueueEntry:
    """One prototype in the queue.

    Attributes:
        prototype: its index.
        score: see the module docstring.
        signals: each signal's value (NaN where not measured).
        does_not_generalise: the flag that adds 1 to the score.
    """

    prototype: int
    score: float
    signals: Mapping[str, float]
    does_not_generalise: bool


@dataclass(frozen=True)
class ReviewQueue:
    """The queue of one model.

    Attributes:
        entries: the prototypes not yet reviewed, worst first.
        reviewed: how many prototypes have a current general label.
        total: how many prototypes the model has.
        unused: prototypes no class weighs (all last-layer weights zero, as PIP-Net's sparse layer
            leaves many): they decide nothing, so they are left out of the queue.
    """

    entries: tuple[QueueEntry, ...]
    reviewed: int
    total: int
    unused: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        return {
            "rule": RULE,
            "reviewed": self.reviewed,
            "total": self.total,
            "unused_left_out": list(self.unused),
            "queue": [
                {
                    "prototype": e.prototype,
                    "score": e.score,
                    "does_not_generalise": e.does_not_generalise,
                    "signals": {k: (None if np.isnan(v) else v) for k, v in e.signals.items()},
                }
                for e in self.entries
            ],
        }


RULE = (
    "score = mean of the measured signals (background share, 1 - stability, 1 - class purity, "
    "train-to-test gap, later exact duplicate; each 0..1), plus 1 when the prototype's 5 nearest "
    f"test patches are less than {GENERALISES:.0%} as similar as its 5 nearest training patches "
    "(medians); reviewed prototypes, and those no class weighs, leave the queue"
)


def generalisation_ratio(train_scores: np.ndarray, test_scores: np.ndarray) -> np.ndarray:
    """``[P]`` median of each prototype's top-k test similarities over the median of its top-k
    training similarities (``[P, k]`` each); NaN where the training median is not positive (a
    PIP-Net prototype never present)."""
    train = np.median(np.asarray(train_scores, dtype=np.float64), axis=1)
    test = np.median(np.asarray(test_scores, dtype=np.float64), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(train > 0, test / train, np.nan)


def later_duplicates(groups: Iterable[Iterable[int]], num_prototypes: int) -> np.ndarray:
    """``[P]`` 1.0 for every member of a duplicate group but its lowest-numbered one."""
    flags = np.zeros(num_prototypes)
    for group in groups:
        members = sorted(int(j) for j in group)
        flags[members[1:]] = 1.0
    return flags


def signal_table(
    *,
    num_prototypes: int,
    background_share: np.ndarray | None,
    stability: np.ndarray | None,
    class_purity: np.ndarray,
    ratio: np.ndarray,
    duplicates: Iterable[Iterable[int]] = (),
) -> dict[str, np.ndarray]:
    """The ``[P]`` signal columns (NaN where not measured), in :data:`SIGNALS` order, plus the
    ``ratio`` column the flag reads."""
    nan = np.full(num_prototypes, np.nan)
    return {
        "background": nan if background_share is None else np.asarray(background_share, float),
        "instability": nan if stability is None else 1.0 - np.asarray(stability, float),
        "impurity": 1.0 - np.asarray(class_purity, float),
        "gap": np.clip(1.0 - np.asarray(ratio, float), 0.0, 1.0),
        "duplicate": later_duplicates(duplicates, num_prototypes),
        "ratio": np.asarray(ratio, float),
    }


def score(signals: Mapping[str, float], ratio: float) -> tuple[float, bool]:
    """``(score, does_not_generalise)`` of one prototype (module docstring)."""
    measured = [float(signals[name]) for name in SIGNALS if not np.isnan(signals[name])]
    flag = bool(not np.isnan(ratio) and ratio < GENERALISES)
    return (float(np.mean(measured)) if measured else 0.0) + float(flag), flag


def review_queue(table: Mapping[str, np.ndarray], reviewed: Iterable[int] = ()) -> list[QueueEntry]:
    """Prototypes not yet reviewed, worst first (see the module docstring)."""
    done = {int(j) for j in reviewed}
    entries = []
    for j in range(len(table["impurity"])):
        if j in done:
            continue
        signals = {name: float(table[name][j]) for name in SIGNALS}
        value, flag = score(signals, float(table["ratio"][j]))
        entries.append(QueueEntry(j, value, signals, flag))
    return sorted(entries, key=lambda e: (-e.score, e.prototype))


def precision_at_k(queue: list[QueueEntry], relevant: Iterable[int], k: int | None = None) -> float:
    """Share of the first ``k`` entries (default: as many as ``relevant``) that are relevant."""
    wanted = {int(j) for j in relevant}
    k = len(wanted) if k is None else k
    if k == 0:
        return float("nan")
    return sum(e.prototype in wanted for e in queue[:k]) / k
