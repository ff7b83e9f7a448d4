"""Trust signals, measured: every metric of the shipped synthetic model, the review queue on the
planted-shortcut models, and how long the metrics take beside a plain forward pass.

    python -m bench.trust_signals                # everything (about 4 min on 2 idle cores)
    python -m bench.trust_signals --only queue   # one part: metrics | queue | badges | speed

* **metrics**: :meth:`Explorer.evaluate` of the shipped ``synthetic`` model on its test split (its
  keypoints and masks come with the generator), the table the model card shows.
* **queue**: the review queue of the confounded models of the planted-shortcut benchmark
  (``bench/planted_shortcut_models``; data seed 0, where the queue's rule was set, and data seed
  1, held out), precision at k = the number of marker-locked prototypes (the benchmark's exact
  counterfactual: the marker supplies >= 50 % of the similarity to the prototype's 5 nearest
  training patches, ``results-seed*.json``); and, as controls, how many prototypes the rule flags
  as not generalising on the models retrained from the marker labels (ProtoPDebug rounds), on the
  models trained without a marker and on every shipped model.
* **badges**: the share of fragile matches (top 3 by contribution on 30 evenly spaced test images)
  and each check's median change, per shipped model.
* **speed**: the metrics of a model of 30 prototypes over 600 test images (the shipped synthetic
  model), computed from scratch (its test split's nearest patches included), beside a plain forward
  pass of the same 600 images, alternated ``--repeats`` times in one process; the ratio of medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from explorer import metrics_markdown
from explorer.analysis.metrics.evaluation import evaluate
from explorer.analysis.nearest import nearest_patches
from explorer.analysis.review_queue import GENERALISES, generalisation_ratio, precision_at_k
from explorer.api import WEIGHTS_DIR, Explorer
from explorer.models.preprocess import forward_batch_size

MODELS = Path(__file__).parent / "planted_shortcut_models"
RESULTS = Path(__file__).parent / "trust_signals_results.json"
CONFOUNDED = {0: "synthetic_marker", 1: "synthetic_marker-d1"}
HALF_RETRAINED = "synthetic_marker-r1"
"""Seed 0 after one ProtoPDebug round: still locked are the prototypes its second round labelled."""
CLEAN = ("synthetic_unmarked", "synthetic_unmarked-d1")
RETRAINED = (HALF_RETRAINED, "synthetic_marker-r2", "synthetic_marker-d1-r1")
SHIPPED = ("synthetic", "fashion_mnist", "elpv", "synthetic_pipnet")


def fresh_explorer() -> Explorer:
    """An Explorer with an empty cache of its own (nothing measured before counts)."""
    cache = Path(tempfile.mkdtemp(prefix="bench-trust-"))
    return Explorer([WEIGHTS_DIR, MODELS], cache_root=cache)


def measure_metrics(explorer: Explorer) -> dict:
    metrics = explorer.evaluate("synthetic")
    print(metrics_markdown(metrics), "\n")
    return metrics.to_dict()


def measure_queue(explorer: Explorer) -> dict:
    out: dict = {"rule_set_on": "data seed 0", "held_out": "data seed 1", "confounded": {}}
    for seed, model_id in CONFOUNDED.items():
        locked = json.loads((MODELS / f"results-seed{seed}.json").read_text())["lock_on"]["parent"][
            "locked"
        ]
        queue = explorer.review_queue(model_id, include_reviewed=True)
        top = [e.prototype for e in queue.entries[: len(locked) + 3]]
        flagged = [e.prototype for e in queue.entries if e.does_not_generalise]
        precision = precision_at_k(list(queue.entries), locked)
        ratio = {e.prototype: round(1 - e.signals["gap"], 3) for e in queue.entries}
        out["confounded"][model_id] = {
            "data_seed": seed,
            "marker_prototypes": locked,
            "precision_at_k": precision,
            "k": len(locked),
            "queue_top": top,
            "flagged_not_generalising": flagged,
            "ratio_of_marker_prototypes": {j: ratio[j] for j in locked},
            "lowest_ratio_of_the_others": min(r for j, r in ratio.items() if j not in locked),
        }
        print(
            f"{model_id} (data seed {seed}): marker prototypes {locked}, queue starts {top}, "
            f"precision at {len(locked)} = {precision:.2f}; flagged {flagged}"
        )
    locked = json.loads((MODELS / "results-seed0.json").read_text())["rounds"][1]["labelled"]
    queue = explorer.review_queue(HALF_RETRAINED, include_reviewed=True)
    flagged = [e.prototype for e in queue.entries if e.does_not_generalise]
    out["after_one_round"] = {
        "model": HALF_RETRAINED,
        "still_locked": locked,
        "queue_top": [e.prototype for e in queue.entries[: len(locked) + 3]],
        "flagged_not_generalising": flagged,
        "precision_at_k": precision_at_k(list(queue.entries), locked),
    }
    print(
        f"{HALF_RETRAINED} (seed 0 after one retrain round): still locked {locked}, queue starts "
        f"{out['after_one_round']['queue_top']}, precision at {len(locked)} = "
        f"{out['after_one_round']['precision_at_k']:.2f}; flagged {flagged}"
    )
    out["controls"] = {}
    for model_id in (*RETRAINED[1:], *CLEAN, *SHIPPED):
        train = explorer.nearest(model_id, "train")
        test = explorer.nearest(model_id, "test")
        ratio = generalisation_ratio(train.scores, test.scores)
        flagged = np.flatnonzero(ratio < GENERALISES).tolist()
        out["controls"][model_id] = {
            "flagged_not_generalising": flagged,
            "prototypes": len(ratio),
            "lowest_ratio": round(float(np.nanmin(ratio)), 3),
        }
        print(
            f"control {model_id}: {len(flagged)} of {len(ratio)} flagged, lowest ratio {np.nanmin(ratio):.2f}"
        )
    return out


def measure_badges(explorer: Explorer, images: int = 30, top: int = 3) -> dict:
    """Share of fragile matches (the top ``top`` by contribution on ``images`` evenly spaced test
    images) and each check's median change, per shipped model."""
    out = {}
    for model_id in SHIPPED:
        data = explorer.dataset(model_id, "test")
        changes: dict[str, list[float]] = {}
        fragile = {"any": 0}
        matches = 0
        for i in np.linspace(0, len(data) - 1, images).astype(int):
            x = explorer.explain(data.images[i], model_id, top_k=top, attribution=None)
            for pair in x.pairs:
                matches += 1
                fragile["any"] += pair.robustness.verdict == "fragile"
                for check in pair.robustness.checks:
                    changes.setdefault(check.name, []).append(check.change)
                    fragile[check.name] = fragile.get(check.name, 0) + check.fragile
        out[model_id] = {
            "matches": matches,
            "fragile_share": round(fragile["any"] / matches, 2),
            "checks": {
                name: {
                    "median_change": round(float(np.median(v)), 3),
                    "fragile_share": round(fragile[name] / matches, 2),
                }
                for name, v in changes.items()
            },
        }
        print(f"badges {model_id}: {out[model_id]}")
    return out


