"""Offline, private defaults, set before Gradio or huggingface_hub are imported."""

from __future__ import annotations

import os

OFFLINE_ENVIRONMENT = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_SHARE": "False",
    "DO_NOT_TRACK": "1",
}


def apply_offline_environment() -> None:
    """Forces analytics off and hubs offline for this process (the user cannot opt back in here)."""
    os.environ.update(OFFLINE_ENVIRONMENT)
