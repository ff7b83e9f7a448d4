"""Starting ``python app.py`` with bad model folders: one clear line, or the rest served.

A bad default model (unreadable weights or stored images) ends the start with exactly one
``error:`` line on stderr and a non-zero status, never a traceback. A folder of model folders with
one unreadable ``spec.json`` is served without it, with a warning naming it on stderr and on the
page.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from explorer.api import WEIGHTS_DIR, Explorer
from explorer.errors import CheckpointError, UnknownModelError
from tests.serving import free_port

ROOT = Path(__file__).resolve().parent.parent
MODEL = "synthetic"  # the smallest shipped model
START_TIMEOUT_S = 120  # a hang guard on a busy machine, not a timing


def run_app(*args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """``python app.py ARGS`` on a free loopback port, expected to end by itself."""
    return subprocess.run(
        [sys.executable, "app.py", "--port", str(free_port()), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def model_copy(folder: Path, model_id: str = MODEL) -> Path:
    shutil.copytree(WEIGHTS_DIR / MODEL, folder)
    if model_id != MODEL:
        spec = json.loads((folder / "spec.json").read_text())
        (folder / "spec.json").write_text(json.dumps({**spec, "model_id": model_id}))
    return folder


def break_weights(folder: Path) -> str:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return "model.safetensors"


def break_example(folder: Path) -> str:
    example = sorted((folder / "examples").glob("*.png"))[0]
    example.write_bytes(b"not a png")
    return example.name


def break_sources(folder: Path) -> str:
    for source in (folder / "sources").glob("*.png"):
        source.write_bytes(source.read_bytes()[:40])
    return "stored image"


def misname_example(folder: Path) -> str:
    example = sorted((folder / "examples").glob("*.png"))[0]
    example.rename(example.with_name("cat.png"))
    return "cat.png"


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage",
    [break_weights, break_example, break_sources, misname_example],
    ids=lambda f: f.__name__,
)
def test_a_bad_default_model_ends_app_py_with_one_error_line(damage, tmp_path: Path) -> None:
    folder = model_copy(tmp_path / "bad_model")
    named = damage(folder)
    result = run_app("--model", MODEL, "--models", str(folder))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert named in errors[0] and "bad_model" in errors[0], errors[0]


@pytest.mark.slow
def test_a_port_in_use_ends_app_py_with_one_error_line() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "app.py", "--model", MODEL, "--port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=START_TIMEOUT_S,
        )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")], result.stderr


def page_config(url: str, process: subprocess.Popen, deadline: float) -> dict:
    """Gradio's ``/config`` of the served app, once it answers."""
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"the app did not start (exit status {process.poll()})")


@pytest.mark.slow
def test_a_broken_spec_in_a_folder_of_folders_is_skipped_and_the_rest_served(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    model_copy(models / "good", "synthetic_copy")
    (models / "broken").mkdir()
    (models / "broken" / "spec.json").write_text("{not json")
    port = free_port()
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--model", MODEL, "--port", str(port), "--models",
             str(models)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            config = page_config(
                f"http://127.0.0.1:{port}/", process, time.monotonic() + START_TIMEOUT_S
            )
        finally:
            process.kill()
            process.wait(timeout=10)
    props = [c["props"] for c in config["components"]]
    selector = next(p for p in props if p.get("label") == "Model")
    assert {choice[0] for choice in selector["choices"]} >= {"synthetic_copy", MODEL}
    note = next(p["value"] for p in props if p.get("elem_id") == "skipped-models")
    assert str(models / "broken") in note and "spec.json is not valid JSON" in note
    warnings = [line for line in stderr.read_text().splitlines() if "skipped model folder" in line]
    assert len(warnings) == 1 and str(models / "broken") in warnings[0], stderr.read_text()
    assert "Traceback" not in stderr.read_text()


def test_explorer_skips_unreadable_folders_of_a_folder_of_folders(tmp_path: Path) -> None:
    model_copy(tmp_path / "good", "synthetic_copy")
    for name, text in {"broken": "{not json", "deep": "[" * 100_000, "empty": "{}"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "spec.json").write_text(text)
    explorer = Explorer([tmp_path])
    assert explorer.model_ids() == ["synthetic_copy"]
    assert set(explorer.skipped_folders) == {tmp_path / n for n in ("broken", "deep", "empty")}
    assert "nested too deeply" in explorer.skipped_folders[tmp_path / "deep"]
    with pytest.raises(UnknownModelError, match=r"skipped: .*broken"):
        Explorer([tmp_path], default_model="broken")


def test_a_model_folder_named_directly_must_be_readable(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"spec\.json is not valid JSON"):
        Explorer([tmp_path])


def test_explorer_takes_str_and_path_for_every_folder_and_file(tmp_path: Path) -> None:
    """``model_dirs`` (one folder or several), ``cache_root`` and ``label_path`` as str or Path."""
    folder = model_copy(tmp_path / "models" / "one")
    for kind in (str, Path):
        cache, labels = tmp_path / f"cache_{kind.__name__}", tmp_path / f"{kind.__name__}.sqlite3"
        for dirs in (kind(folder), [kind(folder)], kind(tmp_path / "models")):
            explorer = Explorer(dirs, cache_root=kind(cache), label_path=kind(labels))
            assert explorer.model_ids() == [MODEL]
        assert isinstance(explorer.cache_root, Path) and explorer.cache_root == cache
        assert explorer.cache(MODEL).path("x") == cache / explorer.content_hash(MODEL) / "x.npz"
        explorer.label(MODEL, 0, "valid", "alice")
        assert explorer.labels_path == labels and labels.is_file()
        assert [e.reviewer for e in explorer.current_labels(MODEL)] == ["alice"]
