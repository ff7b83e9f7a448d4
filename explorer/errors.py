"""Errors the explorer reports to users.

Every exception raised on purpose by the explorer derives from
:class:`ExplorerError`; its message is written for the person using the tool
(what went wrong and, where possible, what to do about it), so callers can
show ``str(error)`` directly.
"""

from __future__ import annotations

__all__ = [
    "BadImageError",
    "CheckpointError",
    "ExplorerError",
    "UnknownModelError",
]


class ExplorerError(Exception):
    """Base of all errors the explorer reports to users (messages are user-facing)."""


class BadImageError(ExplorerError, ValueError):
    """An input image cannot be used: missing, unreadable, corrupt, or of unusable size."""


class CheckpointError(ExplorerError, ValueError):
    """A model checkpoint is missing, corrupt, or does not match the expected model."""


class UnknownModelError(ExplorerError, KeyError):
    """A model name or identifier is not known to the explorer."""

    def __str__(self) -> str:
        """Returns the plain message (``KeyError`` would otherwise quote it)."""
        return Exception.__str__(self)
