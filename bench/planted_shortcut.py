"""The planted-shortcut benchmark: does retraining from labels (ProtoPDebug) remove a shortcut that
disabling prototypes (the what-if switch) cannot?

Known answer: ``synthetic_marker`` (explorer/data/marker.py) stamps a magenta square in a random
corner of 90 % of the *base* class's training images and of no other image; the test split is clean,
and a second test split stamps the square on every image of every *other* class. Every marker's box
is recorded, so which prototypes sit on it is measured, not judged.

1. Train ``synthetic_marker`` (the synthetic preset, pushed anywhere as ProtoPNet pushes) and the
   ceiling ``synthetic_unmarked`` (the same run on the same images without the marker), or take the
   stored ones (``bench/planted_shortcut_models/``).
2. Lock-on: a prototype *locks onto the marker* when at least :data:`LOCKED_SHARE` of its
   :data:`K` nearest training patches (one per image) cover at least half of their image's marker.
3. Label every locked prototype *misleading / marker or text* through the public API, as a reviewer
   would (``Explorer.label``).
4. Compare on the clean and the marker-pasted test splits: (a) the what-if switch (the labelled
   prototypes' last-layer columns zeroed), (b) the ProtoPDebug retrain (``Explorer.debug``, default
   settings), (c) the ceiling. Also the lock-on of the retrained model, and the retrain's time beside
   the parent's training time.

    python -m bench.planted_shortcut [--data-seed 0] [--train] [--out DIR] [--json FILE]

``--data-seed`` picks the draw of the data (0: where the retrain's defaults were chosen; 1: held out,
measured with the defaults frozen). ``--train`` trains the two models afresh (about 5 min each on 2
cores) instead of using the stored ones; the retrain always runs. Issue 18's bars are printed with the
figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from explorer.analysis.whatif import disabled_weight
from explorer.api import Explorer
from explorer.boxes import peak_region_box, upsample_map
from explorer.data import load_split
from explorer.data.marker import MARKER_CLASS, on_marker, paste_on_other_classes
from explorer.models.preprocess import forward_batch_size

STORED = Path(__file__).resolve().parent / "planted_shortcut_models"
PARENT_PRESET, CEILING_PRESET = "synthetic_marker", "synthetic_unmarked"
K = 5  # nearest training patches per prototype
LOCKED_SHARE = 0.6  # 3 of 5
REVIEWER = "planted-shortcut benchmark"


def marker_shares(explorer: Explorer, model_id: str, marker_boxes: np.ndarray) -> np.ndarray:
    """``[P]`` the share of each prototype's nearest training patches that sit on the marker: whose
    peak region (the patch, :func:`explorer.boxes.peak_region_box`) covers half of the marker."""
    nearest = explorer.nearest(model_id, "train")
    size = explorer.spec(model_id).input_size
    k = min(K, nearest.images.shape[1])
    on = [
        [
            on_marker(
                peak_region_box(upsample_map(nearest.maps[j, i], size)),
                marker_boxes[nearest.images[j, i]],
            )
            for i in range(k)
        ]
        for j in range(nearest.images.shape[0])
    ]
    return np.asarray(on, dtype=float).mean(axis=1)


@torch.inference_mode()
def scores(explorer: Explorer, model_id: str, images: np.ndarray) -> np.ndarray:
    """``[N, P]`` prototype scores (batched forward passes)."""
    model = explorer.bundle(model_id).model
    size = forward_batch_size(model.spec)
    return np.concatenate(
        [
            model(model.preprocess(images[s : s + size])).scores.double().numpy()
            for s in range(0, len(images), size)
        ]
    )


def accuracy(s: np.ndarray, weight: np.ndarray, labels: np.ndarray) -> float:
    return float(((s @ weight.T).argmax(1) == labels).mean())


def stored_id(preset: str, data_seed: int) -> str:
    """The stored model of a preset at a data seed: the preset's id at seed 0, ``<id>-d<seed>``."""
    return preset if data_seed == 0 else f"{preset}-d{data_seed}"


ROWS = {
    "parent (trained with the marker)": "parent",
    "(a) what-if: locked prototypes disabled": "parent",
    "(b) ProtoPDebug retrain": "retrained",
    "(c) ceiling (trained without the marker)": "ceiling",
}


def split_accuracies(
    explorer: Explorer, models: dict[str, str], locked: list[int], dataset: str
) -> dict[str, dict[str, float]]:
    """Accuracy of each row of :data:`ROWS` on the clean and the marker-pasted test splits (the
    what-if row: the parent with the ``locked`` prototypes' last-layer columns zeroed)."""
    test = load_split(dataset, "test")
    pasted = paste_on_other_classes(test, test.class_names.index(MARKER_CLASS))
    splits = {"clean test": test, "marker-pasted test": pasted}
    figures: dict[str, dict[str, float]] = {}
    for row, role in ROWS.items():
        model_id = models[role]
        weight = explorer.bundle(model_id).model.last_layer_weight.detach().double().numpy()
        if row.startswith("(a)"):
            weight = disabled_weight(weight, locked)
        figures[row] = {
            name: accuracy(scores(explorer, model_id, split.images), weight, split.labels)
            for name, split in splits.items()
        }
    return figures


