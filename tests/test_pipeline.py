"""The pipelined global pass: the next chunk is modified in a worker thread while the network runs on
this one. Its Φ is bit for bit the sequential pass's; an image whose preparation fails is one
per-image failure and every other image goes on; no thread outlives the pass, interrupted or not; the
forward batch is chosen by measurement and remembered; modified versions are kept by content, so a
second pass over the same images only forwards them."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from explorer.analysis.attributes import (
    AttributePass,
    attribute_batch,
    global_attributes,
    global_attributes_finish,
    image_versions,
)
from explorer.analysis.passes import (
    PREPARE_THREAD,
    PassOutcome,
    pass_workers,
    prefetched,
    run_local,
)
from explorer.analysis.version_store import VersionStore, fingerprint
from explorer.data.sources import ArraySource
from explorer.models import batch_size
from explorer.models.batch_size import fastest_batch, measured_forward_batch
from tests.test_attributes import MODS, colour_images


def prepare_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(PREPARE_THREAD)]


def sequential(model, images, mods, chunk: int, forward_rows: int | None):
    """Today's pass without the pipeline: modify, then forward, chunk after chunk, one thread."""
    step = AttributePass(tuple(mods), forward_rows=forward_rows)
    partial = None
    for start in range(0, len(images), chunk):
        batch = attribute_batch(
            model, images[start : start + chunk], mods, forward_rows=forward_rows
        )
        part = step._sums(batch, np.arange(start, start + len(batch.similarity)))
        partial = part if partial is None else step.combine(partial, part)
    done = PassOutcome(partial, len(images), (), np.zeros(0, dtype=np.int64))
    return global_attributes_finish(model, done, mods, "test")


@pytest.mark.parametrize(("chunk", "forward_rows"), [(1, None), (3, 2), (4, None), (5, 7)])
def test_the_pipelined_pass_is_bit_identical_to_the_sequential_one(
    random_model, chunk: int, forward_rows: int | None
) -> None:
    images = colour_images(11, size=16)
    step = AttributePass(MODS, forward_rows=forward_rows)
    done = run_local(step, random_model, ArraySource(images, np.zeros(11, np.int64)), chunk)
    piped = global_attributes_finish(random_model, done, MODS, "test")
    # at the same torch threads as the pipelined pass's network (float32 kernels with another
    # thread count differ in the last bits, pipelined or not)
    with pass_workers(step):
        plain = sequential(random_model, images, MODS, chunk, forward_rows)
    np.testing.assert_array_equal(piped.phi, plain.phi)
    np.testing.assert_array_equal(piped.weight_sum, plain.weight_sum)
    np.testing.assert_array_equal(piped.phi_interval[0], plain.phi_interval[0])
    np.testing.assert_array_equal(piped.relative_interval[1], plain.relative_interval[1])
    assert not prepare_threads()


@dataclass(frozen=True)
class BreaksOnMarkedImages:
    """A modification that fails on an image whose first pixel is (1, 2, 3), as a corrupt input might."""

    name: str = "fragile"

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        if tuple(rgb[0, 0]) == (1, 2, 3):
            raise ValueError("cannot modify this image")
        return rgb[::-1].copy()


def test_an_image_that_fails_to_prepare_is_one_failure_and_stops_no_other(random_model) -> None:
    images = colour_images(9, size=16)
    images[4, 0, 0] = (1, 2, 3)
    mods = (*MODS, BreaksOnMarkedImages())
    step = AttributePass(mods)
    done = run_local(step, random_model, ArraySource(images, np.zeros(9, np.int64)), 2)
    assert done.failures == (("image 4", "ValueError: cannot modify this image"),)
    assert done.readable.tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    result = global_attributes_finish(random_model, done, mods, "test")
    assert result.images == 8
    # the other eight images give what a pass over them alone gives (Φ; the bootstrap keys differ)
    others = global_attributes(random_model, np.delete(images, 4, axis=0), mods, "test", 2)
    np.testing.assert_allclose(result.phi, others.phi, rtol=1e-12)
    assert not prepare_threads()


