"""The planted-shortcut benchmark's figures (bench/planted_shortcut.py), recomputed from the stored
models: the parent trained with the marker, the model ProtoPDebug retrained from it, and the ceiling
trained without it (bench/planted_shortcut_models/, with the results the benchmark wrote). The
retrain itself takes minutes and runs in the benchmark (README: `python -m bench.planted_shortcut`);
here every figure it printed is measured again from the models it stored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.planted_shortcut import STORED, checks, lock_on, split_accuracies
from explorer.api import Explorer
from explorer.data import load_split, parse_data_seed, with_data_seed
from explorer.data.marker import MARKER_CLASS, overlaps_marker, paste_on_other_classes

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
    assert overlaps_marker((0, 3, 0, 20), np.array([2, 12, 2, 12]))
    assert not overlaps_marker((0, 2, 0, 20), np.array([2, 12, 2, 12]))  # rows 0-1: beside it
    assert not overlaps_marker((0, 64, 0, 64), np.array([-1, -1, -1, -1]))  # no marker
    clean = load_split("synthetic", "train")  # the marked set is the clean one, stamped
    unmarked = ~marked
    assert (clean.images[unmarked] == train.images[unmarked]).all()


@pytest.mark.parametrize("results", RESULTS, ids=[p.stem for p in RESULTS])
def test_the_benchmarks_stored_figures_are_what_its_stored_models_give(results, tmp_path) -> None:
    recorded = json.loads(results.read_text())
    models = recorded["models"]
    explorer = Explorer([STORED / m for m in models.values()], cache_root=tmp_path,
                        label_path=tmp_path / "labels.sqlite3")  # fmt: skip
    marked = load_split(recorded["data"], "train")
    _, seed = parse_data_seed(recorded["data"])
    clean = load_split(with_data_seed("synthetic", seed or 0), "train")
    assert lock_on(explorer, models["parent"], marked, clean) == recorded["lock_on"]["parent"]
    for r in recorded["rounds"]:
        assert lock_on(explorer, r["model"], marked, clean) == r["lock_on_after"]
    first = recorded["lock_on"]["parent"]["locked"]
    assert len(first) >= 2 and recorded["rounds"][0]["labelled"] == first
    figures = split_accuracies(explorer, models, first, recorded["data"])
    assert figures.keys() == recorded["accuracy"].keys()
    for row, accuracies in recorded["accuracy"].items():
        for split, value in accuracies.items():
            assert figures[row][split] == pytest.approx(value, abs=1e-12), (row, split)
    parent = models["parent"]
    for r in recorded["rounds"]:  # each round retrained the previous model from its labels
        lineage = explorer.spec(r["model"]).lineage
        assert lineage["parent"]["content_hash"] == explorer.content_hash(parent)
        assert [label["prototype"] for label in lineage["labels"]] == r["labelled"]
        parent = r["model"]
    assert all(met for _, met in checks(recorded)), [t for t, met in checks(recorded) if not met]
