"""Engines of the global passes: the nearest-patch combine is associative and order-independent
(random partitions and merge orders give the top-k of the whole); the Ray Data engine gives the
in-process result on a shipped model's test split (nearest patches and scores exactly, Φ and its
intervals within 1e-6) and skips an unreadable file exactly as in process, naming it (a real local
Ray with 2 CPUs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from explorer.analysis.attribute_sets import modification_set
from explorer.analysis.attributes import AttributePass, global_attributes, global_attributes_finish
from explorer.analysis.nearest import (
    NearestPass,
    _top,
    nearest_combine,
    nearest_finish,
    nearest_patches,
)
from explorer.analysis.passes import Partial, PassOutcome, run_local
from explorer.api import Explorer
from explorer.data.folder import load_image_folder
from explorer.data.sources import ArraySource, FolderSource
from explorer.errors import ExplorerError
from explorer.models.checkpoint import load_model
from tests.conftest import shipped_folder
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


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray with 2 CPUs for this module's passes (``local_mode`` no longer exists),
    shut down after them."""
    ray = pytest.importorskip(
        "ray", reason="the ray engine is an optional extra (requirements-scale.txt)"
    )
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def both_engines(step, bundle, source, batch_size: int) -> tuple[PassOutcome, PassOutcome]:
    from explorer.engines.ray_engine import ray_run

    local = run_local(step, bundle.model, source, batch_size)
    remote = ray_run(step, bundle.folder, source, batch_size=batch_size, workers=2)
    return local, remote


@pytest.mark.slow
def test_a_gpu_pass_on_a_cluster_without_gpus_is_one_clear_error(local_ray) -> None:
    from explorer.engines.ray_engine import ray_run

    bundle = load_model(shipped_folder("synthetic"))
    source = ArraySource(np.zeros((4, 64, 64, 3), dtype=np.uint8), np.zeros(4, dtype=np.int64))
    with pytest.raises(ExplorerError, match="asked to run on cuda, but the Ray cluster has no GPU"):
        ray_run(NearestPass(), bundle.folder, source, batch_size=4, device="cuda")


@pytest.mark.slow
def test_the_ray_engine_gives_the_in_process_result_on_a_shipped_test_split(local_ray) -> None:
    explorer = Explorer()
    bundle = explorer.bundle("synthetic")
    data = explorer.dataset("synthetic", "test")
    source = ArraySource(data.images, data.labels)
    # nearest patches with every image's scores
    done = both_engines(NearestPass(keep_all_scores=True), bundle, source, 100)
    local, remote = (nearest_finish(bundle.model, d, source, "test", True) for d in done)
    for name in ("images", "cells", "boxes", "labels", "pixels"):
        np.testing.assert_array_equal(getattr(remote, name), getattr(local, name))
    np.testing.assert_allclose(remote.scores, local.scores, rtol=1e-6)
    np.testing.assert_allclose(remote.all_scores, local.all_scores, rtol=1e-6)
    np.testing.assert_allclose(remote.maps, local.maps, rtol=1e-6)
    assert (remote.engine, local.engine) == ("ray", "local")
    # the global attribute explanation (Φ and its bootstrap intervals) on a slice of the split
    mods = modification_set(bundle.model, "reference", data.images.shape[1:])
    part = ArraySource(data.images[:120], data.labels[:120])
    done = both_engines(AttributePass(mods), bundle, part, 8)
    local, remote = (global_attributes_finish(bundle.model, d, mods, "test") for d in done)
    np.testing.assert_allclose(remote.phi, local.phi, rtol=1e-6)
    np.testing.assert_allclose(remote.weight_sum, local.weight_sum, rtol=1e-6)
    for a, b in zip(remote.phi_interval + remote.relative_interval,
                    local.phi_interval + local.relative_interval, strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    assert remote.images == local.images == 120
    # and the in-process pass is today's function, bit for bit
    reference = global_attributes(bundle.model, data.images[:120], mods, "test", batch_size=8)
    np.testing.assert_array_equal(local.phi, reference.phi)


@pytest.mark.slow
def test_an_unreadable_image_is_named_and_skipped_alike_on_both_engines(
    local_ray, tiny_folder_model: Path, tmp_path: Path
) -> None:
    explorer = Explorer([tiny_folder_model])
    bundle = explorer.bundle()
    data_root = Path(bundle.spec.dataset["name"])
    root = tmp_path / "data"
    shutil.copytree(data_root, root)
    listing = FolderSource.list(root, "test", bundle.spec.input_size)
    broken = root / "test" / listing.paths[5]
    broken.write_bytes(b"not an image at all")
    source = FolderSource.list(root, "test", bundle.spec.input_size)
    done = both_engines(NearestPass(keep_all_scores=True), bundle, source, 3)
    for outcome in done:
        assert len(outcome.failures) == 1
        path, reason = outcome.failures[0]
        assert path == str(broken) and reason
        assert 5 not in outcome.readable and len(outcome.readable) == len(source) - 1
    local, remote = (nearest_finish(bundle.model, d, source, "test", True) for d in done)
    np.testing.assert_array_equal(remote.images, local.images)
    np.testing.assert_array_equal(remote.cells, local.cells)
    np.testing.assert_allclose(remote.all_scores, local.all_scores, rtol=1e-6)
    # the split as the loader gives it skips the same file: the results index into it
    loaded = load_image_folder(root, "test", bundle.spec.input_size)
    assert loaded.skipped == ((str(broken), done[0].failures[0][1]),)
    assert len(loaded) == len(source) - 1
    direct = nearest_patches(
        bundle.model, loaded.images, loaded.labels, "test", keep_all_scores=True
    )
    np.testing.assert_array_equal(local.images, direct.images)
    np.testing.assert_array_equal(local.all_scores, direct.all_scores)
    np.testing.assert_array_equal(local.labels, direct.labels)
    # an attribute pass skips it too, and its bootstrap keys stay the files' places
    mods = modification_set(bundle.model, "reference", source.image_shape)
    done = both_engines(AttributePass(mods), bundle, source, 4)
    local, remote = (global_attributes_finish(bundle.model, d, mods, "test") for d in done)
    assert local.images == remote.images == len(source) - 1
    np.testing.assert_allclose(remote.phi, local.phi, rtol=1e-6)
    np.testing.assert_allclose(remote.phi_interval[0], local.phi_interval[0], rtol=1e-6)


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


def interrupt_attributes(description: str):
    """A progress wrapper that interrupts the attribute pass, as a user's Ctrl-C, before its first
    batch is folded in (the nearest-patch pass before it runs through)."""

    def wrap(batches):
        for batch in batches:
            if description.startswith("attributes"):
                raise KeyboardInterrupt
            yield batch

    return wrap


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_an_interrupted_pass_leaves_nothing_half_written(
    engine: str, tiny_folder_model: Path, tmp_path: Path, request
) -> None:
    if engine == "ray":
        request.getfixturevalue("local_ray")
    cache = tmp_path / "cache"
    explorer = Explorer([tiny_folder_model], cache_root=cache)
    with pytest.raises(KeyboardInterrupt):
        explorer.analyse(
            splits=["train"], modes=["reference"], progress=interrupt_attributes, engine=engine
        )
    assert explorer.has_nearest(split="train")  # the finished pass is stored whole
    assert not explorer.has_global_attributes(None, "train", "reference")
    results = sorted(
        p.name for p in cache.rglob("*") if p.is_file() and "versions" not in p.parts
    )  # (modified images kept by content are whole files, each written atomically)
    assert results == sorted([explorer.nearest_path(split="train").name, "forward_batch.json"])
