"""The planted-shortcut benchmark: does retraining from labels (ProtoPDebug) remove a shortcut that
disabling prototypes (the what-if switch) cannot?

Known answer: ``synthetic_marker`` (explorer/data/marker.py) stamps a magenta square in a random
corner of 90 % of the *base* class's training images and of no other image; the test split is clean,
and a second test split stamps the square on every image of every *other* class. Every marker's box
is recorded, so which prototypes sit on it is measured, not judged.

1. Train ``synthetic_marker`` (the synthetic preset, pushed anywhere as ProtoPNet pushes) and the
   ceiling ``synthetic_unmarked`` (the same run on the same images without the marker), or take the
   stored ones (``bench/planted_shortcut_models/``).
2. Lock-on, two measures over each prototype's :data:`K` nearest training patches (one per image):
   the share whose box (ProtoPNet's 95th-percentile box, as the app shows it) overlaps the marker;
   and, the known answer, the share of the similarity the marker supplies (the same image without the
   marker, which the generator gives exactly, read at the same cell). A prototype *locks onto the
   marker* when the marker supplies at least :data:`LOCKED_DEPENDENCE` of it: a box can sit beside
   the marker whose pixels make the match (the feature cell sees beyond its box).
3. Label every locked prototype *misleading / marker or text* through the public API, as a reviewer
   would (``Explorer.label``).
4. Retrain (``Explorer.debug``, default settings), measure the lock-on again, and — ProtoPDebug's
   loop — label what is still locked and retrain the retrained model, at most :data:`MAX_ROUNDS`
   rounds.
5. Compare on the clean and the marker-pasted test splits: (a) the what-if switch (the first labels'
   prototypes' last-layer columns zeroed), (b) each round's retrained model, (c) the ceiling; and
   the retrain's time beside the parent's training time.

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
from explorer.data import ImageSet, load_split, with_data_seed
from explorer.data.marker import MARKER_CLASS, overlaps_marker, paste_on_other_classes
from explorer.models.preprocess import forward_batch_size

STORED = Path(__file__).resolve().parent / "planted_shortcut_models"
PARENT_PRESET, CEILING_PRESET = "synthetic_marker", "synthetic_unmarked"
K = 5  # nearest training patches per prototype
LOCKED_DEPENDENCE = 0.5  # the marker supplies at least half of the similarity
MAX_ROUNDS = 3  # debugging rounds: label what is locked, retrain, look again
REVIEWER = "planted-shortcut benchmark"


def marker_overlap(explorer: Explorer, model_id: str, marker_boxes: np.ndarray) -> np.ndarray:
    """``[P]`` the share of each prototype's nearest training patches whose box (ProtoPNet's
    95th-percentile box, as the app shows it) overlaps the marker's box."""
    nearest = explorer.nearest(model_id, "train")
    k = min(K, nearest.images.shape[1])
    on = [
        [overlaps_marker(nearest.boxes[j, i], marker_boxes[nearest.images[j, i]]) for i in range(k)]
        for j in range(nearest.images.shape[0])
    ]
    return np.asarray(on, dtype=float).mean(axis=1)


@torch.inference_mode()
def marker_dependence(
    explorer: Explorer, model_id: str, marked: np.ndarray, clean: np.ndarray
) -> np.ndarray:
    """``[P]`` how much of each prototype's similarity to its nearest training patches the marker
    supplies: per patch ``(s(x) − s(x without the marker)) / s(x)``, both read at the cell where the
    prototype matches the marked image best (as φ is read, docs/method.md §3), averaged over the
    patches (0 for an image without a marker). The generator gives every marked image without its
    marker exactly, so this is the known answer, not an estimate."""
    model = explorer.bundle(model_id).model
    nearest = explorer.nearest(model_id, "train")
    k = min(K, nearest.images.shape[1])
    out = np.zeros(nearest.images.shape[0])
    for j in range(nearest.images.shape[0]):
        images = nearest.images[j, :k]
        with_marker = model(model.preprocess(marked[images])).similarity_maps[:, j]  # [k, h, w]
        without = model(model.preprocess(clean[images])).similarity_maps[:, j]
        best = with_marker.flatten(1).argmax(1)
        s = with_marker.flatten(1).gather(1, best[:, None])[:, 0].double()
        s_clean = without.flatten(1).gather(1, best[:, None])[:, 0].double()
        out[j] = float(((s - s_clean) / s).mean())
    return out


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


