"""Import time of a public PIP-Net checkpoint (ConvNeXt-tiny, 26 x 26 grid, 768 prototypes, 200
classes: the public code's CUB-200 configuration, ~110 MB) next to loading the imported folder.

The checkpoint is written as the public ``main.py`` writes it (``tests/test_import_pipnet.py``'s
``make_public_checkpoint``: DataParallel keys, optimiser states). Timed alternately, medians of
``--rounds``: *import* = ``import_checkpoint(format="pipnet")`` end to end (weights-only load, key
mapping, rebuild, writing the folder, reloading it, our forward and the public arithmetic in float32
and float64 on ``--check-images`` random 224 px images); *load_model* = loading the imported folder.

Goal (issue 17): import ≤ 15 s on 2 cores. Prints the ratio import / load_model.

    python -m bench.pipnet_import_speed [--rounds 3] [--check-images 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from explorer.models.checkpoint import load_model
from explorer.models.importers import import_checkpoint
from tests.test_import_pipnet import make_public_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check-images", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)
    root = Path(tempfile.mkdtemp(prefix="pipnet-import-bench-"))
    try:
        checkpoint = make_public_checkpoint(root / "net_trained_last", "convnext_tiny_26", 200)
        size_mb = checkpoint.stat().st_size / 1e6
        imports, loads = [], []
        for round_ in range(args.rounds):
            out = root / f"model{round_}"
            started = time.perf_counter()
            import_checkpoint(checkpoint, out, format="pipnet", backbone="convnext_tiny_26",
                              check_images=args.check_images)  # fmt: skip
            imports.append(time.perf_counter() - started)
            started = time.perf_counter()
            load_model(out)
            loads.append(time.perf_counter() - started)
        imported, loaded = statistics.median(imports), statistics.median(loads)
        print(
            f"PIP-Net ConvNeXt-tiny-26, 768 prototypes, 200 classes ({size_mb:.0f} MB), "
            f"{args.rounds} rounds, 224 px check on {args.check_images} images:\n"
            f"  import      median {imported:6.2f} s  (all: {', '.join(f'{t:.2f}' for t in imports)})\n"
            f"  load_model  median {loaded:6.2f} s\n"
            f"  ratio import / load_model: {imported / loaded:.1f}x   goal: import <= 15 s"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
