"""A calibration rule for the modifications' strengths: equal effect in the model's own feature space.

Issue 16: strengths tuned on one known-answer data set (the disentangled set's version 2) did not
hold on another. The rule here replaces tuning by one stated, data-independent principle, fixed
before any recovery is measured:

    For each model, each attribute's strength is the one at which the modification moves the
    model's feature map (``model.feature_layer``'s output) by the same mean distance, averaged
    over :data:`CALIBRATION_IMAGES` training images drawn with :data:`CALIBRATION_SEED`. That
    distance is :data:`TARGET_FRACTION` of the largest effect the *weakest* attribute can reach on
    its scale, so that every attribute reaches it at an intermediate strength.

Precisely, for images ``x_i`` with feature maps ``F(x_i) ∈ R^{D×h×w}`` and a modification ``m``:

    effect(m) = mean_i mean_cells ‖F(m(x_i)) − F(x_i)‖₂ / S,
    S = mean over random pairs (a, b) of cells of different images of ‖F_a − F_b‖₂.

Each attribute's strength is on a unit scale ``t ∈ [0, 1]`` (:data:`SCALES`: from the no-op to
the strongest sensible change, e.g. contrast factor ``1 − t``, hue rotation ``180°·t``). The
effect is evaluated on a grid of :data:`GRID_STEPS` + 1 points of each scale (the *curve*); the
target is ``δ = TARGET_FRACTION · min_a max_t effect_a(t)`` over the attributes that change the
images at all (on grey images hue and saturation change nothing and are left out), and each
attribute's ``t`` is the first crossing of ``δ`` on its curve made monotone by a running maximum,
refined by :data:`REFINE_STEPS` bisection steps inside that grid interval (the curves are far from
linear: blurring the pixel noise away moves features at once). The effect reached there is
measured again and recorded.

Nothing here looks at prototypes, classes or any explanation result: the rule equalises how much
each modification changes what the network sees, so that no modification wins the raw ranking just
by being the larger change (docs/method.md §3.1).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from explorer.analysis.modifications import ATTRIBUTES, Modification
from explorer.images import as_rgb
from explorer.models.base import PrototypeModel

CALIBRATION_VERSION = 1
TARGET_FRACTION = 0.5
"""The target effect as a share of the weakest attribute's largest effect."""
CALIBRATION_IMAGES = 64
CALIBRATION_SEED = 0
GRID_STEPS = 8
REFINE_STEPS = 5
PAIRS = 4096
WHERE = ("all", "matched")
"""Where the displacement is averaged: over ``all`` feature cells (rule version 1, the one frozen on
generator A first), or over the ``matched`` cells only — each prototype's best-matching cell of the
original image, the cells its explanation reads (so a background the prototypes never look at does
not set the strengths)."""
SWIRL_WAVELENGTH_CELLS = 4.0
"""The shape probe's wavelength: about a prototype's receptive field in the small CNNs (4 cells),
so that outlines bend inside what a prototype sees while a patch below a cell moves almost rigidly."""
TEXTURE_SIGMA_MAX_CELLS = 2.0
SHAPE_AMPLITUDE_MAX_CELLS = 1.0


@dataclass(frozen=True)
class AttributeScale:
    """How ``t ∈ [0, 1]`` maps onto one attribute's modification (``t = 0``: the no-op).

    Attributes:
        attribute: one of :data:`ATTRIBUTES`.
        describe: the mapping in words (shown with the calibration).
        make: ``(t, cell_size) -> Modification``.
    """

    attribute: str
    describe: str
    make: Callable[[float, float], Modification]


def _swirl(t: float, cell: float) -> Modification:
    params = (("cell_size", cell), ("swirl", 1.0), ("wavelength_cells", SWIRL_WAVELENGTH_CELLS))
    return Modification("shape", SHAPE_AMPLITUDE_MAX_CELLS * t, "disentangled", params=params)


SCALES: dict[str, AttributeScale] = {
    scale.attribute: scale
    for scale in (
        AttributeScale(
            "hue", "rotation of (a*, b*) by 180°·t",
            lambda t, cell: Modification("hue", 180.0 * t, "disentangled"),
        ),
        AttributeScale(
            "shape",
            f"swirl (area-keeping smooth warp, wavelength {SWIRL_WAVELENGTH_CELLS:g} cells) of "
            f"RMS amplitude {SHAPE_AMPLITUDE_MAX_CELLS:g}·t cells",
            _swirl,
        ),
        AttributeScale(
            "texture", f"Gaussian low-pass of L* with σ = {TEXTURE_SIGMA_MAX_CELLS:g}·t cells",
            lambda t, cell: Modification(
                "texture", TEXTURE_SIGMA_MAX_CELLS * t, "disentangled",
                params=(("cell_size", cell),),
            ),
        ),
        AttributeScale(
            "contrast", "L* deviations from the mean × (1 − t)",
            lambda t, cell: Modification("contrast", 1.0 - t, "disentangled"),
        ),
        AttributeScale(
            "saturation", "(a*, b*) × (1 − t)",
            lambda t, cell: Modification("saturation", 1.0 - t, "disentangled"),
        ),
    )
}  # fmt: skip
"""Every attribute's unit scale, in :data:`ATTRIBUTES` order."""


