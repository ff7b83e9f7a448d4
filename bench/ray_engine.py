"""The nearest-patch pass (test scores kept) in process and on Ray Data with 1 and 2 workers, over the
same images, side by side in one run.

    python -m bench.ray_engine [--models fashion_mnist elpv] [--images 2000]

Per model: the first ``--images`` images of its data set (Fashion-MNIST's test split; ELPV's
training split, 1,968 images). In process: the pass with 1 and with 2 torch threads. On Ray (one
local instance with 2 CPUs, started once; its start-up timed apart): the pass with 1 and 2 workers
(actors of one CPU and one torch thread each), each on half the images and on all of them, so that
the fixed cost of a pass (actors loading the model, the first blocks) and the throughput once
started separate: throughput = (all - half) images / (time for all - time for half). Every Ray
result is checked equal to the in-process one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from explorer.analysis.nearest import nearest_patches
from explorer.api import Explorer
from explorer.data import load_split
from explorer.engines.ray_engine import ray_nearest_patches
from explorer.models.preprocess import forward_batch_size

SPLITS = {"fashion_mnist": "test", "elpv": "train"}
RESULTS = Path(__file__).parent / "ray_engine_results.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SPLITS))
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    import ray

    explorer = Explorer()
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    start_s = time.perf_counter() - start
    print(f"Ray start-up (local, 2 CPUs): {start_s:.1f} s")
    results: dict = {"ray_start_s": round(start_s, 2), "models": {}}
    try:
        for model_id in args.models:
            bundle = explorer.bundle(model_id)
            data = load_split(bundle.spec.dataset["name"], SPLITS[model_id], bundle.spec.input_size)
            images, labels = data.images[: args.images], data.labels[: args.images]
            half = len(images) // 2
            batch = forward_batch_size(bundle.spec)
            row: dict = {"images": len(images), "batch_size": batch}
            reference = None
            for threads in (1, 2):
                torch.set_num_threads(threads)
                start = time.perf_counter()
                result = nearest_patches(
                    bundle.model, images, labels, "x", keep_all_scores=True, batch_size=batch
                )
                seconds = time.perf_counter() - start
                reference = reference or result
                row[f"in_process_{threads}_threads_s"] = round(seconds, 2)
                print(
                    f"{model_id}: in process, {threads} thread(s): {seconds:.1f} s "
                    f"({len(images) / seconds:.0f} images/s)"
                )
            torch.set_num_threads(2)
            for workers in (1, 2):
                times = {}
                for count in (half, len(images)):
                    start = time.perf_counter()
                    result = ray_nearest_patches(
                        bundle.folder, bundle.model, images[:count], labels[:count], "x",
                        keep_all_scores=True, batch_size=batch, workers=workers,
                    )  # fmt: skip
                    times[count] = time.perf_counter() - start
                assert np.array_equal(result.images, reference.images), "Ray and in process differ"
                assert np.array_equal(result.cells, reference.cells)
                np.testing.assert_allclose(result.all_scores, reference.all_scores, rtol=1e-6)
                rate = (len(images) - half) / (times[len(images)] - times[half])
                fixed = times[len(images)] - len(images) / rate
                row[f"ray_{workers}_workers"] = {
                    "pass_s": round(times[len(images)], 2),
                    "images_per_s_once_started": round(rate, 1),
                    "fixed_cost_per_pass_s": round(fixed, 2),
                }
                print(
                    f"{model_id}: Ray, {workers} worker(s): {times[len(images)]:.1f} s for {len(images)} "
                    f"images; once started {rate:.0f} images/s; fixed cost per pass {fixed:.1f} s"
                )
            ratio = (
                row["ray_2_workers"]["images_per_s_once_started"]
                / row["ray_1_workers"]["images_per_s_once_started"]
            )
            row["two_over_one_workers"] = round(ratio, 2)
            row["per_image_ms_one_worker"] = round(
                1000 / row["ray_1_workers"]["images_per_s_once_started"], 2
            )
            print(f"{model_id}: 2 workers / 1 worker throughput once started: {ratio:.2f}")
            results["models"][model_id] = row
    finally:
        ray.shutdown()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
