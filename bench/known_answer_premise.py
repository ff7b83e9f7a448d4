"""Does a known-answer model depend on its classes' attributes? Exact counterfactuals (A and B).

    python -m bench.known_answer_premise MODEL_FOLDER [...] [--split test] [--images-per-class N]

The known-answer protocol (docs/known_answer_b.md) scores an attribute explanation by whether the
prototypes of the class that differs in attribute *a* rank *a* first. That presumes the trained
model's prototypes depend on *a* more than on any other attribute. Both generators can test the
premise without any image modification: their ``generate`` with ``flip`` draws
every image again with one attribute taken against its class (the ``hue`` class's images get the
base hue they drew, every other image the class hue it drew) and every other draw unchanged. So

    φ*_a(p, x) = s(p, x) − s(p, flip_a(x))

read at the prototype's best cell on the original (as the explanation reads φ), and
Φ*_a(p) = Σ_x φ*_a·s(p, x) / Σ_x s(p, x) over the split (the explanation's weighting), is the
prototype's *true* dependence on each attribute, as exact as the generator. Images whose flipped
colour the generator cannot reach (a vivid violet of the saturation class made hue-class hue;
``extras["exact"]``) are left out of that attribute's Φ* and of nothing else.

Per model this prints:

* **premise**: the known-answer recovery of Φ* itself (the share of each attribute class's
  prototypes whose largest counterfactual drop is their own attribute) and its AUC — the most an
  explanation that is faithful to the model could score on the protocol; the same for Φ* read on
  the prototype's own class's images only (where flipping its attribute removes it, and flipping
  another adds that one), and which attribute that reading ranks first, over all prototypes;
* for each modification set (the paper's reference set, the app's disentangled v2) in the raw and
  the relative reading: its known-answer recovery as the protocol measures it, and its
  **faithfulness** to Φ*: the share of prototypes whose top attribute is Φ*'s top attribute, and the
  mean Spearman correlation between the explanation's five values and Φ*'s, per prototype.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from bench.attribute_recovery import (
    COLUMNS,
    READINGS,
    defining_attribute,
    mean_row,
    recovery_table,
)
from explorer.analysis.attribute_sets import feature_grid, modification_set
from explorer.analysis.attributes import attribute_batch, spearman
from explorer.analysis.modifications import ATTRIBUTES
from explorer.api import Explorer
from explorer.data import parse_data_seed
from explorer.data.blobs import load_blobs
from explorer.data.synthetic import load_synthetic

BATCH = 16
MIN_ACCURACY = 0.90
SETS = ("reference", "disentangled")
LOADERS = {"synthetic": load_synthetic, "blobs": load_blobs}


class Counterfactual:
    """The flipped twin of each image, as a modification (looked up by the original's bytes)."""

    def __init__(self, name: str, originals: np.ndarray, twins: np.ndarray) -> None:
        self.name = name
        self._twins = {_key(image): twin for image, twin in zip(originals, twins, strict=True)}

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return self._twins[_key(rgb)]


def _key(image: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest()


def weighted(phi: np.ndarray, s: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``Σ φ·s / Σ s`` over the kept images: ``phi [N, P]``, ``s [N, P]``, ``keep [N]`` → ``[P]``."""
    phi, s = phi[keep].astype(np.float64), s[keep].astype(np.float64)
    return (phi * s).sum(axis=0) / s.sum(axis=0)


def faithfulness(phi: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Top-1 agreement and mean per-prototype Spearman of ``phi [P, 5]`` against ``truth [P, 5]``."""
    top = float(np.mean(phi.argmax(axis=1) == truth.argmax(axis=1)))
    rho = [spearman(a, b) for a, b in zip(phi, truth, strict=True)]
    return {"top-1 agrees": top, "Spearman": float(np.nanmean(rho))}


def measure(explorer: Explorer, folder: str, split: str, per_class: int | None) -> dict:
    info = explorer.add_model_folder(folder)
    bundle = explorer.bundle(info.model_id)
    model, spec = bundle.model, bundle.spec
    generator, data_seed = parse_data_seed(spec.dataset["name"])
    if generator not in LOADERS:
        raise SystemExit(
            f"{folder}: trained on {generator!r}; the counterfactuals need a known-answer "
            f"generator ({', '.join(LOADERS)})"
        )
    load = LOADERS[generator]
    plain = load(split, data_seed=data_seed or 0, n_per_class=per_class)
    if per_class is None:
        shipped = explorer.dataset(info.model_id, split).images
        if not np.array_equal(shipped, plain.images):
            raise SystemExit(f"{folder}: its {split} split is not {generator}'s data seed")
    twins = {
        a: load(split, data_seed=data_seed or 0, n_per_class=per_class, flip=[a])
        for a in ATTRIBUTES
    }
    counterfactuals = [Counterfactual(a, plain.images, twins[a].images) for a in ATTRIBUTES]
    grid = feature_grid(model)
    shape = plain.images.shape[1:]
    method_sets = {name: modification_set(model, name, shape, grid) for name in SETS}

    started = time.perf_counter()
    phi_true, phi_sets, sims = [], defaultdict(list), []
    for first in range(0, len(plain), BATCH):
        batch = plain.images[first : first + BATCH]
        truth = attribute_batch(model, batch, counterfactuals, first)
        phi_true.append(truth.phi)
        sims.append(truth.similarity)
        for name, mods in method_sets.items():
            phi_sets[name].append(attribute_batch(model, batch, mods, first).phi)
    similarity = np.concatenate(sims)  # [N, P]
    phi_true = np.concatenate(phi_true)  # [N, P, 5]
    exact = [twins[a].extras["exact"] for a in ATTRIBUTES]
    true = np.stack(
        [weighted(phi_true[:, :, m], similarity, exact[m]) for m in range(len(ATTRIBUTES))], axis=1
    )  # [P, 5], the explanation's weighting: every image of the split
    classes = model.prototype_classes
    own = np.stack(
        [
            [weighted(phi_true[:, [p], m], similarity[:, [p]], exact[m] & (plain.labels == c))[0]
             for m in range(len(ATTRIBUTES))]
            for p, c in enumerate(classes)
        ]
    )  # [P, 5], only the images of the prototype's own class  # fmt: skip
    every = np.ones(len(plain), dtype=bool)
    explained = {}
    for name, mods in method_sets.items():
        names = tuple(mod.name for mod in mods)
        phi = np.concatenate(phi_sets[name])
        columns = [names.index(a) for a in ATTRIBUTES]
        explained[name] = np.stack(
            [weighted(phi[:, :, c], similarity, every) for c in columns], axis=1
        )
    defining = [defining_attribute(spec.class_names[c]) for c in model.prototype_classes]
    return {
        "folder": folder,
        "generator": generator,
        "seed": data_seed or 0,
        "accuracy": spec.accuracy.get("after_last_layer", float("nan")),
        "images": len(plain),
        "inexact": {a: int((~twins[a].extras["exact"]).sum()) for a in ATTRIBUTES},
        "truth": true,
        "truth_own_class": own,
        "explained": explained,
        "defining": defining,
        "seconds": time.perf_counter() - started,
    }


def row(label: str, values: dict[str, float], fmt: str = "{:>11.0%}") -> str:
    return f"{label:<40}" + "".join(fmt.format(values[c]) for c in COLUMNS if c in values)


def report(result: dict) -> dict[str, dict[str, float]]:
    """Prints one model's figures; returns its rows for the means."""
    print(
        f"\n{result['folder']}: {result['generator']} data seed {result['seed']}, test accuracy "
        f"{result['accuracy']:.1%}; {result['images']} images, {result['seconds']:.0f} s; "
        "flipped colours out of reach (left out of that attribute): "
        + ", ".join(f"{a} {n}" for a, n in result["inexact"].items())
    )
    print(f"{'':<40}" + "".join(f"{c:>11}" for c in COLUMNS))
    rows: dict[str, dict[str, float]] = {}
    truth_table = recovery_table(result["truth"], ATTRIBUTES, result["defining"])
    rows["premise: counterfactual Φ*"] = truth_table["raw"]
    rows["premise: counterfactual Φ*, relative"] = truth_table["relative"]
    rows["premise AUC"] = truth_table["auc"]
    own_table = recovery_table(result["truth_own_class"], ATTRIBUTES, result["defining"])
    rows["premise: Φ* on own-class images"] = own_table["raw"]
    rows["premise: Φ* own class, relative"] = own_table["relative"]
    top = result["truth_own_class"].argmax(axis=1)
    rows["own-class Φ*: share ranking each first"] = {
        a: float(np.mean(top == i)) for i, a in enumerate(ATTRIBUTES)
    }
    for name, phi in result["explained"].items():
        table = recovery_table(phi, ATTRIBUTES, result["defining"])
        for reading, read in READINGS.items():
            if reading == "z":
                continue
            rows[f"{name} {reading}: recovery"] = table[reading]
            agreement = faithfulness(read(phi), read(result["truth"]))
            rows[f"{name} {reading}: top-1 = Φ*'s top-1"] = {"overall": agreement["top-1 agrees"]}
            rows[f"{name} {reading}: Spearman with Φ*"] = {"overall": agreement["Spearman"]}
    for label, values in rows.items():
        fmt = "{:>11.2f}" if "AUC" in label or "Spearman" in label else "{:>11.0%}"
        print(row(label, values, fmt))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="model folders trained on synthetic or blobs")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument(
        "--images-per-class", type=int, help="a smaller split of the same seed (default: all)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    explorer = Explorer(model_dirs=())
    kept: dict[str, list[dict[str, float]]] = defaultdict(list)
    for folder in args.folders:
        result = measure(explorer, folder, args.split, args.images_per_class)
        rows = report(result)
        if result["accuracy"] >= MIN_ACCURACY:
            for label, values in rows.items():
                kept[label].append(values)
        else:
            print("  below 90 % test accuracy: reported, left out of the means")
    if not kept:
        return
    count = len(next(iter(kept.values())))
    print(f"\nmean (SD) over {count} models, {args.split} split")
    for label, values in kept.items():
        print(mean_row(label, values, ratio="AUC" in label or "Spearman" in label, width=40))


if __name__ == "__main__":
    main()
