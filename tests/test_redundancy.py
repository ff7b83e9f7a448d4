"""Redundant prototypes: the three views, exact duplicates, clustering edges, pruning plans."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from explorer.analysis.nearest import nearest_patches
from explorer.analysis.redundancy import (
    DEFAULT_THRESHOLD,
    KEEP_ONE,
    LEAVE,
    MERGE,
    VIEWS,
    Cluster,
    Distances,
    cluster_prototypes,
    correlation_distances,
    cosine_distances,
    exact_duplicates,
    jaccard_distances,
    latent_distances,
    ordering,
    prototype_distances,
    prune_plan,
    pruned_weight,
    redundancy_report,
)
from explorer.analysis.whatif import merged_weight, modified_last_layer
from explorer.models.checkpoint import load_model
from explorer.train.push import push_prototypes

P, D, N, K, M = 8, 16, 60, 5, 5


def inputs(seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for every view: vectors, scores, nearest images, attributes."""
    rng = np.random.default_rng(seed)
    return {
        "prototype_vectors": rng.random((P, D, 1, 1)),
        "test_scores": rng.random((N, P)),
        "nearest_test_images": np.stack([rng.choice(N, K, replace=False) for _ in range(P)]),
        "attributes": rng.normal(size=(P, M)),
    }


def copied(data: dict[str, np.ndarray], j: int, k: int) -> dict[str, np.ndarray]:
    """Prototype ``j`` copied onto ``k``: same vector, score column, nearest images, attributes."""
    out = {name: value.copy() for name, value in data.items()}
    out["prototype_vectors"][k] = out["prototype_vectors"][j]
    out["test_scores"][:, k] = out["test_scores"][:, j]
    out["nearest_test_images"][k] = out["nearest_test_images"][j]
    out["attributes"][k] = out["attributes"][j]
    return out


def square(values: dict[tuple[int, int], float], size: int, fill: float) -> np.ndarray:
    matrix = np.full((size, size), fill)
    for (i, j), value in values.items():
        matrix[i, j] = matrix[j, i] = value
    np.fill_diagonal(matrix, 0.0)
    return matrix


def only(combined: np.ndarray) -> Distances:
    return Distances(latent=combined, behavioural=None, explanatory=None, combined=combined)


def test_a_copied_prototype_is_at_distance_zero_in_every_view_and_clustered() -> None:
    data = copied(inputs(), 2, 5)
    # each view on its own, without the duplicate rule
    assert latent_distances(data["prototype_vectors"])[2, 5] == 0
    assert correlation_distances(data["test_scores"])[2, 5] == 0
    assert jaccard_distances(data["nearest_test_images"])[2, 5] == 0
    assert cosine_distances(data["attributes"])[2, 5] == 0
    distances = prototype_distances(**data)
    for view in (*VIEWS, "combined"):
        matrix = getattr(distances, view)
        assert matrix[2, 5] == matrix[5, 2] == 0, view
        others = np.delete(matrix[2], [2, 5])
        assert (others > 0).all(), view
    assert distances.duplicates == ((2, 5),)  # identical vectors
    classes = np.array([0, 0, 1, 1, 2, 1, 3, 3])
    for threshold in (0.0, DEFAULT_THRESHOLD):
        clusters = cluster_prototypes(distances, threshold, prototype_classes=classes)
        assert any({2, 5} <= set(c.members) for c in clusters)
    (cluster,) = cluster_prototypes(distances, 0.0, prototype_classes=classes)
    assert cluster.members == (2, 5) and cluster.classes == (1, 1)
    assert cluster.within_distance == 0 and cluster.suggestion == KEEP_ONE


def test_exact_duplicates_get_distance_zero_in_every_view_even_when_the_views_disagree() -> None:
    data = inputs(1)  # 0 and 3 differ in every input, but were pushed onto the same patch
    duplicates = exact_duplicates(
        [(7, (1, 2)), (8, (1, 2)), (9, (0, 0)), (7, (1, 2))] + [(i, (0, 0)) for i in range(10, 14)]
    )
    assert duplicates == [{0, 3}]
    distances = prototype_distances(**data, duplicates=duplicates)
    for view in (*VIEWS, "combined"):
        assert getattr(distances, view)[0, 3] == 0, view
    (cluster,) = cluster_prototypes(distances, 0.0)
    assert cluster.members == (0, 3)
    assert cluster.suggestion == LEAVE  # classes unknown


