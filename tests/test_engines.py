"""Engines of the global passes: the nearest-patch combine is associative and order-independent
(random partitions and merge orders give the top-k of the whole), and the Ray Data engine gives the
in-process result exactly on a shipped model's test split (a real local Ray with 2 CPUs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explorer.analysis.nearest import Partial, _top, nearest_combine, nearest_patches
from explorer.api import Explorer
from tests.test_cli import run_cli

K = 5


def random_partial(rng: np.random.Generator, indices: np.ndarray, prototypes: int) -> Partial:
    """A batch's partial as the map step makes it, from scores with many ties (whole numbers)."""
    scores = rng.integers(0, 4, (prototypes, len(indices))).astype(np.float32)
    cells = rng.integers(0, 3, (prototypes, len(indices), 2))
    maps = rng.random((prototypes, len(indices), 2, 2)).astype(np.float32)
    index = np.broadcast_to(indices[None, :], scores.shape)
    partial = _top(index, scores, cells, maps, K)
    partial["rows"] = indices
    partial["row_scores"] = scores.T.copy()
    return partial, (index, scores, cells, maps)


@pytest.mark.parametrize("seed", range(20))
def test_combine_is_associative_and_order_independent(seed: int) -> None:
    rng = np.random.default_rng(seed)
    images, prototypes = int(rng.integers(1, 60)), int(rng.integers(1, 6))
    order = rng.permutation(images)
    cuts = (
        np.sort(
            rng.choice(
                np.arange(1, images), size=min(images - 1, rng.integers(0, 8)), replace=False
            )
        )
        if images > 1
        else []
    )
    parts, raws = [], []
    for chunk in np.split(order, cuts):
        partial, raw = random_partial(rng, chunk, prototypes)
        parts.append(partial)
        raws.append(raw)
    whole = _top(*(np.concatenate([r[i] for r in raws], axis=1) for i in range(4)), K)
    # merged left to right, in a shuffled order, and as a random tree: always the same top-k
    left = parts[0]
    for p in parts[1:]:
        left = nearest_combine(left, p, K)
    shuffled = [parts[i] for i in rng.permutation(len(parts))]
    while len(shuffled) > 1:  # pair up random neighbours until one is left
        i = int(rng.integers(0, len(shuffled) - 1))
        shuffled[i : i + 2] = [nearest_combine(shuffled[i], shuffled[i + 1], K)]
    for merged in (left, shuffled[0]):
        for name in ("index", "score", "cell", "map"):
            np.testing.assert_array_equal(merged[name], whole[name])
        assert sorted(merged["rows"].tolist()) == list(range(images))
    # ties go to the lower image index: no image above a tied lower one in any row
    for row_scores, row_index in zip(whole["score"], whole["index"], strict=True):
        for a in range(len(row_scores) - 1):
            assert row_scores[a] > row_scores[a + 1] or row_index[a] < row_index[a + 1]


@pytest.mark.slow
def test_the_ray_engine_gives_the_in_process_result_on_a_shipped_test_split() -> None:
    pytest.importorskip(
        "ray.data", reason="the ray engine is an optional extra (requirements-scale.txt)"
    )
    from explorer.engines.ray_engine import ray_nearest_patches

    explorer = Explorer()
    bundle = explorer.bundle("synthetic")
    data = explorer.dataset("synthetic", "test")
    local = nearest_patches(
        bundle.model, data.images, data.labels, "test", keep_all_scores=True, batch_size=100
    )
    remote = ray_nearest_patches(
        bundle.folder, bundle.model, data.images, data.labels, "test",
        keep_all_scores=True, batch_size=100, workers=2,
    )  # fmt: skip
    for name in ("images", "cells", "boxes", "labels", "pixels"):
        np.testing.assert_array_equal(getattr(remote, name), getattr(local, name))
    np.testing.assert_allclose(remote.scores, local.scores, rtol=1e-6)
    np.testing.assert_allclose(remote.all_scores, local.all_scores, rtol=1e-6)
    np.testing.assert_allclose(remote.maps, local.maps, rtol=1e-6)
    assert (remote.engine, local.engine) == ("ray", "local")


@pytest.mark.slow
def test_analyse_on_ray_records_its_engine(tiny_folder_model: Path) -> None:
    pytest.importorskip(
        "ray.data", reason="the ray engine is an optional extra (requirements-scale.txt)"
    )
    done = run_cli(
        "analyse", "--model", str(tiny_folder_model), "--splits", "test", "--no-attributes",
        "--engine", "ray", "--workers", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["nearest_patches"]["test"]["engine"] == "ray"
    explorer = Explorer([tiny_folder_model])
    stored = explorer.nearest(explorer.model_ids()[0], "test")
    data = explorer.dataset(explorer.model_ids()[0], "test")
    local = nearest_patches(
        explorer.bundle().model, data.images, data.labels, "test", keep_all_scores=True
    )
    np.testing.assert_array_equal(stored.images, local.images)
    assert stored.engine == "ray"


def test_engine_options_without_the_ray_engine_get_one_line() -> None:
    for args, message in (
        (("--workers", "2"), "go with --engine ray"),
        (("--engine", "ray", "--workers", "0"), "at least 1"),
    ):
        done = run_cli("analyse", "--model", "synthetic", "--no-attributes", *args)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