def train_models(out: Path, data_seed: int) -> None:
    """Trains the parent and the ceiling at ``data_seed`` into ``out``."""
    for preset in (PARENT_PRESET, CEILING_PRESET):
        name = stored_id(preset, data_seed)
        Explorer(model_dirs=()).train(out / name, preset=preset, data_seed=data_seed, model_id=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-seed", type=int, default=0, help="the draw of the data (0, 1)")
    parser.add_argument("--train", action="store_true", help="train the two models afresh")
    parser.add_argument(
        "--out", help="where the retrained model goes (default: a temporary folder)"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="planted-shortcut-"))
    parent = stored_id(PARENT_PRESET, args.data_seed)
    ceiling = stored_id(CEILING_PRESET, args.data_seed)
    folder, trained_here = STORED, None
    if args.train or not (STORED / parent).is_dir():
        folder = work / "models"
        print("training", parent, "and", ceiling, "...", flush=True)
        trained_here = round(train_models(folder, args.data_seed), 2)
    explorer = Explorer([folder / parent, folder / ceiling], label_path=work / "labels.sqlite3",
                        cache_root=work / "cache")  # fmt: skip
    dataset = explorer.spec(parent).dataset["name"]
    train = load_split(dataset, "train")
    boxes = train.extras["marker_box"]

    shares = marker_shares(explorer, parent, boxes)
    locked = [int(j) for j in np.flatnonzero(shares >= LOCKED_SHARE)]
    for j in locked:  # as a reviewer labels them, through the public API
        explorer.label(parent, j, "misleading", REVIEWER, reason="marker or text")

    out = Path(args.out) if args.out else work / f"{parent}-debugged"
    started = time.perf_counter()
    child = explorer.debug(parent, out).model_id
    retrain_minutes = (time.perf_counter() - started) / 60
    child_shares = marker_shares(explorer, child, boxes)

    models = {"parent": parent, "retrained": child, "ceiling": ceiling}
    figures = split_accuracies(explorer, models, locked, dataset)

    spec = explorer.spec(parent)
    result = {
        "data": dataset,
        "models": models,
        "marker": {"class": MARKER_CLASS, "marked_training_images": int((boxes[:, 0] >= 0).sum())},
        "lock_on": {
            "rule": f">= {LOCKED_SHARE:.0%} of {K} nearest training patches cover half the marker",
            "parent_locked": locked,
            "parent_shares": [round(float(v), 2) for v in shares],
            "retrained_locked": [int(j) for j in np.flatnonzero(child_shares >= LOCKED_SHARE)],
            "retrained_max_share": float(child_shares.max()),
            "retrained_prototypes_with_any_patch_on_marker": int((child_shares > 0).sum()),
        },
        "accuracy": figures,
        "minutes": {
            "parent_training": spec.training.get("minutes"),
            "parent_training_measured_here": trained_here,
            "retrain_measured_here": round(retrain_minutes, 2),
            "retrain_recorded": explorer.spec(child).training.get("minutes"),
        },
        "retrain_config": explorer.spec(child).lineage["config"],
    }
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def print_report(result: dict) -> None:
    lock = result["lock_on"]
    print(f"\nmarker on {result['marker']['marked_training_images']} training images of class "
          f"'{result['marker']['class']}'")  # fmt: skip
    print(f"lock-on rule: {lock['rule']}")
    print(f"parent: {len(lock['parent_locked'])} prototypes locked {lock['parent_locked']} "
          f"(shares {lock['parent_shares']})")  # fmt: skip
    print(f"retrained: {len(lock['retrained_locked'])} locked, largest share "
          f"{lock['retrained_max_share']:.2f}, {lock['retrained_prototypes_with_any_patch_on_marker']}"
          " prototypes with any nearest patch on the marker\n")  # fmt: skip
    print(f"{'':46s} {'clean test':>11s} {'marker-pasted':>14s}")
    for row, accs in result["accuracy"].items():
        print(f"{row:46s} {accs['clean test']:>11.1%} {accs['marker-pasted test']:>14.1%}")
    minutes = result["minutes"]
    parent_minutes = minutes["parent_training_measured_here"] or minutes["parent_training"]
    where = "in this run" if minutes["parent_training_measured_here"] else "as its spec records"
    print(f"\nretrain {minutes['retrain_measured_here']:.2f} min in this run, beside the parent's "
          f"training {parent_minutes} min {where} (ratio "
          f"{minutes['retrain_measured_here'] / parent_minutes:.2f})")  # fmt: skip
    acc = result["accuracy"]
    parent, whatif = (
        acc["parent (trained with the marker)"],
        acc["(a) what-if: locked prototypes disabled"],
    )
    debugged, ceiling = (
        acc["(b) ProtoPDebug retrain"],
        acc["(c) ceiling (trained without the marker)"],
    )
    checks = [
        ("at least 2 prototypes lock onto the marker before", len(lock["parent_locked"]) >= 2),
        ("no prototype locked after the retrain", not lock["retrained_locked"]),
        ("pasted accuracy within 3 points of the ceiling",
         debugged["marker-pasted test"] >= ceiling["marker-pasted test"] - 0.03),
        ("pasted accuracy strictly better than the what-if switch",
         debugged["marker-pasted test"] > whatif["marker-pasted test"]),
        ("clean accuracy at most 2 points below the parent",
         debugged["clean test"] >= parent["clean test"] - 0.02),
    ]  # fmt: skip
    print()
    for text, met in checks:
        print(f"{'met ' if met else 'NOT '} {text}")


if __name__ == "__main__":
    main()