def test_exact_duplicates_finds_prototypes_pushed_onto_the_same_patch(tiny_run) -> None:
    folder, (train_set, _, _) = tiny_run
    model = load_model(folder).model
    classes = model.prototype_classes
    j, k = np.flatnonzero(classes == classes[0])[:2]
    with torch.no_grad():  # prototype k starts a hair away from j: push must land both on one patch
        model.prototype_vectors[k] = model.prototype_vectors[j] + 1e-5
        trunk = model.features.trunk(model.preprocess(train_set.images))
    pushed = push_prototypes(model, iter([(trunk, torch.as_tensor(train_set.labels), 0)]))
    pairs = [(r["source_index"], r["cell"]) for r in pushed]
    assert pairs[j] == pairs[k]
    assert {int(j), int(k)} in exact_duplicates(pairs)
    assert {int(j), int(k)} in exact_duplicates((), model.prototype_vectors)
    # the same, from the projection records a model folder stores
    records = list(load_model(folder).projection)
    records[k] = dataclasses.replace(
        records[k], source_index=records[j].source_index, cell=records[j].cell
    )
    assert {int(j), int(k)} in exact_duplicates(records)
    # same image, other cell: not a duplicate
    other_cell = (records[j].cell[0], records[j].cell[1] + 1)
    records[k] = dataclasses.replace(records[k], cell=other_cell)
    assert not any({int(j), int(k)} <= group for group in exact_duplicates(records))


def test_exact_duplicates_merges_overlapping_evidence_and_checks_lengths() -> None:
    vectors = np.eye(4)
    vectors[3] = vectors[1]
    pairs = [(0, (0, 0)), (5, (1, 1)), (0, (0, 0)), (6, (0, 0))]
    assert exact_duplicates(pairs, vectors) == [{0, 2}, {1, 3}]
    assert exact_duplicates(
        [(0, (0, 0)), (0, (0, 0)), (1, (0, 0))], np.stack([vectors[0]] * 2 + [vectors[2]])
    ) == [{0, 1}]
    assert exact_duplicates(
        [(0, (0, 0)), (1, (0, 0)), (0, (0, 0))], np.stack([vectors[0], vectors[2], vectors[2]])
    ) == [{0, 1, 2}]
    assert exact_duplicates(()) == []
    with pytest.raises(ValueError, match="records"):
        exact_duplicates(pairs[:3], vectors)


@pytest.mark.parametrize("linkage", ["average", "single", "complete", "weighted"])
def test_clustering_respects_its_threshold_at_the_edges(linkage: str) -> None:
    # scipy's fcluster(criterion="distance") keeps a merge whose height (cophenetic distance)
    # is ≤ t: a pair at exactly d clusters for t = d and t = d + 1e-9, and not for t = d − 1e-9.
    d = 0.3
    distances = only(square({(0, 1): d}, 4, 0.9))
    for threshold, expected in ((d + 1e-9, [(0, 1)]), (d, [(0, 1)]), (d - 1e-9, [])):
        found = [c.members for c in cluster_prototypes(distances, threshold, linkage)]
        assert found == expected, (linkage, threshold)
    # a third member joins at a height that depends on the linkage (exact binary fractions)
    three = only(square({(0, 1): 0.125, (0, 2): 0.25, (1, 2): 0.5}, 4, 0.9))
    height = {"average": 0.375, "single": 0.25, "complete": 0.5, "weighted": 0.375}[linkage]
    assert [c.members for c in cluster_prototypes(three, height + 1e-9, linkage)] == [(0, 1, 2)]
    assert [c.members for c in cluster_prototypes(three, height - 1e-9, linkage)] == [(0, 1)]


def test_suggestions_follow_classes_and_tightness() -> None:
    t = 0.2
    combined = square({(0, 1): 0.05, (2, 3): 0.15, (4, 5): 0.05, (6, 7): 0.1}, 8, 0.9)
    classes = np.array([0, 0, 1, 1, 2, 3, 4, 4])
    clusters = {
        c.members: c for c in cluster_prototypes(only(combined), t, prototype_classes=classes)
    }
    assert clusters[(0, 1)].suggestion == KEEP_ONE
    assert clusters[(6, 7)].suggestion == KEEP_ONE  # exactly t / 2
    assert clusters[(2, 3)].suggestion == MERGE
    assert clusters[(4, 5)].suggestion == LEAVE and clusters[(4, 5)].classes == (2, 3)
    assert all(c.reason for c in clusters.values())
    assert [c.within_distance for c in cluster_prototypes(only(combined), t)] == [
        0.05,
        0.05,
        0.1,
        0.15,
    ]


