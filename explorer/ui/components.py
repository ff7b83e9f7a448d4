"""Gradio components adapted to the explorer's needs."""

from __future__ import annotations

import base64

import gradio as gr
from gradio.data_classes import ImageData


def shown_picture(label: str, alt: str) -> gr.Image:
    """An output-only image with its label and its text alternative for screen readers."""
    return gr.Image(label=label, interactive=False, alt_text=alt)


class UploadedImage(gr.Image):
    """``gr.Image`` (same front end) whose upload reaches the library undecoded.

    ``gr.Image`` opens uploads with Pillow before our code runs, so a broken or hostile file would fail
    with Gradio's generic error. This passes the stored upload's path (or the bytes of a pasted image)
    to :func:`explorer.images.load_image`, which checks it and explains what is wrong.
    """

    is_template = True  # use gr.Image's front end

    def preprocess(self, payload: ImageData | None) -> str | bytes | None:
        if payload is None:
            return None
        if payload.path:
            return str(payload.path)
        if payload.url and payload.url.startswith("data:"):
            return base64.b64decode(payload.url.split(",", 1)[-1])
        return None
