"""Throughput of the nearest-patch pass next to plain batched inference over the same images.

Both preprocess each batch from uint8 images and run the same forward pass, in batches of
``forward_batch_size`` (the size the explorer uses); the nearest-patch pass
also finds each prototype's best cell per image and merges the running top-k. Timed alternately,
best of ``--repeats``; prints images/s and the ratio (target ≥ 0.8).

    python -m bench.nearest_throughput [--images 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from explorer.analysis.nearest import nearest_patches
from explorer.api import Explorer
from explorer.models.preprocess import forward_batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    print(f"{'model':<15}{'images':>8}{'plain img/s':>13}{'nearest img/s':>15}{'ratio':>8}")
    for model_id in explorer.model_ids():
        data = explorer.dataset(model_id, "test")
        images, labels = data.images[: args.images], data.labels[: args.images]
        model = explorer.bundle(model_id).model
        batch = forward_batch_size(model.spec)

        def plain(model=model, images=images, batch=batch) -> None:
            with torch.inference_mode():
                for start in range(0, len(images), batch):
                    model(model.preprocess(images[start : start + batch]))

        def nearest(model=model, images=images, labels=labels, batch=batch) -> None:
            nearest_patches(model, images, labels, "test", batch_size=batch)

        best = {"plain": float("inf"), "nearest": float("inf")}
        for _ in range(args.repeats):
            for name, fn in (("plain", plain), ("nearest", nearest)):
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
        n = len(images)
        print(
            f"{model_id:<15}{n:>8}{n / best['plain']:>13.0f}{n / best['nearest']:>15.0f}"
            f"{best['plain'] / best['nearest']:>8.2f}"
        )


if __name__ == "__main__":
    main()
