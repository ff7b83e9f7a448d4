"""The GPU check: the explorer on a CUDA GPU against the CPU, for a person who has a GPU.

For every shipped model, on its first ``--images`` test images, the same code runs twice in one
process: on the CPU with 2 torch threads (the figure the README's CPU numbers are measured at) and
on the GPU (``--device``, default ``cuda``). Separate caches, so nothing computed on one is read by
the other.

Parity (the GPU against the CPU; the tolerances are stated before any GPU run and are what the
issue's "within stated tolerances" means here; float32 on both, TensorFloat-32 off on the GPU):

* logits and prototype scores of a forward pass: max |Δ| ≤ 1e-3 × max(1, max |CPU value|);
* Grad-CAM (class, on 8 images): max |Δ| ≤ 1e-3 × max(1e-12, max CPU value);
* local φ (every prototype × modification, on 8 images): max |Δ| ≤ 1e-3 × max(1, max |CPU φ|);
* global Φ of the attribute pass (every prototype × modification): the same rule.

Speed (each pass side by side, after a warm-up of each; seconds per image):

* *scores*: the nearest-patch pass (scores, maps, nearest patches) over the images;
* *attributes*: the global attribute pass (reference set, 200 bootstrap resamples) over the images;
* *explain*: one full explanation with class Grad-CAM (median of 5);
* *train*: a short training run of the synthetic preset (1 warm, 1 joint, 2 last-layer epochs).

Prints a table and writes ``bench/device_check_results.json``; ``--device cpu`` runs the script
against itself (parity exact, speed-up ≈ 1), which the test suite does to keep it working.

    python -m bench.device_check [--device cuda] [--images 64] [--models ID ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.analysis.attribute_sets import feature_grid, modification_set
from explorer.analysis.attributes import AttributePass, global_attributes_finish, local_attributes
from explorer.analysis.nearest import NearestPass
from explorer.analysis.passes import NETWORK_THREADS, run_local
from explorer.api import Explorer
from explorer.cache import default_cache_dir
from explorer.data.sources import ArraySource
from explorer.errors import ExplorerError
from explorer.models.batch_size import measured_forward_batch
from explorer.models.device import describe_device, synchronize

RESULTS = Path(__file__).parent / "device_check_results.json"
CPU_THREADS = 2
TOLERANCE = 1e-3
"""Relative tolerance of every parity check (see the module's text)."""
PARITY_IMAGES = 8
GOAL_ATTRIBUTE_SPEEDUP = 10.0
"""Issue 22: the global attribute pass on a GPU ≥ 10 × the 2-core CPU figure for ELPV."""


def timed(run: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    synchronize(device)
    started = time.perf_counter()
    result = run()
    synchronize(device)
    return result, time.perf_counter() - started


def relative(cpu: np.ndarray, other: np.ndarray, floor: float = 1.0) -> float:
    """max |Δ| over max(floor, max |cpu|)."""
    cpu, other = np.asarray(cpu, dtype=np.float64), np.asarray(other, dtype=np.float64)
    return float(np.abs(cpu - other).max() / max(floor, float(np.abs(cpu).max())))


class Side:
    """One device's explorer, with the CPU's thread count on the CPU side."""

    def __init__(self, device: str, cache: Path) -> None:
        self.explorer = Explorer(device=device, cache_root=cache)
        self.device = self.explorer.device

    def __enter__(self) -> Side:
        self.threads = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(CPU_THREADS)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.threads)


@torch.inference_mode()
def forward_outputs(side: Side, model_id: str, images: np.ndarray) -> dict[str, np.ndarray]:
    model = side.explorer.bundle(model_id).model
    out = model(model.preprocess(list(images)))
    return {"logits": out.logits.cpu().numpy(), "scores": out.scores.cpu().numpy()}


def gradcams(side: Side, model_id: str, images: np.ndarray) -> np.ndarray:
    return np.stack([
        side.explorer.explain(image, model_id, attribution="gradcam", robustness=False)
        .attribution.values
        for image in images
    ])  # fmt: skip


def local_phis(side: Side, model_id: str, images: np.ndarray) -> np.ndarray:
    bundle = side.explorer.bundle(model_id)
    model = bundle.model
    mods = modification_set(model, "reference", images.shape[1:], feature_grid(model))
    return np.stack([local_attributes(model, image, mods).phi for image in images])


def passes(side: Side, model_id: str, images: np.ndarray) -> dict[str, Any]:
    """The nearest-patch pass and the attribute pass over ``images`` (a warm-up of each first)."""
    bundle = side.explorer.bundle(model_id)
    model = bundle.model
    source = ArraySource(images, np.zeros(len(images), dtype=np.int64))
    mods = modification_set(model, "reference", images.shape[1:], feature_grid(model))
    batch = side.explorer.forward_batch(model_id)  # the facade's nearest-patch batch
    threads = NETWORK_THREADS if side.device.type == "cpu" else None
    # remembered in the user's cache as everywhere (by model, machine and device)
    rows = measured_forward_batch(model, bundle.content_hash, default_cache_dir(), threads)
    chunk = max(1, rows // (1 + len(mods)))
    nearest_step = NearestPass(k=5, keep_all_scores=True)
    attribute_step = AttributePass(tuple(mods), forward_rows=rows)
    warm = ArraySource(images[: 2 * chunk], np.zeros(min(len(images), 2 * chunk), dtype=np.int64))
    run_local(nearest_step, model, warm, batch)
    global_attributes_finish(model, run_local(attribute_step, model, warm, chunk), mods, "test")
    _, nearest_s = timed(lambda: run_local(nearest_step, model, source, batch), side.device)
    phi, attribute_s = timed(
        lambda: (
            global_attributes_finish(
                model, run_local(attribute_step, model, source, chunk), mods, "test"
            ).phi
        ),
        side.device,
    )
    return {"scores_s": nearest_s, "attributes_s": attribute_s, "phi": phi, "rows": rows,
            "batch": batch}  # fmt: skip


def explain_seconds(side: Side, model_id: str, image: np.ndarray) -> float:
    side.explorer.explain(image, model_id, attribution="gradcam")  # warm-up
    times = [
        timed(lambda: side.explorer.explain(image, model_id, attribution="gradcam"), side.device)[1]
        for _ in range(5)
    ]
    return statistics.median(times)


def train_seconds(side: Side, out: Path) -> float:
    _, seconds = timed(
        lambda: side.explorer.train(
            out,
            preset="synthetic",
            model_id=f"check_{side.device.type}",
            warm_epochs=1,
            joint_epochs=1,
            last_epochs=2,
        ),
        side.device,
    )
    return seconds


def check_model(cpu: Side, gpu: Side, model_id: str, count: int) -> dict[str, Any]:
    try:
        images = cpu.explorer.dataset(model_id, "test").images[:count]
    except ExplorerError as error:
        return {"model": model_id, "skipped": str(error)}
    few = images[:PARITY_IMAGES]
    row: dict[str, Any] = {"model": model_id, "images": len(images)}
    with cpu:
        cpu_out, cpu_cam = forward_outputs(cpu, model_id, few), gradcams(cpu, model_id, few)
        cpu_phi, cpu_pass = local_phis(cpu, model_id, few), passes(cpu, model_id, images)
        cpu_explain = explain_seconds(cpu, model_id, images[0])
    with gpu:
        gpu_out, gpu_cam = forward_outputs(gpu, model_id, few), gradcams(gpu, model_id, few)
        gpu_phi, gpu_pass = local_phis(gpu, model_id, few), passes(gpu, model_id, images)
        gpu_explain = explain_seconds(gpu, model_id, images[0])
    row["parity"] = {
        "logits": relative(cpu_out["logits"], gpu_out["logits"]),
        "scores": relative(cpu_out["scores"], gpu_out["scores"]),
        "gradcam": relative(cpu_cam, gpu_cam, floor=1e-12),
        "local_phi": relative(cpu_phi, gpu_phi),
        "global_phi": relative(cpu_pass["phi"], gpu_pass["phi"]),
    }
    row["parity_ok"] = all(v <= TOLERANCE for v in row["parity"].values())
    per_image = len(images)
    row["seconds_per_image"] = {
        "cpu": {
            "scores": cpu_pass["scores_s"] / per_image,
            "attributes": cpu_pass["attributes_s"] / per_image,
            "explain": cpu_explain,
        },
        "gpu": {
            "scores": gpu_pass["scores_s"] / per_image,
            "attributes": gpu_pass["attributes_s"] / per_image,
            "explain": gpu_explain,
        },
    }
    row["forward_batch"] = {
        "scores": {"cpu": cpu_pass["batch"], "gpu": gpu_pass["batch"]},
        "attributes": {"cpu": cpu_pass["rows"], "gpu": gpu_pass["rows"]},
    }
    row["speedup"] = {
        name: row["seconds_per_image"]["cpu"][name] / row["seconds_per_image"]["gpu"][name]
        for name in ("scores", "attributes", "explain")
    }
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the GPU to check (default: cuda)")
    parser.add_argument("--images", type=int, default=64, help="test images per model (64)")
    parser.add_argument("--models", nargs="*", help="model ids (default: every shipped model)")
    parser.add_argument("--no-train", action="store_true", help="leave out the training run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON written")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="device-check-") as scratch:
        root = Path(scratch)
        try:
            cpu, gpu = Side("cpu", root / "cpu"), Side(args.device, root / "gpu")
        except ExplorerError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        where = {"cpu": f"cpu, {CPU_THREADS} torch threads", "gpu": describe_device(gpu.device)}
        print(f"CPU side: {where['cpu']}; GPU side: {where['gpu']}; torch {torch.__version__}")
        rows = [
            check_model(cpu, gpu, model_id, args.images)
            for model_id in (args.models or cpu.explorer.model_ids())
        ]
        training = None
        if not args.no_train:
            with cpu:
                cpu_train = train_seconds(cpu, root / "train_cpu")
            with gpu:
                gpu_train = train_seconds(gpu, root / "train_gpu")
            training = {"cpu_s": cpu_train, "gpu_s": gpu_train, "speedup": cpu_train / gpu_train}
    print_table(rows, training)
    record = {"sides": where, "torch": torch.__version__, "tolerance": TOLERANCE,
              "models": rows, "training": training}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written: {args.out}")
    elpv = next((r for r in rows if r["model"] == "elpv" and "speedup" in r), None)
    if elpv is not None:
        met = elpv["speedup"]["attributes"] >= GOAL_ATTRIBUTE_SPEEDUP
        print(
            f"ELPV attribute pass: {elpv['speedup']['attributes']:.1f}x the {CPU_THREADS}-thread "
            f"CPU (goal >= {GOAL_ATTRIBUTE_SPEEDUP:.0f}x: {'met' if met else 'not met'})"
        )
    return 0 if all(r.get("parity_ok", True) for r in rows) else 1


def print_table(rows: list[dict[str, Any]], training: dict[str, float] | None) -> None:
    print(f"\nparity: max |Δ| relative (tolerance {TOLERANCE:g})")
    names = ("logits", "scores", "gradcam", "local_phi", "global_phi")
    print(f"{'model':<18}" + "".join(f"{n:>12}" for n in names))
    for row in rows:
        if "skipped" in row:
            print(f"{row['model']:<18}skipped: {row['skipped']}")
            continue
        print(f"{row['model']:<18}" + "".join(f"{row['parity'][n]:>12.2e}" for n in names))
    print("\nspeed: ms per image on the CPU / on the GPU (speed-up)")
    for row in rows:
        if "skipped" in row:
            continue
        cells = []
        for name in ("scores", "attributes", "explain"):
            cpu_ms = 1000 * row["seconds_per_image"]["cpu"][name]
            gpu_ms = 1000 * row["seconds_per_image"]["gpu"][name]
            cells.append(f"{name} {cpu_ms:.1f}/{gpu_ms:.1f} ({row['speedup'][name]:.1f}x)")
        print(f"{row['model']:<18}" + "   ".join(cells))
    if training:
        print(
            f"\ntraining (synthetic preset, 1+1+2 epochs): CPU {training['cpu_s']:.1f} s, "
            f"GPU {training['gpu_s']:.1f} s ({training['speedup']:.1f}x)"
        )


if __name__ == "__main__":
    sys.exit(main())
