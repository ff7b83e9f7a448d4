"""Who is using the app: the logged-in user when the app runs with ``--auth``, else the typed name."""

from __future__ import annotations

import gradio as gr


def signed_in_user(request: gr.Request | None) -> str | None:
    """The logged-in user's name, or None when the app runs without a login."""
    return getattr(request, "username", None) or None


def reviewer_name(typed: str | None, request: gr.Request | None) -> str:
    """The name labels are recorded under: the login when there is one (a typed name cannot
    override it), else what the user typed."""
    return signed_in_user(request) or (typed or "").strip()


def reviewer_field(remembered: str | None, request: gr.Request) -> dict:
    """The reviewer box on page load: locked to the login, else the name this browser remembers."""
    user = signed_in_user(request)
    if user:
        return gr.update(value=user, interactive=False, label="Signed in as (labels use this name)")
    return gr.update(value=remembered) if remembered else gr.update()
