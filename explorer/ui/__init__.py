"""The Gradio app: a thin skin over :class:`explorer.Explorer` (no analysis code lives here)."""
