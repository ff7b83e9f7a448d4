"""Candidate modification sets and readings for the known-answer protocol, measured on generator A
only (issue 16; the record is in docs/known_answer_b.md, "Candidates examined on A").

    python -m bench.known_answer_candidates [MODEL_FOLDER ...] [--split train|test] [--images N]
        [--sets NAME ...]

Each candidate gives every attribute a *group* of modifications, and the attribute's Φ is the mean
of the group's Φ (one modification: the set as it is; two: both directions of a change; several:
the area under a dose-response curve). Every distinct modification is applied once per image in a
single global pass. Printed per candidate: the recovery (share of each attribute's prototypes whose
top attribute is its class's) in four readings — raw Φ, z (Φ z-scored per attribute across
prototypes), relative (the explorer's: shares of each prototype's Φ, ranked across prototypes) and
rank (raw Φ ranked across prototypes, no shares) — and the AUC of Φ_m for the m-class prototypes.

Without folders it runs the shipped ``weights/synthetic`` (generator A, seed 0). The point is to
choose on A; a candidate is only judged on generator B after it is frozen in known_answer_b.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from scipy import stats

from bench.attribute_recovery import COLUMNS, READINGS, defining_attribute, recovery_table
from bench.known_answer import row, stratified
from explorer.analysis.attribute_sets import cell_size, feature_grid
from explorer.analysis.attributes import global_attributes
from explorer.analysis.calibration import SCALES
from explorer.analysis.modifications import (
    ATTRIBUTES,
    DIS_CONTRAST,
    DIS_HUE_DEGREES,
    DIS_SATURATION,
    DIS_TEXTURE_SIGMA_CELLS,
    Modification,
    _with_lightness,
    disentangled_set,
    reference_set,
)
from explorer.api import Explorer

CANDIDATE_READINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    **READINGS,
    "rank": lambda phi: stats.rankdata(phi, axis=0),
}


@dataclass(frozen=True)
class Sharpen:
    """Texture *up*: ``L ← L + k (L − G_σ * L)`` on CIE L*, a* and b* kept (the blur's opposite)."""

    sigma_cells: float
    gain: float
    cell: float

    @property
    def name(self) -> str:
        return f"texture sharpen σ={self.sigma_cells:g} cells ×{self.gain:g}"

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        sigma = self.sigma_cells * self.cell

        def new_l(lum: np.ndarray) -> np.ndarray:
            smooth = cv2.GaussianBlur(
                lum, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT
            )
            return lum + self.gain * (lum - smooth)

        return _with_lightness(np.ascontiguousarray(rgb), new_l)


@dataclass(frozen=True)
class Named:
    """A modification under a name unique in the pass (several of one attribute share a pass)."""

    name: str
    inner: Any

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return self.inner.apply(rgb)


Groups = dict[str, list[Any]]


def _ours(attribute: str, strength: float, **params: float) -> Modification:
    return Modification(attribute, strength, "disentangled", params=tuple(params.items()))


def candidates(cell: float, image_size: tuple[int, int]) -> dict[str, Groups]:
    """Every candidate, by name, for a model with ``cell`` native pixels per feature cell and
    images of ``image_size``: the shipped sets as they are (``reference_set``,
    ``disentangled_set``), and variations of the disentangled one."""
    c = {"cell_size": cell}

    def swirl(seed: int, amplitude: float = 0.5, wavelength: float = 4.0) -> Modification:
        return _ours("shape", amplitude, swirl=1, wavelength_cells=wavelength, seed=seed, **c)

    v2: Groups = {m.attribute: [m] for m in disentangled_set(image_size, cell)}
    out: dict[str, Groups] = {
        "reference": {m.attribute: [m] for m in reference_set(brightness=None)},
        "v2": v2,
        "two-sided": {
            "hue": [*v2["hue"], _ours("hue", -DIS_HUE_DEGREES)],
            "shape": [swirl(0), swirl(1)],
            "texture": [*v2["texture"], Sharpen(DIS_TEXTURE_SIGMA_CELLS, 1.0, cell)],
            "contrast": [*v2["contrast"], _ours("contrast", 1 / DIS_CONTRAST)],
            "saturation": [*v2["saturation"], _ours("saturation", 1 / DIS_SATURATION)],
        },
        "two-sided up only": {},  # filled below: the second member of each two-sided group
        "dose area": {a: [SCALES[a].make(t, cell) for t in (0.25, 0.5, 0.75, 1.0)] for a in ATTRIBUTES},
        "dose full": {a: [SCALES[a].make(1.0, cell)] for a in ATTRIBUTES},
        "dose half": {a: [SCALES[a].make(0.5, cell)] for a in ATTRIBUTES},
    }  # fmt: skip
    out["two-sided up only"] = {a: [mods[1]] for a, mods in out["two-sided"].items()}
    for amplitude in (0.25, 0.5, 1.0):
        for wavelength in (2.0, 4.0):
            out[f"v2, swirl A={amplitude:g} L={wavelength:g}"] = {
                **v2, "shape": [swirl(0, amplitude, wavelength)]
            }  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folders", nargs="*", default=["weights/synthetic"])
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--images", type=int, default=600, help="stratified sample (0: all)")
    parser.add_argument("--sets", nargs="+", help="candidate names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer(model_dirs=())
    for folder in args.folders:
        info = explorer.add_model_folder(folder)
        bundle = explorer.bundle(info.model_id)
        model, spec = bundle.model, bundle.spec
        data = explorer.dataset(info.model_id, args.split)
        if args.images and args.images < len(data):
            data = data.subset(stratified(data.labels, args.images))
        cell = cell_size(model, data.images.shape[1:], feature_grid(model))
        defining = [defining_attribute(spec.class_names[c]) for c in model.prototype_classes]
        chosen = {
            name: groups
            for name, groups in candidates(cell, data.images.shape[1:3]).items()
            if not args.sets or name in args.sets
        }
        unique: dict[str, Any] = {}
        for groups in chosen.values():
            for mods in groups.values():
                for m in mods:
                    unique.setdefault(repr(m), m)
        started = time.perf_counter()
        result = global_attributes(
            model, data.images, [Named(k, m) for k, m in unique.items()], args.split, replicates=0
        )
        column = {key: i for i, key in enumerate(unique)}
        print(
            f"\n{folder} ({spec.dataset['name']}): {args.split} split, {len(data)} images, "
            f"cell {cell:g} px, {len(unique)} modifications ({time.perf_counter() - started:.0f} s)"
        )
        print(f"{'candidate':<44}" + "".join(f"{c:>11}" for c in COLUMNS))
        for name, groups in chosen.items():
            phi = np.stack(
                [
                    np.mean([result.phi[:, column[repr(m)]] for m in groups[a]], axis=0)
                    for a in ATTRIBUTES
                ],
                axis=1,
            )
            for reading, read in CANDIDATE_READINGS.items():
                top = recovery_table(read(phi), ATTRIBUTES, defining)["raw"]
                print(row(f"{name} {reading}", top))
            print(row(f"{name} AUC", recovery_table(phi, ATTRIBUTES, defining)["auc"], "{:>11.2f}"))


if __name__ == "__main__":
    main()
