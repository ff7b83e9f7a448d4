"""What the bootstrap intervals add to a global attribute explanation, measured side by side.

For each shipped model, over ``--images`` test images and the reference modification set, the same
``global_attributes`` pass runs with the intervals (``replicates=200``, the default) and without
(``replicates=0``), alternately for ``--rounds`` rounds so that machine noise hits both alike; it
prints the median seconds of each and their ratio (with / without; 1.00 = free).

    python -m bench.interval_cost [--images 200] [--rounds 3] [--model ID ...]

The intervals add a fixed cost per pass (the percentiles and the relative reading of each of the 200
resamples, a few tenths of a second) and a small one per image (its Poisson counts and one matrix
product per batch); on a few dozen images the fixed part dominates the ratio, on a whole split it
vanishes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from explorer.analysis.attribute_sets import feature_grid, modification_set
from explorer.analysis.attributes import global_attributes
from explorer.analysis.bootstrap import REPLICATES
from explorer.api import Explorer
from explorer.models.preprocess import forward_batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", action="append", help="only this model (repeat for more)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    print(f"{args.images} test images, reference set, {args.rounds} alternating rounds, seconds")
    print(f"{'model':<16}{'without':>10}{'with':>10}{'ratio':>8}")
    for model_id in args.model or explorer.model_ids():
        bundle = explorer.bundle(model_id)
        images = explorer.dataset(model_id, "test").images[: args.images]
        mods = modification_set(
            bundle.model, "reference", images.shape[1:], feature_grid(bundle.model)
        )
        per_pass = max(1, forward_batch_size(bundle.spec) // (1 + len(mods)))
        times: dict[int, list[float]] = {0: [], REPLICATES: []}
        for _ in range(args.rounds):
            for replicates in times:
                started = time.perf_counter()
                global_attributes(
                    bundle.model, images, mods, "test", batch_size=per_pass, replicates=replicates
                )
                times[replicates].append(time.perf_counter() - started)
        without, with_ = (statistics.median(times[r]) for r in (0, REPLICATES))
        print(f"{model_id:<16}{without:>10.2f}{with_:>10.2f}{with_ / without:>8.2f}")


if __name__ == "__main__":
    main()
