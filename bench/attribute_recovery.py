"""Known-answer benchmark of attribute explanations on synthetic-attribute models.

Each synthetic class differs from the base class in one attribute (hue, saturation, contrast,
texture, shape). For every prototype of such a class, does its global explanation rank that
attribute first? Printed per attribute and overall for three readings — *raw* Φ (the paper's),
*z* (each modification's Φ z-scored across prototypes) and *relative* (the explorer's relative
reading: each prototype's Φ as shares of its total, ranked across prototypes as a percentile) —
for the reference and the disentangled modification sets; plus the AUC of Φ_m separating the
prototypes of the m-class from all others. Base-class prototypes are the control (no defining
attribute). Chance is 20 %.

    python -m bench.attribute_recovery [MODEL_FOLDER ...] [--split train|test] [--sets SET ...]

Without folders it runs the shipped ``weights/synthetic``. Models of other seeds, to check that
the disentangled values (chosen on seed 0's train split) hold on models they were not chosen on:

    python -m explorer train --preset synthetic --seed 1 --out /tmp/synthetic-s1

``--sets disentangled-v1`` runs the disentangled set's version-1 values (hue 180°, warp period
4 cells, texture σ ¼ cell, contrast 0.3, saturation 0.4) for comparison, and ``v2-but-KEY`` the
shipped values with only KEY back at version 1 (which change mattered). Several folders: a mean
over them is printed last.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from explorer.analysis.attribute_sets import cell_size, feature_grid, modification_set
from explorer.analysis.attributes import global_attributes, relative, zscores
from explorer.analysis.modifications import ATTRIBUTES, Modification, disentangled_set
from explorer.api import Explorer
from explorer.data.synthetic import DEFINING_ATTRIBUTE

CHANCE = 1 / len(ATTRIBUTES)


def defining_attribute(class_name: str) -> str | None:
    """The attribute a known-answer class changes, from its name: ours (``hue``, ``base``, ...) or
    another generator's (``1_hue``, ``Saturation-shift``, ``base_class``); ``None`` for the base.

    Raises:
        SystemExit: the name names no attribute, or more than one (with the names expected).
    """
    if class_name in DEFINING_ATTRIBUTE:
        return DEFINING_ATTRIBUTE[class_name]
    lowered = class_name.lower()
    named = [attribute for attribute in ATTRIBUTES if attribute in lowered]
    if len(named) == 1:
        return named[0]
    if not named and "base" in lowered:
        return None
    raise SystemExit(
        f"class {class_name!r} names {'several attributes' if named else 'no attribute'}: name "
        f"each class after the one attribute it changes ({', '.join(ATTRIBUTES)}) or 'base'"
    )


READINGS = {"raw": lambda phi: phi, "z": zscores, "relative": relative}
COLUMNS = (*ATTRIBUTES, "overall")


def recovery_table(
    phi: np.ndarray, names: tuple[str, ...], defining: list[str | None]
) -> dict[str, dict[str, float]]:
    """Per reading, the share of each attribute's prototypes whose top modification is that
    attribute (and overall); ``"auc"``: AUC of raw Φ_m separating m-prototypes from the rest."""
    columns = [names.index(a) for a in ATTRIBUTES]
    phi = phi[:, columns]
    attributed = [j for j, d in enumerate(defining) if d is not None]
    out: dict[str, dict[str, float]] = {}
    for reading, read in READINGS.items():
        top = [ATTRIBUTES[i] for i in read(phi).argmax(axis=1)]
        row = {
            a: float(np.mean([top[j] == a for j, d in enumerate(defining) if d == a]))
            for a in ATTRIBUTES
        }
        row["overall"] = float(np.mean([top[j] == defining[j] for j in attributed]))
        out[reading] = row
    out["auc"] = {
        a: float(roc_auc_score([d == a for d in defining], phi[:, i]))
        for i, a in enumerate(ATTRIBUTES)
    }
    return out


def mean_row(label: str, values: list[dict[str, float]], ratio: bool, width: int = 44) -> str:
    """One line of a table's mean (SD) over models: ``values`` one row per model; ``ratio``:
    plain numbers (AUC, correlations) instead of percentages."""
    fmt = "{:>6.2f} ({:.2f})" if ratio else "{:>6.0%} ({:.0%})"
    cells = "".join(
        f"{fmt.format(np.mean([v[c] for v in values]), np.std([v[c] for v in values])):>11}"
        for c in COLUMNS
        if c in values[0]
    )
    return f"{label:<{width}}{cells}"


VERSION_1 = {
    "hue_degrees": 180.0,
    "shape_period_cells": 4.0,
    "saturation": 0.4,
    "contrast": 0.3,
    "texture_sigma_cells": 0.25,
}
"""The disentangled set's version-1 values (the ones v2 changed)."""