def test_no_thread_outlives_an_interrupted_pass(random_model) -> None:
    images = colour_images(12, size=16)

    def interrupt(starts):
        for seen, start in enumerate(starts):
            if seen == 2:
                raise KeyboardInterrupt
            yield start

    with pytest.raises(KeyboardInterrupt):
        run_local(AttributePass(MODS), random_model, ArraySource(images, images[:, 0, 0, 0]), 2,
                  interrupt)  # fmt: skip
    assert not prepare_threads()


def test_prefetched_keeps_order_raises_where_it_failed_and_joins_its_thread() -> None:
    def work(item: int) -> int:
        if item == 5:
            raise RuntimeError("item 5")
        return item * item

    assert list(prefetched(range(5), work)) == [0, 1, 4, 9, 16]
    seen = []
    with pytest.raises(RuntimeError, match="item 5"):
        for value in prefetched(range(10), work):
            seen.append(value)
    assert seen == [0, 1, 4, 9, 16]
    assert not prepare_threads()
    # a consumer that stops early closes it: the work not started is cancelled
    started = []
    stream = prefetched(range(100), lambda i: started.append(i) or i, ahead=2)
    assert next(stream) == 0
    stream.close()
    assert len(started) <= 4 and not prepare_threads()


def test_the_fastest_batch_is_the_smallest_within_five_percent_of_the_best() -> None:
    assert fastest_batch({1: 10.0, 2: 6.0, 4: 5.0, 8: 5.2}) == 4
    assert fastest_batch({1: 10.0, 2: 5.1, 4: 5.0, 8: 4.9}) == 2  # 5.1 <= 4.9 * 1.05
    assert fastest_batch({4: 3.0}) == 4
    with pytest.raises(ValueError, match="no batch size"):
        fastest_batch({})


def test_larger_batches_are_not_timed_once_two_in_a_row_were_slower_than_the_best() -> None:
    assert batch_size.past_the_best({1: 10.0, 2: 8.0, 4: 9.0, 8: 9.0}, 2)
    assert not batch_size.past_the_best({1: 10.0, 2: 8.0, 4: 9.0, 8: 8.3}, 2)  # 8.3 <= 8.4
    assert not batch_size.past_the_best({1: 10.0, 2: 11.0}, 2)  # 1 is the best itself
    assert not batch_size.past_the_best({1: 8.0, 2: 9.0}, 3)  # too few timed yet


def test_the_measured_batch_is_remembered_per_model_and_machine(
    random_model, tmp_path: Path, monkeypatch
) -> None:
    measured = []
    real = batch_size.time_batches

    def counting(model, sizes, *args):
        measured.append(list(sizes))
        return real(model, sizes, *args)

    monkeypatch.setattr(batch_size, "time_batches", counting)
    first = measured_forward_batch(random_model, "hash-a", tmp_path)
    assert first in batch_size.candidates(random_model) and len(measured) == 1
    assert measured_forward_batch(random_model, "hash-a", tmp_path) == first
    assert len(measured) == 1  # remembered
    record = json.loads((tmp_path / batch_size.STORE_NAME).read_text())
    (key,) = record
    assert key.startswith("hash-a | ") and record[key]["batch"] == first
    timed = list(record[key]["ms_per_image"])  # the smallest sizes, up to where it gave up
    assert set(timed) <= {str(b) for b in measured[0]} and "1" in timed and "2" in timed
    measured_forward_batch(random_model, "hash-b", tmp_path)  # another model: measured
    assert len(measured) == 2
    (tmp_path / batch_size.STORE_NAME).write_text("{not json")  # a damaged record: measured again
    assert measured_forward_batch(random_model, "hash-a", tmp_path) in batch_size.candidates(
        random_model
    )
    assert len(measured) == 3


