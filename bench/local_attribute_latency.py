"""Latency of one local attribute explanation, as the Explain tab's *Explain the match* button does it,
for every shipped model and both modification sets, measured side by side with a plain prediction:

* predict — image file → Prediction with top-10 evidence (``Explorer.predict``);
* match   — image file → the match's local φ for every prototype (each modification applied once at
  native resolution, one batched forward of the original and its versions), its sentence, and the
  bar chart (``Explorer.match_attributes`` + ``attribute_figure``), for the image's top prototype.

The model's example images are used in turn, all tasks interleaved image by image after a warm-up,
so machine noise hits them alike. Prints median and 95th percentile in ms and the ratio of the
medians (match / predict). The issue's bar: median ≤ 1 s on 2 cores.

    python -m bench.local_attribute_latency [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from explorer.analysis.attribute_sets import MODES
from explorer.api import Explorer
from explorer.viz.figures import attribute_figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the example images")
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    print(
        f"torch threads {torch.get_num_threads()}, {args.rounds} passes over each model's examples"
    )
    print(
        f"{'model':<15}{'images':>7}{'predict ms':>12}"
        + "".join(f"{m + ' ms (p95)':>26}" for m in MODES)
        + "".join(f"{m + '/predict':>22}" for m in MODES)
    )
    for model_id in explorer.model_ids():
        examples = explorer.bundle(model_id).examples()
        top = {
            path: explorer.predict(path, model_id=model_id).top_prototypes[0].prototype
            for path in examples
        }

        def predict(path, model_id=model_id) -> None:
            explorer.predict(path, model_id=model_id)

        def match(path, mode, model_id=model_id, top=top) -> None:
            view = explorer.match_attributes(path, top[path], model_id, mode)
            attribute_figure(view.names, {"φ": view.local}, "bench", view.not_applicable)

        tasks = {"predict": predict} | {
            mode: (lambda path, mode=mode: match(path, mode)) for mode in MODES
        }
        for fn in tasks.values():
            fn(examples[0])  # warm-up
        times: dict[str, list[float]] = {name: [] for name in tasks}
        for _ in range(args.rounds):
            for path in examples:
                for name, fn in tasks.items():
                    started = time.perf_counter()
                    fn(path)
                    times[name].append(1000 * (time.perf_counter() - started))
        median = {name: statistics.median(values) for name, values in times.items()}
        p95 = {name: float(np.percentile(values, 95)) for name, values in times.items()}
        print(
            f"{model_id:<15}{len(examples):>7}{median['predict']:>12.1f}"
            + "".join(f"{f'{median[m]:.0f} ({p95[m]:.0f})':>26}" for m in MODES)
            + "".join(f"{median[m] / median['predict']:>22.1f}" for m in MODES)
        )


if __name__ == "__main__":
    main()
