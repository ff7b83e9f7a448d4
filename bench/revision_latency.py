"""Explain and predict latency of this working tree against another git revision, side by side.

A refactor must not slow the user down. This bench checks out ``--against`` (default: ``HEAD``) into a
temporary git worktree and, round by round, runs the same timing snippet in a fresh process on each
tree in turn (so machine noise hits both alike): per shipped model, the median of ``--repeats`` calls of
``Explorer.predict`` and of ``Explorer.explain(top_k=10, attribution="gradcam")`` on the first bundled
example, after a warm-up. It prints the median over rounds for each tree and their ratio
(this tree / the revision; 1.00 = unchanged).

    python -m bench.revision_latency [--against REV] [--rounds 5] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SNIPPET = """
import json, statistics, sys, time
import torch
torch.set_num_threads(2)
from explorer.api import Explorer
explorer = Explorer()
repeats = int(sys.argv[1])
result = {}
for model_id in explorer.model_ids():
    example = sorted((explorer.bundle(model_id).folder / "examples").glob("*.png"))[0]
    calls = {
        "predict": lambda: explorer.predict(example, model_id=model_id),
        "explain": lambda: explorer.explain(example, model_id, top_k=10, attribution="gradcam"),
    }
    for name, call in calls.items():
        call()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        result[f"{model_id} {name}"] = statistics.median(times)
print(json.dumps(result))
"""


def measure(tree: Path, repeats: int) -> dict[str, float]:
    """One fresh process on ``tree``: median milliseconds per model and call."""
    env = {**os.environ, "PYTHONPATH": str(tree), "EXPLORER_CACHE_DIR": tempfile.mkdtemp()}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET, str(repeats)],
        cwd=tree, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", default="HEAD", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        other = Path(scratch) / "revision"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(other), args.against],
            cwd=ROOT, check=True,
        )  # fmt: skip
        try:
            rows: dict[str, dict[str, list[float]]] = {}
            for _ in range(args.rounds):
                for label, tree in (("revision", other), ("this tree", ROOT)):
                    for key, value in measure(tree, args.repeats).items():
                        rows.setdefault(key, {}).setdefault(label, []).append(value)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT)
    print(f"against {args.against}: {args.rounds} alternating rounds × {args.repeats} calls, ms")
    print(f"{'model and call':<26}{'revision':>10}{'this tree':>11}{'ratio':>8}")
    for key, values in rows.items():
        before = statistics.median(values["revision"])
        after = statistics.median(values["this tree"])
        print(f"{key:<26}{before:>10.1f}{after:>11.1f}{after / before:>8.2f}")


if __name__ == "__main__":
    main()
