"""The chart library loaded while the page is idle, before the first chart needs it.

Gradio loads a component's code the first time one is drawn. For charts that is plotly (4.6 MB of
JavaScript in Gradio 6.31), so the first explanation, whose evidence chart is the page's first
visible chart, waited for it: in a browser on the 2-core machine the pairs gallery's images were
requested only after the chart code had loaded (0.43 s after the explanation arrived). The script
from :func:`preload_script` imports that code once the page has loaded (the same URL that Gradio
imports later, so the browser reuses the loaded module). When this Gradio names its files otherwise
the script is empty and charts load as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

ASSETS = Path(gr.__file__).resolve().parent / "templates" / "frontend" / "assets"
PRELOADED = ("PlotlyPlot-",)  # file name prefixes of the code chunks worth loading ahead


def preloaded_chunks(assets: Path = ASSETS) -> list[str]:
    """The file names of the chunks :func:`preload_script` loads (none when none is found)."""
    return sorted(path.name for prefix in PRELOADED for path in assets.glob(f"{prefix}*.js"))


def preload_script(assets: Path = ASSETS) -> str:
    """A ``<script>`` for the page's head that imports :func:`preloaded_chunks` once the page has
    loaded (failures ignored: Gradio loads them itself when needed); empty without chunks."""
    urls = [f"./assets/{name}" for name in preloaded_chunks(assets)]
    if not urls:
        return ""
    # Gradio may add the head's scripts after the load event: then they run at once
    return (
        "<script>(() => { const load = () => { "
        f"for (const url of {json.dumps(urls)}) import(url).catch(() => {{}}); }}; "
        "if (document.readyState === 'complete') setTimeout(load, 0); "
        "else window.addEventListener('load', load); })();</script>"
    )
