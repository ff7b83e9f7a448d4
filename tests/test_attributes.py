"""Attribute importance (Nauta et al.): exactness, the weighting, readings, statistics and text."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import torch

from explorer.analysis.attributes import (
    GREY_INAPPLICABLE,
    WHY_RAW_FAVOURS_CONTRAST,
    GlobalAttributes,
    ImageModification,
    attribute_batch,
    generalises,
    global_attributes,
    local_attributes,
    local_attributes_batch,
    local_disagrees,
    match_sentence,
    most_common_top,
    prototype_sentence,
    ranking,
    relative,
    shares,
    sorted_values,
    weighted_mean,
    welch_by_modification,
    zscores,
)
from explorer.cache import AnalysisCache
from explorer.models.checkpoint import load_model
from explorer.models.protopnet import ProtoPNet
from tests.conftest import tiny_spec

# --- small test modifications (independent of explorer.analysis.modifications) -----------------------


@dataclass(frozen=True)
class Identity:
    name: str = "identity"

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return rgb.copy()


@dataclass(frozen=True)
class ChannelRotation:
    """A crude hue rotation by 120°: R → G → B. Leaves grey pixels unchanged."""

    name: str = "hue"

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return np.roll(rgb, 1, axis=2).copy()


@dataclass(frozen=True)
class Desaturate:
    """``f·img + (1 − f)·grey(img)``, grey = the channel mean, so grey pixels stay exactly."""

    name: str = "saturation"
    factor: float = 0.5

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        img = rgb.astype(np.float64)
        grey = img.mean(axis=2, keepdims=True)
        return np.clip(np.rint(self.factor * img + (1 - self.factor) * grey), 0, 255).astype(
            np.uint8
        )


@dataclass(frozen=True)
class Contrast:
    name: str = "contrast"
    factor: float = 0.45

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        img = rgb.astype(np.float64)
        out = self.factor * img + (1 - self.factor) * img.mean()
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Blur:
    name: str = "texture"

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(rgb, (3, 3), 0)


@dataclass(frozen=True)
class Shift:
    name: str = "shape"
    pixels: int = 3

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return np.roll(rgb, (self.pixels, self.pixels), axis=(0, 1)).copy()


IDENTITIES = (Identity("identity"), Identity("identity2"), Identity("identity3"))
MODS = (ChannelRotation(), Shift(), Blur(), Contrast(), Desaturate())
NAMES = tuple(m.name for m in MODS)


def colour_images(n: int, size: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny(tiny_run):
    folder, (train_set, test_set, _) = tiny_run
    return load_model(folder).model, train_set, test_set


def test_test_modifications_satisfy_the_protocol() -> None:
    for m in (*MODS, *IDENTITIES):
        assert isinstance(m, ImageModification)


# --- exactness ------------------------------------------------------------------------------------


def test_identity_modifications_give_exactly_zero_on_a_small_cnn(random_model: ProtoPNet) -> None:
    images = colour_images(5, size=23)  # native size ≠ input size: preprocess resizes
    for local in local_attributes_batch(random_model, images, IDENTITIES):
        assert local.phi.shape == (random_model.spec.num_prototypes, len(IDENTITIES))
        assert local.phi.dtype == np.float64
        assert (local.phi == 0).all()
        assert local.not_applicable == ()
    result = global_attributes(random_model, images, IDENTITIES, "test", batch_size=2)
    assert (result.phi == 0).all()


def test_identity_gives_zero_even_when_every_version_is_forwarded(random_model: ProtoPNet) -> None:
    """Without reusing the original for unchanged inputs, batch position alone must not matter (it is
    exact on our CPUs; the bound allows for kernels that treat batch rows differently)."""
    images = colour_images(7, size=16)
    forced = attribute_batch(random_model, images, IDENTITIES, reuse_unchanged=False)
    assert forced.forwarded == 7 * (1 + len(IDENTITIES))
    assert np.abs(forced.phi).max() <= 1e-5
    reused = attribute_batch(random_model, images, IDENTITIES)
    assert reused.forwarded == 7  # only the originals
    assert (reused.phi == 0).all()
    np.testing.assert_array_equal(reused.similarity, forced.similarity)


def test_identity_modifications_give_exactly_zero_on_the_trained_model(tiny) -> None:
    model, _, test_set = tiny
    images = test_set.images[:12]
    for local in local_attributes_batch(model, images, (*IDENTITIES, *MODS)):
        assert (local.phi[:, : len(IDENTITIES)] == 0).all()
        assert np.isfinite(local.phi).all()
    result = global_attributes(model, images, IDENTITIES, "test", batch_size=5)
    assert (result.phi == 0).all()
    assert result.images == 12


def test_original_similarity_is_the_models_score(random_model: ProtoPNet) -> None:
    images = colour_images(4)
    with torch.no_grad():
        scores = random_model(random_model.preprocess(images)).scores.numpy()
    batch = attribute_batch(random_model, images, MODS)
    np.testing.assert_array_equal(batch.similarity, scores)


def test_grey_images_make_hue_and_saturation_not_applicable(random_model: ProtoPNet) -> None:
    grey = np.random.default_rng(1).integers(0, 256, (20, 20), dtype=np.uint8)
    grey_rgb = np.repeat(grey[:, :, None], 3, axis=2)
    colour = colour_images(1)[0]
    locals_ = local_attributes_batch(random_model, [grey_rgb, grey, colour], MODS)
    hue, sat = NAMES.index("hue"), NAMES.index("saturation")
    for local in locals_[:2]:
        assert set(local.not_applicable) == {"hue", "saturation"}
        np.testing.assert_allclose(local.phi[:, [hue, sat]], 0.0, atol=1e-6)
        assert list(local.applicable) == [n not in GREY_INAPPLICABLE for n in NAMES]
    np.testing.assert_array_equal(locals_[0].phi, locals_[1].phi)  # [H, W] is repeated to RGB
    assert locals_[2].not_applicable == ()
    assert np.abs(locals_[2].phi[:, hue]).max() > 0


def test_grey_input_models_make_hue_and_saturation_not_applicable() -> None:
    torch.manual_seed(0)
    spec = tiny_spec(backbone="small_cnn", channels=1, classes=2, size=16, dim=4,
                     options={"widths": [4], "pools": 1})  # fmt: skip
    model = ProtoPNet(spec).eval()
    assert model.spec.grey_input is False and model.spec.channels == 1
    local = local_attributes(model, colour_images(1)[0], MODS)
    assert set(local.not_applicable) == {"hue", "saturation"}
    result = global_attributes(model, colour_images(3), MODS, "train")
    assert set(result.not_applicable) == {"hue", "saturation"}


def test_phi_is_read_at_the_originals_best_cell_not_re_minimised() -> None:
    """A red pixel on black; the prototype is 'red'. Shifting the image moves the red pixel: the
    re-minimised similarity is unchanged, but read at the original's cell it falls sharply."""
    spec = tiny_spec(backbone="identity", channels=3, classes=2, per_class=1, dim=3, size=8)
    model = ProtoPNet(spec).eval()
    with torch.no_grad():
        for conv in (model.add_on[0], model.add_on[2]):
            conv.weight.copy_(4 * torch.eye(3).view(3, 3, 1, 1))
            conv.bias.fill_(-2.0)
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[2, 2] = (255, 0, 0)
    with torch.no_grad():
        red = model.conv_features(model.preprocess([image]))[0, :, 2, 2]
        model.prototype_vectors[0] = red.view(3, 1, 1)
    shift = Shift(pixels=3)
    local = local_attributes(model, image, (shift,))
    np.testing.assert_array_equal(local.cells[0], (2, 2))
    assert local.similarity[0] == pytest.approx(np.log(1e4), abs=1e-3)

    with torch.no_grad():
        out = model(model.preprocess([image, shift.apply(image)]))
    at_cell = out.similarity_maps[1, 0, 2, 2].double()
    expected = out.similarity_maps[0, 0, 2, 2].double() - at_cell
    assert local.phi[0, 0] == float(expected)
    assert local.phi[0, 0] > 5.0
    re_minimised = float(out.scores[0, 0].double() - out.scores[1, 0].double())
    assert re_minimised == pytest.approx(0.0, abs=1e-3)  # what a re-minimised φ would say


