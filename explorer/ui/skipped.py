"""The note shown under the model selector when some model folders could not be read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def skipped_folders_note(skipped: Mapping[Path, str]) -> str:
    """Markdown naming every skipped model folder and why (empty when none was skipped)."""
    if not skipped:
        return ""
    count = len(skipped)
    lines = [
        f"**Warning:** {count} model folder{'s' if count > 1 else ''} could not be read and "
        f"{'are' if count > 1 else 'is'} not offered:"
    ]
    lines += [f"- `{folder}`: {reason}" for folder, reason in skipped.items()]
    return "\n".join(lines)
