"""The planted-shortcut benchmark's figures (bench/planted_shortcut.py), recomputed from the stored
models: the parent trained with the marker, the model ProtoPDebug retrained from it, and the ceiling
trained without it (bench/planted_shortcut_models/, with the results the benchmark wrote). The
retrain itself takes minutes and runs in the benchmark (README: `python -m bench.planted_shortcut`);
here every figure it printed is measured again from the models it stored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.planted_shortcut import (
    LOCKED_SHARE,
    STORED,
    marker_shares,
    split_accuracies,
)
from explorer.api import Explorer
from explorer.data import load_split
from explorer.data.marker import MARKER_CLASS, on_marker, paste_on_other_classes

pytestmark = pytest.mark.slow
RESULTS = sorted(STORED.glob("results-seed*.json"))


def test_the_marker_sits_where_its_box_says_and_only_on_the_marked_class() -> None:
    train = load_split("synthetic_marker", "train")
    boxes = train.extras["marker_box"]
    marked = boxes[:, 0] >= 0
    base = train.class_names.index(MARKER_CLASS)
    assert set(train.labels[marked]) == {base} and 0.85 < marked[train.labels == base].mean() < 0.95
    for i in np.flatnonzero(marked)[:20]:
        y0, y1, x0, x1 = boxes[i]
        assert (train.images[i, y0:y1, x0:x1] == (255, 0, 255)).all()
    test = load_split("synthetic_marker", "test")
    assert (test.extras["marker_box"][:, 0] < 0).all()  # the test split is clean
    pasted = paste_on_other_classes(test, base)
    assert ((pasted.extras["marker_box"][:, 0] >= 0) == (test.labels != base)).all()
    assert on_marker((0, 20, 0, 20), np.array([2, 12, 2, 12]))
    assert not on_marker((0, 6, 0, 20), np.array([2, 12, 2, 12]))  # 40 % of it


@pytest.mark.parametrize("results", RESULTS, ids=[p.stem for p in RESULTS])
def test_the_benchmarks_stored_figures_are_what_its_stored_models_give(results, tmp_path) -> None:
    recorded = json.loads(results.read_text())
    models = recorded["models"]
    explorer = Explorer([STORED / m for m in models.values()], cache_root=tmp_path,
                        label_path=tmp_path / "labels.sqlite3")  # fmt: skip
    train = load_split(recorded["data"], "train")
    boxes = train.extras["marker_box"]
    shares = marker_shares(explorer, models["parent"], boxes)
    assert [round(float(v), 2) for v in shares] == recorded["lock_on"]["parent_shares"]
    locked = [int(j) for j in np.flatnonzero(shares >= LOCKED_SHARE)]
    assert locked == recorded["lock_on"]["parent_locked"] and len(locked) >= 2
    after = marker_shares(explorer, models["retrained"], boxes)
    assert float(after.max()) == recorded["lock_on"]["retrained_max_share"]
    figures = split_accuracies(explorer, models, locked, recorded["data"])
    for row, accuracies in recorded["accuracy"].items():
        for split, value in accuracies.items():
            assert figures[row][split] == pytest.approx(value, abs=1e-12), (row, split)
    lineage = explorer.spec(models["retrained"]).lineage
    assert lineage["parent"]["content_hash"] == explorer.content_hash(models["parent"])
    assert [r["prototype"] for r in lineage["labels"]] == locked
