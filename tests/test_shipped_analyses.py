"""Integration: every shipped model folder carries its data-wide analyses, verified, within a quarter
of the folder, and they agree with the model (known answers, a fresh pass on the test split)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.api import Explorer
from explorer.data import load_split
from explorer.folder_analyses import SIZE_SHARE_LIMIT, FolderAnalyses, analyses_share
from explorer.models.checkpoint import load_model
from tests.conftest import SHIPPED_MODELS, shipped_folder

SIMILARITY_AT_DISTANCE_ZERO = np.log(1e4)


@pytest.fixture(scope="module", params=SHIPPED_MODELS)
def bundle(request: pytest.FixtureRequest):
    return load_model(shipped_folder(request.param))


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Explorer:
    """An explorer with an empty cache: whatever it finds comes from the model folders."""
    return Explorer(cache_root=tmp_path_factory.mktemp("empty-cache"))


def test_every_analysis_is_shipped_verified_and_within_its_share(bundle) -> None:
    shipped = FolderAnalyses(bundle.folder, bundle.content_hash)
    assert shipped.problem is None, shipped.problem
    for name, title in Explorer.analysis_names():
        assert shipped.has(name), f"{bundle.spec.model_id} does not ship {title}"
        assert shipped.load(name) is not None, f"{name} fails its check"
        assert shipped.results[name].created[:4] == "2026"
    share = analyses_share(bundle.folder)
    print(f"{bundle.spec.model_id}: analyses/ is {share:.1%} of the folder; {shipped.note}")
    assert share <= SIZE_SHARE_LIMIT


def test_the_model_card_and_the_facade_see_them_without_computing(bundle, explorer) -> None:
    model_id = bundle.spec.model_id
    assert all(r.where == "shipped" for r in explorer.stored_analyses(model_id))
    view = explorer.prototype(0, model_id)
    assert set(view.nearest) == {"train", "test"}
    report = explorer.redundancy(model_id)  # from the shipped scores and attributes
    assert report.pruned is not None
    assert not list(explorer.cache_root.rglob("*.npz")), "something was computed"


def test_each_prototypes_nearest_training_patch_is_its_source(bundle, explorer) -> None:
    """Known answer: a pushed prototype *is* a training patch, so the nearest training patch is its
    source (or ties with it at similarity log(1e4), distance 0)."""
    nearest = explorer.nearest(bundle.spec.model_id, "train")
    for record in bundle.projection:
        j = record.index
        if nearest.images[j, 0] != record.source_index:
            assert nearest.scores[j, 0] == pytest.approx(SIMILARITY_AT_DISTANCE_ZERO, abs=1e-3)
        else:
            assert tuple(nearest.cells[j, 0]) == tuple(record.cell)


def test_shipped_test_scores_are_the_models_scores(bundle, explorer) -> None:
    """The per-image scores kept for the test split equal a fresh forward pass over those images."""
    import torch

    nearest = explorer.nearest(bundle.spec.model_id, "test")
    test = load_split(bundle.spec.dataset["name"], "test")
    rows = nearest.score_images if nearest.score_images is not None else np.arange(len(test))
    assert nearest.images_in_split == len(test)
    pick = rows[np.linspace(0, len(rows) - 1, min(64, len(rows))).astype(int)]
    with torch.inference_mode():
        fresh = bundle.model(bundle.model.preprocess(test.images[pick])).scores.numpy()
    where = np.searchsorted(rows, pick)
    np.testing.assert_allclose(nearest.all_scores[where], fresh, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(nearest.all_labels[where], test.labels[pick])


def test_shipped_boxes_show_the_exact_pixels_of_the_data_set(bundle, explorer) -> None:
    from explorer.models.preprocess import to_model_pixels

    nearest = explorer.nearest(bundle.spec.model_id, "test")
    test = load_split(bundle.spec.dataset["name"], "test")
    for j in range(0, nearest.images.shape[0], max(1, nearest.images.shape[0] // 8)):
        image = to_model_pixels(test.images[nearest.images[j, 0]], bundle.spec)
        y0, y1, x0, x1 = nearest.boxes[j, 0]
        np.testing.assert_array_equal(nearest.pixels[j, 0, y0:y1, x0:x1], image[y0:y1, x0:x1])


def test_the_model_card_tab_lists_them_as_shipped_with_their_date(bundle, explorer) -> None:
    from explorer.ui.tabs.model_card import card_text

    text = card_text(explorer, bundle.spec.model_id)
    assert "not computed" not in text
    assert text.count("shipped with the model, 20") == len(Explorer.analysis_names())


WITH_INTERVALS = ("synthetic",)
"""Shipped models whose global attribute explanations were made with bootstrap intervals (the
others' predate them: ``python -m explorer analyse --model ID --into-folder`` remakes them, 1–3 h of
CPU each for elpv and fashion_mnist)."""


@pytest.mark.parametrize("model_id", WITH_INTERVALS)
@pytest.mark.parametrize("mode", ["reference", "disentangled"])
def test_shipped_global_attributes_carry_intervals_that_shrink_with_more_images(
    model_id: str, mode: str, explorer: Explorer
) -> None:
    widths = {}
    for split in ("train", "test"):
        result = explorer.global_attributes(model_id, split, mode)
        assert result.phi_interval is not None and result.relative_interval is not None
        low, high = result.phi_interval
        assert np.all(np.isfinite(low)) and np.all(low <= high)
        widths[split] = float(np.mean(high - low)), result.images
    view = explorer.prototype_attributes(0, model_id, mode)
    assert "95% bootstrap intervals" in view.uncertainty, view.uncertainty
    assert not list(explorer.cache_root.rglob("*.npz")), "something was computed"
    # 2400 train images against 600 test ones: a standard error about half as large
    (train_width, train_n), (test_width, test_n) = widths["train"], widths["test"]
    assert train_n > test_n and train_width < test_width, widths
