"""Images per forward pass, chosen by measuring the model on this machine once and remembering it.

How fast a network runs per image depends on the batch in ways no input-volume rule captures: on
these CPUs EfficientNet-Lite0 at 300 px is fastest one image at a time, a 28 px ConvNet at hundreds.
:func:`measured_forward_batch` times a forward pass at a few batch sizes (powers of two up to
:func:`largest_candidate`) on random images of the model's input size, takes the smallest batch whose
time per image is within :data:`TOLERANCE` of the fastest (smaller batches hold less memory and let a
pipelined pass overlap more finely), and stores it in a small JSON file under the user's cache, by the
model's content hash and the machine (processor, cores, torch threads, device and GPU name): the measurement
(a second or two) runs once per model and machine.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from explorer.files import write_atomically
from explorer.models.base import PrototypeModel
from explorer.models.device import describe_device, model_device, synchronize
from explorer.models.preprocess import forward_batch_size

TOLERANCE = 0.05
MIN_SECONDS = 0.3  # per candidate, after one warm-up forward, in ROUNDS rounds
ROUNDS = 3
MIN_REPEATS = 1
STORE_NAME = "forward_batch.json"
GIVE_UP_AFTER = 2
"""Larger batches are not timed once this many in a row were slower than the fastest so far."""


def fastest_batch(seconds_per_image: dict[int, float], tolerance: float = TOLERANCE) -> int:
    """The smallest batch whose time per image is within ``tolerance`` of the fastest."""
    if not seconds_per_image:
        raise ValueError("no batch size was measured")
    best = min(seconds_per_image.values())
    return min(b for b, t in seconds_per_image.items() if t <= best * (1 + tolerance))


GPU_LARGEST = 512
"""On a GPU every model is timed up to this batch: the CPU's input-volume rule does not transfer
(a GPU is fastest per image at batches a CPU would be slowest at)."""


def largest_candidate(model: PrototypeModel) -> int:
    """Candidates go up to 16 × the input-volume rule's batch (at most 512) on the CPU, and to
    :data:`GPU_LARGEST` on a GPU."""
    if model_device(model).type == "cuda":
        return GPU_LARGEST
    return min(512, 16 * forward_batch_size(model.spec))


def candidates(model: PrototypeModel) -> list[int]:
    top = largest_candidate(model)
    return [2**i for i in range(top.bit_length()) if 2**i <= top]


@torch.inference_mode()
def time_batches(
    model: PrototypeModel,
    sizes: list[int],
    clock: Callable[[], float] = time.perf_counter,
    give_up_after: int | None = GIVE_UP_AFTER,
) -> dict[int, float]:
    """Seconds per image of a forward pass at each batch size (random images, one warm-up each),
    in the order given (ascending); after ``give_up_after`` sizes in a row slower than the fastest so
    far by more than :data:`TOLERANCE`, the larger ones (the slowest to time) are not tried."""
    model.eval()
    height, width = model.spec.input_size
    shape = (height, width) if model.spec.channels == 1 else (height, width, 3)
    rng = np.random.default_rng(0)
    device = model_device(model)
    result = {}
    for size in sizes:
        x = model.preprocess(list(rng.integers(0, 256, (size, *shape), dtype=np.uint8)))
        model(x)  # warm-up: kernels chosen, memory allocated
        synchronize(device)
        rounds = []  # the fastest of a few short rounds: a busy neighbour slows a round, never speeds it
        for _ in range(ROUNDS):
            repeats, start = 0, clock()
            while repeats < MIN_REPEATS or clock() - start < MIN_SECONDS / ROUNDS:
                model(x)
                repeats += 1
            synchronize(device)  # a GPU's kernels run asynchronously: the round ends when they do
            rounds.append((clock() - start) / (repeats * size))
        result[size] = min(rounds)
        if give_up_after and past_the_best(result, give_up_after):
            break
    return result


def past_the_best(seconds_per_image: dict[int, float], count: int) -> bool:
    """Whether the last ``count`` sizes timed were all slower than the fastest so far by more than
    :data:`TOLERANCE` (larger batches are then not worth timing)."""
    best = min(seconds_per_image.values())
    recent = list(seconds_per_image.values())[-count:]
    return len(recent) == count and all(t > best * (1 + TOLERANCE) for t in recent)


def machine_key(model: PrototypeModel) -> str:
    """What the measurement depends on besides the model: processor, cores, threads, device."""
    processor = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = model_device(model)
    on_gpu = device.type == "cuda"  # the GPU's name: a record is of one kind of GPU
    return (
        f"{processor} | {os.cpu_count()} cpus | {torch.get_num_threads()} threads | "
        f"{describe_device(device) if on_gpu else device}"
    )


def measured_forward_batch(
    model: PrototypeModel,
    content_hash: str,
    store_dir: str | Path | None,
    threads: int | None = None,
) -> int:
    """The forward batch for ``model`` on this machine: remembered under ``store_dir`` (the user's
    cache; ``None``: measured every time), else measured now and remembered. ``threads``: the torch
    threads the pass will run with (default: the current number), set while measuring."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _measured_forward_batch(model, content_hash, store_dir)
    finally:
        torch.set_num_threads(previous)


def _measured_forward_batch(
    model: PrototypeModel, content_hash: str, store_dir: str | Path | None
) -> int:
    key = f"{content_hash} | {machine_key(model)}"
    path = Path(store_dir) / STORE_NAME if store_dir is not None else None
    known: dict[str, dict] = {}
    if path is not None and path.is_file():
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}  # an unreadable record is measured again and rewritten
    record = known.get(key)
    if isinstance(record, dict) and isinstance(record.get("batch"), int) and record["batch"] > 0:
        return int(record["batch"])
    timings = time_batches(model, candidates(model))
    batch = fastest_batch(timings)
    if path is not None:
        known[key] = {
            "batch": batch,
            "ms_per_image": {str(b): round(t * 1000, 4) for b, t in timings.items()},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, (json.dumps(known, indent=1, sort_keys=True) + "\n").encode())
    return batch


__all__ = [
    "TOLERANCE",
    "candidates",
    "fastest_batch",
    "machine_key",
    "measured_forward_batch",
    "past_the_best",
    "time_batches",
]
