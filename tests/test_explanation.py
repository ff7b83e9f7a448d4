"""Per-image explanations and the nearest-patch analysis on a real (tiny, trained) model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.analysis.explanation import explain_image
from explorer.analysis.nearest import nearest_patches
from explorer.api import Explorer
from explorer.cache import AnalysisCache
from explorer.models.checkpoint import load_model
from explorer.viz.figures import comparison_figure, evidence_figure, evidence_terms
from tests.corpus import bad_image_corpus

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tiny_run):
    folder, (train_set, test_set, _) = tiny_run
    return load_model(folder), train_set, test_set


def test_nearest_training_patch_of_every_prototype_is_its_own_source(tiny) -> None:
    bundle, train_set, _ = tiny
    nearest = nearest_patches(
        bundle.model, train_set.images, train_set.labels, "train", batch_size=7
    )
    for record in bundle.projection:
        assert nearest.images[record.index, 0] == record.source_index
        assert tuple(nearest.cells[record.index, 0]) == record.cell
        assert nearest.scores[record.index, 0] == pytest.approx(np.log(1e4), abs=1e-3)


def test_nearest_patches_equal_a_brute_force_search_with_one_patch_per_image(tiny) -> None:
    bundle, _, test_set = tiny
    k = 5
    nearest = nearest_patches(
        bundle.model,
        test_set.images,
        test_set.labels,
        "test",
        k=k,
        batch_size=4,
        keep_all_scores=True,
    )
    scores = nearest.all_scores  # [N, P], from the same pass
    assert scores.shape == (len(test_set), bundle.spec.num_prototypes)
    for j in range(bundle.spec.num_prototypes):
        expected = np.argsort(-scores[:, j], kind="stable")[:k]
        np.testing.assert_array_equal(nearest.images[j], expected)
        assert len(set(nearest.images[j].tolist())) == k  # at most one patch per image
        assert (np.diff(nearest.scores[j]) <= 0).all()
    batched = nearest_patches(
        bundle.model, test_set.images, test_set.labels, "test", k=k, batch_size=64
    )
    np.testing.assert_array_equal(batched.images, nearest.images)


def test_evidence_for_a_class_sums_to_its_logit(tiny) -> None:
    bundle, _, test_set = tiny
    x = explain_image(bundle, test_set.images[0], attribution=None)
    for c in range(bundle.spec.num_classes):
        _, values = evidence_terms(x.activations, c, top=3)
        assert sum(values) == pytest.approx(x.activations.logits[c], abs=1e-5)
        figure = evidence_figure(x.activations, c, bundle.spec.class_names, top=3)
        assert sum(figure.data[0].x) == pytest.approx(x.activations.logits[c], abs=1e-5)
    gap = comparison_figure(x.activations, 0, 1, bundle.spec.class_names, top=100)
    assert sum(gap.data[0].x) == pytest.approx(
        x.activations.logits[0] - x.activations.logits[1], abs=1e-5
    )


def test_pairs_are_ranked_and_boxes_contain_the_best_cell(tiny) -> None:
    bundle, _, test_set = tiny
    x = explain_image(
        bundle, test_set.images[1], top_k=4, ranked_by="similarity", attribution="gradcam"
    )
    sims = [p.similarity for p in x.pairs]
    assert sims == sorted(sims, reverse=True) and len(sims) == 4
    h, w = x.activations.similarity_maps.shape[1:]
    size = bundle.spec.input_size
    for pair in x.pairs:
        y0, y1, x0, x1 = pair.image_box
        argmax = np.unravel_index(np.argmax(pair.activation), pair.activation.shape)
        assert y0 <= argmax[0] < y1 and x0 <= argmax[1] < x1
        assert pair.activation.shape == size
        assert pair.image_cell[0] < h and pair.image_cell[1] < w
    assert x.attribution is not None and x.attribution.values.shape == size
    other = explain_image(bundle, test_set.images[1], class_index=2, attribution=None)
    assert other.target_class == 2
    assert [p.contribution for p in other.pairs] == sorted(
        [p.contribution for p in other.pairs], reverse=True
    )


def test_cache_round_trip_and_corrupt_files_are_recomputed(tiny, tmp_path: Path) -> None:
    bundle, _, _ = tiny
    cache = AnalysisCache(bundle.content_hash, tmp_path)
    cache.save("x", {"a": np.arange(3)})
    np.testing.assert_array_equal(cache.load("x")["a"], np.arange(3))
    data = cache.path("x").read_bytes()
    cache.path("x").write_bytes(data[: len(data) // 2])  # half-written
    assert cache.load("x") is None
    AnalysisCache("another-model", tmp_path).save("x", {"a": np.arange(3)})
    (tmp_path / "another-model" / "x.npz").replace(cache.path("x"))  # a file of another model
    assert cache.load("x") is None
    assert not list(tmp_path.rglob("*.tmp"))


def test_batch_cli_writes_json_and_pngs_and_reports_a_bad_file(tmp_path: Path) -> None:
    images = tmp_path / "in"
    images.mkdir()
    examples = Explorer().bundle("fashion_mnist").examples()[:2]
    for path in examples:
        (images / path.name).write_bytes(path.read_bytes())
    bad, _ = bad_image_corpus(tmp_path / "bad")["truncated.png"]
    (images / "broken.png").write_bytes(bad.read_bytes())
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "explorer", "explain", str(images), "--model", "fashion_mnist",
         "--out", str(out), "--top-k", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # some failed, the rest written
    assert "broken.png" in result.stderr and "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert len(summary["explained"]) == 2 and len(summary["failed"]) == 1
    for entry in summary["explained"]:
        folder = Path(entry["folder"])
        record = json.loads((folder / "explanation.json").read_text())
        assert len(record["top_prototypes"]) == 3
        assert sum(record["contributions_to_explained_class"].values()) == pytest.approx(
            record["logits"][record["explained_class"]], abs=1e-4
        )
        for name in record["files"].values():
            assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "summary.json").read_text()) == summary
