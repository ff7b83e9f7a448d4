"""The known-answer protocol of issue 16 (docs/known_answer_b.md): attribute recovery with a frozen
configuration, on models of several seeds of each generator, beside the paper's reference set.

    python -m bench.known_answer MODEL_FOLDER [...] [--split test] [--train-images N]
        [--fractions F ...] [--readings raw relative]

Per model (its generator, data seed, training seed and test accuracy printed), per configuration:
the share of each attribute's prototypes whose top-ranked modification is that attribute, overall
(the mean over the prototypes of the five attribute classes), and the AUC of raw Φ_m separating the
m-class prototypes from all others — for the *reference* set (the paper's values) and the
*calibrated* set (explorer.analysis.calibration: strengths by the equal-feature-effect rule, the
swirl shape probe), each in the raw and the relative reading; with ``--disentangled`` also the
app's disentangled set (version 2, tuned on generator A). Then the mean and the spread (SD)
over the models of each generator. A model below 90 % test accuracy is reported and left out of
the means.

Every calibrated configuration is printed with the SHA-256 of its canonical JSON (the rule, its
target fraction and the reading), so that a frozen configuration can be recognised in any later
output. ``--train-images N`` measures the train split on a seeded, class-stratified sample of N
images (the whole split by default).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch

from bench.attribute_recovery import COLUMNS, defining_attribute, mean_row, recovery_table
from explorer.analysis.attribute_sets import cell_size, feature_grid, modification_set
from explorer.analysis.attributes import global_attributes
from explorer.analysis.calibration import calibrate, identity_hash, rule_identity
from explorer.analysis.modifications import ATTRIBUTES
from explorer.analysis.stability import SEEDS, ranking_stability
from explorer.api import Explorer
from explorer.data import parse_data_seed

MIN_ACCURACY = 0.90
READINGS = ("raw", "relative")


def configuration_hash(fraction: float, reading: str, where: str = "all") -> str:
    return identity_hash({"calibration": rule_identity(fraction, where), "reading": reading})


def calibrated_label(fraction: float, where: str) -> str:
    return f"calibrated f={fraction:g}" + ("" if where == "all" else f" {where}")


def stratified(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` indices, as equal a share of every class as possible, seeded, in order."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = count // len(classes)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), min(per_class, int((labels == c).sum())), False)
        for c in classes
    ]
    return np.sort(np.concatenate(chosen))


def row(label: str, values: dict[str, float], fmt: str = "{:>11.0%}") -> str:
    return f"{label:<44}" + "".join(fmt.format(values[c]) for c in COLUMNS if c in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folders", nargs="+", help="model folders trained on synthetic or blobs")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--train-images", type=int, help="sample of the train split (stratified)")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.25])
    parser.add_argument(
        "--where", nargs="+", default=["all"], choices=["all", "matched"],
        help="calibration rule variants: displacement over all cells or the matched ones",
    )  # fmt: skip
    parser.add_argument("--no-reference", action="store_true", help="leave the reference set out")
    parser.add_argument(
        "--stability", type=int, default=0, metavar="N",
        help="also the local ranking's stability under 8 swirl seeds on N images of the split",
    )  # fmt: skip
    parser.add_argument(
        "--disentangled", action="store_true",
        help="also the app's disentangled set (version 2, its values tuned on generator A)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer(model_dirs=())
    header = f"{'configuration':<44}" + "".join(f"{c:>11}" for c in COLUMNS)
    variants = [(f, w) for w in args.where for f in args.fractions]
    for fraction, where in variants:
        for reading in READINGS:
            label = calibrated_label(fraction, where)
            print(f"{label} {reading}: {configuration_hash(fraction, reading, where)}")
    tables: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for folder in args.folders:
        info = explorer.add_model_folder(folder)
        bundle = explorer.bundle(info.model_id)
        model, spec = bundle.model, bundle.spec
        generator, data_seed = parse_data_seed(spec.dataset["name"])
        accuracy = spec.accuracy.get("after_last_layer", float("nan"))
        data = explorer.dataset(info.model_id, args.split)
        if args.split == "train" and args.train_images:
            data = data.subset(stratified(data.labels, args.train_images))
        train = explorer.dataset(info.model_id, "train")
        grid = feature_grid(model)
        shape = data.images.shape[1:]
        cell = cell_size(model, shape, grid)
        defining = [defining_attribute(spec.class_names[c]) for c in model.prototype_classes]
        kept = accuracy >= MIN_ACCURACY
        print(
            f"\n{folder}: {generator} data seed {data_seed or 0}, training seed "
            f"{spec.training.get('seed', '?')}, test accuracy {accuracy:.1%}"
            f"{'' if kept else ' — below 90 %: reported, left out of the means'}; "
            f"{args.split} split, {len(data)} images, cell {cell:g} px"
        )
        print(header)
        configurations = [] if args.no_reference else [("reference", None, "")]
        configurations += [("disentangled", None, "")] if args.disentangled else []
        configurations += [("calibrated", f, w) for f, w in variants]
        for name, fraction, where in configurations:
            started = time.perf_counter()
            if fraction is None:
                mods = modification_set(model, name, shape, grid)
            else:
                calibration = calibrate(model, train.images, cell, fraction=fraction, where=where)
                mods = calibration.modifications()
                strengths = ", ".join(f"{a} t={calibration.t[a]:.3f}" for a in ATTRIBUTES)
                label = calibrated_label(fraction, where)
                print(f"  {label}: δ={calibration.target:.3f}; {strengths}")
            result = global_attributes(model, data.images, mods, args.split, replicates=0)
            table = recovery_table(result.phi, result.modifications, defining)
            seconds = time.perf_counter() - started
            label = name if fraction is None else calibrated_label(fraction, where)
            for reading in READINGS:
                print(row(f"{label} {reading}", table[reading]))
                if kept:
                    tables[generator, f"{label} {reading}"].append(table[reading])
            print(row(f"{label} AUC", table["auc"], "{:>11.2f}") + f"   ({seconds:.0f} s)")
            if fraction is not None and args.stability:
                picked = stratified(data.labels, args.stability, seed=1)
                agreement = np.mean(
                    [ranking_stability(model, data.images[i], mods).top_agreement for i in picked]
                )
                print(
                    f"  local ranking under {SEEDS} swirl seeds, {len(picked)} images × all "
                    f"prototypes: top attribute the same as seed 0's in {agreement:.0%}"
                )
            if kept:
                tables[generator, f"{label} AUC"].append(table["auc"])
    generators = sorted({g for g, _ in tables})
    for generator in generators:
        entries = [(label, t) for (g, label), t in tables.items() if g == generator]
        count = len(entries[0][1])
        print(f"\n{generator}: mean (SD) over {count} models, {args.split} split")
        for label, values in entries:
            print(mean_row(label, values, ratio=label.endswith("AUC")))


if __name__ == "__main__":
    main()