def test_stored_versions_are_the_made_ones_and_a_second_pass_only_forwards(
    random_model, tmp_path: Path, monkeypatch
) -> None:
    images = colour_images(6, size=16)
    images[2] = images[2, :, :, :1]  # a grey image: stored as one channel, read back as RGB
    store = VersionStore(str(tmp_path / "versions"))
    source = ArraySource(images, np.zeros(6, np.int64))
    made = global_attributes_finish(
        random_model,
        run_local(AttributePass(MODS, store=store), random_model, source, 2),
        MODS,
        "x",
    )
    assert len(list((tmp_path / "versions").glob("*/*.bin"))) == 6
    for image in images:
        key = store.key(image, fingerprint(MODS))
        np.testing.assert_array_equal(
            np.stack(store.get(key)), np.stack(image_versions(image, MODS).versions)
        )
    # the second pass reads every version: no modification runs, the result is bit for bit the same
    calls = []
    for mod in MODS:
        monkeypatch.setattr(type(mod), "apply", lambda self, rgb: calls.append(1) or rgb)
    again = global_attributes_finish(
        random_model,
        run_local(AttributePass(MODS, store=store), random_model, source, 2),
        MODS,
        "x",
    )
    assert calls == []
    np.testing.assert_array_equal(again.phi, made.phi)
    np.testing.assert_array_equal(again.phi_interval[0], made.phi_interval[0])


def test_another_modification_set_or_a_damaged_file_makes_the_versions_again(tmp_path) -> None:
    store = VersionStore(str(tmp_path))
    image = colour_images(1, size=8)[0]
    versions = image_versions(image, MODS).versions
    key = store.key(image, fingerprint(MODS))
    assert (
        key != store.key(image, fingerprint(MODS[:2])) != store.key(image[::-1], fingerprint(MODS))
    )
    store.put(key, versions)
    path = next(tmp_path.glob("*/*.bin"))
    path.write_bytes(path.read_bytes()[:40])  # truncated
    assert store.get(key) is None and not path.exists()


def test_a_full_store_forgets_the_least_recently_used(tmp_path) -> None:
    images = colour_images(4, size=16)
    store = VersionStore(str(tmp_path))
    keys = [store.key(image, "set") for image in images]
    for age, (key, image) in enumerate(zip(keys, images, strict=True)):
        store.put(key, image_versions(image, MODS).versions)
        os.utime(store._path(key), (1000 + age, 1000 + age))
    store.get(keys[0])  # used now: the newest
    one = store._path(keys[1]).stat().st_size
    VersionStore(str(tmp_path), limit_bytes=store.size_bytes() - one).trim()
    assert store.get(keys[1]) is None  # the oldest unused went first
    assert all(store.get(k) is not None for k in (keys[0], keys[2], keys[3]))


def test_a_preparing_pass_runs_one_thread_per_worker_and_restores_the_settings(
    random_model,
) -> None:
    import cv2
    import torch

    from explorer.analysis.nearest import NearestPass

    seen = []

    class Watching(AttributePass):
        def map(self, model, prepared, keys):
            seen.append((torch.get_num_threads(), cv2.getNumThreads()))
            seen_threads.add(threading.current_thread().name)
            return super().map(model, prepared, keys)

    seen_threads: set[str] = set()
    before = torch.get_num_threads(), cv2.getNumThreads()
    images = colour_images(8, size=16)
    run_local(Watching(MODS), random_model, ArraySource(images, np.zeros(8, np.int64)), 2)
    assert seen == [(1, 1)] * 4
    assert all(name.startswith(PREPARE_THREAD) for name in seen_threads)
    assert len(seen_threads) <= max(1, before[0])
    assert (torch.get_num_threads(), cv2.getNumThreads()) == before
    # a pass that prepares nothing keeps every core for the network
    nearest = NearestPass()
    assert not nearest.prepares and Watching.prepares