def test_phi_matches_a_direct_computation_at_the_cell(random_model: ProtoPNet) -> None:
    image = colour_images(1, size=16, seed=3)[0]
    local = local_attributes(random_model, image, MODS)
    with torch.no_grad():
        maps = random_model(random_model.preprocess([image] + [m.apply(image) for m in MODS]))
        maps = maps.similarity_maps.double().numpy()  # [1 + M, P, h, w]
    for p in range(random_model.spec.num_prototypes):
        row, col = local.cells[p]
        assert maps[0, p, row, col] == maps[0, p].max()
        for m in range(len(MODS)):
            assert local.phi[p, m] == pytest.approx(maps[0, p, row, col] - maps[1 + m, p, row, col])


# --- weighting and the global pass -----------------------------------------------------------------


def test_weighted_mean() -> None:
    assert weighted_mean(np.array([[1.0], [3.0]]), np.array([1.0, 3.0]))[0] == 2.5
    phi = np.full((4, 3, 2), 0.7)
    s = np.random.default_rng(0).uniform(0.1, 5, (4, 3))
    np.testing.assert_allclose(weighted_mean(phi, s), 0.7, rtol=0, atol=1e-15)
    with pytest.raises(ValueError):
        weighted_mean(phi, s[:, :2])


def test_global_equals_a_per_image_loop_and_is_independent_of_batch_size(
    random_model: ProtoPNet,
) -> None:
    images = colour_images(9, size=18, seed=5)
    loop = [local_attributes(random_model, im, MODS) for im in images]
    phi = np.stack([x.phi for x in loop])  # [N, P, M]
    s = np.stack([x.similarity for x in loop])  # [N, P]
    expected = weighted_mean(phi, s)
    results = [
        global_attributes(random_model, images, MODS, "test", batch_size=b) for b in (1, 4, 9, 32)
    ]
    for result in results:
        assert result.modifications == NAMES
        assert result.images == 9
        np.testing.assert_allclose(result.phi, expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(result.weight_sum, s.astype(np.float64).sum(0), rtol=1e-12)
    np.testing.assert_allclose(results[0].phi, results[-1].phi, rtol=0, atol=1e-12)


def test_global_records_timings_and_progress(random_model: ProtoPNet) -> None:
    timings: dict[str, float] = {}
    seen: list[int] = []

    def progress(it):
        for x in it:
            seen.append(x)
            yield x

    global_attributes(random_model, colour_images(5), MODS, "train", 2, progress, timings)
    assert set(timings) == {"modify", "forward"} and all(v > 0 for v in timings.values())
    assert seen == [0, 2, 4]
    with pytest.raises(ValueError):
        global_attributes(random_model, colour_images(0), MODS, "train")


def test_a_copied_prototype_gets_the_same_explanations(random_model: ProtoPNet) -> None:
    j, k = 1, 4
    with torch.no_grad():
        random_model.prototype_vectors[k] = random_model.prototype_vectors[j]
    images = colour_images(6, seed=2)
    local = local_attributes(random_model, images[0], MODS)
    np.testing.assert_array_equal(local.phi[j], local.phi[k])
    np.testing.assert_array_equal(local.similarity[j], local.similarity[k])
    np.testing.assert_array_equal(local.cells[j], local.cells[k])
    result = global_attributes(random_model, images, MODS, "test", batch_size=4)
    np.testing.assert_array_equal(result.phi[j], result.phi[k])
    np.testing.assert_array_equal(result.weight_sum[j], result.weight_sum[k])


def test_two_runs_give_identical_results(tiny) -> None:
    model, train_set, _ = tiny
    images = train_set.images[:10]
    first = local_attributes_batch(model, images, MODS)
    second = local_attributes_batch(model, images, MODS)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.phi, b.phi)
        np.testing.assert_array_equal(a.cells, b.cells)
    g1 = global_attributes(model, images, MODS, "train", batch_size=3)
    g2 = global_attributes(model, images, MODS, "train", batch_size=3)
    np.testing.assert_array_equal(g1.phi, g2.phi)
    np.testing.assert_array_equal(g1.weight_sum, g2.weight_sum)


