"""The nearest-patch pass (test-split scores included) on Ray Data.

The split's images are put in Ray's object store once (each node maps them read-only, without a
copy); the dataset the engine maps is the images' indices (made on the driver: read tasks would wait for
the CPUs the actors hold), in blocks of at most
a share of the split so that every actor gets several; ``map_batches`` runs :class:`NearestActor`, a
class-based UDF whose actors each load the model folder once (without executing code from it, as
everywhere) and map one batch of indices to its partial: the batch's top-k per prototype, and its per-image scores when they
are kept; each partial travels as ``.npz`` bytes (plain arrays, no pickles of our own). The driver
combines the partials as they stream in (:func:`explorer.analysis.nearest.nearest_combine`,
associative and order-independent) and finishes the result from the top-k images it already holds.

Without an address, a local Ray is started with the machine's cores and shut down after the pass;
with ``address`` (``auto``, ``ray://host:10001``) an existing cluster is joined (and left running).
The workers read the model folder by its path: on a cluster it must be on storage they share.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from explorer.analysis.nearest import (
    DEFAULT_K,
    NearestPatches,
    Partial,
    nearest_combine,
    nearest_finish,
    nearest_map,
)
from explorer.errors import ExplorerError

INSTALL = "pip install -r requirements-scale.txt"
MAX_RESTARTS = 3


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


class NearestActor:
    """The map step on a Ray actor: the model folder loaded once, then one partial per batch."""

    def __init__(
        self, folder: str, images: object, k: int, keep_all_scores: bool, threads: int
    ) -> None:
        import torch

        from explorer.models.checkpoint import load_model

        torch.set_num_threads(threads)
        self.model = load_model(folder).model.eval()
        import ray

        # the split: a reference to the object store (Ray Data does not resolve constructor
        # arguments), read-only and without a copy on each node
        self.images = ray.get(images) if isinstance(images, ray.ObjectRef) else images
        self.k = k
        self.keep_all_scores = keep_all_scores

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        indices = np.asarray(batch["id"], dtype=np.int64)
        x = self.model.preprocess(self.images[indices])
        partial = nearest_map(self.model, x, indices, self.k, self.keep_all_scores)
        return {"partial": np.array([pack(partial)], dtype=object)}


def ray_nearest_patches(
    folder: str | Path,
    model,
    images: np.ndarray,
    labels: np.ndarray,
    split: str,
    *,
    k: int = DEFAULT_K,
    batch_size: int = 128,
    keep_all_scores: bool = False,
    workers: int | None = None,
    address: str | None = None,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> NearestPatches:
    """:func:`explorer.analysis.nearest.nearest_patches` on Ray Data.

    Args:
        folder: the model folder the workers load (the same model as ``model``, which finishes).
        model: the loaded model (the driver's; only the finish step uses it).
        workers: actors, one CPU and one torch thread each (default: every CPU of the cluster, or
            of this machine for a local Ray).
        address: a cluster to join; ``None`` starts (and stops) a local Ray.
    """
    ray = _ray()
    if len(images) == 0:
        raise ValueError(f"the {split} split has no images")
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
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = max(1, min(workers or cpus, cpus))  # one CPU (one torch thread) each
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        # every actor gets several batches: no more than a share of the images in one batch
        batch = max(1, min(batch_size, -(-len(images) // (2 * actors))))
        # made here, not read by tasks: read tasks would wait for the CPUs the actors hold
        ids = [{"id": i} for i in range(len(images))]
        dataset = ray.data.from_items(ids, override_num_blocks=-(-len(images) // batch))
        mapped = dataset.map_batches(
            NearestActor,
            fn_constructor_args=(str(folder), ray.put(np.asarray(images)), k, keep_all_scores, 1),
            batch_size=batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            max_restarts=MAX_RESTARTS,  # a worker that dies is replaced, a few times at most
        )
        partial: Partial | None = None
        try:
            for row in progress(mapped.iter_rows()):
                batch = unpack(row["partial"])
                partial = batch if partial is None else nearest_combine(partial, batch, k)
        except ray.exceptions.RayError as error:
            first = (
                str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            )
            raise ExplorerError(f"the {split} pass on Ray failed: {first}") from None
    finally:
        if started:
            ray.shutdown()
    assert partial is not None
    return nearest_finish(model, partial, images, labels, split, keep_all_scores, engine="ray")
