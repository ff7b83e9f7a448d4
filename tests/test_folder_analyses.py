"""Analyses shipped in a model folder: images stored as PNG/JPEG arrays, packing within the size
budget (exact boxes, stratified score subsets), the verified ``analyses/`` folder, and the facade
reading it before the user's cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from explorer.analysis.attribute_sets import attributes_cache_name
from explorer.analysis.nearest import NearestPatches, nearest_patches
from explorer.analysis.packing import pack_results, stratified_rows
from explorer.analysis.whatif import what_if
from explorer.api import Explorer
from explorer.cache import AnalysisCache
from explorer.folder_analyses import (
    ANALYSES_DIR,
    MANIFEST_FILE,
    FolderAnalyses,
    analyses_share,
    write_folder_analyses,
)
from explorer.models.checkpoint import load_model
from explorer.pixel_store import decode_images, encode_images


@pytest.fixture(scope="module")
def tiny(tiny_run):
    folder, (train_set, test_set, _) = tiny_run
    bundle = load_model(folder)
    train = nearest_patches(bundle.model, train_set.images, train_set.labels, "train")
    test = nearest_patches(
        bundle.model, test_set.images, test_set.labels, "test", keep_all_scores=True
    )
    return folder, bundle, train, test


def _noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# --- images as arrays ------------------------------------------------------------------------------


def test_png_round_trip_is_exact_for_colour_grey_and_mixed_sizes() -> None:
    colour = _noise((9, 7, 3))
    grey = np.repeat(_noise((5, 6, 1), seed=1), 3, axis=2)  # grey stored as RGB
    single = _noise((4, 4, 1), seed=2)
    arrays = encode_images([colour, grey, single])
    back = decode_images(arrays)
    assert list(arrays["grey"]) == [False, True, True]
    for original, decoded in zip([colour, grey, single], back, strict=True):
        np.testing.assert_array_equal(decoded, original)


def test_damaged_image_bytes_are_refused() -> None:
    arrays = encode_images([_noise((8, 8, 3))])
    arrays["bytes"] = arrays["bytes"][:10].copy()
    arrays["offsets"] = np.array([0, 10])
    with pytest.raises(ValueError, match="damaged"):
        decode_images(arrays)


# --- nearest patches in few bytes ------------------------------------------------------------------


def test_nearest_patches_round_trip_exactly_as_png(tiny) -> None:
    _, _, _, test = tiny
    back = NearestPatches.from_arrays("test", test.to_arrays())
    for field in ("images", "scores", "cells", "boxes", "labels", "pixels", "maps", "all_scores"):
        np.testing.assert_array_equal(getattr(back, field), getattr(test, field), err_msg=field)
    assert back.pixels_exact is None and back.score_images is None


def test_with_jpeg_every_box_stays_exact(tiny) -> None:
    _, _, train, _ = tiny
    back = NearestPatches.from_arrays("train", train.to_arrays(jpeg_quality=40))
    for j in range(train.images.shape[0]):
        for r in range(train.images.shape[1]):
            y0, y1, x0, x1 = train.boxes[j, r]
            np.testing.assert_array_equal(
                back.pixels[j, r, y0:y1, x0:x1], train.pixels[j, r, y0:y1, x0:x1]
            )
    np.testing.assert_array_equal(back.scores, train.scores)
    np.testing.assert_array_equal(back.maps, train.maps)


def test_a_score_subset_is_stratified_and_gives_the_what_if_of_its_rows(tiny) -> None:
    _, bundle, _, test = tiny
    rows = stratified_rows(test.all_labels, 0.5)
    for c in np.unique(test.all_labels):
        members = (test.all_labels == c).sum()
        assert (test.all_labels[rows] == c).sum() == max(1, round(members * 0.5))
    back = NearestPatches.from_arrays("test", test.to_arrays(score_rows=rows))
    assert back.scored_images == len(rows) and back.images_in_split == len(test.all_labels)
    np.testing.assert_array_equal(back.score_images, rows)
    weight = bundle.model.last_layer_weight.detach().numpy().astype(np.float64)
    off = weight.copy()
    off[:, 0] = 0
    direct = what_if(test.all_scores[rows], test.all_labels[rows], weight, off)
    shipped = what_if(back.all_scores, back.all_labels, weight, off)
    assert (shipped.baseline_accuracy, shipped.accuracy) == (
        direct.baseline_accuracy,
        direct.accuracy,
    )


def test_packing_keeps_everything_exact_when_it_fits_and_trades_images_first(tiny) -> None:
    _, _, train, test = tiny
    results = {"nearest_train": ("t", train), "nearest_test": ("t", test)}
    _, packing = pack_results(results, budget=10**8)
    assert packing.fits and packing.jpeg_quality is None
    assert packing.scored_images == packing.test_images == len(test.all_labels)
    exact_size = packing.bytes
    _, squeezed = pack_results(results, budget=int(exact_size * 0.7))
    assert squeezed.bytes < exact_size
    if squeezed.scored_images < squeezed.test_images:  # subsets only once images are JPEG
        assert squeezed.jpeg_quality is not None
    assert "exact" in squeezed.describe()


# --- the analyses/ folder --------------------------------------------------------------------------


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns(ANALYSES_DIR))
    return target


def test_written_results_are_verified_and_a_changed_byte_is_not_trusted(tiny, tmp_path) -> None:
    folder, bundle, _, test = tiny
    model = _copy(folder, tmp_path)
    write_folder_analyses(model, bundle.content_hash, {"nearest_test": ("t", test.to_arrays())})
    shipped = FolderAnalyses(model, bundle.content_hash)
    assert shipped.problem is None and shipped.has("nearest_test")
    assert shipped.load("nearest_test") is not None
    path = shipped.path("nearest_test")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert shipped.load("nearest_test") is None
    assert not shipped.has("nearest_test")  # not offered again


def test_analyses_of_other_weights_are_stale_and_ignored(tiny, tmp_path) -> None:
    folder, bundle, _, test = tiny
    model = _copy(folder, tmp_path)
    write_folder_analyses(model, "0" * 16, {"nearest_test": ("t", test.to_arrays())})
    shipped = FolderAnalyses(model, bundle.content_hash)
    assert shipped.stale and not shipped.has("nearest_test")
    assert "stale" in shipped.problem


@pytest.mark.parametrize(
    "manifest",
    [
        "{not json",
        json.dumps({"format": 99, "content_hash": "x", "results": {}}),
        json.dumps({"format": 1, "content_hash": None}),
    ],
)
def test_an_unreadable_manifest_is_reported_and_nothing_is_used(tiny, tmp_path, manifest) -> None:
    folder, bundle, _, _ = tiny
    model = _copy(folder, tmp_path)
    (model / ANALYSES_DIR).mkdir()
    (model / ANALYSES_DIR / MANIFEST_FILE).write_text(manifest)
    shipped = FolderAnalyses(model, bundle.content_hash)
    assert shipped.problem and not shipped.results


def test_a_manifest_naming_a_file_outside_the_folder_is_refused(tiny, tmp_path) -> None:
    folder, bundle, _, test = tiny
    model = _copy(folder, tmp_path)
    write_folder_analyses(model, bundle.content_hash, {"nearest_test": ("t", test.to_arrays())})
    path = model / ANALYSES_DIR / MANIFEST_FILE
    document = json.loads(path.read_text())
    document["results"]["nearest_test"]["file"] = "../model.safetensors"
    path.write_text(json.dumps(document))
    shipped = FolderAnalyses(model, bundle.content_hash)
    assert "outside" in shipped.problem and not shipped.has("nearest_test")


def test_the_facade_ships_results_into_a_folder_and_a_new_user_reads_them(tiny, tmp_path) -> None:
    folder, bundle, train, test = tiny
    model = _copy(folder, tmp_path)
    cache_root = tmp_path / "cache-of-the-maker"
    cache = AnalysisCache(bundle.content_hash, cache_root)
    cache.save("nearest_train", train.to_arrays())
    cache.save("nearest_test", test.to_arrays())
    maker = Explorer(model, cache_root=cache_root)
    squeezed = maker.analyse(bundle.spec.model_id, modes=(), into_folder=True)
    # this tiny folder cannot hold them in a quarter: the smallest packing, and it says so
    assert squeezed.packing is not None and not squeezed.packing.fits
    assert squeezed.folder_share == pytest.approx(analyses_share(model))
    run = maker.analyse(bundle.spec.model_id, modes=(), into_folder=True, size_share=None)
    assert run.packing.fits and run.packing.jpeg_quality is None  # no limit: all exact

    newcomer = Explorer(model, cache_root=tmp_path / "empty-cache")
    model_id = bundle.spec.model_id
    assert newcomer.has_nearest(model_id, "train") and newcomer.has_nearest(model_id, "test")
    status = {r.name: r for r in newcomer.stored_analyses(model_id)}
    assert status["nearest_test"].where == "shipped" and status["nearest_test"].created
    assert status[attributes_cache_name("reference", "train")].where is None
    shipped = newcomer.nearest(model_id, "test")  # read, not computed: there is no data set here
    np.testing.assert_array_equal(shipped.scores, test.scores)
    np.testing.assert_array_equal(shipped.all_scores, test.all_scores)
    assert not list((tmp_path / "empty-cache").rglob("*.npz"))
    assert newcomer.shipped_analyses_note(model_id).startswith("nearest-patch")
