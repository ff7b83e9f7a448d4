"""Speed of the global attribute explanation against a reference-style loop, and against its own limit.

For each model, over ``--images`` test images and the reference modification set, side by side in
one run after a warm-up of each path:

* *modify*: every image's modified versions made one after the other (the modify stage alone);
* *forward*: the network stage alone on those versions (preprocess, forward in batches of the
  measured size, φ read at the best cells);
* *limit*: the slower of the two — a pass that overlaps them perfectly runs at this pace, if the
  stages' work fits the cores side by side; *bound*: the larger of the limit and the two stages'
  time on one core each, added, over the cores (what the machine can do when both stages would each
  fill every core);
* *pass*: the explorer's pass as it runs (the next chunk modified in a worker thread while the
  network runs on this one, forward batches measured per model and machine, 200 bootstrap
  resamples); the issue's bar: pass ≤ 1.15 × limit;
* *loop*: a reference-style loop, one forward per image and per modification, as the public code
  does (optionally with its JPEG round trip); the issue's bar: loop / pass ≥ 1.5.

Parity, with the model in float64 on the first 20 images: Φ of the pipelined pass against Φ from
the loop's φ, and against today's sequential pass (both ≤ 1e-10).

With ``--store``: the pass twice over the same images with a fresh version store (the first makes
and stores the modified versions, the second reads them), beside the forward stage alone.

    python -m bench.attribute_speed [--images 200] [--models ID ...] [--store]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from explorer.analysis.attribute_sets import feature_grid, modification_set
from explorer.analysis.attributes import (
    AttributePass,
    forward_versions,
    global_attributes,
    global_attributes_finish,
    image_versions,
)
from explorer.analysis.bootstrap import REPLICATES
from explorer.analysis.passes import NETWORK_THREADS, run_local
from explorer.analysis.version_store import VersionStore
from explorer.api import Explorer
from explorer.data.sources import ArraySource
from explorer.models.batch_size import measured_forward_batch

RESULTS = Path(__file__).parent / "attribute_speed_results.json"
STORE_RESULTS = Path(__file__).parent / "attribute_store_results.json"


def rgb_of(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def jpeg_round_trip(rgb: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


@torch.inference_mode()
def reference_loop(model, images, mods, jpeg: bool) -> np.ndarray:
    """φ [N, P, M] the slow way: one forward per image and per modification."""
    out = []
    for image in images:
        rgb = rgb_of(image)
        original = model(model.preprocess([rgb])).similarity_maps[0]  # [P, h, w]
        flat = original.flatten(1)
        cells = flat.argmax(dim=1)
        s = flat.gather(1, cells[:, None])[:, 0]
        phi = []
        for mod in mods:
            modified = mod.apply(rgb)
            if jpeg:
                modified = jpeg_round_trip(modified)
            maps = model(model.preprocess([modified])).similarity_maps[0].flatten(1)
            phi.append((s.double() - maps.gather(1, cells[:, None])[:, 0].double()).numpy())
        out.append(np.stack(phi, axis=1))
    return np.stack(out)


def modify_only(images, mods) -> tuple[list, float]:
    """Every image's modified versions, one after the other in this thread: the modify stage alone."""
    started = time.perf_counter()
    prepared = [image_versions(image, mods) for image in images]
    return prepared, time.perf_counter() - started


def forward_only(model, prepared, chunk: int, rows: int) -> float:
    """The network stage alone on versions already made: preprocess, forward, read φ."""
    started = time.perf_counter()
    for start in range(0, len(prepared), chunk):
        forward_versions(model, prepared[start : start + chunk], forward_rows=rows)
    return time.perf_counter() - started


def pipelined(model, images, mods, chunk: int, rows: int, replicates: int, store=None):
    """The explorer's pass: the next chunk modified in a worker thread while the network runs."""
    step = AttributePass(tuple(mods), replicates=replicates, forward_rows=rows, store=store)
    source = ArraySource(images, np.zeros(len(images), dtype=np.int64))
    started = time.perf_counter()
    result = global_attributes_finish(model, run_local(step, model, source, chunk), mods, "test")
    return result, time.perf_counter() - started


def loop_phi_global(model, images, mods) -> np.ndarray:
    """Φ from the reference loop's φ (weighted by each original's similarity), in float64."""
    phi = reference_loop(model, images, mods, jpeg=False)  # [N, P, M]
    s = np.stack([
        model(model.preprocess([rgb_of(im)])).similarity_maps[0].flatten(1).max(dim=1).values.double().numpy()
        for im in images
    ])  # fmt: skip
    return (phi * s[:, :, None]).sum(axis=0) / s.sum(axis=0)[:, None]


@torch.inference_mode()
def float64_parity(model, images, mods, chunk: int, rows: int) -> tuple[float, float]:
    """Max |ΔΦ| of the pipelined pass against the loop and against today's sequential pass (one
    forward per chunk), all with the model in float64."""
    model.double()
    # every input in float64, however the pass preprocesses (on the CPU, then sent to the model)
    hook = model.register_forward_pre_hook(lambda module, args: (args[0].double(), *args[1:]))
    try:
        piped, _ = pipelined(model, images, mods, chunk, rows, replicates=0)
        today = global_attributes(model, images, mods, "test", chunk, replicates=0)
        loop = loop_phi_global(model, images, mods)
    finally:
        hook.remove()
        model.float()
    return float(np.abs(piped.phi - loop).max()), float(np.abs(piped.phi - today.phi).max())