WHAT_IF = "(a) what-if: locked prototypes disabled"
CEILING_ROW = "(c) ceiling (trained without the marker)"


def rows(models: dict[str, str]) -> dict[str, str]:
    """Table row → model: the parent, the what-if (the parent with its locked prototypes disabled),
    each debugging round's retrained model, the ceiling."""
    retrained = [m for m in models if m.startswith("round")]
    return {
        "parent (trained with the marker)": models["parent"],
        WHAT_IF: models["parent"],
        **{f"(b) ProtoPDebug retrain, {r.replace('_', ' ')}": models[r] for r in retrained},
        CEILING_ROW: models["ceiling"],
    }


def split_accuracies(
    explorer: Explorer, models: dict[str, str], locked: list[int], dataset: str
) -> dict[str, dict[str, float]]:
    """Accuracy of each row of :func:`rows` on the clean and the marker-pasted test splits (the
    what-if row: the parent with the ``locked`` prototypes' last-layer columns zeroed)."""
    test = load_split(dataset, "test")
    pasted = paste_on_other_classes(test, test.class_names.index(MARKER_CLASS))
    splits = {"clean test": test, "marker-pasted test": pasted}
    figures: dict[str, dict[str, float]] = {}
    for row, model_id in rows(models).items():
        weight = explorer.bundle(model_id).model.last_layer_weight.detach().double().numpy()
        if row == WHAT_IF:
            weight = disabled_weight(weight, locked)
        figures[row] = {
            name: accuracy(scores(explorer, model_id, split.images), weight, split.labels)
            for name, split in splits.items()
        }
    return figures