def test_global_attributes_round_trip_through_the_cache(tmp_path, random_model) -> None:
    result = global_attributes(random_model, colour_images(3), MODS, "test")
    cache = AnalysisCache("abc", root=tmp_path)
    cache.save("attributes_test", result.to_arrays())
    loaded = GlobalAttributes.from_arrays("test", cache.load("attributes_test"))
    assert loaded.modifications == result.modifications and loaded.images == 3
    assert loaded.not_applicable == ()
    np.testing.assert_array_equal(loaded.phi, result.phi)
    np.testing.assert_array_equal(loaded.weight_sum, result.weight_sum)


def test_global_intervals_come_from_the_same_pass_and_are_kept(tmp_path, random_model) -> None:
    """The bootstrap intervals: independent of the batch size, around the point estimate, stored
    with the result; a result stored before intervals existed loads without them."""
    images = colour_images(12, size=18, seed=7)
    results = [
        global_attributes(random_model, images, MODS, "test", batch_size=b) for b in (1, 5, 12)
    ]
    # each image's resample counts are its own: batches do not matter (up to float32 kernels, which
    # round differently at other batch sizes: ~1e-5 relative; other counts would move them by %)
    for result in results[1:]:
        for ours, theirs in zip(result.phi_interval, results[0].phi_interval, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-9)
        for ours, theirs in zip(
            result.relative_interval, results[0].relative_interval, strict=True
        ):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-9)
    result = results[-1]
    assert result.has_intervals and result.replicates == 200 and result.confidence == 0.95
    low, high = result.phi_interval
    assert (low <= high).all() and (high - low).max() > 0
    inside = (low - 1e-9 <= result.phi) & (result.phi <= high + 1e-9)
    assert (
        inside.mean() > 0.9
    )  # the estimate lies within its own percentile interval (almost always)
    rel_low, rel_high = result.relative_interval
    assert (rel_low >= 0).all() and (rel_high <= 100).all() and (rel_low <= rel_high).all()
    cache = AnalysisCache("abc", root=tmp_path)
    cache.save("attributes_test", result.to_arrays())
    loaded = GlobalAttributes.from_arrays("test", cache.load("attributes_test"))
    assert loaded.has_intervals and loaded.replicates == 200
    np.testing.assert_array_equal(loaded.phi_interval[0], low)
    np.testing.assert_array_equal(loaded.relative_interval[1], rel_high)
    old = {k: v for k, v in result.to_arrays().items() if "_low" not in k and "_high" not in k}
    assert not GlobalAttributes.from_arrays("test", old).has_intervals
    none = global_attributes(random_model, images, MODS, "test", replicates=0)
    assert not none.has_intervals and "phi_low" not in none.to_arrays()
    np.testing.assert_array_equal(none.phi, result.phi)  # the estimate is the same either way