def model_setup(explorer: Explorer, model_id: str, count: int):
    """A model's network, its first ``count`` test images, the reference set, the measured forward
    batch and the pass's chunk, after a warm-up pass (oneDNN kernels, OpenCV)."""
    bundle = explorer.bundle(model_id)
    model = bundle.model
    images = explorer.dataset(model_id, "test").images[:count]
    mods = modification_set(model, "reference", images.shape[1:], feature_grid(model))
    rows = measured_forward_batch(model, bundle.content_hash, None, threads=NETWORK_THREADS)
    chunk = max(1, rows // (1 + len(mods)))
    pipelined(model, images[: 2 * chunk], mods, chunk, rows, REPLICATES)  # scipy imported too
    return model, images, mods, rows, chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--models", nargs="*", help="model ids (default: every model)")
    parser.add_argument(
        "--store", action="store_true",
        help="only the pass with a version store: first (modifies and stores) and second (reads)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.store:
        return store_passes(args)
    torch.set_num_threads(2)
    explorer = Explorer()
    print(
        f"{args.images} test images per model, reference set, 200 bootstrap resamples in the pass"
    )
    print(
        f"{'model':<17}{'rows':>5}{'modify':>9}{'forward':>9}{'limit':>8}{'pass':>8}"
        f"{'pass/limit':>11}{'loop':>8}{'pass ×':>8}{'|ΔΦ| loop':>11}{'|ΔΦ| today':>11}   (ms/img)"
    )
    rows_out = {}
    for model_id in args.models or explorer.model_ids():
        model, images, mods, rows, chunk = model_setup(explorer, model_id, args.images)
        reference_loop(model, images[: 2 * chunk], mods, jpeg=False)  # warm-up
        prepared, modify_s = modify_only(images, mods)
        forward_s = forward_only(model, prepared, chunk, rows)
        # both stages on one core each (one torch and one OpenCV thread), for the machine's bound
        threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        _, modify_one_s = modify_only(images, mods)
        forward_one_s = forward_only(model, prepared, chunk, rows)
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
        del prepared
        _, pass_s = pipelined(model, images, mods, chunk, rows, REPLICATES)
        started = time.perf_counter()
        reference_loop(model, images, mods, jpeg=False)
        loop_s = time.perf_counter() - started
        loop_gap, today_gap = float64_parity(model, images[:20], mods, chunk, rows)
        n = len(images)
        limit = max(modify_s, forward_s)
        cores = torch.get_num_threads()
        bound = max(limit, (modify_one_s + forward_one_s) / cores)
        row = {
            "modify_one_core_ms": 1000 * modify_one_s / n,
            "forward_one_core_ms": 1000 * forward_one_s / n,
            "bound_ms": 1000 * bound / n,
            "pass_over_bound": pass_s / bound,
            "forward_rows": rows,
            "modify_ms": 1000 * modify_s / n,
            "forward_ms": 1000 * forward_s / n,
            "limit_ms": 1000 * limit / n,
            "pass_ms": 1000 * pass_s / n,
            "pass_over_limit": pass_s / limit,
            "loop_ms": 1000 * loop_s / n,
            "speed_up": loop_s / pass_s,
            "float64_gap_loop": loop_gap,
            "float64_gap_today": today_gap,
        }
        rows_out[model_id] = row
        print(
            f"{model_id:<17}{rows:>5}{row['modify_ms']:>9.1f}{row['forward_ms']:>9.1f}"
            f"{row['limit_ms']:>8.1f}{row['pass_ms']:>8.1f}{row['pass_over_limit']:>11.2f}"
            f"{row['loop_ms']:>8.1f}{row['speed_up']:>7.2f}×{loop_gap:>11.1e}{today_gap:>11.1e}"
        )
        print(
            f"{'':<17}one core each: modify {row['modify_one_core_ms']:.1f}, forward "
            f"{row['forward_one_core_ms']:.1f}; the {cores} cores' bound max(limit, sum / cores) "
            f"{row['bound_ms']:.1f}; pass / bound {row['pass_over_bound']:.2f}"
        )
    RESULTS.write_text(json.dumps(rows_out, indent=2) + "\n")


def store_passes(args) -> None:
    """The pass twice over the same images with a fresh version store: the first modifies and
    stores every image, the second reads them (what recomputing another split or a retrained
    model's explanation costs), beside the forward stage alone."""
    torch.set_num_threads(2)
    explorer = Explorer()
    print(f"{'model':<17}{'forward':>9}{'first':>8}{'second':>8}{'second/forward':>16}   (ms/img)")
    out = {}
    for model_id in args.models or explorer.model_ids():
        model, images, mods, rows, chunk = model_setup(explorer, model_id, args.images)
        with tempfile.TemporaryDirectory() as folder:
            store = VersionStore(folder)
            first, first_s = pipelined(model, images, mods, chunk, rows, REPLICATES, store)
            second, second_s = pipelined(model, images, mods, chunk, rows, REPLICATES, store)
            stored_mb = store.size_bytes() / 1e6
        assert np.array_equal(first.phi, second.phi), "the stored versions changed Φ"
        prepared, _ = modify_only(images, mods)
        forward_s = forward_only(model, prepared, chunk, rows)
        n = len(images)
        out[model_id] = {
            "forward_ms": 1000 * forward_s / n,
            "first_pass_ms": 1000 * first_s / n,
            "second_pass_ms": 1000 * second_s / n,
            "second_over_forward": second_s / forward_s,
            "stored_mb_per_1000_images": stored_mb / n * 1000,
        }
        print(
            f"{model_id:<17}{1000 * forward_s / n:>9.1f}{1000 * first_s / n:>8.1f}"
            f"{1000 * second_s / n:>8.1f}{second_s / forward_s:>16.2f}   "
            f"({stored_mb / n * 1000:.0f} MB per 1,000 images stored)"
        )
    STORE_RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
