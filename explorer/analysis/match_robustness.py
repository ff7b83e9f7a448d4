"""Does a match survive changes a person would not notice? Per-match robustness badges.

Hoffmann et al., "This Looks Like That... Does it? Shortcomings of Latent Space Prototype
Interpretability in Deep Networks" (ICML-W 2021): JPEG compression and imperceptible noise can change
ProtoPNet's similarities. Sacha et al., "Interpretability Benchmark for Evaluating Spatial
Misalignment of Prototypical Parts Explanations" (AAAI 2024): a faithful match should barely change
when only pixels *outside* its activated region change. For one image and one prototype, the match
(its score and best cell) is read again on:

* ``jpeg`` — the image (at model-input size) encoded as JPEG at quality 75 and decoded (OpenCV);
* ``noise`` — Gaussian pixel noise of sigma 2 % of the range (about 5 of 255), seeded, clipped;
* ``shift`` — the image moved right by one feature cell (its width in input pixels), the left edge
  repeated: the match should follow to the next cell;
* ``outside`` — Gaussian noise of sigma 10 % of the range on every pixel *outside* the match's
  95th-percentile box, the box itself untouched (misalignment).

**Rule.** A check is *fragile* when the score changes by more than :data:`MAX_CHANGE` (20 %) of its
value, or the match lands more than one cell from where it should be (where it was; for the shift,
one cell to the right, kept on the grid). Where the match lands is every cell within 20 % of the
perturbed map's best value, so that a plateau of equal matches (a flat region) does not count as a
move when its first maximum changes. The match is *robust* when no check is fragile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from explorer.models.base import PrototypeModel
from explorer.models.preprocess import to_model_pixels

MAX_CHANGE = 0.2
MAX_CELLS = 1
NOISE_SIGMA = 0.02
OUTSIDE_SIGMA = 0.02
JPEG_QUALITY = 75


@dataclass(frozen=True)
class Perturbation:
    """One change a match is re-read under.

    Attributes:
        name: short key (``jpeg``, ``noise``, ``shift``, ``outside``).
        title: what it is, for a person.
        per_prototype: needs the match's box (only ``outside``).
    """

    name: str
    title: str
    per_prototype: bool = False


PERTURBATIONS = (
    Perturbation("jpeg", f"JPEG quality {JPEG_QUALITY}"),
    Perturbation("noise", f"Gaussian noise σ = {NOISE_SIGMA:.0%} of the range"),
    Perturbation("shift", "shifted right by one feature cell"),
    Perturbation("outside", f"noise σ = {OUTSIDE_SIGMA:.0%} outside the matched box only", True),
)
"""The registry of checks, in the order they are shown."""


@dataclass(frozen=True)
class Check:
    """The match re-read under one perturbation.

    Attributes:
        name: the perturbation's key.
        score: the prototype's score on the perturbed image.
        cell: its best cell there.
        change: ``|score - original| / |original|`` (0 when both are 0, inf when only the original is).
        cells_off: Chebyshev distance (in cells) from where the match should be to the nearest cell
            within :data:`MAX_CHANGE` of the perturbed map's best value.
    """

    name: str
    score: float
    cell: tuple[int, int]
    change: float
    cells_off: int

    @property
    def fragile(self) -> bool:
        return self.change > MAX_CHANGE or self.cells_off > MAX_CELLS


@dataclass(frozen=True)
class MatchRobustness:
    """A match and its checks.

    Attributes:
        prototype: the prototype.
        score: its score on the image.
        cell: its best cell.
        box: the match's 95th-percentile box ``(y0, y1, x0, x1)`` (what ``outside`` keeps).
        checks: one per perturbation, in :data:`PERTURBATIONS` order.
    """

    prototype: int
    score: float
    cell: tuple[int, int]
    box: tuple[int, int, int, int]
    checks: tuple[Check, ...]

    @property
    def fragile_checks(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.fragile)

    @property
    def verdict(self) -> str:
        """``robust`` or ``fragile`` (see the module's rule)."""
        return "fragile" if self.fragile_checks else "robust"

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict:
        return {
            "prototype": self.prototype,
            "verdict": self.verdict,
            "score": self.score,
            "cell": list(self.cell),
            "rule": RULE,
            "checks": {
                c.name: {
                    "score": c.score,
                    "cell": list(c.cell),
                    "change": c.change,
                    "cells_off": c.cells_off,
                    "fragile": c.fragile,
                }
                for c in self.checks
            },
        }


RULE = (
    f"fragile when a check changes the score by more than {MAX_CHANGE:.0%} of its value or moves "
    f"the best cell more than {MAX_CELLS} cell from where it should be"
)


def jpeg(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """``pixels`` (uint8 ``[H, W, C]``) through JPEG at ``quality`` and back, in memory."""
    grey = pixels.shape[2] == 1
    coded = pixels[:, :, 0] if grey else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", coded, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    decoded = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    return decoded[:, :, None] if grey else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def with_noise(
    pixels: np.ndarray, sigma: float, rng: np.random.Generator, where: np.ndarray | None = None
) -> np.ndarray:
    """Gaussian noise of ``sigma`` (share of 255) on the pixels where ``where`` ([H, W] bool) is
    true (everywhere by default), clipped to uint8."""
    noise = rng.normal(0.0, sigma * 255.0, pixels.shape)
    if where is not None:
        noise *= np.asarray(where, dtype=bool)[:, :, None]
    return np.clip(np.rint(pixels.astype(np.float64) + noise), 0, 255).astype(np.uint8)


def shifted_right(pixels: np.ndarray, step: int) -> np.ndarray:
    """The image moved right by ``step`` pixels, the first column repeated on the left."""
    if step <= 0:
        return pixels.copy()
    out = np.empty_like(pixels)
    out[:, step:] = pixels[:, :-step]
    out[:, :step] = pixels[:, :1]
    return out


def outside_box(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """``[H, W]`` True outside ``box`` (``y0, y1, x0, x1``, upper bounds exclusive)."""
    mask = np.ones(shape, dtype=bool)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = False
    return mask


def _change(new: float, old: float) -> float:
    if old == 0:
        return 0.0 if new == 0 else float("inf")
    return abs(new - old) / abs(old)


def cells_off(cell_map: np.ndarray, expected: tuple[int, int]) -> int:
    """Chebyshev distance from ``expected`` to the nearest cell of ``cell_map`` within
    :data:`MAX_CHANGE` of its best value (the best cell itself when the map is not positive)."""
    best = float(cell_map.max())
    near_best = cell_map >= best - MAX_CHANGE * abs(best)
    rows, cols = np.nonzero(near_best)
    return int(np.min(np.maximum(np.abs(rows - expected[0]), np.abs(cols - expected[1]))))


def _best(maps: np.ndarray) -> tuple[int, int]:
    row, col = np.unravel_index(int(np.argmax(maps)), maps.shape)
    return int(row), int(col)


def match_robustness(
    model: PrototypeModel,
    rgb: np.ndarray,
    prototypes: list[int],
    box_of: Callable[[np.ndarray], tuple[int, int, int, int]],
    seed: int = 0,
) -> list[MatchRobustness]:
    """The robustness badge of several matches of one image, in one forward pass.

    Args:
        model: the network.
        rgb: the image (any size; brought to the model's pixels first).
        prototypes: the matches to check.
        box_of: a ``[h, w]`` similarity map -> its 95th-percentile box at input size
            (:func:`explorer.boxes.high_activation_box` of the upsampled map).
        seed: seeds both kinds of noise.
    """
    model.eval()
    pixels = to_model_pixels(rgb, model.spec)
    with torch.no_grad():
        clean = model(model.preprocess([pixels]))
    maps = clean.similarity_maps[0].detach().cpu().numpy()
    scores = clean.scores[0].detach().cpu().numpy()
    grid = maps.shape[-2:]
    step = model.cell_box((0, 0), grid)[3]  # one cell's width in input pixels
    rng = np.random.default_rng(seed)
    shared = {
        "jpeg": jpeg(pixels),
        "noise": with_noise(pixels, NOISE_SIGMA, rng),
        "shift": shifted_right(pixels, step),
    }
    boxes = {j: box_of(maps[j]) for j in prototypes}
    per_match = [
        with_noise(pixels, OUTSIDE_SIGMA, rng, outside_box(pixels.shape[:2], boxes[j]))
        for j in prototypes
    ]
    batch = model.preprocess([*shared.values(), *per_match])
    with torch.no_grad():
        out = model(batch)
    all_maps = out.similarity_maps.detach().cpu().numpy()
    all_scores = out.scores.detach().cpu().numpy()
    results = []
    for n, j in enumerate(prototypes):
        cell = _best(maps[j])
        expected = {
            "jpeg": cell,
            "noise": cell,
            "shift": (cell[0], min(cell[1] + 1, grid[1] - 1)),
            "outside": cell,
        }
        rows = {name: i for i, name in enumerate(shared)} | {"outside": len(shared) + n}
        checks = []
        for perturbation in PERTURBATIONS:
            row = rows[perturbation.name]
            new_cell = _best(all_maps[row, j])
            checks.append(
                Check(
                    name=perturbation.name,
                    score=float(all_scores[row, j]),
                    cell=new_cell,
                    change=_change(float(all_scores[row, j]), float(scores[j])),
                    cells_off=cells_off(all_maps[row, j], expected[perturbation.name]),
                )
            )
        results.append(MatchRobustness(j, float(scores[j]), cell, boxes[j], tuple(checks)))
    return results
