"""The full explanation of a PIP-Net beside the ProtoPNet of the same data, measured side by side.

For the shipped ``synthetic`` (ProtoPNet) and ``synthetic_pipnet`` (PIP-Net), on the same bundled
example images, the full explanation the Explain tab shows (prediction, top-10 pairs rendered beside
the picture that stands for each prototype, the evidence chart, class Grad-CAM) is timed with the two
models alternating call by call, so that machine noise hits both alike. Prints the medians and the
ratio PIP-Net / ProtoPNet (issue 17's bar: at most 2).

    python -m bench.family_latency [--rounds 10] [--pair synthetic synthetic_pipnet]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from explorer.api import Explorer
from explorer.viz.figures import evidence_figure
from explorer.viz.pairs import pair_picture


def full_explanation(explorer: Explorer, model_id: str, image) -> None:
    result = explorer.explain(image, model_id, top_k=10, attribution="gradcam")
    for pair in result.pairs:
        pair_picture(result, pair, explorer.source_image(pair.prototype, model_id))
    evidence_figure(result.activations, result.target_class, result.class_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pair", nargs=2, default=["synthetic", "synthetic_pipnet"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    images = {m: explorer.bundle(m).examples() for m in args.pair}
    shared = sorted(set.intersection(*({p.name for p in v} for v in images.values())))
    examples = [p for p in images[args.pair[0]] if p.name in shared]  # the same pictures
    times: dict[str, list[float]] = {m: [] for m in args.pair}
    for model_id in args.pair:
        full_explanation(explorer, model_id, examples[0])  # warm-up
    for _ in range(args.rounds):
        for image in examples:
            for model_id in args.pair:
                start = time.perf_counter()
                full_explanation(explorer, model_id, image)
                times[model_id].append((time.perf_counter() - start) * 1000)
    first, second = (statistics.median(times[m]) for m in args.pair)
    print(f"{len(examples)} shared examples x {args.rounds} rounds, alternating; medians in ms")
    for model_id in args.pair:
        print(f"{model_id:<18}{statistics.median(times[model_id]):>10.1f}")
    print(f"ratio {args.pair[1]} / {args.pair[0]}: {second / first:.2f}")


if __name__ == "__main__":
    main()