def measure_speed(explorer: Explorer, repeats: int) -> dict:
    bundle = explorer.bundle("synthetic")
    model = bundle.model.eval()
    data = explorer.dataset("synthetic", "test")
    batch = forward_batch_size(bundle.spec)
    metrics_s, forward_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            for first in range(0, len(data), batch):
                model(model.preprocess(data.images[first : first + batch]))
        forward_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        nearest = nearest_patches(model, data.images, data.labels, "test", batch_size=batch)
        evaluate(model, data, nearest, batch_size=batch)
        metrics_s.append(time.perf_counter() - start)
    metrics, forward = statistics.median(metrics_s), statistics.median(forward_s)
    print(
        f"metrics of {model.num_prototypes} prototypes over {len(data)} test images: {metrics:.1f} s "
        f"(median of {repeats}); plain forward of the same images {forward:.2f} s; ratio {metrics / forward:.1f}"
    )
    return {
        "prototypes": model.num_prototypes,
        "images": len(data),
        "metrics_s": round(metrics, 2),
        "forward_s": round(forward, 3),
        "ratio": round(metrics / forward, 1),
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["metrics", "queue", "badges", "speed"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true", help="do not update the results file")
    args = parser.parse_args()
    explorer = fresh_explorer()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.only in (None, "speed"):
        results["speed"] = measure_speed(explorer, args.repeats)
    if args.only in (None, "metrics"):
        results["metrics_synthetic"] = measure_metrics(explorer)
    if args.only in (None, "badges"):
        results["badges"] = measure_badges(explorer)
    if args.only in (None, "queue"):
        results["queue"] = measure_queue(explorer)
    if not args.no_save:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