SETS = (
    "reference",
    "disentangled",
    "disentangled-v1",
    *(f"v2-but-{key}" for key in VERSION_1),  # one value back to v1 at a time (ablation)
)


def disentangled_variant(
    name: str, image_shape: tuple[int, ...], cell: float
) -> tuple[Modification, ...]:
    """``disentangled-v1`` or ``v2-but-KEY`` (v2 with only KEY at its version-1 value)."""
    if name == "disentangled-v1":
        values = VERSION_1
    else:
        key = name.removeprefix("v2-but-")
        values = {key: VERSION_1[key]}
    return disentangled_set((int(image_shape[0]), int(image_shape[1])), cell, **values)


def print_rows(label: str, table: dict[str, dict[str, float]], note: str = "") -> None:
    for reading in READINGS:
        cells = "".join(f"{table[reading][c]:>11.0%}" for c in COLUMNS)
        print(f"{label:<30}{reading:<10}{cells}")
    cells = "".join(f"{table['auc'][a]:>11.2f}" for a in ATTRIBUTES)
    print(f"{label:<30}{'AUC':<10}{cells}{'':>11}{note}")


def mean_table(tables: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        key: {c: float(np.mean([t[key][c] for t in tables])) for c in tables[0][key]}
        for key in tables[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folders", nargs="*", help="synthetic-attribute model folders")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument(
        "--sets", nargs="+", default=["reference", "disentangled"], choices=SETS,
        help="modification sets (default: reference disentangled)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    folders = args.folders or [None]  # None: the shipped synthetic model
    sets = [name for name in SETS if name in args.sets]
    tables: dict[str, list] = {name: [] for name in sets}
    header = f"{'set':<30}{'reading':<10}" + "".join(f"{c:>11}" for c in COLUMNS)
    for folder in folders:
        # folders are registered one at a time: models of several seeds share the id "synthetic"
        model_id = "synthetic" if folder is None else explorer.add_model_folder(folder).model_id
        bundle = explorer.bundle(model_id)
        model = bundle.model
        data = explorer.dataset(model_id, args.split)
        classes = model.prototype_classes
        defining = [defining_attribute(bundle.spec.class_names[c]) for c in classes]
        grid = feature_grid(model)
        shape = data.images.shape[1:]
        accuracy = bundle.spec.accuracy.get("after_last_layer", float("nan"))
        print(
            f"\n{model_id} (seed {bundle.spec.training.get('seed', '?')}, test accuracy "
            f"{accuracy:.1%}), {len(classes)} prototypes, global Φ over the {args.split} split "
            f"({len(data)} images); chance = {CHANCE:.0%}"
        )
        print(header)
        for name in sets:
            if name in ("reference", "disentangled"):
                mods = modification_set(model, name, shape, grid)
            else:
                mods = disentangled_variant(name, shape, cell_size(model, shape, grid))
            started = time.perf_counter()
            result = global_attributes(model, data.images, mods, args.split)
            seconds = time.perf_counter() - started
            table = recovery_table(result.phi, result.modifications, defining)
            tables[name].append(table)
            print_rows(name, table, f"   ({seconds:.0f} s)")
    if len(folders) > 1:
        print(f"\nmean over {len(folders)} models ({args.split} split)")
        print(header)
        for name in sets:
            print_rows(name, mean_table(tables[name]))


if __name__ == "__main__":
    main()
