"""Known-answer benchmark of attribute explanations on the synthetic model.

Each synthetic class differs from the base class in one attribute (hue, saturation, contrast,
texture, shape). For every prototype of such a class, does its global explanation rank that
attribute first? Printed per attribute and overall, for the raw (reference) and relative readings,
for the reference and disentangled modification sets; plus the AUC of Φ_m separating the prototypes
of the m-class from all others. Base-class prototypes are the control (no defining attribute).

    python -m bench.attribute_recovery [--split train|test]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from explorer.analysis.attribute_sets import MODES, feature_grid, modification_set
from explorer.analysis.attributes import global_attributes, relative
from explorer.analysis.modifications import ATTRIBUTES
from explorer.api import Explorer
from explorer.data.synthetic import DEFINING_ATTRIBUTE

CHANCE = 1 / len(ATTRIBUTES)


def recovery_table(phi: np.ndarray, names: tuple[str, ...], defining: list[str | None]) -> dict:
    """Share of prototypes whose top-ranked (paper) modification is their class's attribute."""
    columns = [names.index(a) for a in ATTRIBUTES]
    readings = {"raw": phi[:, columns], "relative": relative(phi[:, columns])}
    out: dict[str, dict[str, float]] = {}
    for reading, values in readings.items():
        top = [ATTRIBUTES[i] for i in values.argmax(axis=1)]
        row = {}
        for attribute in ATTRIBUTES:
            members = [j for j, d in enumerate(defining) if d == attribute]
            row[attribute] = float(np.mean([top[j] == attribute for j in members]))
        attributed = [j for j, d in enumerate(defining) if d is not None]
        row["overall"] = float(np.mean([top[j] == defining[j] for j in attributed]))
        out[reading] = row
    out["auc"] = {
        a: float(roc_auc_score([d == a for d in defining], phi[:, names.index(a)]))
        for a in ATTRIBUTES
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", default="train", choices=["train", "test"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    bundle = explorer.bundle("synthetic")
    model = bundle.model
    data = explorer.dataset("synthetic", args.split)
    classes = model.prototype_classes
    defining = [DEFINING_ATTRIBUTE[bundle.spec.class_names[c]] for c in classes]
    grid = feature_grid(model)
    print(f"synthetic model, {len(classes)} prototypes, global Φ over the {args.split} split "
          f"({len(data)} images); chance = {CHANCE:.0%}")  # fmt: skip
    header = f"{'set':<13}{'reading':<10}" + "".join(f"{a:>11}" for a in (*ATTRIBUTES, "overall"))
    print(header)
    for mode in MODES:
        mods = modification_set(model, mode, data.images.shape[1:], grid)
        started = time.perf_counter()
        result = global_attributes(model, data.images, mods, args.split)
        seconds = time.perf_counter() - started
        table = recovery_table(result.phi, result.modifications, defining)
        for reading in ("raw", "relative"):
            cells = "".join(f"{table[reading][a]:>11.0%}" for a in (*ATTRIBUTES, "overall"))
            print(f"{mode:<13}{reading:<10}{cells}")
        cells = "".join(f"{table['auc'][a]:>11.2f}" for a in ATTRIBUTES)
        print(f"{mode:<13}{'AUC':<10}{cells}{'':>11}   ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
