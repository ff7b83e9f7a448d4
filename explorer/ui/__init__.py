"""The Gradio app: a thin skin over :class:`explorer.Explorer` (no analysis code lives here).

Importing this package first sets the offline environment (analytics off, hubs offline), so it is in
place before any of its modules imports Gradio, then fixes Gradio's output cache for concurrent users
(:mod:`explorer.ui.gradio_patches`).
"""

from explorer.ui.offline import apply_offline_environment

apply_offline_environment()

from explorer.ui.gradio_patches import apply_gradio_patches  # noqa: E402 (after the environment)

apply_gradio_patches()
