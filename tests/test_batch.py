"""Batch explanations of a folder: every file ends explained, failed with its reason, or skipped."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from explorer.api import Explorer
from explorer.batch import HIDDEN_REASON, collect_paths, explain_batch

MODEL = "fashion_mnist"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect width="32" height="32"/></svg>'


def animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (64, 64), (40 * i, 90, 200 - 40 * i)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def mixed_folder(root: Path, example: Path) -> Path:
    """A PNG, an animated GIF, an SVG, a text file, a file without suffix, a nested JPEG-named PNG,
    and hidden files (a dotfile and a file in a hidden folder)."""
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.png").write_bytes(example.read_bytes())
    animated_gif(root / "b.gif")
    (root / "c.svg").write_text(SVG)
    (root / "notes.txt").write_text("not an image")
    (root / "noext").write_bytes(example.read_bytes())
    (root / "sub" / "d.JPG").write_bytes(example.read_bytes())
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def test_collect_paths_takes_every_visible_file_and_names_the_hidden_ones(tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "in", Explorer().bundle(MODEL).examples()[0])
    files, skipped = collect_paths([folder, tmp_path / "missing.png"], exclude=folder / "sub")
    assert [p.name for p in files] == [
        "a.png",
        "b.gif",
        "c.svg",
        "noext",
        "notes.txt",
        "missing.png",
    ]
    assert {Path(s["image"]).name: s["reason"] for s in skipped} == {
        ".DS_Store": HIDDEN_REASON, "HEAD": HIDDEN_REASON, "d.JPG": "inside the output folder",
    }  # fmt: skip


def test_every_file_of_a_folder_is_explained_failed_or_skipped(tmp_path: Path) -> None:
    explorer = Explorer()
    folder = mixed_folder(tmp_path / "in", explorer.bundle(MODEL).examples()[0])
    out = tmp_path / "out"
    summary = explain_batch(explorer, [folder], out, MODEL, top_k=2, attribution=None)
    assert json.loads((out / "summary.json").read_text()) == summary
    explained = {Path(e["image"]).name for e in summary["explained"]}
    failed = {Path(f["image"]).name: f["error"] for f in summary["failed"]}
    skipped = {Path(s["image"]).name: s["reason"] for s in summary["skipped"]}
    assert explained == {"a.png", "b.gif", "noext", "d.JPG"}  # by content, whatever the suffix
    assert set(failed) == {"c.svg", "notes.txt"}
    assert "SVG" in failed["c.svg"] and "not an image" in failed["notes.txt"]
    assert skipped == {".DS_Store": HIDDEN_REASON, "HEAD": HIDDEN_REASON}
    every_file = {p.name for p in folder.rglob("*") if p.is_file()}
    assert explained | set(failed) | set(skipped) == every_file
    assert len(explained) + len(failed) + len(skipped) == len(every_file)


def test_the_output_folder_inside_the_input_folder_is_not_explained_again(tmp_path: Path) -> None:
    explorer = Explorer()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(explorer.bundle(MODEL).examples()[0].read_bytes())
    out = folder / "out"
    explain_batch(explorer, [folder], out, MODEL, top_k=1, attribution=None)
    again = explain_batch(explorer, [folder], out, MODEL, top_k=1, attribution=None)
    assert [Path(e["image"]).name for e in again["explained"]] == ["a.png"]
    assert not again["failed"]
    assert {s["reason"] for s in again["skipped"]} == {"inside the output folder"}
