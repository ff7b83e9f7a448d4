"""Packing a model's analyses into its folder within a size budget (``analyses/`` ≤ 25 % of the folder).

What is exact is never traded first. In order, while the results are over the budget:

1. nearest-patch images are stored as PNG (exact), then as JPEG at falling quality *outside their boxes*
   (each box stays an exact PNG crop, so every patch a prototype is matched on is exact), then with
   their similarity maps (drawn as heatmaps only) in half precision, then in 256 levels;
2. only then the test split's per-image scores are kept for a stratified subset of its images (a fixed
   seed, the same share of every class), recorded with the subset's image indices so that the what-if
   and the behavioural redundancy view say on how many images they are measured.

Similarities, cells, boxes, image indices, the kept scores and the attribute explanations are always
stored exactly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.analysis.nearest import NearestPatches

# (JPEG quality outside the boxes or None for PNG, how the similarity maps are stored)
IMAGE_STEPS = (
    (None, "float32"), (95, "float32"), (90, "float32"), (85, "float32"), (85, "float16"),
    (85, "uint8"), (75, "uint8"), (65, "uint8"),
)  # fmt: skip
SCORE_SHARES = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02)
SUBSET_SEED = 0


@dataclass(frozen=True)
class Packing:
    """How a folder's analyses were packed.

    Attributes:
        jpeg_quality: ``None`` when every nearest-patch image is exact; else the JPEG quality of the
            parts outside the boxes.
        maps_as: how the similarity maps (heatmaps) are stored: ``float32``, ``float16`` or
            ``uint8`` (256 levels).
        scored_images: test images whose per-image scores are kept.
        test_images: images in the test split.
        bytes: the packed results' size.
        budget: the size they had to fit.
    """

    jpeg_quality: int | None
    maps_as: str
    scored_images: int
    test_images: int
    bytes: int
    budget: int

    @property
    def fits(self) -> bool:
        return self.bytes <= self.budget

    def describe(self) -> str:
        images = (
            "nearest-patch images exact (PNG)"
            if self.jpeg_quality is None
            else f"nearest-patch boxes exact, the rest of each image JPEG at quality {self.jpeg_quality}"
        )
        scores = (
            f"per-image test scores for all {self.test_images:,} test images"
            if self.scored_images == self.test_images
            else f"per-image test scores for a stratified {self.scored_images:,} of the "
            f"{self.test_images:,} test images"
        )
        maps = {
            "float32": "",
            "float16": "; similarity heatmaps in half precision",
            "uint8": "; similarity heatmaps in 256 levels (as a colour map shows them)",
        }[self.maps_as]
        return f"{images}{maps}; {scores}"


def stratified_rows(labels: np.ndarray, share: float, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted row indices keeping ``share`` of every class (at least one each), chosen with a fixed
    seed."""
    labels = np.asarray(labels)
    if share >= 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        keep = max(1, round(len(members) * share))
        rows.append(rng.choice(members, size=keep, replace=False))
    return np.sort(np.concatenate(rows))


def _npz_bytes(arrays: dict[str, np.ndarray]) -> int:
    stream = io.BytesIO()
    np.savez_compressed(stream, **arrays)
    return len(stream.getvalue())


def pack_results(
    results: dict[str, tuple[str, Any]], budget: int
) -> tuple[dict[str, tuple[str, dict[str, np.ndarray]]], Packing]:
    """Plain arrays for every result (name → (title, result)) within ``budget`` bytes if it can be
    done; the most exact packing that fits, or the smallest when none does (``Packing.fits`` says).
    """
    others = {
        name: (title, result.to_arrays())
        for name, (title, result) in results.items()
        if not isinstance(result, NearestPatches)
    }
    nearest = {
        name: (title, result)
        for name, (title, result) in results.items()
        if isinstance(result, NearestPatches)
    }
    fixed = sum(_npz_bytes(arrays) for _, arrays in others.values())
    test = next((r for _, r in nearest.values() if r.scored_images), None)
    test_images = test.scored_images if test is not None else 0
    best: tuple[dict[str, tuple[str, dict[str, np.ndarray]]], Packing] | None = None
    for share in SCORE_SHARES:
        rows = stratified_rows(test.all_labels, share) if test is not None else None
        for quality, maps_as in IMAGE_STEPS:
            packed = dict(others)
            for name, (title, result) in nearest.items():
                keep = rows if result.scored_images else None
                arrays = result.to_arrays(jpeg_quality=quality, score_rows=keep, maps_as=maps_as)
                packed[name] = (title, arrays)
            size = fixed + sum(_npz_bytes(packed[name][1]) for name in nearest)
            packing = Packing(
                jpeg_quality=quality,
                maps_as=maps_as,
                scored_images=len(rows) if rows is not None else 0,
                test_images=test_images,
                bytes=size,
                budget=budget,
            )
            if packing.fits:
                return packed, packing
            if best is None or size < best[1].bytes:
                best = (packed, packing)
    assert best is not None
    return best


@dataclass(frozen=True)
class AnalysisRun:
    """What ``Explorer.analyse`` computed (or found stored) for one model.

    Attributes:
        model_id: the model.
        results: result name → the result (``NearestPatches`` or ``GlobalAttributes``).
        nearest: split → its nearest patches.
        attributes: ``(mode, split)`` → its global attribute explanation.
        folder: the model folder the results were written into (``None``: only the user's cache).
        packing: how they were packed into the folder, with ``folder_share`` the share of the
            folder's bytes its ``analyses/`` now take.
    """

    model_id: str
    results: dict[str, Any] = field(default_factory=dict)
    nearest: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)
    folder: Any = None
    packing: Packing | None = None
    folder_share: float | None = None
