"""Import time of an original ProtoPNet checkpoint next to loading the same model from our own format.

The checkpoint: ``torch.save(model)`` of an original-layout ``model.PPNet`` (built by
``tests/original_protopnet.py``, the classes the import tests use) on a ResNet-18 with 2,000 prototypes
(200 classes x 10, D = 128, the original's bottleneck add-on), 224 px — the original code's CUB-200
configuration — in both save formats. Timed alternately, medians of ``--rounds``:

* import (zip / legacy): ``import_checkpoint`` end to end — the static scan of the pickle, the
  weights-only load, the rebuild, writing the folder, reloading it and the equality check (the reference
  forward and ours, in float64 and float32, on ``--check-images`` random images);
* load_model: loading the imported folder (safetensors + spec + projection).

Goal: import ≤ 10 s on 2 cores. Prints the ratio import / load_model.

    python -m bench.import_speed [--rounds 3] [--check-images 2]
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
from tests.original_protopnet import BasicBlock, PPNet, ResNet_features, _randomise, save_original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check-images", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)
    root = Path(tempfile.mkdtemp(prefix="import-bench-"))
    try:
        model = PPNet(ResNet_features(BasicBlock, [2, 2, 2, 2]), 224, (2000, 128, 1, 1), 200)
        _randomise(model, 0)
        files = {
            "zip": save_original(model, root / "30push0.7800.pth"),
            "legacy": save_original(model, root / "30push0.7800_legacy.pth", legacy=True),
        }
        sizes = {name: path.stat().st_size / 1024**2 for name, path in files.items()}
        times: dict[str, list[float]] = {"zip": [], "legacy": [], "load_model": []}
        folder = root / "folder"
        for round_ in range(args.rounds + 1):  # the first round warms up
            for name, path in files.items():
                out = root / f"out-{name}"
                shutil.rmtree(out, ignore_errors=True)
                start = time.perf_counter()
                report = import_checkpoint(path, out, check_images=args.check_images)
                elapsed = time.perf_counter() - start
                if round_:
                    times[name].append(elapsed)
                if name == "zip" and not folder.exists():
                    shutil.copytree(out, folder)
                    print(
                        f"checkpoint {report.backbone_description}, {report.num_prototypes} "
                        f"prototypes, {report.input_size[0]} px: zip {sizes['zip']:.0f} MiB, legacy "
                        f"{sizes['legacy']:.0f} MiB; max |Δ logit| {report.max_logit_difference:.2g} "
                        f"(float64), {report.max_logit_difference_float32:.2g} (float32)"
                    )
            start = time.perf_counter()
            load_model(folder)
            if round_:
                times["load_model"].append(time.perf_counter() - start)
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"torch threads {torch.get_num_threads()}, {args.rounds} rounds, medians in s")
        print(
            f"{'import (zip)':>14}{'import (legacy)':>17}{'load_model':>12}{'zip/load':>10}{'legacy/load':>13}"
        )
        print(
            f"{median['zip']:>14.2f}{median['legacy']:>17.2f}{median['load_model']:>12.2f}"
            f"{median['zip'] / median['load_model']:>10.1f}{median['legacy'] / median['load_model']:>13.1f}"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
