"""What-if latency from stored test-split scores next to one forward pass over the same images.

For every model: the test split's stored prototype scores (``Explorer.nearest(model_id, "test")``,
computed and cached when missing — this needs the data set), then ``what_if`` for ``--subsets``
random subsets of disabled prototypes (sizes 1..P/2, seeded; building the modified weight
included), against one batched forward pass of the whole test split under
``torch.inference_mode`` (preprocessing included, as re-running the model would need it) with the
last subset's modified last layer. Prints the median and p95 what-if latency, the forward time,
their ratio, and whether both gave the same predictions.

Then, per model, the redundancy analysis at its defaults: the number of clusters (by suggestion),
the prototypes a plan removes and the test accuracy after it — for the suggested plan ("keep one"
and "merge" clusters) and for pruning every cluster to one prototype.

    python -m bench.whatif_latency [--subsets 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from explorer.analysis.redundancy import (
    DEFAULT_THRESHOLD,
    SUGGESTIONS,
    prune_plan,
    pruned_weight,
    redundancy_report,
)
from explorer.analysis.whatif import as_weight, disabled_weight, modified_last_layer, what_if
from explorer.api import Explorer

BATCH = 256


def forward_predictions(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """``[N]`` predictions of one batched pass over the split."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), BATCH):
            logits = model(model.preprocess(images[start : start + BATCH])).logits
            out.append(logits.argmax(dim=1).numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subsets", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    print(f"torch threads {torch.get_num_threads()}, {args.subsets} random subsets per model")
    print(
        f"{'model':<15}{'N':>7}{'P':>5}{'C':>4}{'what-if ms':>12}{'p95 ms':>9}"
        f"{'forward ms':>12}{'forward/what-if':>17}{'same':>6}"
    )
    reports = {}
    for model_id in explorer.model_ids():
        bundle = explorer.bundle(model_id)
        model = bundle.model
        nearest = explorer.nearest(model_id, "test")
        scores, labels = nearest.all_scores, nearest.all_labels  # [N, P], [N]
        weight = as_weight(model.last_layer.weight)  # [C, P]
        num_classes, num = weight.shape
        rng = np.random.default_rng(args.seed)
        subsets = [
            rng.choice(num, rng.integers(1, max(num // 2, 1) + 1), replace=False).tolist()
            for _ in range(args.subsets)
        ]
        what_if(scores, labels, weight, disabled_weight(weight, subsets[0]))  # warm-up
        times = []
        for subset in subsets:
            start = time.perf_counter()
            answer = what_if(scores, labels, weight, disabled_weight(weight, subset))
            times.append(time.perf_counter() - start)
        images = explorer.dataset(model_id, "test").images
        with modified_last_layer(model, disabled_weight(weight, subsets[-1])):
            start = time.perf_counter()
            predictions = forward_predictions(model, images)
            forward = time.perf_counter() - start
        median = statistics.median(times)
        p95 = float(np.percentile(times, 95))
        same = "yes" if np.array_equal(predictions, answer.predictions) else "NO"
        print(
            f"{model_id:<15}{len(labels):>7}{num:>5}{num_classes:>4}{median * 1e3:>12.2f}"
            f"{p95 * 1e3:>9.2f}{forward * 1e3:>12.0f}{forward / median:>17.0f}{same:>6}"
        )
        start = time.perf_counter()
        reports[model_id] = (redundancy_report(bundle, nearest), time.perf_counter() - start)

    print(f"\nredundancy at the defaults (threshold {DEFAULT_THRESHOLD}, average linkage)")
    print(
        f"{'model':<15}{'clusters':>9}{'keep/merge/leave':>18}{'report ms':>11}{'baseline':>10}"
        f"{'suggested: -P':>15}{'acc':>8}{'every: -P':>11}{'acc':>8}"
    )
    for model_id, (report, seconds) in reports.items():
        nearest = explorer.nearest(model_id, "test")
        weight = as_weight(explorer.bundle(model_id).model.last_layer.weight)
        every = prune_plan(report.clusters, weight, every_cluster=True)
        pruned_all = what_if(
            nearest.all_scores, nearest.all_labels, weight, pruned_weight(weight, every)
        )
        kinds = "/".join(str(sum(c.suggestion == s for c in report.clusters)) for s in SUGGESTIONS)
        if report.pruned is None:  # no stored test scores
            continue
        print(
            f"{model_id:<15}{len(report.clusters):>9}{kinds:>18}{seconds * 1e3:>11.0f}"
            f"{report.pruned.baseline_accuracy:>10.4f}"
            f"{sum(len(v) for v in report.plan.values()):>15}{report.pruned.accuracy:>8.4f}"
            f"{sum(len(v) for v in every.values()):>11}{pruned_all.accuracy:>8.4f}"
        )


if __name__ == "__main__":
    main()
