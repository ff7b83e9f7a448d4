"""Explain and predict latency of this working tree against another git revision, side by side.

A refactor must not slow the user down. This bench checks out ``--against`` (default: ``HEAD``) into a
temporary git worktree and, round by round, runs the same timing snippet in a fresh process on each
tree in turn (so machine noise hits both alike): per shipped model, the median of ``--repeats`` calls of
``Explorer.predict`` and of ``Explorer.explain(top_k=10, attribution="gradcam")`` on the first bundled
example, after a warm-up. It prints the median over rounds for each tree and their ratio
(this tree / the revision; 1.00 = unchanged). With ``--passes N`` it also times, per model, the two
global passes over the first ``N`` test images (milliseconds per image): the nearest-patch pass (every
image's scores kept) and the attribute pass (reference set, 200 bootstrap resamples), each
``--pass-repeats`` times after a warm-up.

    python -m bench.revision_latency [--against REV] [--rounds 5] [--repeats 10] [--passes 32]
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
import numpy as np
import torch
torch.set_num_threads(2)
from explorer.api import Explorer
explorer = Explorer()
repeats, passes, pass_repeats = (int(a) for a in sys.argv[1:4])
result = {}


def pass_calls(model_id):
    from explorer.analysis.attribute_sets import feature_grid, modification_set
    from explorer.analysis.attributes import AttributePass, global_attributes_finish
    from explorer.analysis.nearest import nearest_patches
    from explorer.analysis.passes import NETWORK_THREADS, run_local
    from explorer.data.sources import ArraySource
    from explorer.models.batch_size import measured_forward_batch
    from explorer.models.preprocess import forward_batch_size

    bundle = explorer.bundle(model_id)
    model = bundle.model
    data = explorer.dataset(model_id, "test")
    images, labels = data.images[:passes], data.labels[:passes]
    mods = modification_set(model, "reference", images.shape[1:], feature_grid(model))
    rows = measured_forward_batch(model, bundle.content_hash, None, threads=NETWORK_THREADS)
    chunk = max(1, rows // (1 + len(mods)))
    source = ArraySource(images, np.zeros(len(images), dtype=np.int64))
    batch = forward_batch_size(model.spec)
    return {
        "nearest pass/img": lambda: nearest_patches(model, images, labels, "test", batch_size=batch),
        "attribute pass/img": lambda: global_attributes_finish(
            model, run_local(AttributePass(tuple(mods), forward_rows=rows), model, source, chunk),
            mods, "test",
        ),
    }


def timed(name, call, count, per):
    call()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000 / per)
    result[name] = statistics.median(times)


for model_id in explorer.model_ids():
    example = sorted((explorer.bundle(model_id).folder / "examples").glob("*.png"))[0]
    timed(f"{model_id} predict", lambda: explorer.predict(example, model_id=model_id), repeats, 1)
    timed(f"{model_id} explain",
          lambda: explorer.explain(example, model_id, top_k=10, attribution="gradcam"), repeats, 1)
    if passes:
        for name, call in pass_calls(model_id).items():
            timed(f"{model_id} {name}", call, pass_repeats, passes)
print(json.dumps(result))
"""


def measure(tree: Path, repeats: int, passes: int = 0, pass_repeats: int = 2) -> dict[str, float]:
    """One fresh process on ``tree``: median milliseconds per model and call."""
    env = {**os.environ, "PYTHONPATH": str(tree), "EXPLORER_CACHE_DIR": tempfile.mkdtemp()}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET, str(repeats), str(passes), str(pass_repeats)],
        cwd=tree, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", default="HEAD", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--passes", type=int, default=0, help="test images per global pass (0: off)"
    )
    parser.add_argument("--pass-repeats", type=int, default=2)
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
                    measured = measure(tree, args.repeats, args.passes, args.pass_repeats)
                    for key, value in measured.items():
                        rows.setdefault(key, {}).setdefault(label, []).append(value)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT)
    print(f"against {args.against}: {args.rounds} alternating rounds × {args.repeats} calls, ms")
    print(f"{'model and call':<36}{'revision':>10}{'this tree':>11}{'ratio':>8}")
    for key, values in rows.items():
        before = statistics.median(values["revision"])
        after = statistics.median(values["this tree"])
        print(f"{key:<36}{before:>10.1f}{after:>11.1f}{after / before:>8.2f}")


if __name__ == "__main__":
    main()
