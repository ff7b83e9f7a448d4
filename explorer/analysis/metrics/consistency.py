"""Consistency: does a prototype land on the same object part across the images of its class?

Huang et al., CVPR 2023 ("Evaluation and Improvement of Interpretability for Self-Explainable
Part-Prototype Networks"; ``evaluate_consistency`` in ``hqhQAQ/EvalProtoPNet``). For prototype
``p`` of class ``c`` and every test image of class ``c``, the part vector ``o`` (see
:mod:`explorer.analysis.metrics.parts`). Per part ``k``:

    rate[p, k] = sum_i o[i, k] / max(1, sum_i visible[i, k])

(the share of the images where part ``k`` is annotated in which it falls in the prototype's box;
a part never annotated gives 0). The prototype is *consistent* when some part reaches
``rate >= 0.8``. The model's score is the share of consistent prototypes, x 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLD = 0.8


@dataclass(frozen=True)
class Consistency:
    """Per prototype, how often each part falls in its box on its class's images.

    Attributes:
        rates: ``[P, K]`` share of the images (where the part is annotated) with the part inside.
        consistent: ``[P]`` some part reaches :data:`THRESHOLD`.
        images: ``[P]`` how many images of its class each prototype was read on.
    """

    rates: np.ndarray
    consistent: np.ndarray
    images: np.ndarray

    @property
    def score(self) -> float:
        """Share of consistent prototypes, x 100 (EvalProtoPNet's consistency score)."""
        return float(self.consistent.mean() * 100) if len(self.consistent) else float("nan")

    @property
    def best_part(self) -> np.ndarray:
        """``[P]`` the part each prototype lands on most often."""
        return self.rates.argmax(axis=1)


def part_rates(vectors: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``[K]`` EvalProtoPNet's per-part rate for one prototype.

    Args:
        vectors: ``[N, K]`` the prototype's part vectors on its class's images.
        visible: ``[N, K]`` which parts are annotated on each image.
    """
    hits = np.asarray(vectors, dtype=np.float64).sum(axis=0)
    shown = np.asarray(visible, dtype=np.float64).sum(axis=0)
    return hits / np.where(shown == 0, 1.0, shown)


def consistency(
    vectors: np.ndarray,
    visible: np.ndarray,
    labels: np.ndarray,
    prototype_classes: np.ndarray,
    threshold: float = THRESHOLD,
) -> Consistency:
    """Consistency of every prototype.

    Args:
        vectors: ``[N, P, K]`` part vectors of every image for every prototype.
        visible: ``[N, K]`` annotated parts per image.
        labels: ``[N]`` true classes.
        prototype_classes: ``[P]``.
        threshold: the rate a part must reach (0.8).
    """
    num_prototypes, num_parts = vectors.shape[1], vectors.shape[2]
    rates = np.zeros((num_prototypes, num_parts))
    counts = np.zeros(num_prototypes, dtype=np.int64)
    for p, cls in enumerate(np.asarray(prototype_classes)):
        own = np.asarray(labels) == cls
        counts[p] = int(own.sum())
        rates[p] = part_rates(vectors[own, p], visible[own])
    return Consistency(rates=rates, consistent=(rates >= threshold).any(axis=1), images=counts)