@dataclass(frozen=True)
class Calibration:
    """The strengths the rule chose for one model.

    Attributes:
        t: per attribute, the position on its unit scale (:data:`SCALES`).
        effect: per attribute, the effect reached there (≈ ``target`` unless capped).
        inactive: the attributes that change none of the sample's images (their ``t`` is 0).
        curve: per attribute, the effect at the grid ``t = 0, 1/GRID_STEPS, …, 1``.
        target: the effect aimed at, ``δ``, in units of the typical distance between two cells.
        fraction: :data:`TARGET_FRACTION` when it was made.
        images: how many training images it was measured on.
        cell_size: native image pixels per feature cell.
        version: :data:`CALIBRATION_VERSION`.
    """

    t: dict[str, float]
    effect: dict[str, float]
    inactive: tuple[str, ...]
    curve: dict[str, tuple[float, ...]]
    target: float
    fraction: float
    images: int
    cell_size: float
    version: int = CALIBRATION_VERSION
    typical_distance: float = field(default=float("nan"))
    where: str = "all"

    def modifications(self) -> tuple[Modification, ...]:
        """The calibrated set, in :data:`ATTRIBUTES` order."""
        return tuple(SCALES[a].make(self.t[a], self.cell_size) for a in ATTRIBUTES)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inactive"] = list(self.inactive)
        data["curve"] = {a: list(v) for a, v in self.curve.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(
            t={a: float(v) for a, v in data["t"].items()},
            effect={a: float(v) for a, v in data["effect"].items()},
            inactive=tuple(data["inactive"]),
            curve={a: tuple(float(x) for x in v) for a, v in data["curve"].items()},
            target=float(data["target"]),
            fraction=float(data["fraction"]),
            images=int(data["images"]),
            cell_size=float(data["cell_size"]),
            version=int(data.get("version", CALIBRATION_VERSION)),
            typical_distance=float(data.get("typical_distance", float("nan"))),
            where=str(data.get("where", "all")),
        )


def rule_identity(fraction: float = TARGET_FRACTION, where: str = "all") -> dict[str, Any]:
    """Everything that defines the rule (no data, no model): hashed into the bench's configuration
    (``where="all"`` hashes exactly as before the option existed)."""
    extra = {} if where == "all" else {"where": where}
    return {
        **extra,
        "rule": "equal mean feature-map displacement",
        "version": CALIBRATION_VERSION,
        "target_fraction": fraction,
        "images": CALIBRATION_IMAGES,
        "seed": CALIBRATION_SEED,
        "grid_steps": GRID_STEPS,
        "refine_steps": REFINE_STEPS,
        "pairs": PAIRS,
        "scales": {a: SCALES[a].describe for a in ATTRIBUTES},
    }


def identity_hash(identity: dict[str, Any]) -> str:
    """SHA-256 of a configuration's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def calibration_sample(images: np.ndarray, count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """The training images the rule measures on: ``count`` drawn without replacement with
    :data:`CALIBRATION_SEED` (all of them when there are fewer)."""
    if len(images) == 0:
        raise ValueError("calibration needs at least one training image")
    rng = np.random.default_rng(CALIBRATION_SEED)
    if len(images) <= count:
        return np.asarray(images)
    return np.asarray(images)[np.sort(rng.choice(len(images), count, replace=False))]


def feature_maps(
    model: PrototypeModel, images: Sequence[np.ndarray], batch: int = 64
) -> torch.Tensor:
    """``[N, D, h, w]`` outputs of the model's ``feature_layer`` (float32, on the CPU)."""
    return _forward(model, images, batch)[0]


def _forward(
    model: PrototypeModel, images: Sequence[np.ndarray], batch: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """The feature maps ``[N, D, h, w]`` and each prototype's best cell ``[N, P]`` (flat index into
    the feature grid)."""
    captured: list[torch.Tensor] = []
    best: list[torch.Tensor] = []

    def keep(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
        captured.append(output.detach().float().cpu())

    handle = model.feature_layer.register_forward_hook(keep)
    try:
        model.eval()
        with torch.inference_mode():
            for lo in range(0, len(images), batch):
                x = model.preprocess([as_rgb(image) for image in images[lo : lo + batch]])
                maps = model(x).similarity_maps.cpu()
                best.append(maps.flatten(2).argmax(dim=2))
    finally:
        handle.remove()
    features = torch.cat(captured)
    cells = torch.cat(best)
    grid = tuple(maps.shape[-2:])
    if tuple(features.shape[-2:]) != grid:  # a family whose prototypes see another grid
        rows, cols = cells // grid[1], cells % grid[1]
        h, w = features.shape[-2:]
        cells = (rows * h // grid[0]) * w + cols * w // grid[1]
    return features, cells


def typical_distance(features: torch.Tensor, pairs: int = PAIRS) -> float:
    """Mean ``‖F_a − F_b‖₂`` over random pairs of cells of two different images (seeded)."""
    n, d, h, w = features.shape
    if n < 2:
        raise ValueError("the typical distance needs at least two images")
    cells = features.permute(0, 2, 3, 1).reshape(n, h * w, d)
    rng = np.random.default_rng(CALIBRATION_SEED + 1)
    first = rng.integers(0, n, pairs)
    second = (first + rng.integers(1, n, pairs)) % n  # never the same image
    a = cells[first, rng.integers(0, h * w, pairs)]
    b = cells[second, rng.integers(0, h * w, pairs)]
    return float((a - b).norm(dim=1).mean())


def effects(
    model: PrototypeModel,
    images: np.ndarray,
    modifications: Sequence[Modification],
    original: torch.Tensor | None = None,
    scale: float | None = None,
    cells: torch.Tensor | None = None,
) -> np.ndarray:
    """``[M]`` each modification's effect (module docstring) on ``images``: over all cells, or with
    ``cells`` (``[N, P]`` flat indices, :data:`WHERE` ``matched``) over those cells only."""
    if original is None:
        original = feature_maps(model, images)
    scale = typical_distance(original) if scale is None else scale
    rgb = [as_rgb(x) for x in images]
    out = np.empty(len(modifications))
    for k, modification in enumerate(modifications):
        changed = feature_maps(model, [modification.apply(x) for x in rgb])
        moved = (changed - original).norm(dim=1).flatten(1)  # [N, h·w]
        if cells is not None:
            moved = torch.gather(moved, 1, cells)
        out[k] = float(moved.mean()) / scale
    return out


def _bracket(grid: np.ndarray, curve: np.ndarray, target: float) -> tuple[float, float]:
    """The grid interval in which the curve, made monotone by a running maximum, first reaches
    ``target`` (the curve must reach it)."""
    monotone = np.maximum.accumulate(curve)
    k = int(np.argmax(monotone >= target))
    return (float(grid[max(k - 1, 0)]), float(grid[k]))


def calibrate(
    model: PrototypeModel,
    train_images: np.ndarray,
    cell_size: float,
    fraction: float = TARGET_FRACTION,
    images: int = CALIBRATION_IMAGES,
    where: str = "all",
) -> Calibration:
    """Applies the rule to one model (module docstring).

    Args:
        model: the network.
        train_images: its training split at native resolution (a sample is drawn from it).
        cell_size: native image pixels per feature cell.
        fraction: the target as a share of the weakest attribute's largest effect, in (0, 1].
        images: how many training images to measure on.
        where: :data:`WHERE`: average the displacement over all cells or the matched ones.

    Raises:
        ValueError: fewer than two training images, a fraction outside (0, 1], an unknown
            ``where``, or no modification that changes the images.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"the target fraction must be in (0, 1], got {fraction}")
    if where not in WHERE:
        raise ValueError(f"where must be one of {WHERE}, not {where!r}")
    sample = calibration_sample(train_images, images)
    original, matched = _forward(model, sample)
    cells = matched if where == "matched" else None
    scale = typical_distance(original)
    grid = np.linspace(0.0, 1.0, GRID_STEPS + 1)
    curves: dict[str, np.ndarray] = {}
    for attribute in ATTRIBUTES:
        make = SCALES[attribute].make
        mods = [make(float(t), cell_size) for t in grid[1:]]
        moved = effects(model, sample, mods, original, scale, cells)
        curves[attribute] = np.concatenate([[0.0], moved])
    inactive = tuple(a for a in ATTRIBUTES if not np.max(curves[a]) > 0)
    active = [a for a in ATTRIBUTES if a not in inactive]
    if not active:
        raise ValueError("no modification changes the calibration images")
    target = fraction * min(float(np.max(curves[a])) for a in active)
    chosen = {a: 0.0 for a in ATTRIBUTES}
    for attribute in active:
        lo, hi = _bracket(grid, curves[attribute], target)
        for _ in range(REFINE_STEPS):  # bisection inside the bracket
            mid = 0.5 * (lo + hi)
            mod = SCALES[attribute].make(mid, cell_size)
            if effects(model, sample, [mod], original, scale, cells)[0] >= target:
                hi = mid
            else:
                lo = mid
        chosen[attribute] = hi
    final = [SCALES[a].make(chosen[a], cell_size) for a in ATTRIBUTES]
    reached = effects(model, sample, final, original, scale, cells)
    return Calibration(
        t=chosen,
        effect={a: float(v) for a, v in zip(ATTRIBUTES, reached, strict=True)},
        inactive=inactive,
        curve={a: tuple(float(v) for v in curves[a]) for a in ATTRIBUTES},
        target=float(target),
        fraction=float(fraction),
        images=len(sample),
        cell_size=float(cell_size),
        typical_distance=scale,
        where=where,
    )
