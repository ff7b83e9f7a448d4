"""Single-image latency, measured side by side in one run for every model:

* forward  — one bare forward pass of the preprocessed image;
* predict  — image file → Prediction with top-10 evidence (``Explorer.predict``);
* explain  — the full explanation the Explain tab shows: prediction, top-10 "this looks like that"
  pairs rendered as overlay pictures, the evidence chart, and class Grad-CAM.

Medians after warm-up; the three are interleaved round by round so machine noise hits them alike.
Prints the ratio of the full explanation to the bare forward pass.

    python -m bench.explain_latency [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from explorer.api import Explorer
from explorer.images import load_image
from explorer.viz.figures import evidence_figure
from explorer.viz.pairs import pair_picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(2)
    explorer = Explorer()
    print(f"torch threads {torch.get_num_threads()}, {args.rounds} rounds, medians in ms")
    print(f"{'model':<15}{'forward':>10}{'predict':>10}{'explain':>10}{'explain/forward':>17}")
    for model_id in explorer.model_ids():
        bundle = explorer.bundle(model_id)
        example = bundle.examples()[0]
        x = bundle.model.preprocess([load_image(example)])

        def forward(model=bundle.model, x=x) -> None:
            with torch.inference_mode():
                model(x)

        def predict(model_id=model_id, example=example) -> None:
            explorer.predict(example, model_id=model_id)

        def explain(model_id=model_id, example=example) -> None:
            result = explorer.explain(example, model_id, top_k=10, attribution="gradcam")
            for pair in result.pairs:
                pair_picture(result, pair, explorer.source_image(pair.prototype, model_id))
            evidence_figure(result.activations, result.target_class, result.class_names)

        tasks = {"forward": forward, "predict": predict, "explain": explain}
        times: dict[str, list[float]] = {name: [] for name in tasks}
        for fn in tasks.values():
            fn()  # warm-up
        for _ in range(args.rounds):
            for name, fn in tasks.items():
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1000)
        m = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"{model_id:<15}{m['forward']:>10.1f}{m['predict']:>10.1f}{m['explain']:>10.1f}"
            f"{m['explain'] / m['forward']:>17.1f}"
        )


if __name__ == "__main__":
    main()
