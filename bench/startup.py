"""Start-up times of the command line and the app, side by side with ``import torch``.

Each round runs, one after the other, in fresh processes:

* ``torch``: ``python -c "import torch"``, the floor every command that runs a model pays;
* ``--help``: ``python -m explorer --help`` (goal ≤ 1 s: no torch, numpy stacks, gradio, scipy, captum);
* ``predict``: ``python -m explorer predict --model MODEL IMAGE`` on the model's first shipped example
  (goal ≤ 2.5 s; it imports torch, the model code, numpy and Pillow, nothing else heavy);
* ``app.py``: ``python app.py`` until an HTTP GET of ``/`` returns 200 (goal ≤ 8 s on 2 cores), then
  the process is killed.

Rounds are interleaved (every command once per round), so a busy machine slows all of them alike; the
table gives the median and the spread (min–max) of ``--rounds`` runs, and each median's ratio to the
torch floor. With ``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/before HEAD~1``)
every command also runs from that tree, interleaved with this one, for before/after figures measured
under the same load. Labels and analysis caches go to a temporary folder, never the user's.

    python -m bench.startup [--rounds 5] [--model synthetic] [--baseline DIR] [--skip-app]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_TIMEOUT_S = 180  # a hang guard on a busy machine, not a goal


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds until ``command`` exits (it must exit with status 0)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} (in {cwd}) failed:\n{result.stderr[-2000:]}")
    return seconds


def first_page_seconds(cwd: Path, env: dict[str, str], args: list[str] = ()) -> float:
    """Seconds from starting ``python app.py`` until ``GET /`` answers 200; the app is killed."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), *args], cwd=cwd, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        while time.perf_counter() - started < APP_TIMEOUT_S:
            if process.poll() is not None:
                raise RuntimeError(f"app.py (in {cwd}) ended: {process.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        response.read()
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"app.py (in {cwd}) served no page within {APP_TIMEOUT_S} s")
    finally:
        process.kill()
        process.wait(timeout=30)
        process.stderr.close()


def _time(command: list[str] | None, cwd: Path, env: dict[str, str]) -> float:
    return _run(command, cwd, env) if command else first_page_seconds(cwd, env)


def commands(cwd: Path, model: str, skip_app: bool) -> dict[str, list[str] | None]:
    """The timed commands (``None``: the app, timed to its first page)."""
    examples = sorted((cwd / "weights" / model / "examples").glob("*.png"))
    if not examples:
        raise SystemExit(f"{cwd}: weights/{model}/examples/ holds no PNG")
    predict = ["predict", "--model", model, str(examples[0].relative_to(cwd))]
    timed: dict[str, list[str] | None] = {
        "import torch": [sys.executable, "-c", "import torch"],
        "explorer --help": [sys.executable, "-m", "explorer", "--help"],
        f"explorer predict ({model})": [sys.executable, "-m", "explorer", *predict],
    }
    if not skip_app:
        timed["app.py to first page"] = None
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--model", default="synthetic", help="model for predict (default synthetic)"
    )
    parser.add_argument("--baseline", type=Path, help="another checkout, timed side by side")
    parser.add_argument("--skip-app", action="store_true", help="leave out app.py")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="startup-bench-"))
    env = {
        **os.environ,
        "EXPLORER_CACHE_DIR": str(scratch / "cache"),
        "EXPLORER_LABELS_DB": str(scratch / "labels.sqlite3"),
    }
    env.pop("PYTHONPATH", None)  # each tree imports its own explorer package (cwd comes first)
    trees = {"after": ROOT}
    if args.baseline:
        trees = {"before": args.baseline.resolve(), **trees}
    plans = {tree: commands(cwd, args.model, args.skip_app) for tree, cwd in trees.items()}
    times: dict[tuple[str, str], list[float]] = {}
    # one warm-up of each (bytecode compiled, files in the page cache), not counted
    for tree, cwd in trees.items():
        for command in plans[tree].values():
            _time(command, cwd, env)
    for round_ in range(args.rounds):
        for name in plans["after"]:
            for tree, cwd in trees.items():
                times.setdefault((tree, name), []).append(_time(plans[tree][name], cwd, env))
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    print(
        f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs, python {sys.version.split()[0]}"
    )
    header = f"{'command':34s} {'tree':7s} {'median s':>9s} {'min–max s':>13s} {'× torch':>8s}"
    print(header)
    print("-" * len(header))
    for name in plans["after"]:
        for tree in trees:
            values = times[(tree, name)]
            floor = statistics.median(times[(tree, "import torch")])
            median = statistics.median(values)
            spread = f"{min(values):.2f}–{max(values):.2f}"
            print(f"{name:34s} {tree:7s} {median:9.2f} {spread:>13s} {median / floor:8.2f}")


if __name__ == "__main__":
    main()
