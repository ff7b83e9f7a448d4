"""Global passes (:mod:`explorer.analysis.passes`) on Ray Data.

The dataset Ray maps is the images' *keys*, in blocks (made on the driver with ``from_items``: read
tasks would wait for the CPUs the actors hold). ``map_batches`` runs :class:`PassActor`, a class-based
UDF whose actors each load the model folder once (without executing code from it, as everywhere) and
map one block of keys to its partial; the images come from the pass's source — a split held in memory
is put in Ray's object store once (each node maps it read-only, without a copy), an ImageFolder is a
list of paths each actor reads from storage it shares (unreadable files come back named, and are
skipped as in process). Each partial travels as ``.npz`` bytes (plain arrays, no pickles of our own);
the driver combines the partials as they stream in (associative and order-independent) and the pass's
own finish makes the result. Per-image arrays never reach the driver, only per-prototype aggregates.

Without an address, a local Ray is started with the machine's cores (or ``workers``) and shut down
after the pass; with ``address`` (``auto``, ``ray://host:10001``) an existing cluster is joined (and
left running). The workers read the model folder by its path: on a cluster it must be on storage they
share (docs/guide.md §9.1).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.analysis.passes import GlobalPass, Partial, PassOutcome, combine, map_keys, outcome
from explorer.data.sources import ArraySource, ImageSource
from explorer.errors import ExplorerError

INSTALL = "pip install -r requirements-scale.txt"
MAX_BLOCK = 256
"""Most images in one block (one map call): fewer, larger blocks cost less per image (each is a task
and a partial to combine on the driver), and every actor still gets several."""
BLOCKS_PER_ACTOR = 4

_TIMES = ("map_started", "map_ended", "map_images", "map_worker")


def _ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ExplorerError(
            f"the ray engine needs Ray Data, an optional extra: {INSTALL}"
        ) from None
    return ray


def pack(partial: Partial) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **partial)
    return buffer.getvalue()


def unpack(data: bytes) -> Partial:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


class PassActor:
    """The map step on a Ray actor: the model folder loaded once, then one partial per block (its
    chunks prepared ahead of the network as in process, :func:`explorer.analysis.passes.map_keys`)."""

    def __init__(
        self,
        folder: str,
        step: GlobalPass,
        source: object,
        chunk: int,
        threads: int,
        device: str = "cpu",
    ) -> None:
        import ray
        import torch

        from explorer.models.checkpoint import load_model
        from explorer.models.device import exact_float32

        torch.set_num_threads(threads)
        # on a GPU actor Ray has set CUDA_VISIBLE_DEVICES to the GPU it was given: "cuda" is that one
        if device != "cpu":
            exact_float32()
        self.model = load_model(folder, device).model.eval()
        self.step = step
        # a split in memory arrives as a reference to the object store (Ray Data does not resolve
        # constructor arguments): read-only, without a copy on each node
        if isinstance(source, ray.ObjectRef):
            images = ray.get(source)
            source = ArraySource(images, np.zeros(len(images), dtype=np.int64))
        self.source: ImageSource = source  # type: ignore[assignment]
        self.chunk = chunk

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.time()
        keys = np.asarray(batch["key"], dtype=np.int64)
        partial = map_keys(self.step, self.model, self.source, keys, self.chunk)
        partial["map_started"] = np.array(started)
        partial["map_ended"] = np.array(time.time())
        partial["map_images"] = np.array(len(keys))
        partial["map_worker"] = np.array(os.getpid())
        return {"partial": np.array([pack(partial)], dtype=object)}


@dataclass(frozen=True)
class BlockTime:
    """When one block was mapped (wall clock of its worker), how many images, on which worker, the
    size of its partial and the driver's seconds to unpack and combine it."""

    started: float
    ended: float
    images: int
    worker: int
    partial_bytes: int
    driver_s: float


def block_size(images: int, actors: int, batch_size: int) -> int:
    """Images per block: :data:`BLOCKS_PER_ACTOR` blocks per actor, at least one forward batch and at
    most :data:`MAX_BLOCK` images."""
    share = -(-images // (BLOCKS_PER_ACTOR * actors))
    return max(1, min(images, max(batch_size, min(MAX_BLOCK, share))))


def ray_run(
    step: GlobalPass,
    folder: str | Path,
    source: ImageSource,
    *,
    batch_size: int,
    workers: int | None = None,
    address: str | None = None,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
    times: list[BlockTime] | None = None,
    device: str = "cpu",
) -> PassOutcome:
    """Runs a pass's map and combine on Ray Data; the caller finishes it as in process.

    Args:
        step: the pass (shipped to the actors).
        folder: the model folder the actors load (the model the caller finishes with).
        source: the images (a split in memory goes to the object store; a folder's paths are read
            by the actors).
        batch_size: images per forward pass inside a block (as in process).
        workers: actors, one CPU and one torch thread each (default: every CPU of the cluster, or
            of this machine for a local Ray).
        address: a cluster to join; ``None`` starts (and stops) a local Ray.
        times: if a list, one :class:`BlockTime` per block is appended (benchmarks).
        device: ``cpu``, or ``cuda``: then each actor asks Ray for one GPU (and one CPU), and there
            are at most as many actors as the cluster has GPUs.
    """
    ray = _ray()
    if len(source) == 0:
        raise ValueError(f"{step.title}: the split has no images")
    started = not ray.is_initialized()
    if started:
        local = address is None
        ray.init(
            address=address,
            num_cpus=(workers or os.cpu_count() or 1) if local else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    partial: Partial | None = None
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = max(1, min(workers or cpus, cpus))  # one CPU (one torch thread) each
        on_gpu = device.startswith("cuda")
        if on_gpu:
            gpus = int(ray.cluster_resources().get("GPU", 0))
            if gpus == 0:
                raise ExplorerError(
                    f"the {step.title} pass was asked to run on {device}, but the Ray cluster "
                    "has no GPU: start its nodes with GPUs, or use --device cpu"
                )
            actors = min(actors, gpus)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        block = block_size(len(source), actors, batch_size)
        blocks = -(-len(source) // block)
        actors = min(actors, blocks)  # an actor without a block would only load the model
        keys = [{"key": i} for i in range(len(source))]
        dataset = ray.data.from_items(keys, override_num_blocks=blocks)
        shipped = ray.put(source.images) if isinstance(source, ArraySource) else source
        mapped = dataset.map_batches(
            PassActor,
            fn_constructor_args=(
                str(folder),
                step,
                shipped,
                batch_size,
                1,
                "cuda" if on_gpu else "cpu",
            ),
            batch_size=block,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,  # Ray Data restarts an actor that dies and retries its block
            **({"num_gpus": 1} if on_gpu else {}),
        )
        try:
            for row in progress(mapped.iter_rows()):
                arrived = time.perf_counter()
                part = unpack(row["partial"])
                stamp = [part.pop(name) for name in _TIMES]
                partial = part if partial is None else combine(step, partial, part)
                if times is not None:
                    times.append(
                        BlockTime(
                            float(stamp[0]), float(stamp[1]), int(stamp[2]), int(stamp[3]),
                            len(row["partial"]), time.perf_counter() - arrived,
                        )
                    )  # fmt: skip
        except ray.exceptions.RayError as error:
            text = str(error).strip()
            first = text.splitlines()[-1] if text else type(error).__name__
            raise ExplorerError(f"the {step.title} pass on Ray failed: {first}") from None
    finally:
        if started:
            ray.shutdown()
    return outcome(partial, source, step.title, engine="ray")


__all__ = ["INSTALL", "BlockTime", "PassActor", "block_size", "ray_run"]
