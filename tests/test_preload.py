"""The chart code preloaded into the page (explorer/ui/preload.py) is the file this Gradio serves."""

from __future__ import annotations

from pathlib import Path

from explorer.ui.preload import ASSETS, preload_script, preloaded_chunks


def test_the_preload_script_imports_the_plot_chunk_this_gradio_ships() -> None:
    chunks = preloaded_chunks()
    assert chunks and all(name.startswith("PlotlyPlot-") for name in chunks)
    assert all((ASSETS / name).is_file() for name in chunks)
    script = preload_script()
    assert script.startswith("<script>") and all(f"./assets/{name}" in script for name in chunks)


def test_without_the_chunk_there_is_no_script(tmp_path: Path) -> None:
    assert preloaded_chunks(tmp_path) == [] and preload_script(tmp_path) == ""