def test_with_the_sibling_modifications_when_available(random_model: ProtoPNet) -> None:
    modifications = pytest.importorskip("explorer.analysis.modifications")
    image = colour_images(1, size=32, seed=4)[0]
    local = local_attributes(random_model, image, modifications.identity_set())
    assert (local.phi == 0).all()
    reference = modifications.reference_set()
    local = local_attributes(random_model, image, reference)
    assert local.modifications == tuple(m.name for m in reference)
    assert np.isfinite(local.phi).all()


# --- readings, statistics -------------------------------------------------------------------------


def _global(phi: np.ndarray, split: str, names=NAMES, not_applicable=()) -> GlobalAttributes:
    return GlobalAttributes(names, split, phi, np.ones(len(phi)), 10, not_applicable)


def test_zscores_columns_and_zeroes_constant_ones() -> None:
    phi = np.array([[1.0, 0.3], [2.0, 0.3], [3.0, 0.3]])
    z = zscores(phi)
    np.testing.assert_allclose(z[:, 0], [-1.224744871, 0.0, 1.224744871])
    assert (z[:, 1] == 0).all()
    assert (zscores(np.full((4, 3), 0.1)) == 0).all()


def test_shares_count_negative_values_as_zero() -> None:
    phi = np.array([[1.0, 1.0, 2.0], [-1.0, 2.0, 2.0], [-0.5, 0.0, -0.1]])
    np.testing.assert_allclose(shares(phi), [[0.25, 0.25, 0.5], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])


