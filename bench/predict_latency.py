"""Latency of one prediction (image file → Prediction with top-10 evidence) next to one bare forward
pass of the same model, measured side by side in one run; prints medians and their ratio.

    python bench/predict_latency.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from explorer.api import Explorer


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    print(f"{'model':<15}{'forward ms':>12}{'predict ms':>12}{'ratio':>8}")
    for model_id in explorer.model_ids():
        bundle = explorer.bundle(model_id)
        example = bundle.examples()[0]
        x = bundle.model.preprocess([explorer_image(example)])

        def forward(model=bundle.model, x=x) -> None:
            with torch.inference_mode():
                model(x)

        def predict(model_id=model_id, example=example) -> None:
            explorer.predict(example, model_id=model_id)

        # interleave the two so machine noise hits both alike
        f1, p1 = median_ms(forward, args.repeats), median_ms(predict, args.repeats)
        f2, p2 = median_ms(forward, args.repeats), median_ms(predict, args.repeats)
        f, p = min(f1, f2), min(p1, p2)
        print(f"{model_id:<15}{f:>12.1f}{p:>12.1f}{p / f:>8.2f}")


def explorer_image(path):
    from explorer.images import load_image

    return load_image(path)


if __name__ == "__main__":
    main()
