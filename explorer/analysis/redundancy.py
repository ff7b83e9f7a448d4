"""Redundant prototypes: three views of sameness, hierarchical clustering, and a pruning report.

Nauta et al. (2021) observe that visually similar prototypes often have similar explanations, i.e.
that a ProtoPNet holds redundant prototypes, but publish no algorithm. **Everything below is our
definition.** All distances lie in ``[0, 1]``; every matrix is ``[P, P]``, symmetric, with a zero
diagonal.

* **latent** — Euclidean distance between prototype vectors (``prototype_vectors.flatten(1)``),
  divided by the largest distance between any two of the model's prototypes
  (``latent_scale="max"``, the default: the farthest pair is at 1 and the view spreads over
  ``[0, 1]`` like the others), or by ``sqrt(D)`` (``latent_scale="sqrt_dim"``: an absolute scale,
  since add-on features lie in ``[0, 1]^D`` after the Sigmoid; clipped at 1).
* **behavioural** — from the test split's per-image scores ``[N, P]``, a weighted mean of two
  terms, ``0.75 · correlation + 0.25 · overlap`` (``jaccard_weight``), or whichever is available:

  - ``1 − max(r, 0)`` with ``r`` the Pearson correlation of two prototypes' scores across the
    images (anti-correlated prototypes are as different as uncorrelated ones). A constant score
    column correlates with nothing (``r = 0``), except that two exactly equal columns have
    ``r = 1``;
  - ``1 − Jaccard`` overlap of the two prototypes' nearest test images (``NearestPatches.images``,
    optional). It gets the smaller share because ``k = 5`` images out of thousands are a coarse
    sample: on the shipped Fashion-MNIST model, prototype pairs whose scores correlate at
    0.97–0.99 across all 10,000 test images mostly have disjoint nearest-5 sets (an equal-weight
    mean would let that one coarse number decide), while shared nearest images are strong evidence
    of sameness.
* **explanatory** (optional) — cosine distance ``1 − max(cos, 0)`` between global
  attribute-importance vectors ``[P, M]`` (Nauta's Φ per modification, ``GlobalAttributes.phi``).
  By default each attribute is first z-scored across the prototypes (docs/method.md §3: raw Φ of
  different modifications are not comparable, and contrast's would make every prototype look
  alike); an attribute constant over the prototypes (hue on grey inputs) drops out.
  An all-zero vector is at distance 1 from everything except an identical vector.
* **combined** — the weighted mean of the available views (``DEFAULT_WEIGHTS``: latent 1,
  behavioural 1, explanatory 0.5, the last lower because ``M`` is only about five numbers); views
  without input are skipped and the remaining weights renormalised.

**Exact duplicates** — prototypes pushed onto the same source image and feature cell (from the
projection records), or with identical vectors — get distance 0 in every view, so they join at
height 0 and are always in one cluster.

Clustering is scipy's agglomerative clustering (average linkage by default) on
``squareform(combined)``, cut with ``fcluster(criterion="distance", t=threshold)``: two prototypes
end in one cluster iff their cophenetic distance (the height at which they join) is
``≤ threshold`` — a pair whose distance equals the threshold exactly is clustered.
``DEFAULT_THRESHOLD = 0.2``, chosen on the shipped models (``python -m bench.whatif_latency``): it
finds 5 clusters on ELPV (its three groups of exact duplicates among them), 15 on Fashion-MNIST
(none below 0.147) and 8 on the synthetic model, and merging the suggested ones changes test
accuracy by −0.5, −0.9 and 0.0 points; at 0.3 Fashion-MNIST clusters start to span many classes.
Lower it to find only interchangeable prototypes.

Suggestion per cluster (``within_distance`` is the **largest** pairwise combined distance in it):

* all members of one class and ``within_distance ≤ threshold / 2`` → ``"keep one"``: they are
  interchangeable; keep the one with the largest weight to its class and merge the others into it;
* all of one class but looser → ``"merge"``: probably one concept; merging keeps their evidence;
* members of different classes → ``"leave"``: a concept several classes use; removing it changes
  several classes, so look before pruning.

Merging (see :func:`explorer.analysis.whatif.merged_weight`) adds the merged prototypes' last-layer
columns to the kept one's, which leaves the logits unchanged when their scores are identical.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from explorer.analysis.attributes import zscores
from explorer.analysis.whatif import WhatIf, as_weight, merged_weight, what_if
from explorer.models.base import PROTOTYPE_VECTORS, PrototypeModel, has
from explorer.types import PrototypeRecord

log = logging.getLogger(__name__)

VIEWS = ("latent", "behavioural", "explanatory")
DEFAULT_WEIGHTS: dict[str, float] = {"latent": 1.0, "behavioural": 1.0, "explanatory": 0.5}
DEFAULT_THRESHOLD = 0.2
JACCARD_WEIGHT = 0.25
LINKAGES = ("average", "single", "complete", "weighted")
LATENT_SCALES = ("max", "sqrt_dim")
KEEP_ONE, MERGE, LEAVE = "keep one", "merge", "leave"
SUGGESTIONS = (KEEP_ONE, MERGE, LEAVE)
_CONSTANT_TOLERANCE = 1e-12


# --- distance matrices ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Distances:
    """The views' distance matrices, each ``[P, P]``, symmetric, zero diagonal, in ``[0, 1]``.

    Attributes:
        latent: between prototype vectors (None for a family without them).
        behavioural: from test-split scores and nearest images (``None`` without them).
        explanatory: between attribute-importance vectors (``None`` without them).
        combined: the weighted mean of the available views (what clustering uses).
        duplicates: groups of exact duplicates (sorted tuples), at distance 0 in every view.
        weights: the weight each available view got (renormalised to sum to 1).
    """

    latent: np.ndarray | None
    behavioural: np.ndarray | None
    explanatory: np.ndarray | None
    combined: np.ndarray
    duplicates: tuple[tuple[int, ...], ...] = ()
    weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = np.shape(self.combined)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"combined distances must be a square [P, P] matrix, got {shape}")
        for name in (*VIEWS, "combined"):
            matrix = getattr(self, name)
            if matrix is None:
                continue
            matrix = np.asarray(matrix)
            if matrix.shape != shape:
                raise ValueError(f"{name} distances have shape {matrix.shape}, combined {shape}")
            if not np.isfinite(matrix).all() or (matrix < 0).any():
                raise ValueError(f"{name} distances must be finite and non-negative")
            if not np.allclose(matrix, matrix.T, rtol=0, atol=1e-9):
                raise ValueError(f"{name} distances must be symmetric")
            if (np.diag(matrix) != 0).any():
                raise ValueError(f"{name} distances must have a zero diagonal")

    @property
    def num_prototypes(self) -> int:
        return int(np.shape(self.combined)[0])

    @property
    def views(self) -> tuple[str, ...]:
        """The views that were computed."""
        return tuple(v for v in VIEWS if getattr(self, v) is not None)


def _finish(matrix: np.ndarray) -> np.ndarray:
    """Exactly symmetric (``(M + Mᵀ) / 2`` is), clipped to ``[0, 1]``, zero diagonal."""
    out = np.clip((matrix + matrix.T) / 2, 0.0, 1.0)
    np.fill_diagonal(out, 0.0)
    return out


def _equal_rows(rows: np.ndarray) -> np.ndarray:
    """``[P, P]`` bool: rows that are exactly equal."""
    _, inverse = np.unique(rows, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse[:, None] == inverse[None, :]


def _flat_vectors(prototype_vectors: Any) -> np.ndarray:
    """``[P, D]`` float64 from ``[P, D]`` or ``[P, D, 1, 1]`` (numpy or torch)."""
    if isinstance(prototype_vectors, torch.Tensor):
        prototype_vectors = prototype_vectors.detach().cpu().numpy()
    vectors = np.asarray(prototype_vectors, dtype=np.float64)
    if vectors.ndim < 2 or vectors.shape[0] == 0:
        raise ValueError(f"prototype vectors must be [P, D] or [P, D, 1, 1], got {vectors.shape}")
    vectors = vectors.reshape(vectors.shape[0], -1)
    if not np.isfinite(vectors).all():
        raise ValueError("prototype vectors hold NaN or infinite values")
    return vectors


def latent_distances(prototype_vectors: Any, scale: str = "max") -> np.ndarray:
    """Euclidean distance between prototype vectors, scaled to ``[0, 1]``.

    Args:
        prototype_vectors: ``[P, D]`` or ``[P, D, 1, 1]``.
        scale: ``"max"`` divides by the largest pairwise distance; ``"sqrt_dim"`` by ``sqrt(D)``.

    Returns:
        ``[P, P]`` distances.
    """
    if scale not in LATENT_SCALES:
        raise ValueError(f"latent scale must be one of {LATENT_SCALES}, not {scale!r}")
    vectors = _flat_vectors(prototype_vectors)  # [P, D]
    if vectors.shape[0] == 1:
        return np.zeros((1, 1))
    from scipy.spatial.distance import pdist, squareform  # scipy: imported only when used

    distances = squareform(pdist(vectors))  # [P, P]; identical vectors give exactly 0
    divisor = distances.max() if scale == "max" else np.sqrt(vectors.shape[1])
    return _finish(distances / divisor if divisor > 0 else distances)


def correlation_distances(scores: np.ndarray) -> np.ndarray:
    """``1 − max(r, 0)`` for the Pearson correlation ``r`` of every pair of score columns.

    A constant column (no variation to correlate) gets ``r = 0`` with every other column, except
    that exactly equal columns get ``r = 1``.

    Args:
        scores: ``[N, P]`` per-image prototype scores.

    Returns:
        ``[P, P]`` distances.
    """
    values = np.asarray(scores, dtype=np.float64)  # [N, P]
    centred = values - values.mean(axis=0, keepdims=True)
    norms = np.sqrt((centred * centred).sum(axis=0))  # [P]
    scale = np.abs(values).max(axis=0) * np.sqrt(values.shape[0])  # [P]
    constant = norms <= _CONSTANT_TOLERANCE * (1.0 + scale)
    unit = np.where(constant, 0.0, centred / np.where(constant, 1.0, norms))  # [N, P]
    correlation = np.clip(unit.T @ unit, -1.0, 1.0)  # [P, P]
    correlation[_equal_rows(values.T)] = 1.0
    return _finish(1.0 - np.clip(correlation, 0.0, 1.0))


def jaccard_distances(nearest_images: np.ndarray) -> np.ndarray:
    """``1 − |A ∩ B| / |A ∪ B|`` over every pair of prototypes' nearest-image sets.

    Args:
        nearest_images: ``[P, k]`` image indices (negative entries mean "none" and are ignored).

    Returns:
        ``[P, P]`` distances (two empty sets are at distance 1: no evidence of sameness).
    """
    images = np.asarray(nearest_images)
    ids, inverse = np.unique(images, return_inverse=True)
    inverse = inverse.reshape(images.shape)
    member = np.zeros((images.shape[0], len(ids)), dtype=np.float64)  # [P, U]
    rows = np.repeat(np.arange(images.shape[0]), images.shape[1]).reshape(images.shape)
    valid = images >= 0
    member[rows[valid], inverse[valid]] = 1.0
    intersection = member @ member.T  # [P, P]
    sizes = member.sum(axis=1)  # [P]
    union = sizes[:, None] + sizes[None, :] - intersection
    overlap = np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)
    return _finish(1.0 - overlap)


def cosine_distances(attributes: np.ndarray, standardise: bool = True) -> np.ndarray:
    """``1 − max(cos, 0)`` between attribute-importance vectors.

    Args:
        attributes: ``[P, M]`` global importance of ``M`` attributes per prototype.
        standardise: z-score each attribute across the prototypes first (a constant attribute, e.g.
            hue on grey inputs, then drops out).

    Returns:
        ``[P, P]`` distances; exactly equal rows are at 0, an all-zero row at 1 from the others.
    """
    raw = np.asarray(attributes, dtype=np.float64)  # [P, M]
    values = zscores(raw) if standardise else raw
    norms = np.linalg.norm(values, axis=1)  # [P]
    zero = norms <= _CONSTANT_TOLERANCE
    unit = values / np.where(zero, 1.0, norms)[:, None]
    unit[zero] = 0.0
    cosine = np.clip(unit @ unit.T, -1.0, 1.0)  # [P, P]
    cosine[_equal_rows(raw)] = 1.0
    return _finish(1.0 - np.clip(cosine, 0.0, 1.0))


def _check_indices(group: Iterable[Any], num_prototypes: int, what: str) -> list[int]:
    out = []
    for index in group:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise ValueError(f"{what}: prototype indices must be integers, got {index!r}")
        if not 0 <= int(index) < num_prototypes:
            raise ValueError(
                f"{what}: prototype {int(index)} is out of range (0..{num_prototypes - 1})"
            )
        out.append(int(index))
    return out


def _union_groups(groups: Iterable[Iterable[int]], num_prototypes: int) -> list[tuple[int, ...]]:
    """Merges overlapping groups (union-find); groups of ≥ 2, sorted, ordered by first member."""
    parent = list(range(num_prototypes))

    def root(j: int) -> int:
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        return j

    for group in groups:
        members = _check_indices(group, num_prototypes, "duplicates")
        for j in members[1:]:
            a, b = root(members[0]), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    found: dict[int, list[int]] = {}
    for j in range(num_prototypes):
        found.setdefault(root(j), []).append(j)
    return sorted((tuple(g) for g in found.values() if len(g) > 1), key=lambda g: g[0])


def exact_duplicates(
    projection: Sequence[PrototypeRecord | tuple[int, tuple[int, int]]] = (),
    prototype_vectors: Any | None = None,
) -> list[set[int]]:
    """Prototypes pushed onto the same source image and cell, or with identical vectors.

    Args:
        projection: one entry per prototype, in prototype order: push records
            (``bundle.projection``) or ``(source_index, (row, col))`` pairs. May be empty (a model
            never pushed).
        prototype_vectors: ``[P, D]`` or ``[P, D, 1, 1]``, optional.

    Returns:
        Groups of two or more prototypes (overlapping evidence merged), ordered by smallest member.

    Raises:
        ValueError: the records and the vectors disagree on the number of prototypes.
    """
    keys: list[tuple[int, tuple[int, int]]] = []
    for entry in projection:
        if isinstance(entry, PrototypeRecord):
            keys.append((entry.source_index, (int(entry.cell[0]), int(entry.cell[1]))))
        else:
            source, cell = entry
            keys.append((int(source), (int(cell[0]), int(cell[1]))))
    vectors = None if prototype_vectors is None else _flat_vectors(prototype_vectors)
    if vectors is not None and keys and len(keys) != vectors.shape[0]:
        raise ValueError(f"{len(keys)} projection records for {vectors.shape[0]} prototype vectors")
    num = len(keys) if vectors is None else vectors.shape[0]
    groups: list[list[int]] = []
    by_patch: dict[tuple[int, tuple[int, int]], list[int]] = {}
    for j, key in enumerate(keys):
        by_patch.setdefault(key, []).append(j)
    groups.extend(g for g in by_patch.values() if len(g) > 1)
    if vectors is not None:
        _, inverse = np.unique(vectors, axis=0, return_inverse=True)
        by_vector: dict[int, list[int]] = {}
        for j, key in enumerate(inverse.reshape(-1).tolist()):
            by_vector.setdefault(key, []).append(j)
        groups.extend(g for g in by_vector.values() if len(g) > 1)
    return [set(g) for g in _union_groups(groups, num)]


def _view_weights(
    weights: Mapping[str, float] | None, available: Sequence[str]
) -> dict[str, float]:
    chosen = dict(DEFAULT_WEIGHTS)
    for name, value in (weights or {}).items():
        if name not in VIEWS:
            raise ValueError(f"unknown view {name!r} in weights (views: {', '.join(VIEWS)})")
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"the weight of view {name!r} must be finite and ≥ 0, got {value}")
        chosen[name] = float(value)
    used = {name: chosen[name] for name in available if chosen[name] > 0}
    total = sum(used.values())
    if total <= 0:
        raise ValueError(
            f"every available view ({', '.join(available)}) has weight 0: nothing to combine"
        )
    return {name: value / total for name, value in used.items()}


def prototype_distances(
    prototype_vectors: Any | None,
    test_scores: np.ndarray | None = None,
    nearest_test_images: np.ndarray | None = None,
    attributes: np.ndarray | None = None,
    duplicates: Iterable[Iterable[int]] | None = None,
    weights: Mapping[str, float] | None = None,
    latent_scale: str = "max",
    standardise_attributes: bool = True,
    jaccard_weight: float = JACCARD_WEIGHT,
    num_prototypes: int | None = None,
) -> Distances:
    """The three views of prototype sameness and their combination (see the module docstring).

    Args:
        prototype_vectors: ``[P, D]`` or ``[P, D, 1, 1]``; ``None`` for a family without prototype
            vectors (the latent view is then absent and ``num_prototypes`` is required).
        test_scores: ``[N, P]`` the test split's per-image scores (``NearestPatches.all_scores``).
        nearest_test_images: ``[P, k]`` each prototype's nearest test images
            (``NearestPatches.images``).
        attributes: ``[P, M]`` global attribute importance per prototype
            (``GlobalAttributes.phi``).
        duplicates: groups of exact duplicates (see :func:`exact_duplicates`); prototypes with
            identical vectors are added automatically.
        weights: per-view weights overriding ``DEFAULT_WEIGHTS`` (a weight of 0 drops a view from
            the combination).
        latent_scale: ``"max"`` or ``"sqrt_dim"``.
        standardise_attributes: z-score each attribute across prototypes before the cosine.
        jaccard_weight: the nearest-image overlap's share of the behavioural view when both its
            terms are available (the correlation gets the rest).
        num_prototypes: ``P``, needed only without prototype vectors.

    Returns:
        The distance matrices; views without input are ``None``.

    Raises:
        ValueError: shapes disagree, values are not finite, an index or a weight is invalid.
    """
    if not 0 <= jaccard_weight <= 1:
        raise ValueError(f"jaccard_weight must lie in [0, 1], got {jaccard_weight}")
    if prototype_vectors is None:  # a family without prototype vectors: no latent view
        if num_prototypes is None:
            raise ValueError("without prototype vectors, num_prototypes must be given")
        vectors, num, latent = None, num_prototypes, None
    else:
        vectors = _flat_vectors(prototype_vectors)  # [P, D]
        num = vectors.shape[0]
        latent = latent_distances(vectors, latent_scale)

    behavioural_terms: list[np.ndarray] = []
    if test_scores is not None:
        scores = np.asarray(test_scores)
        if scores.ndim != 2 or scores.shape[1] != num:
            raise ValueError(
                f"test scores must be [N, {num}] (one per prototype), got {scores.shape}"
            )
        if scores.shape[0] < 2:
            raise ValueError(
                f"test scores need at least 2 images to correlate, got {scores.shape[0]}"
            )
        if not np.isfinite(scores).all():
            raise ValueError("test scores hold NaN or infinite values")
        behavioural_terms.append(correlation_distances(scores))
    if nearest_test_images is not None:
        images = np.asarray(nearest_test_images)
        if images.ndim != 2 or images.shape[0] != num or images.shape[1] == 0:
            raise ValueError(f"nearest test images must be [{num}, k], got {images.shape}")
        if not np.issubdtype(images.dtype, np.integer):
            raise ValueError(f"nearest test images must be integer indices, got {images.dtype}")
        behavioural_terms.append(jaccard_distances(images))
    behavioural = None
    if len(behavioural_terms) == 2:
        correlation, overlap = behavioural_terms
        behavioural = (1 - jaccard_weight) * correlation + jaccard_weight * overlap
    elif behavioural_terms:
        (behavioural,) = behavioural_terms

    explanatory = None
    if attributes is not None:
        values = np.asarray(attributes, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != num or values.shape[1] == 0:
            raise ValueError(f"attributes must be [{num}, M], got {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("attributes hold NaN or infinite values")
        explanatory = cosine_distances(values, standardise_attributes)

    views = {"latent": latent, "behavioural": behavioural, "explanatory": explanatory}
    available = [name for name in VIEWS if views[name] is not None]
    used = _view_weights(weights, available)
    combined = sum(used[name] * views[name] for name in used)

    identical = exact_duplicates((), vectors) if vectors is not None else []
    groups = _union_groups([*(duplicates or []), *(sorted(g) for g in identical)], num)
    for matrix in (*(views[name] for name in available), combined):
        for group in groups:
            matrix[np.ix_(group, group)] = 0.0
    return Distances(
        latent=latent,
        behavioural=behavioural,
        explanatory=explanatory,
        combined=_finish(combined),
        duplicates=tuple(groups),
        weights=used,
    )


# --- clustering -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    """A group of redundant prototypes.

    Attributes:
        members: prototype indices, ascending.
        classes: the class of each member, aligned with ``members`` (empty when unknown).
        within_distance: the **largest** pairwise combined distance between members.
        suggestion: ``"keep one"``, ``"merge"`` or ``"leave"`` (see the module docstring).
        reason: why, in a short sentence.
    """

    members: tuple[int, ...]
    classes: tuple[int, ...]
    within_distance: float
    suggestion: str
    reason: str

    @property
    def size(self) -> int:
        return len(self.members)


def _suggest(
    members: tuple[int, ...],
    classes: tuple[int, ...],
    within: float,
    threshold: float,
    duplicates: Sequence[tuple[int, ...]],
) -> tuple[str, str]:
    if not classes:
        return LEAVE, "the prototypes' classes are unknown: look before pruning"
    distinct = sorted(set(classes))
    if len(distinct) > 1:
        listed = ", ".join(str(c) for c in distinct)
        return LEAVE, (
            f"shared by classes {listed}: removing it changes several classes, look before pruning"
        )
    if any(set(members) <= set(group) for group in duplicates):
        return KEEP_ONE, "exact duplicates (same source patch): keep one, merge the others into it"
    if within <= threshold / 2:
        return KEEP_ONE, (
            f"interchangeable (all pairs within {within:.3f} ≤ {threshold / 2:.3f}): keep the one "
            "with the largest weight to its class, merge the others into it"
        )
    return MERGE, (
        f"one class, similar but not interchangeable (largest distance {within:.3f}): merge to "
        "keep their evidence"
    )


def _linkage_matrix(distances: Distances, method: str) -> np.ndarray:
    if method not in LINKAGES:
        raise ValueError(
            f"linkage must be one of {', '.join(LINKAGES)} (methods valid for a precomputed "
            f"distance matrix), not {method!r}"
        )
    combined = np.asarray(distances.combined, dtype=np.float64)
    exact = (combined + combined.T) / 2
    np.fill_diagonal(exact, 0.0)
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    return hierarchy.linkage(squareform(exact, checks=False), method=method)


def cluster_prototypes(
    distances: Distances,
    threshold: float = DEFAULT_THRESHOLD,
    linkage: str = "average",
    prototype_classes: Sequence[int] | np.ndarray | None = None,
) -> list[Cluster]:
    """Groups of redundant prototypes: agglomerative clustering on the combined distance.

    Two prototypes share a cluster iff their cophenetic distance is ``≤ threshold`` (scipy's
    ``fcluster(criterion="distance")``); exact duplicates (distance 0) always do.

    Args:
        distances: from :func:`prototype_distances`.
        threshold: the cut height, ``≥ 0`` (combined distances lie in ``[0, 1]``).
        linkage: ``"average"`` (default), ``"single"``, ``"complete"`` or ``"weighted"``.
        prototype_classes: ``[P]`` class of each prototype (``model.prototype_classes``); without it
            every suggestion is ``"leave"``.

    Returns:
        Clusters of two or more prototypes, largest first, then tightest, then by first member.

    Raises:
        ValueError: a bad threshold, linkage, or class list.
    """
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite number ≥ 0, got {threshold}")
    num = distances.num_prototypes
    classes = None
    if prototype_classes is not None:
        classes = np.asarray(prototype_classes)
        if classes.shape != (num,):
            raise ValueError(f"prototype_classes must be [{num}], got shape {classes.shape}")
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {', '.join(LINKAGES)}, not {linkage!r}")
    if num < 2:
        return []
    from scipy.cluster import hierarchy

    labels = hierarchy.fcluster(
        _linkage_matrix(distances, linkage), t=threshold, criterion="distance"
    )  # [P]
    combined = np.asarray(distances.combined)
    clusters = []
    for label in np.unique(labels):
        members = tuple(int(j) for j in np.flatnonzero(labels == label))
        if len(members) < 2:
            continue
        block = combined[np.ix_(members, members)]
        within = float(block.max())
        member_classes = () if classes is None else tuple(int(classes[j]) for j in members)
        suggestion, reason = _suggest(
            members, member_classes, within, threshold, distances.duplicates
        )
        clusters.append(Cluster(members, member_classes, within, suggestion, reason))
    clusters.sort(key=lambda c: (-c.size, c.within_distance, c.members[0]))
    log.debug("%d clusters at threshold %.3f (%s linkage)", len(clusters), threshold, linkage)
    return clusters


def ordering(
    distances: Distances, linkage: str = "average", optimal: bool | None = None
) -> np.ndarray:
    """``[P]`` the dendrogram's leaf order, to sort a distance heatmap's rows and columns.

    Args:
        distances: from :func:`prototype_distances`.
        linkage: as :func:`cluster_prototypes`.
        optimal: reorder the leaves so neighbours are close (``optimal_leaf_ordering``, cubic in
            ``P``); by default only for ``P ≤ 512``.
    """
    num = distances.num_prototypes
    if num < 3:
        return np.arange(num)
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    tree = _linkage_matrix(distances, linkage)
    if optimal is None:
        optimal = num <= 512
    if optimal:
        tree = hierarchy.optimal_leaf_ordering(
            tree, squareform(_finish(np.asarray(distances.combined, dtype=np.float64)))
        )
    return hierarchy.leaves_list(tree)


# --- pruning --------------------------------------------------------------------------------------
def prune_plan(
    clusters: Iterable[Cluster], weight: Any, every_cluster: bool = False
) -> dict[int, list[int]]:
    """Which prototype each cluster keeps, and which it merges into it.

    The kept one is the member with the largest weight to its own class (to the class it supports
    most when classes are unknown); ties go to the smaller index.

    Args:
        clusters: from :func:`cluster_prototypes`.
        weight: ``[C, P]`` the last-layer weight.
        every_cluster: plan every cluster, ``"leave"`` ones included; by default only ``"keep one"``
            and ``"merge"`` clusters.

    Returns:
        kept prototype → the prototypes merged into it (ascending).

    Raises:
        ValueError: a member is out of range, or a prototype appears in two clusters.
    """
    w = as_weight(weight)  # [C, P]
    plan: dict[int, list[int]] = {}
    seen: set[int] = set()
    for cluster in clusters:
        if not every_cluster and cluster.suggestion == LEAVE:
            continue
        members = _check_indices(cluster.members, w.shape[1], "cluster")
        if seen & set(members):
            raise ValueError(f"prototypes {sorted(seen & set(members))} are in two clusters")
        seen.update(members)
        if cluster.classes:
            strength = [w[c, j] for j, c in zip(members, cluster.classes, strict=True)]
        else:
            strength = [w[:, j].max() for j in members]
        kept = members[int(np.argmax(strength))]
        plan[kept] = sorted(j for j in members if j != kept)
    return plan


def pruned_weight(weight: Any, plan: Mapping[int, Iterable[int]]) -> np.ndarray:
    """The last layer after a prune plan: each group merged into its kept prototype.

    Args:
        weight: ``[C, P]`` the last-layer weight (not modified).
        plan: kept prototype → prototypes merged into it (see :func:`prune_plan`).

    Returns:
        ``[C, P]`` a new array.

    Raises:
        ValueError: an index is out of range, or a prototype appears in two groups.
    """
    new = as_weight(weight).copy()
    seen: set[int] = set()
    for kept, merged in plan.items():
        group = {
            *_check_indices([kept], new.shape[1], "plan"),
            *_check_indices(merged, new.shape[1], "plan"),
        }
        if seen & group:
            raise ValueError(f"prototypes {sorted(seen & group)} appear in two groups of the plan")
        seen |= group
        new = merged_weight(new, kept, merged)
    return new


# --- report ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RedundancyReport:
    """Redundancy of one model's prototypes, ready to show.

    Attributes:
        distances: the views and their combination.
        clusters: groups of redundant prototypes (see :func:`cluster_prototypes`).
        order: ``[P]`` dendrogram leaf order for a heatmap.
        threshold: the cut height used.
        plan: kept prototype → merged ones, for the "keep one" and "merge" clusters.
        pruned: the test accuracy after applying ``plan`` (``None`` without stored test scores).
    """

    distances: Distances
    clusters: tuple[Cluster, ...]
    order: np.ndarray
    threshold: float
    plan: dict[int, list[int]]
    pruned: WhatIf | None

    def lines(self, class_names: Sequence[str] | None = None) -> list[str]:
        """A plain-text summary, one line per cluster."""

        def name(c: int) -> str:
            return class_names[c] if class_names is not None else str(c)

        views = ", ".join(f"{v} {w:.2f}" for v, w in self.distances.weights.items())
        out = [
            f"{len(self.clusters)} clusters of redundant prototypes at threshold "
            f"{self.threshold:g} (views: {views})"
        ]
        for cluster in self.clusters:
            classes = sorted({name(c) for c in cluster.classes}) or ["?"]
            out.append(
                f"  {list(cluster.members)} [{', '.join(classes)}] max distance "
                f"{cluster.within_distance:.3f}: {cluster.suggestion} — {cluster.reason}"
            )
        if self.pruned is not None:
            removed = sum(len(v) for v in self.plan.values())
            out.append(
                f"pruning {removed} prototypes: test accuracy "
                f"{self.pruned.baseline_accuracy:.4f} → {self.pruned.accuracy:.4f} "
                f"({self.pruned.changed_predictions} predictions change), on "
                f"{self.pruned.measured_on}"
            )
        return out


def redundancy_report(
    bundle: Any,
    nearest_test: Any | None = None,
    attributes: Any | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    weights: Mapping[str, float] | None = None,
    linkage: str = "average",
) -> RedundancyReport:
    """The whole analysis for a loaded model folder.

    Args:
        bundle: a :class:`~explorer.models.checkpoint.ModelBundle` (its model through the
            :class:`PrototypeModel` contract; the latent view only when the family has prototype
            vectors).
        nearest_test: the test split's :class:`~explorer.analysis.nearest.NearestPatches` (with
            ``all_scores``), for the behavioural view and the pruned accuracy; optional.
        attributes: ``[P, M]`` global attribute importance, or an object with a ``phi`` array of
            that shape (``GlobalAttributes``); optional.
        threshold: the clustering cut height.
        weights: per-view weights (see :func:`prototype_distances`).
        linkage: as :func:`cluster_prototypes`.
    """
    model: PrototypeModel = bundle.model
    vectors = model.prototype_vectors.detach() if has(model, PROTOTYPE_VECTORS) else None
    scores = labels = images = None
    if nearest_test is not None:
        images = nearest_test.images
        if len(nearest_test.all_scores):
            scores, labels = nearest_test.all_scores, nearest_test.all_labels
    distances = prototype_distances(
        vectors,
        test_scores=scores,
        nearest_test_images=images,
        attributes=getattr(attributes, "phi", attributes),
        duplicates=exact_duplicates(bundle.projection, vectors),
        weights=weights,
        num_prototypes=model.num_prototypes,
    )
    clusters = cluster_prototypes(distances, threshold, linkage, model.prototype_classes)
    weight = as_weight(model.class_weights)
    plan = prune_plan(clusters, weight)
    pruned = None
    if scores is not None:
        # scores come only from nearest_test: its split size says whether they are a sample
        pruned = what_if(
            scores, labels, weight, pruned_weight(weight, plan), nearest_test.split_size
        )
    return RedundancyReport(
        distances=distances,
        clusters=tuple(clusters),
        order=ordering(distances, linkage),
        threshold=threshold,
        plan=plan,
        pruned=pruned,
    )