def test_relative_is_the_percentile_of_each_share_among_prototypes() -> None:
    # shares: [.25 .25 .5], [.5 0 .5], [0 1 0]  (worked on paper)
    phi = np.array([[1.0, 1.0, 2.0], [2.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    np.testing.assert_allclose(
        relative(phi), [[50.0, 50.0, 75.0], [100.0, 0.0, 75.0], [0.0, 100.0, 0.0]]
    )
    # a prototype that reacts ten times as strongly to everything keeps its profile and its reading
    louder = phi.copy()
    louder[0] *= 10
    np.testing.assert_array_equal(relative(louder), relative(phi))
    assert (relative(np.full((4, 3), 0.1)) == 50).all()
    assert (relative(np.array([[0.3, 0.1]])) == 50).all()
    # a duplicated prototype gets the same reading as its twin
    twins = relative(np.vstack([phi, phi[1]]))
    np.testing.assert_array_equal(twins[1], twins[3])


def test_ranking_and_most_common_top() -> None:
    assert ranking(np.array([0.1, 0.5, 0.3]), ("a", "b", "c")) == [
        ("b", 0.5),
        ("c", 0.3),
        ("a", 0.1),
    ]
    phi = np.array([[0, 0, 3.0], [0, 0, 2.0], [5.0, 0, 1.0]])
    assert most_common_top(phi, ("a", "b", "c")) == "c"
    assert most_common_top(phi, ("a", "b", "c"), min_share=0.9) is None
    assert most_common_top(phi, ("a", "b", "c"), not_applicable=("c",)) == "a"


def test_welch_by_modification() -> None:
    rng = np.random.default_rng(0)
    train, test = (
        _global(rng.normal(size=(12, 5)), "train"),
        _global(rng.normal(size=(12, 5)), "test"),
    )
    result = welch_by_modification(train, test)
    assert list(result) == list(NAMES)
    assert all(np.isfinite(t) and 0 <= p <= 1 for t, p in result.values())
    same = welch_by_modification(train, _global(train.phi.copy(), "test"))
    assert all(p == pytest.approx(1.0) and t == pytest.approx(0.0) for t, p in same.values())
    constant = welch_by_modification(_global(np.zeros((4, 5)), "a"), _global(np.zeros((4, 5)), "b"))
    assert all(v == (0.0, 1.0) for v in constant.values())


def test_generalises_rule() -> None:
    train = np.array([[5.0, 4, 3, 2, 1], [5.0, 4, 3, 2, 1], [5.0, 4, 3, 2, 1], [1.0, 1, 1, 1, 1]])
    test = np.array([[4.0, 3.5, 3, 1, 0], [1.0, 2, 3, 4, 5], [4.0, 5, 3, 2, 1], [1.0, 1, 1, 1, 1]])
    verdict = generalises(_global(train, "train"), _global(test, "test"))
    assert verdict.tolist() == [True, False, False, True]
    loose = generalises(_global(train, "train"), _global(test, "test"), require_same_top=False)
    assert loose.tolist() == [True, False, True, True]
    # a not-applicable modification is left out of the ranking
    na = ("hue",)
    train2 = np.array([[0.0, 4, 3, 2, 1]])
    test2 = np.array([[9.0, 4, 3, 2, 1]])
    assert generalises(_global(train2, "train", not_applicable=na), _global(test2, "test")).all()


def test_local_disagrees() -> None:
    global_phi = np.array([0.5, 0.4, 0.3, 0.2, 0.1])
    assert local_disagrees(global_phi[::-1], global_phi)
    assert not local_disagrees(global_phi, global_phi)
    assert not local_disagrees(np.zeros(5), global_phi)  # constant: ρ undefined, no flag
    applicable = np.array([False, True, True, True, True])
    reversed_but_hue = np.array([9.0, 0.1, 0.2, 0.3, 0.4])
    assert local_disagrees(reversed_but_hue, global_phi, applicable=applicable)


# --- text -----------------------------------------------------------------------------------------


def test_sorted_values_matches_the_papers_example() -> None:
    names = ("hue", "shape", "texture", "contrast", "saturation")
    values = np.array([2.2473, 1.0077, 0.7546, 0.0639, 0.5921])
    assert sorted_values(values, names) == (
        "Hue 2.2473, Shape 1.0077, Texture 0.7546, Saturation 0.5921, Contrast 0.0639"
    )
    assert sorted_values(np.array([-0.21, 0.5]), ("hue", "shape"), 2) == "Shape 0.50, Hue −0.21"
    assert sorted_values(np.array([-1e-9, 0.5]), ("hue", "shape")) == "Shape 0.5000, Hue 0.0000"


def test_prototype_sentence_common_top_and_unusual_relative() -> None:
    raw = np.array([0.2, 0.9, 0.1, 1.78, 0.4])
    rel = np.array([10.0, 95.0, 40.0, 50.0, 0.0])
    text = prototype_sentence(12, "sandal", raw, rel, NAMES, common_top="contrast")
    assert text.startswith("Prototype 12 (class *sandal*) responds most to contrast (1.7800)")
    assert "— as most prototypes do" in text
    assert "reference reading: raw Φ, as the paper" in text
    assert (
        "relative to the other prototypes it is unusually sensitive to shape (95th percentile)"
        in text
    )
    assert "relative reading: percentile of Φ's share among this model's prototypes" in text
    assert "stronger" not in text and "grey" not in text


def test_prototype_sentence_negative_values_not_applicable_and_nothing_unusual() -> None:
    raw = np.array([0.0, 0.3, -0.21, 0.5, 0.0])
    rel = np.array([100.0, 50.0, 21.0, 72.0, 100.0])  # hue/saturation high but not applicable
    text = prototype_sentence(3, "boot", raw, rel, NAMES, ("hue", "saturation"), "shape")
    assert (
        "responds most to contrast (0.5000) — unlike most prototypes, which respond most to shape"
        in text
    )
    assert "no modification stands out (all below the 80th percentile)" in text
    assert "The texture change made the match *stronger* (Φ = −0.2100)" in text
    assert "hue and saturation do not apply to grey images" in text
    assert "reference reading" in text and "relative reading" in text


def test_match_sentence() -> None:
    global_phi = np.array([0.5, 0.4, 0.3, 0.2, 0.1])
    phi = np.array([0.1, 0.2, 0.3, 0.4, -0.05])
    rel = np.array([0.0, 0.0, 0.0, 83.0, 0.0])
    other = np.array([0.5, 0.4, 0.3, 0.05, 0.45])  # ranks contrast last: ρ = −0.9
    text = match_sentence(7, "hue", phi, NAMES, rel=rel, global_phi=other)
    assert text.startswith("In this image, the match of prototype 7 (class *hue*) depends most on")
    assert "contrast (φ = 0.4000)" in text
    assert "reference reading: raw φ, as the paper" in text
    assert "unusually sensitive to contrast (83rd percentile)" in text
    assert "relative reading: percentile of φ's share among this image's prototypes" in text
    assert "The saturation change made the match *stronger* (φ = −0.0500)" in text
    assert "disagrees with the prototype's global explanation" in text
    agree = match_sentence(
        7, "hue", global_phi, NAMES, ("hue", "saturation"), global_phi=global_phi
    )
    assert "agrees with the prototype's global explanation (which ranks shape first" in agree
    assert "depends most on shape" in agree
    assert "hue and saturation do not apply to grey images" in agree


def test_why_raw_favours_contrast_is_explained() -> None:
    assert "contrast" in WHY_RAW_FAVOURS_CONTRAST and "not comparable" in WHY_RAW_FAVOURS_CONTRAST
    assert 2 <= WHY_RAW_FAVOURS_CONTRAST.count(". ") + 1 <= 3


def test_uncertainty_sentence_says_when_the_top_two_cannot_be_told_apart() -> None:
    import dataclasses

    from explorer.analysis.attributes import uncertainty_sentence
    from explorer.viz.figures import attribute_figure

    phi = np.array([[0.50, 0.45, 0.10, 0.00, 0.02], [0.60, 0.10, 0.05, 0.00, 0.01]])
    plain = _global(phi, "train")
    assert uncertainty_sentence(plain, 0).startswith("No uncertainty intervals")
    half = np.full_like(phi, 0.03)
    rel = relative(phi)
    result = dataclasses.replace(
        plain, phi_interval=(phi - half, phi + half), relative_interval=(rel - 1, rel + 1),
        replicates=200,
    )  # fmt: skip
    close = uncertainty_sentence(result, 0)  # 0.50 ± 0.03 against 0.45 ± 0.03: they overlap
    assert close.startswith("Uncertainty (95% bootstrap intervals over the 10 train images, 200")
    assert f"Φ {NAMES[0]} 0.5000 [0.4700, 0.5300], {NAMES[1]} 0.4500 [0.4200, 0.4800]" in close
    assert f"cannot tell {NAMES[0]} from {NAMES[1]}" in close
    apart = uncertainty_sentence(result, 1)  # 0.60 against 0.10
    assert f"Φ {NAMES[0]} 0.6000 [0.5700, 0.6300]" in apart
    assert f"{NAMES[0]} is ahead of {NAMES[1]} beyond their intervals" in apart
    figure = attribute_figure(
        NAMES, {"Φ train": phi[0]}, "t", intervals={"Φ train": (phi[0] - half[0], phi[0] + half[0])}
    )
    bars = figure.data[0].error_y
    np.testing.assert_allclose(bars.array, half[0])
    np.testing.assert_allclose(bars.arrayminus, half[0])
