"""How stable a local attribute ranking is under resampling of the modifications' random seeds.

A modification with a ``seed`` parameter (the swirl shape probe: its random stream function) gives
a different, equally valid change of the same attribute for every seed, so one local explanation
is one draw. This module recomputes the local explanation of one image for ``seeds`` seeds of every
seeded modification (the others are deterministic and stay as they are) and reports, per prototype,
how often the top-ranked attribute is the one of seed 0 and the mean Spearman correlation between
each seed's ranking and seed 0's. A set without seeded modifications is deterministic: its local
ranking is exact for the image, and :attr:`RankingStability.deterministic` says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explorer.analysis.attributes import local_attributes, spearman
from explorer.analysis.modifications import Modification
from explorer.models.base import PrototypeModel

SEEDS = 8


@dataclass(frozen=True)
class RankingStability:
    """Per prototype, how its local ranking holds over the seeds.

    Attributes:
        top_agreement: ``[P]`` share of seeds whose top attribute is seed 0's (1 when deterministic).
        mean_spearman: ``[P]`` mean Spearman ρ of each seed's φ with seed 0's (NaN where undefined).
        seeds: seeds drawn (1 when deterministic).
        seeded: names of the modifications that were resampled.
    """

    top_agreement: np.ndarray
    mean_spearman: np.ndarray
    seeds: int
    seeded: tuple[str, ...]

    @property
    def deterministic(self) -> bool:
        return not self.seeded

    def sentence(self, prototype: int) -> str:
        """One line for a match, e.g. ``top attribute the same for 7 of 8 shape seeds``."""
        if self.deterministic:
            return "deterministic modifications: the ranking is exact for this image"
        same = round(float(self.top_agreement[prototype]) * self.seeds)
        return (
            f"top attribute the same for {same} of {self.seeds} seeds of {', '.join(self.seeded)}"
        )


def reseeded(modification: Modification, seed: int) -> Modification:
    """The same modification with another ``seed`` (itself when it has none)."""
    if modification.param("seed") is None and not modification.param("swirl"):
        return modification
    params = (*((k, v) for k, v in modification.params if k != "seed"), ("seed", float(seed)))
    return dataclasses.replace(modification, params=params)


def is_seeded(modification: Modification) -> bool:
    """Whether a modification draws anything from a seed (the swirl does)."""
    return bool(modification.param("swirl")) or modification.param("seed") is not None


def ranking_stability(
    model: PrototypeModel,
    rgb: np.ndarray,
    modifications: Sequence[Modification],
    seeds: int = SEEDS,
) -> RankingStability:
    """The local ranking's stability for one image (module docstring).

    Raises:
        ValueError: ``seeds`` below 2.
    """
    if seeds < 2:
        raise ValueError(f"seeds must be at least 2, got {seeds}")
    seeded = tuple(m.name for m in modifications if is_seeded(m))
    first = local_attributes(model, rgb, modifications)
    num = first.phi.shape[0]
    if not seeded:
        return RankingStability(np.ones(num), np.ones(num), 1, ())
    applicable = first.applicable
    reference = first.phi[:, applicable]
    top = reference.argmax(axis=1)
    same = np.ones(num)
    rho = np.zeros(num)
    for seed in range(1, seeds):
        phi = local_attributes(model, rgb, [reseeded(m, seed) for m in modifications]).phi
        phi = phi[:, applicable]
        same += phi.argmax(axis=1) == top
        rho += [spearman(reference[p], phi[p]) for p in range(num)]
    return RankingStability(same / seeds, rho / (seeds - 1), seeds, seeded)
