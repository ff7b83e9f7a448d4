"""Fast start: what ``python -m explorer`` imports, and how long ``python app.py`` takes to serve.

No timing is asserted (a shared CI machine makes any threshold flaky); the start-up times are printed
(``pytest -s``) and measured properly by ``python -m bench.startup``. What is asserted is what the
times depend on: ``--help`` imports none of the heavy stacks, ``predict`` on a small model imports
torch but not torchvision, captum, scipy or gradio, and gives the library's own answer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer.api import WEIGHTS_DIR, Explorer
from tests.serving import app_server

ROOT = Path(__file__).resolve().parent.parent
MODEL = "synthetic"  # a small_cnn model: nothing of torchvision is needed to run it
NOT_FOR_HELP = (
    "torch", "numpy", "PIL", "cv2", "safetensors", "torchvision", "gradio", "scipy", "captum",
    "sklearn", "matplotlib", "pandas", "reportlab",
)  # fmt: skip
NOT_FOR_PREDICT = (
    "torchvision", "captum", "scipy", "gradio", "sklearn", "matplotlib", "pandas", "reportlab",
    "efficientnet_lite_pytorch", "IPython",
)  # fmt: skip
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")


def imports_of(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str], float]:
    """``python -X importtime -m explorer ARGS``: the result, the top-level packages it imported
    (from the import-time log on stderr) and its wall time."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "explorer", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,  # a hang guard, not a timing
    )  # fmt: skip
    seconds = time.perf_counter() - started
    packages = {
        match[1].split(".")[0]
        for line in result.stderr.splitlines()
        if (match := IMPORTED.match(line))
    }
    return result, packages, seconds


@pytest.mark.parametrize(
    "args",
    [["--help"], ["predict", "--help"], ["train", "--help"], ["report", "--help"],
     ["users", "add", "--help"], ["import", "--help"]],
    ids=" ".join,
)  # fmt: skip
def test_help_imports_no_heavy_stack(args: list[str]) -> None:
    result, packages, seconds = imports_of(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: python -m explorer" in result.stdout
    assert "explorer" in packages  # the log was read
    assert not packages & set(NOT_FOR_HELP), sorted(packages & set(NOT_FOR_HELP))
    print(f"python -m explorer {' '.join(args)}: {seconds:.2f} s")


def test_import_explorer_is_lazy_and_still_exports_every_name() -> None:
    code = (
        "import sys, explorer; light = 'torch' not in sys.modules; "
        "from explorer import *; import explorer as e; "
        "print(light, all(getattr(e, n) is not None for n in e.__all__), len(e.__all__))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    import explorer

    assert result.stdout.split() == ["True", "True", str(len(explorer.__all__))]


def test_predict_on_a_small_model_imports_only_what_it_needs_and_matches_the_library() -> None:
    image = Explorer().bundle(MODEL).examples()[0]
    result, packages, seconds = imports_of("predict", "--model", MODEL, str(image))
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"torch", "numpy", "PIL", "safetensors"} <= packages  # the log was read
    assert not packages & set(NOT_FOR_PREDICT), sorted(packages & set(NOT_FOR_PREDICT))
    printed = json.loads(result.stdout)
    expected = json.loads(json.dumps(Explorer([WEIGHTS_DIR]).predict(image, MODEL).to_dict()))
    assert printed["model_id"] == expected["model_id"] == MODEL
    assert printed["content_hash"] == expected["content_hash"]
    assert printed["predicted_class"] == expected["predicted_class"]
    assert [p["prototype"] for p in printed["top_prototypes"]] == [
        p["prototype"] for p in expected["top_prototypes"]
    ]
    assert _close(printed, expected), (printed, expected)
    print(f"python -m explorer predict --model {MODEL}: {seconds:.2f} s (with -X importtime)")


def _close(a: object, b: object) -> bool:
    """Equal, floats to 1e-6 relative (a forward pass in another process may round differently)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-6, abs=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_app_serves_its_first_page() -> None:
    with app_server() as server:
        assert server.process.poll() is None, "app.py ended before serving"
        assert "Prototype explanation explorer" in server.page
        print(f"python app.py: first page after {server.seconds:.2f} s")