def test_clusters_are_sorted_by_size_then_tightness_and_within_is_the_largest_pair() -> None:
    combined = square({(0, 1): 0.1, (0, 2): 0.12, (1, 2): 0.18, (3, 4): 0.02, (5, 6): 0.01}, 7, 0.9)
    clusters = cluster_prototypes(only(combined), 0.2)
    assert [c.members for c in clusters] == [(0, 1, 2), (5, 6), (3, 4)]
    assert clusters[0].within_distance == 0.18


def test_prune_plan_keeps_the_strongest_member_and_pruned_weight_merges() -> None:
    weight = np.array([[1.0, 3.0, 0.5, 0.0, 0.2], [0.1, 0.2, 0.3, 2.0, 1.0]])  # [C=2, P=5]
    clusters = [
        Cluster((0, 1, 2), (0, 0, 0), 0.05, KEEP_ONE, ""),
        Cluster((3, 4), (1, 0), 0.05, LEAVE, ""),
    ]
    assert prune_plan(clusters, weight) == {1: [0, 2]}
    plan = prune_plan(clusters, weight, every_cluster=True)
    assert plan == {1: [0, 2], 3: [4]}  # 3 has weight 2.0 to class 1, 4 has 0.2 to class 0
    new = pruned_weight(weight, plan)
    np.testing.assert_array_equal(new, merged_weight(merged_weight(weight, 1, [0, 2]), 3, [4]))
    np.testing.assert_array_equal(new.sum(axis=1), weight.sum(axis=1))
    with pytest.raises(ValueError, match="two groups"):
        pruned_weight(weight, {0: [1], 2: [1]})
    with pytest.raises(ValueError, match="two clusters"):
        prune_plan([clusters[0], clusters[0]], weight)


def test_distances_are_symmetric_with_zero_diagonal_and_missing_views_are_skipped() -> None:
    data = inputs(2)
    full = prototype_distances(**data)
    for view in (*VIEWS, "combined"):
        matrix = getattr(full, view)
        assert matrix.shape == (P, P)
        np.testing.assert_array_equal(matrix, matrix.T)
        assert (np.diag(matrix) == 0).all()
        assert (matrix >= 0).all() and (matrix <= 1).all()
    assert full.views == VIEWS
    assert full.weights == pytest.approx({"latent": 0.4, "behavioural": 0.4, "explanatory": 0.2})
    latent_only = prototype_distances(data["prototype_vectors"])
    assert latent_only.behavioural is None and latent_only.explanatory is None
    np.testing.assert_array_equal(latent_only.combined, latent_only.latent)
    assert latent_distances(data["prototype_vectors"]).max() == 1.0
    scores_only = prototype_distances(data["prototype_vectors"], test_scores=data["test_scores"])
    np.testing.assert_array_equal(
        scores_only.behavioural, correlation_distances(data["test_scores"])
    )
    np.testing.assert_allclose(
        scores_only.combined, (scores_only.latent + scores_only.behavioural) / 2
    )
    both = prototype_distances(
        data["prototype_vectors"], data["test_scores"], data["nearest_test_images"]
    )
    np.testing.assert_allclose(
        both.behavioural,
        0.75 * correlation_distances(data["test_scores"])
        + 0.25 * jaccard_distances(data["nearest_test_images"]),
    )
    no_latent = prototype_distances(**data, weights={"latent": 0})
    assert "latent" not in no_latent.weights
    np.testing.assert_allclose(no_latent.combined, (2 * full.behavioural + full.explanatory) / 3)


def test_constant_score_columns_are_handled() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random((20, 4))
    scores[:, 0] = 0.7
    scores[:, 1] = 0.7
    scores[:, 2] = 0.2
    distances = correlation_distances(scores)
    assert np.isfinite(distances).all()
    assert distances[0, 1] == 0  # equal constant columns
    assert (
        distances[0, 2] == 1 and distances[0, 3] == 1
    )  # a constant column correlates with nothing
    anti = np.stack([np.arange(10.0), -np.arange(10.0)], axis=1)
    assert correlation_distances(anti)[0, 1] == 1  # anti-correlated: as different as uncorrelated


