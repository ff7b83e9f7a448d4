"""Bootstrap intervals of global Φ (explorer/analysis/bootstrap.py): a simulation with known Φ.

Φ = Σ φ·s / Σ s over images. With per-image s ~ U(0.5, 1.5) and φ = a + b·s + noise, the population
value is a + b·E[s²]/E[s] = a + b·(1 + 1/12); the 95 % intervals must cover it in about 95 % of
simulated splits.
"""

from __future__ import annotations

import numpy as np
import pytest

from explorer.analysis.bootstrap import (
    bootstrap_sums,
    percentile_interval,
    poisson_counts,
    reading_interval,
    replicate_phi,
    top_two_overlap,
)

P, M = 2, 3
A = np.array([[0.1, 0.5, -0.2], [0.0, 0.3, 0.8]])  # [P, M]
B = np.array([[0.2, 0.0, 0.1], [-0.3, 0.4, 0.0]])
TRUE_PHI = A + B * (1 + 1 / 12)


def summed(phi, s, batches, replicates: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The resampled sums of the batches ((start, stop), in any order), added up."""
    parts = [
        bootstrap_sums(phi[a:b], s[a:b], np.arange(a, b), replicates, seed) for a, b in batches
    ]
    weighted = sum(part[0] for part in parts)
    weight = sum(part[1] for part in parts)
    return weighted, weight


def simulated_split(rng: np.random.Generator, images: int) -> tuple[np.ndarray, np.ndarray]:
    s = rng.uniform(0.5, 1.5, (images, P))
    phi = A + B * s[:, :, None] + rng.normal(0, 0.5, (images, P, M))
    return phi, s


def test_intervals_cover_the_known_phi_at_the_stated_rate() -> None:
    rng = np.random.default_rng(0)
    covered, cells = 0, 0
    for split in range(120):
        phi, s = simulated_split(rng, 150)
        batches = [(start, min(150, start + 32)) for start in range(0, 150, 32)]
        low, high = percentile_interval(replicate_phi(*summed(phi, s, batches, seed=split)))
        covered += int(((low <= TRUE_PHI) & (high >= TRUE_PHI)).sum())
        cells += TRUE_PHI.size
    coverage = covered / cells
    print(f"\ncoverage of the 95 % intervals: {coverage:.3f} over {cells} cells")
    assert 0.91 <= coverage <= 0.985


def test_the_sums_do_not_depend_on_batches_or_their_order() -> None:
    phi, s = simulated_split(np.random.default_rng(1), 50)
    whole = summed(phi, s, [(0, 50)], replicates=20)
    # other batch sizes, folded in another order
    pieces = summed(phi, s, [(40, 50), (0, 17), (17, 30), (30, 40)], replicates=20)
    np.testing.assert_allclose(pieces[0], whole[0], rtol=1e-12)
    np.testing.assert_allclose(pieces[1], whole[1], rtol=1e-12)


def test_counts_are_poisson_one_and_more_images_give_narrower_intervals() -> None:
    counts = poisson_counts(np.arange(2000), replicates=50)
    assert (
        counts.shape == (50, 2000)
        and abs(counts.mean() - 1) < 0.02
        and abs(counts.var() - 1) < 0.05
    )
    widths = []
    for images in (40, 640):
        phi, s = simulated_split(np.random.default_rng(2), images)
        low, high = percentile_interval(replicate_phi(*summed(phi, s, [(0, images)])))
        widths.append(float((high - low).mean()))
    assert widths[1] < widths[0] / 3  # about 1/sqrt(16) = 1/4


def test_a_reading_gets_its_interval_from_every_resample() -> None:
    phi, s = simulated_split(np.random.default_rng(3), 200)
    resampled = replicate_phi(*summed(phi, s, [(0, 200)]))
    low, high = reading_interval(resampled, lambda x: 2 * x)
    plain_low, plain_high = percentile_interval(resampled)
    np.testing.assert_allclose(low, 2 * plain_low)
    np.testing.assert_allclose(high, 2 * plain_high)


def test_top_two_overlap_says_when_the_first_attribute_cannot_be_told_apart() -> None:
    values = np.array([0.9, 0.5, 0.1])
    assert not top_two_overlap(values, np.array([0.8, 0.4, 0.0]), np.array([1.0, 0.6, 0.2]))
    assert top_two_overlap(values, np.array([0.55, 0.4, 0.0]), np.array([1.0, 0.6, 0.2]))
    assert not top_two_overlap(np.array([1.0]), np.array([0.0]), np.array([2.0]))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="replicates must be at least 2"):
        bootstrap_sums(np.zeros((1, P, M)), np.ones((1, P)), np.arange(1), replicates=1)
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        percentile_interval(np.zeros((5, 2)), confidence=1.5)
