"""The review queue orders hand-made signal tables as its docstring states."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.analysis.review_queue import (
    GENERALISES,
    generalisation_ratio,
    later_duplicates,
    precision_at_k,
    review_queue,
    score,
    signal_table,
)


def table(**columns: list[float]) -> dict[str, np.ndarray]:
    return signal_table(
        num_prototypes=len(columns["purity"]),
        background_share=None
        if columns.get("background") is None
        else np.array(columns["background"]),
        stability=None if columns.get("stability") is None else np.array(columns["stability"]),
        class_purity=np.array(columns["purity"]),
        ratio=np.array(columns["ratio"]),
        duplicates=columns.get("duplicates", ()),
    )


def test_the_score_is_the_mean_of_the_signals_plus_one_for_the_flag():
    signals = {"background": 0.9, "instability": 0.5, "impurity": 0.2, "gap": 0.6, "duplicate": 0.0}
    assert score(signals, ratio=0.4) == (pytest.approx(1 + 2.2 / 5), True)
    assert score(signals, ratio=GENERALISES) == (pytest.approx(2.2 / 5), False)  # 0.5 is not below
    unmeasured = {**signals, "background": float("nan"), "instability": float("nan")}
    assert score(unmeasured, ratio=0.9)[0] == pytest.approx(0.8 / 3)


def test_the_queue_orders_a_hand_made_table():
    t = table(
        background=[0.1, 0.95, 0.2, 0.2, 0.99],
        stability=[1.0, 0.2, 1.0, 1.0, 1.0],
        purity=[1.0, 0.2, 1.0, 1.0, 0.0],
        ratio=[1.0, 0.9, 0.45, 1.0, 1.0],
        duplicates=[(2, 3)],
    )
    # signals: p0 (0.1, 0, 0, 0, 0) = 0.02; p1 (0.95, 0.8, 0.8, 0.1, 0) = 0.53;
    # p2 (0.2, 0, 0, 0.55, 0) = 0.15 + 1 (ratio 0.45 < 0.5); p3 (0.2, 0, 0, 0, 1) = 0.24;
    # p4 (0.99, 0, 1, 0, 0) = 0.398
    queue = review_queue(t)
    assert [e.prototype for e in queue] == [2, 1, 4, 3, 0]
    assert [round(e.score, 3) for e in queue] == [1.15, 0.53, 0.398, 0.24, 0.02]
    assert queue[0].does_not_generalise and not any(e.does_not_generalise for e in queue[1:])


def test_reviewed_prototypes_leave_the_queue_and_ties_keep_prototype_order():
    t = table(background=[0.5, 0.5, 0.5], stability=[1, 1, 1], purity=[1, 1, 1], ratio=[1, 1, 1])
    assert [e.prototype for e in review_queue(t)] == [0, 1, 2]
    assert [e.prototype for e in review_queue(t, reviewed={0, 2})] == [1]


def test_only_the_later_copies_of_a_duplicate_group_are_flagged():
    np.testing.assert_array_equal(later_duplicates([{4, 1, 2}, (0, 5)], 6), [0, 0, 1, 0, 1, 1])


def test_generalisation_ratio_reads_medians_and_is_nan_without_training_evidence():
    train = np.array([[9.2, 5.0, 4.0, 3.0, 2.0], [0, 0, 0, 0, 0]])
    test = np.array([[3.0, 2.0, 1.0, 0.5, 0.4], [0.2, 0, 0, 0, 0]])
    ratio = generalisation_ratio(train, test)
    assert ratio[0] == pytest.approx(1.0 / 4.0) and np.isnan(ratio[1])
    t = table(background=None, stability=None, purity=[1, 1], ratio=list(ratio))
    assert t["gap"][0] == pytest.approx(0.75) and np.isnan(t["gap"][1])  # not measured: left out
    assert review_queue(t)[0].prototype == 0


def test_precision_at_k():
    t = table(background=[0.9, 0.1, 0.8], stability=[1, 1, 1], purity=[1, 1, 1], ratio=[1, 1, 1])
    queue = review_queue(t)
    assert precision_at_k(queue, {0, 2}) == 1.0
    assert precision_at_k(queue, {0, 1}) == 0.5
