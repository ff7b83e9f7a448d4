"""The Gradio app: a thin skin over :class:`explorer.Explorer` (no analysis code lives here).

Importing this package first sets the offline environment (analytics off, hubs offline), so it is in
place before any of its modules imports Gradio.
"""

from explorer.ui.offline import apply_offline_environment

apply_offline_environment()