def test_jaccard_and_cosine_distances_on_known_values() -> None:
    images = np.array([[0, 1, 2, 3], [2, 3, 4, 5], [6, 7, 8, 9]])
    np.testing.assert_allclose(jaccard_distances(images)[0], [0, 1 - 2 / 6, 1])
    attributes = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    raw = cosine_distances(attributes, standardise=False)
    np.testing.assert_allclose(raw[0], [0, 0, 1, 1])  # scale-free; the zero vector is far from all
    assert raw[3, 3] == 0


def test_ordering_is_a_permutation_that_keeps_clusters_together() -> None:
    combined = square({(0, 5): 0.01, (2, 7): 0.02, (1, 3): 0.05}, 8, 0.9)
    order = ordering(only(combined)).tolist()
    assert sorted(order) == list(range(8))
    for a, b in ((0, 5), (2, 7), (1, 3)):
        assert abs(order.index(a) - order.index(b)) == 1
    assert ordering(only(np.zeros((1, 1)))).tolist() == [0]


def test_bad_inputs_raise_value_errors() -> None:
    data = inputs()
    vectors = data["prototype_vectors"]
    with pytest.raises(ValueError, match="test scores"):
        prototype_distances(vectors, test_scores=np.ones((N, P + 1)))
    with pytest.raises(ValueError, match="at least 2"):
        prototype_distances(vectors, test_scores=np.ones((1, P)))
    with pytest.raises(ValueError, match="NaN"):
        prototype_distances(vectors, test_scores=np.full((N, P), np.nan))
    with pytest.raises(ValueError, match="nearest"):
        prototype_distances(vectors, nearest_test_images=np.zeros((P - 1, K), dtype=int))
    with pytest.raises(ValueError, match="attributes"):
        prototype_distances(vectors, attributes=np.ones((P, 0)))
    with pytest.raises(ValueError, match="out of range"):
        prototype_distances(vectors, duplicates=[{0, P}])
    with pytest.raises(ValueError, match="unknown view"):
        prototype_distances(vectors, weights={"visual": 1.0})
    with pytest.raises(ValueError, match="weight 0"):
        prototype_distances(vectors, weights={"latent": 0.0})
    with pytest.raises(ValueError, match="≥ 0"):
        prototype_distances(vectors, weights={"latent": -1.0})
    with pytest.raises(ValueError, match="latent scale"):
        prototype_distances(vectors, latent_scale="mean")
    with pytest.raises(ValueError, match="prototype vectors"):
        prototype_distances(np.ones(P))
    distances = prototype_distances(vectors)
    with pytest.raises(ValueError, match="threshold"):
        cluster_prototypes(distances, -0.1)
    with pytest.raises(ValueError, match="linkage"):
        cluster_prototypes(distances, linkage="ward")
    with pytest.raises(ValueError, match="prototype_classes"):
        cluster_prototypes(distances, prototype_classes=[0, 1])
    asymmetric = np.triu(np.ones((3, 3)), 1)
    with pytest.raises(ValueError, match="symmetric"):
        only(asymmetric)
    with pytest.raises(ValueError, match="diagonal"):
        only(np.ones((3, 3)))
    with pytest.raises(ValueError, match="square"):
        only(np.ones((3, 2)))


def test_report_on_a_trained_model_matches_the_really_pruned_model(tiny_run) -> None:
    folder, (_, test_set, _) = tiny_run
    bundle = load_model(folder)
    model = bundle.model
    nearest = nearest_patches(model, test_set.images, test_set.labels, "test", keep_all_scores=True)
    report = redundancy_report(bundle, nearest, threshold=0.6)
    assert report.distances.views == ("latent", "behavioural")
    assert sorted(report.order.tolist()) == list(range(bundle.spec.num_prototypes))
    assert report.pruned is not None
    assert report.lines(bundle.spec.class_names)[0].startswith(f"{len(report.clusters)} clusters")
    new = pruned_weight(model.last_layer.weight, report.plan)
    with modified_last_layer(model, new), torch.inference_mode():
        predictions = model(model.preprocess(test_set.images)).logits.argmax(dim=1).numpy()
    assert report.pruned.accuracy == (predictions == test_set.labels).mean()
