"""Load: 16 concurrent users on loopback against the real app (``python app.py``, its own process).

Each user is its own ``gradio_client.Client`` in its own thread and sends 20 explanation requests of
the synthetic model's bundled test images to the Explain endpoint, in rounds (all users finish a round
before the next starts). Every answer must arrive within its timeout, without an error, with the class
the library predicts for that image; the server's resident memory, read from ``/proc/<pid>/status``
after every round, must not keep growing. Prints p50 / p95 latency, throughput and RSS per round
(run with ``-s``). The app queues at most 2 explanations at a time (``explorer/ui/app.py``), so the
latency includes the wait in Gradio's queue.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file

from explorer.api import Explorer
from tests.serving import app_server

MODEL = "synthetic"
USERS = 16
REQUESTS_PER_USER = 20
ROUNDS = 5  # the first is the warm-up; memory is compared from the end of the second on
REQUEST_TIMEOUT_S = 60.0
RSS_GROWTH_LIMIT_MB = 150.0


def test_threads_sharing_one_explorer_get_the_same_explanations_as_alone() -> None:
    """The app's worker threads share one Explorer and so one model: concurrent full explanations
    (Grad-CAM included, whose captum hooks once caught other threads' forward passes and failed
    with "The differentiated Tensor ... not used in the graph") equal the ones computed alone."""
    explorer = Explorer()
    images = explorer.bundle(MODEL).examples()
    alone = {path: explorer.explain(path, MODEL) for path in images}
    work = [images[i % len(images)] for i in range(4 * len(images))]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda path: explorer.explain(path, MODEL), work))
    for path, x in zip(work, together, strict=True):
        expected = alone[path]
        np.testing.assert_allclose(x.activations.logits, expected.activations.logits, atol=1e-5)
        assert [p.prototype for p in x.pairs] == [p.prototype for p in expected.pairs]
        np.testing.assert_allclose(x.attribution.values, expected.attribution.values, atol=1e-5)


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.mark.slow
def test_sixteen_concurrent_users_get_every_answer_right_and_memory_stays_flat(
    tmp_path: Path,
) -> None:
    assert REQUESTS_PER_USER % ROUNDS == 0
    per_round = REQUESTS_PER_USER // ROUNDS
    explorer = Explorer()
    images = explorer.bundle(MODEL).examples()
    expected = {path: explorer.predict(path, MODEL).predicted_class for path in images}
    assert len(set(expected.values())) > 1  # the images are not all one class: answers can differ

    # the app gets the test's temporary label database and cache (tests/conftest.py), and its own
    # folder for the files Gradio writes per answer
    downloads = tmp_path / "downloads"  # gradio_client fetches every output file, as a browser does
    with app_server(GRADIO_TEMP_DIR=str(tmp_path / "gradio")) as server:
        assert "Prototype explanation explorer" in server.page, "the app did not start"
        pid = server.pid
        clients = [
            Client(server.url, verbose=False, download_files=downloads, analytics_enabled=False)
            for _ in range(USERS)
        ]
        latencies: list[float] = []
        errors: list[str] = []
        wrong: list[tuple[str, str, str]] = []
        rss_per_round: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(USERS, action=lambda: rss_per_round.append(rss_mb(pid)))

        def user(index: int) -> None:
            client = clients[index]
            for r in range(ROUNDS):
                for i in range(per_round):
                    # even users all ask for the same image at about the same time (a popular
                    # bundled example), odd users each for their own
                    offset = 0 if index % 2 == 0 else index * 7
                    image = images[(offset + r * per_round + i) % len(images)]
                    started = time.perf_counter()
                    try:
                        job = client.submit(
                            handle_file(str(image)), MODEL, 10, "contribution", "predicted class",
                            "jet", api_name="/explain",
                        )  # fmt: skip
                        summary, label, *_ = job.result(timeout=REQUEST_TIMEOUT_S)
                    except Exception as error:  # every failure is collected and reported
                        with lock:
                            errors.append(
                                f"user {index}, {image.name}: {type(error).__name__}: {error}"
                            )
                        continue
                    seconds = time.perf_counter() - started
                    with lock:
                        latencies.append(seconds)
                        if label["label"] != expected[image] or not summary.startswith("Predicted"):
                            wrong.append((image.name, label["label"], expected[image]))
                barrier.wait(timeout=ROUNDS * per_round * REQUEST_TIMEOUT_S)

        threads = [threading.Thread(target=user, args=(i,)) for i in range(USERS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        alive = server.process.poll() is None

    total = USERS * REQUESTS_PER_USER
    p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (float("nan"),) * 2
    print(
        f"\n{USERS} users x {REQUESTS_PER_USER} explanations ({MODEL}) on {os.cpu_count()} CPUs: "
        f"{len(latencies)}/{total} answered in {wall:.1f} s, {len(latencies) / wall:.2f} answers/s, "
        f"latency p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(latencies, default=0):.2f} s, "
        f"mean {statistics.fmean(latencies) if latencies else 0:.2f} s"
    )
    print("server RSS after each round (MB): " + ", ".join(f"{v:.0f}" for v in rss_per_round))
    assert alive, "the server died under load"
    assert not errors, f"{len(errors)} requests failed, e.g. {errors[:3]}"
    assert len(latencies) == total
    assert not wrong, f"{len(wrong)} answers differ from the library, e.g. {wrong[:3]}"
    assert len(rss_per_round) == ROUNDS
    assert rss_per_round[-1] <= rss_per_round[1] + RSS_GROWTH_LIMIT_MB, rss_per_round
