"""Server memory under concurrent load: the resident memory of ``python app.py`` after each round.

Starts ``python app.py`` in its own process on a free 127.0.0.1 port (a temporary label database,
analysis cache and Gradio folder), then runs ``--rounds`` rounds in which ``--clients`` clients (each a
``gradio_client.Client`` in its own thread) send ``--requests`` explanations each of the model's
bundled examples to the Explain endpoint. Prints the server's VmRSS (``/proc/<pid>/status``) before
the first round and after every round, and the growth per round. Only loopback traffic, bounded in
count and time (every request has a timeout; the server is killed at the end).

    python -m bench.memory_under_load [--model elpv] [--clients 8] [--requests 10] [--rounds 5]
        [--settle 6] [--env EXPLORER_MALLOC_TUNING=0 ...]

``--env`` sets variables of the server's environment: ``EXPLORER_MALLOC_TUNING=0`` measures the
server without its allocator bounds (``explorer/ui/allocator.py``), ``MALLOC_ARENA_MAX=N`` other
glibc settings. The peak is sampled every 0.2 s during each round.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUEST_TIMEOUT_S = 120.0
START_TIMEOUT_S = 120.0
PEAK_SAMPLE_S = 0.2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid: int, field: str) -> int:
    """One number of ``/proc/<pid>/status`` (``VmRSS`` in kB, ``Threads``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MB."""
    return status(pid, "VmRSS") / 1024


def start_server(port: int, folder: Path, env: dict[str, str]) -> subprocess.Popen:
    environment = {
        **os.environ,
        "EXPLORER_CACHE_DIR": str(folder / "cache"),
        "EXPLORER_LABELS_DB": str(folder / "labels.sqlite3"),
        "GRADIO_TEMP_DIR": str(folder / "gradio"),
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return process
        except OSError:
            time.sleep(0.25)
    process.kill()
    raise RuntimeError("the app did not start")


def folder_mb(folder: Path) -> float:
    """Bytes of the files under a folder, in MB (Gradio's uploads and output pictures)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


class PeakRss:
    """The largest RSS of a process while the block runs, sampled every :data:`PEAK_SAMPLE_S`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.mb = rss_mb(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(PEAK_SAMPLE_S):
            self.mb = max(self.mb, rss_mb(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def run_rounds(
    url: str,
    pid: int,
    model: str,
    clients: int,
    requests: int,
    rounds: int,
    folder: Path,
    settle_s: float,
) -> tuple[list[float], int]:
    """RSS before the first round and ``settle_s`` after each; the number of failed requests."""
    from gradio_client import Client, handle_file

    from explorer.api import Explorer

    images = Explorer().bundle(model).examples()
    users = [
        Client(url, verbose=False, download_files=folder / "downloads", analytics_enabled=False)
        for _ in range(clients)
    ]
    failures = [0]
    lock = threading.Lock()

    def user(index: int, round_: int) -> None:
        for i in range(requests):
            image = images[(index * 7 + round_ * requests + i) % len(images)]
            try:
                users[index].submit(
                    handle_file(str(image)), model, 10, "contribution", "predicted class", "jet",
                    api_name="/explain",
                ).result(timeout=REQUEST_TIMEOUT_S)  # fmt: skip
            except Exception:  # counted; the bench measures memory, not correctness
                with lock:
                    failures[0] += 1

    rss = [rss_mb(pid)]
    for round_ in range(rounds):
        started = time.perf_counter()
        with PeakRss(pid) as peak:
            threads = [threading.Thread(target=user, args=(i, round_)) for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        seconds = time.perf_counter() - started
        time.sleep(settle_s)
        rss.append(rss_mb(pid))
        print(
            f"round {round_ + 1}: RSS {rss[-1]:.0f} MB ({rss[-1] - rss[-2]:+.0f}) {settle_s:g} s "
            f"after the round, peak {peak.mb:.0f} MB during it; {status(pid, 'Threads')} threads, "
            f"Gradio files {folder_mb(folder / 'gradio'):.1f} MB, {seconds:.1f} s",
            flush=True,
        )
    return rss, failures[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="elpv")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10, help="per client and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--env", nargs="*", default=[], help="KEY=VALUE for the server")
    parser.add_argument(
        "--settle", type=float, default=6.0,
        help="seconds between a round's last answer and reading RSS (the server trims every 5 s)",
    )  # fmt: skip
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="explorer-memory-") as tmp:
        folder = Path(tmp)
        port = free_port()
        process = start_server(port, folder, env)
        try:
            print(
                f"{args.clients} clients x {args.requests} explanations ({args.model}) per round, "
                f"server env {env or 'as is'}; RSS before: {rss_mb(process.pid):.0f} MB",
                flush=True,
            )
            rss, failed = run_rounds(
                f"http://127.0.0.1:{port}/", process.pid, args.model, args.clients,
                args.requests, args.rounds, folder, args.settle,
            )  # fmt: skip
        finally:
            process.kill()
            process.wait(timeout=10)
    print("RSS per round (MB): " + ", ".join(f"{v:.0f}" for v in rss) + f"; {failed} failed")


if __name__ == "__main__":
    main()
