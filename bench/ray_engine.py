"""The global passes in process and on Ray Data with 1 and 2 workers, over the same images, side by
side in one run; and what 200,000 images would cost on 1, 8 and 64 workers.

    python -m bench.ray_engine [--models fashion_mnist elpv] [--images 2000] [--attribute-images 400]

Per model: the first ``--images`` images of its data set (Fashion-MNIST's test split; ELPV's
training split, 1,968 images) for the nearest-patch pass (every image's scores kept), and the first
``--attribute-images`` for the global attribute explanation (reference set, 200 bootstrap resamples).
In process: the pass with 1 and with 2 torch threads. On Ray (one local instance with 2 CPUs, started
once, its start-up timed apart): the pass with 1 and with 2 workers (actors of one CPU and one torch
thread each). *Once started* is the images over the span from the first block's start to the last
block's end on the workers' clocks (actors loading the model, Ray scheduling the first blocks and the
driver's finish are outside it; a worker that starts late, or idles while the other maps the last
block, counts against the 2-worker run); *the workers' own rates added* is each worker's images over
its own span, summed (the rate once every worker has started, without the tail); *fixed cost* is the
rest of the pass. Every Ray result is checked against the in-process one (nearest patches exactly,
scores and Φ within 1e-6 relative).

The extrapolation uses the 1-worker throughput once started, the measured fixed cost, and the
driver's measured seconds per block (unpack + combine, which one driver does for every block): the
driver bounds the pass once workers × driver seconds per block exceed a block's seconds on a worker.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from explorer.analysis.attribute_sets import modification_set
from explorer.analysis.attributes import AttributePass, global_attributes_finish
from explorer.analysis.nearest import NearestPass, nearest_finish
from explorer.analysis.passes import run_local
from explorer.api import Explorer
from explorer.data import load_split
from explorer.data.sources import ArraySource
from explorer.engines.ray_engine import BlockTime, block_size, ray_run
from explorer.models.preprocess import forward_batch_size

SPLITS = {"fashion_mnist": "test", "elpv": "train"}
RESULTS = Path(__file__).parent / "ray_engine_results.json"
ARCHIVE = 200_000
WORKERS = (1, 8, 64)


def passes(bundle, images: np.ndarray, labels: np.ndarray, attribute_images: int) -> dict:
    """name → (step, source, batch size, finish)."""
    batch = forward_batch_size(bundle.spec)
    mods = modification_set(bundle.model, "reference", images.shape[1:])
    per_pass = max(1, batch // (1 + len(mods)))
    nearest_source = ArraySource(images, labels)
    attribute_source = ArraySource(images[:attribute_images], labels[:attribute_images])
    return {
        "nearest patches": (
            NearestPass(keep_all_scores=True),
            nearest_source,
            batch,
            lambda done: nearest_finish(bundle.model, done, nearest_source, "x", True),
        ),
        "attribute explanation": (
            AttributePass(mods),
            attribute_source,
            per_pass,
            lambda done: global_attributes_finish(bundle.model, done, mods, "x"),
        ),
    }


def same(a, b) -> None:
    if hasattr(a, "cells"):
        assert np.array_equal(a.images, b.images) and np.array_equal(a.cells, b.cells), "differ"
        np.testing.assert_allclose(a.all_scores, b.all_scores, rtol=1e-6)
    else:
        np.testing.assert_allclose(a.phi, b.phi, rtol=1e-6)


def extrapolate(row: dict) -> dict:
    """200,000 images on 1, 8 and 64 workers from the 1-worker figures (see the module text)."""
    one = row["ray_1_workers"]
    per_image = 1 / one["images_per_s_once_started"]
    driver_per_block = one["driver_s_per_block"]
    out = {}
    for workers in WORKERS:
        block = block_size(ARCHIVE, workers, row["forward_batch"])
        compute = ARCHIVE * per_image / workers
        driver = ARCHIVE / block * driver_per_block
        hours = (max(compute, driver) + one["fixed_cost_s"]) / 3600
        out[f"{workers}_workers_hours"] = round(hours, 3)
        out[f"{workers}_workers_bound"] = "driver" if driver > compute else "workers"
    out["block_images"] = block
    out["driver_bound_above_workers"] = round(block * per_image / driver_per_block)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SPLITS))
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--attribute-images", type=int, default=400)
    parser.add_argument(
        "--passes", nargs="+", default=["nearest patches", "attribute explanation"],
        help="which passes (the others' stored figures are kept)",
    )  # fmt: skip
    args = parser.parse_args()
    import ray

    explorer = Explorer()
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    start_s = time.perf_counter() - start
    print(f"Ray start-up (local, 2 CPUs): {start_s:.1f} s")
    results: dict = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"models": {}}
    results.update({"ray_start_s": round(start_s, 2), "archive_images": ARCHIVE})
    try:
        for model_id in args.models:
            bundle = explorer.bundle(model_id)
            data = load_split(bundle.spec.dataset["name"], SPLITS[model_id], bundle.spec.input_size)
            images, labels = data.images[: args.images], data.labels[: args.images]
            stored = results["models"].setdefault(model_id, {})
            for name, (step, source, batch, finish) in passes(
                bundle, images, labels, args.attribute_images
            ).items():
                if name not in args.passes:
                    continue
                row: dict = {"images": len(source), "forward_batch": batch}
                reference = None
                for threads in (1, 2):
                    torch.set_num_threads(threads)
                    start = time.perf_counter()
                    result = finish(run_local(step, bundle.model, source, batch))
                    seconds = time.perf_counter() - start
                    reference = reference or result
                    row[f"in_process_{threads}_threads_s"] = round(seconds, 2)
                    print(
                        f"{model_id}, {name}: in process, {threads} thread(s): {seconds:.1f} s "
                        f"({len(source) / seconds:.1f} images/s)"
                    )
                torch.set_num_threads(2)
                for workers in (1, 2):
                    times: list[BlockTime] = []
                    start = time.perf_counter()
                    result = finish(
                        ray_run(
                            step, bundle.folder, source, batch_size=batch, workers=workers,
                            times=times,
                        )
                    )  # fmt: skip
                    seconds = time.perf_counter() - start
                    same(result, reference)
                    span = max(t.ended for t in times) - min(t.started for t in times)
                    rate = len(source) / span
                    per_worker = sum(  # each worker's images over its own span, added up
                        sum(t.images for t in mine)
                        / (max(t.ended for t in mine) - min(t.started for t in mine))
                        for worker in {t.worker for t in times}
                        for mine in [[t for t in times if t.worker == worker]]
                    )
                    row[f"ray_{workers}_workers"] = {
                        "pass_s": round(seconds, 2),
                        "images_per_s_once_started": round(rate, 2),
                        "images_per_s_workers_added": round(per_worker, 2),
                        "fixed_cost_s": round(seconds - span, 2),
                        "blocks": len(times),
                        "driver_s_per_block": round(float(np.mean([t.driver_s for t in times])), 4),
                        "partial_kb": round(
                            float(np.mean([t.partial_bytes for t in times])) / 1024, 1
                        ),
                    }
                    print(
                        f"{model_id}, {name}: Ray, {workers} worker(s): {seconds:.1f} s; once "
                        f"started {rate:.1f} images/s over {len(times)} blocks; fixed cost "
                        f"{seconds - span:.1f} s"
                    )
                ratio = (
                    row["ray_2_workers"]["images_per_s_once_started"]
                    / row["ray_1_workers"]["images_per_s_once_started"]
                )
                row["two_over_one_workers"] = round(ratio, 2)
                row["two_over_one_workers_added"] = round(
                    row["ray_2_workers"]["images_per_s_workers_added"]
                    / row["ray_1_workers"]["images_per_s_workers_added"],
                    2,
                )
                row["in_process_two_over_one_threads"] = round(
                    row["in_process_1_threads_s"] / row["in_process_2_threads_s"], 2
                )
                row["per_image_ms_one_worker"] = round(
                    1000 / row["ray_1_workers"]["images_per_s_once_started"], 2
                )
                row["archive"] = extrapolate(row)
                print(
                    f"{model_id}, {name}: 2 workers / 1 worker once started: {ratio:.2f} (the "
                    f"workers' own rates added: {row['two_over_one_workers_added']:.2f}; in process "
                    f"2 / 1 threads: {row['in_process_two_over_one_threads']:.2f})"
                )
                print(f"{model_id}, {name}: {ARCHIVE:,} images: {row['archive']}")
                stored[name] = row
    finally:
        ray.shutdown()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
