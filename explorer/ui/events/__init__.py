"""The tabs' event functions, apart from their layout (``explorer/ui/tabs`` builds the components
and wires them): plain functions taking the :class:`~explorer.Explorer` first (bound with
:func:`bind`), or methods of small classes holding it, so that tests can call them without a browser
or a server."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


def bind(fn: Callable[..., Any], *first: Any) -> Callable[..., Any]:
    """``fn`` with its first parameters given (``functools.partial`` for Gradio).

    Unlike a ``partial``, the result is a function whose signature is the remaining parameters with
    their names (an endpoint's API parameter names), defaults (``gr.Progress()``) and annotations
    (Gradio finds ``gr.Request`` and ``gr.SelectData`` parameters by their type hints, which it
    cannot read from a ``partial``).
    """
    signature = inspect.signature(fn)
    rest = list(signature.parameters.values())[len(first) :]

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> Any:
        return fn(*first, *args, **kwargs)

    bound.__signature__ = signature.replace(parameters=rest)  # type: ignore[attr-defined]
    return bound
