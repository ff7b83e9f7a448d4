"""Bootstrap intervals over images for the global attribute explanation, computed in the same pass.

``Φ_m(p) = Σ_x φ_m(p, x)·s(p, x) / Σ_x s(p, x)`` is a ratio of sums over the images of a split, so its
uncertainty is that of a sample of images. Storing every image's ``φ`` to resample afterwards would
take ``N × P × M`` numbers (240 MB for Fashion-MNIST's training split); instead each image gets, once,
``R`` independent Poisson(1) counts — how often it appears in each of ``R`` bootstrap resamples (the
Poisson bootstrap, a standard large-sample stand-in for drawing ``N`` images with replacement, e.g.
Hanley & MacGibbon 2006; Chamandy et al. 2012) — and the pass keeps ``R`` weighted copies of both sums.
Each image's counts come from its own generator, seeded by ``(seed, image key)`` (its index in the split;
in a folder, its place in the file listing), so the result does
not depend on the batch size or on the order in which batches are folded in.

From the ``R`` replicate values of ``Φ`` (and of any reading of it, e.g. the relative reading) the
interval is the percentile interval at :data:`CONFIDENCE`. Where an image set is too small for that to
mean much (fewer than :data:`MIN_IMAGES` images), the intervals are still given, and are wide.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

REPLICATES = 200  # bootstrap resamples per pass
CONFIDENCE = 0.95  # of every interval
SEED = 0  # of the Poisson counts (with each image's index)
MIN_IMAGES = 20


def poisson_counts(
    indices: np.ndarray, replicates: int = REPLICATES, seed: int = SEED
) -> np.ndarray:
    """``[R, N]`` float64: how often each image (by its index in the split) appears in each resample."""
    counts = np.empty((replicates, len(indices)))
    for column, index in enumerate(np.asarray(indices, dtype=np.int64)):
        counts[:, column] = np.random.default_rng([seed, int(index)]).poisson(1.0, replicates)
    return counts


def bootstrap_sums(
    phi: np.ndarray, similarity: np.ndarray, keys: np.ndarray, replicates: int = REPLICATES,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One batch's share of the resampled sums: ``[R, P, M]`` ``Σ_x c_r(x)·φ(p, x)·s(p, x)`` and
    ``[R, P]`` ``Σ_x c_r(x)·s(p, x)`` over its images (``phi`` ``[B, P, M]``, ``similarity``
    ``[B, P]``, ``keys`` ``[B]`` the images' keys, which seed their counts). Summed over batches, in
    any grouping, they are the resamples' sums."""
    if replicates < 2:
        raise ValueError(f"replicates must be at least 2, not {replicates}")
    counts = poisson_counts(keys, replicates, seed)  # [R, B]
    s = similarity.astype(np.float64)
    products = (phi.astype(np.float64) * s[:, :, None]).reshape(len(s), -1)  # [B, P·M]
    weighted = (counts @ products).reshape(replicates, *phi.shape[1:])  # one matrix product
    return weighted, counts @ s


def replicate_phi(weighted: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``[R, P, M]`` ``Φ`` of each resample from its sums (a prototype no resample image activates:
    NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return weighted / weight[:, :, None]


def percentile_interval(
    replicates: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval over the first axis (NaN replicates left out)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    tail = (1 - confidence) / 2 * 100
    finite = not np.isnan(replicates).any()  # the NaN-aware percentile is ten times slower
    low, high = (np.percentile if finite else np.nanpercentile)(
        replicates, [tail, 100 - tail], axis=0
    )
    return low, high


def reading_interval(
    replicate_phi: np.ndarray,
    reading: Callable[[np.ndarray], np.ndarray],
    confidence: float = CONFIDENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """The interval of a reading of ``Φ`` (``[P, M]`` → ``[P, M]``, e.g. the relative reading),
    applied to every resample's ``Φ``."""
    values = np.stack([reading(np.nan_to_num(phi)) for phi in replicate_phi])
    return percentile_interval(values, confidence)


def top_two_overlap(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> bool:
    """Whether one prototype's two highest attributes (``[M]`` values with their intervals) cannot be
    told apart: the interval of the first reaches the interval of the second."""
    order = np.argsort(-values, kind="stable")
    if len(order) < 2:
        return False
    first, second = order[0], order[1]
    return bool(low[first] <= high[second])