def train_models(out: Path, data_seed: int) -> float:
    """Trains the parent and the ceiling at ``data_seed`` into ``out``; returns the parent's
    training minutes, measured here."""
    minutes = 0.0
    for preset in (PARENT_PRESET, CEILING_PRESET):
        name = stored_id(preset, data_seed)
        started = time.perf_counter()
        Explorer(model_dirs=()).train(out / name, preset=preset, data_seed=data_seed, model_id=name)
        if preset == PARENT_PRESET:
            minutes = (time.perf_counter() - started) / 60
    return minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-seed", type=int, default=0, help="the draw of the data (0, 1)")
    parser.add_argument("--train", action="store_true", help="train the two models afresh")
    parser.add_argument(
        "--out", help="the folder the retrained models go into (default: a temporary one)"
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
    marked = load_split(dataset, "train")
    clean = load_split(with_data_seed("synthetic", args.data_seed), "train")
    boxes = marked.extras["marker_box"]

    # ProtoPDebug's loop: a reviewer labels what is locked, the model is retrained, the reviewer
    # looks again; at most MAX_ROUNDS rounds
    out = Path(args.out) if args.out else work / "retrained"
    models = {"parent": parent, "ceiling": ceiling}
    current, state = parent, lock_on(explorer, parent, marked, clean)
    before, first_locked, rounds, retrain_minutes = state, state["locked"], [], 0.0
    for round_ in range(1, MAX_ROUNDS + 1):
        if not state["locked"]:
            break
        for j in state["locked"]:  # as a reviewer labels them, through the public API
            explorer.label(current, j, "misleading", REVIEWER, reason="marker or text")
        started = time.perf_counter()
        child = f"{parent}-r{round_}"
        explorer.debug(current, out / child, new_id=child)
        minutes = (time.perf_counter() - started) / 60
        retrain_minutes += minutes
        labelled, current = state["locked"], child
        state = lock_on(explorer, current, marked, clean)
        models[f"round_{round_}"] = child
        rounds.append({"model": child, "labelled": labelled, "minutes": round(minutes, 2),
                       "lock_on_after": state})  # fmt: skip
    figures = split_accuracies(explorer, models, first_locked, dataset)

    spec = explorer.spec(parent)
    result = {
        "data": dataset,
        "models": models,
        "marker": {"class": MARKER_CLASS, "marked_training_images": int((boxes[:, 0] >= 0).sum())},
        "lock_on": {
            "rule": f"the marker supplies >= {LOCKED_DEPENDENCE:.0%} of the similarity to the "
            f"{K} nearest training patches (mean)",
            "parent": before,
        },
        "rounds": rounds,
        "accuracy": figures,
        "minutes": {
            "parent_training": spec.training.get("minutes"),
            "parent_training_measured_here": trained_here,
            "retrain_measured_here": round(retrain_minutes, 2),
        },
        "retrain_config": explorer.spec(current).lineage["config"] if rounds else None,
    }
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def lock_on(explorer: Explorer, model_id: str, marked: ImageSet, clean: ImageSet) -> dict:
    """Both measures of a model's lock-on, per prototype, and which prototypes are locked."""
    dependence = marker_dependence(explorer, model_id, marked.images, clean.images)
    overlap = marker_overlap(explorer, model_id, marked.extras["marker_box"])
    return {
        "locked": [int(j) for j in np.flatnonzero(dependence >= LOCKED_DEPENDENCE)],
        "dependence": [round(float(v), 2) for v in dependence],
        "box_overlap": [round(float(v), 2) for v in overlap],
        "prototypes_with_a_box_on_the_marker": int((overlap > 0).sum()),
    }


def print_report(result: dict) -> None:
    lock = result["lock_on"]
    print(f"\n{result['data']}: marker on {result['marker']['marked_training_images']} training "
          f"images of class '{result['marker']['class']}'")  # fmt: skip
    print(f"locked: {lock['rule']}")
    stages = [("parent", lock["parent"])] + [
        (f"after round {i} ({r['model']}, {r['labelled']} labelled, {r['minutes']} min)",
         r["lock_on_after"])
        for i, r in enumerate(result["rounds"], 1)
    ]  # fmt: skip
    for name, model in stages:
        print(f"{name}: {len(model['locked'])} prototypes locked {model['locked']}; "
              f"{model['prototypes_with_a_box_on_the_marker']} with a nearest patch's box on the "
              "marker")  # fmt: skip
        print(f"  marker's share of the similarity, by prototype: {model['dependence']}")
        print(
            f"  share of the nearest patches whose box overlaps the marker: {model['box_overlap']}"
        )
    print(f"\n{'':52s} {'clean test':>11s} {'marker-pasted':>14s}")
    for row, accs in result["accuracy"].items():
        print(f"{row:52s} {accs['clean test']:>11.1%} {accs['marker-pasted test']:>14.1%}")
    minutes = result["minutes"]
    parent_minutes = minutes["parent_training_measured_here"] or minutes["parent_training"]
    where = "in this run" if minutes["parent_training_measured_here"] else "as its spec records"
    print(f"\nretrain ({len(result['rounds'])} rounds) {minutes['retrain_measured_here']:.2f} min in "
          f"this run, beside the parent's training {parent_minutes} min {where} (ratio "
          f"{minutes['retrain_measured_here'] / parent_minutes:.2f})")  # fmt: skip
    for text, met in checks(result):
        print(f"{'met ' if met else 'NOT '} {text}")


def checks(result: dict) -> list[tuple[str, bool]]:
    """Issue 18's bars, on the last round's model (the first round's beside it)."""
    acc, lock = result["accuracy"], result["lock_on"]
    parent, whatif = acc["parent (trained with the marker)"], acc[WHAT_IF]
    ceiling = acc[CEILING_ROW]
    retrained = [(row, a) for row, a in acc.items() if row.startswith("(b)")]
    last = result["rounds"][-1]["lock_on_after"] if result["rounds"] else lock["parent"]
    out = [("at least 2 prototypes lock onto the marker before", len(lock["parent"]["locked"]) >= 2),
           (f"no prototype locked after the last round ({len(result['rounds'])})",
            not last["locked"]),
           ("no nearest patch's box on the marker after the last round",
            not last["prototypes_with_a_box_on_the_marker"])]  # fmt: skip
    for row, a in retrained:
        out += [
            (f"{row}: pasted accuracy within 3 points of the ceiling",
             a["marker-pasted test"] >= ceiling["marker-pasted test"] - 0.03),
            (f"{row}: pasted accuracy strictly better than the what-if switch",
             a["marker-pasted test"] > whatif["marker-pasted test"]),
            (f"{row}: clean accuracy at most 2 points below the parent",
             a["clean test"] >= parent["clean test"] - 0.02),
        ]  # fmt: skip
    return out


if __name__ == "__main__":
    main()
