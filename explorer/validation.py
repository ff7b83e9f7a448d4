"""Checks of the values callers hand the explorer, in one place, with the real limits in the messages.

Every check returns the value in the form the explorer works with (an ``int``, a ``float``, text) or
raises :class:`InputError`, whose message names the value, what is wrong with it and the limit that
applies. The facade (:class:`explorer.api.Explorer`), the label store and the app's event functions
all use these checks, so the same value gets the same answer everywhere:

* a prototype number is a whole number inside the model's range: ``2.5`` is refused (never read as
  2), and so are ``True``, text, ``None``, ``-1`` and ``1e300``;
* numbers are finite and inside their stated range;
* text is of the type, length and shape (one line, not empty) stated, and the message names the
  limit that applies;
* a choice is one of the options offered;
* a switch is ``True`` or ``False``.

Messages quote absurd values shortened (:func:`shown`): a megabyte of text or a 300-digit number
does not come back in full.
"""

from __future__ import annotations

import math
import numbers
import operator
import reprlib
from collections.abc import Sequence

from explorer.errors import ExplorerError

__all__ = [
    "InputError",
    "bounded_text",
    "choice",
    "flag",
    "prototype_index",
    "real_number",
    "shown",
    "whole_number",
]

MAX_SHOWN_CHARS = 60
_LARGEST_SHOWN_INT = 10**15

_short = reprlib.Repr()
_short.maxstring = MAX_SHOWN_CHARS
_short.maxother = MAX_SHOWN_CHARS
_short.maxlevel = 3


class InputError(ExplorerError, ValueError):
    """A value has the wrong type or lies outside its limits (the message names both)."""


def shown(value: object) -> str:
    """``value`` as a message quotes it: its ``repr``, shortened when long.

    Text over :data:`MAX_SHOWN_CHARS` characters is cut and its length given; whole numbers of 16
    digits or more are written in scientific notation; deep or long containers are abbreviated.
    """
    if isinstance(value, str) and len(value) > MAX_SHOWN_CHARS:
        return f"{value[:MAX_SHOWN_CHARS]!r}… ({len(value):,} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _LARGEST_SHOWN_INT:
        try:
            return f"{float(value):.3g}"
        except OverflowError:
            return f"a number of about {int(value.bit_length() * math.log10(2)):,} digits"
    if isinstance(value, float):
        return repr(value)
    return _short.repr(value)


def _kind(value: object) -> str:
    """What a wrong value is, for "must be …, not <kind>"."""
    if value is None:
        return "nothing (None)"
    if isinstance(value, str):
        return f"the text {shown(value)}"
    if isinstance(value, bool | int | float):
        return shown(value)
    return f"{type(value).__name__} {shown(value)}"


def _range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"({minimum}..{maximum})"
    if minimum is not None:
        return f"(at least {minimum})"
    return f"(at most {maximum})"


def _check_range(
    number: float, value: object, name: str, minimum: float | None, maximum: float | None
) -> None:
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise InputError(f"{name} {shown(value)} is out of range {_range(minimum, maximum)}")


def whole_number(
    value: object,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    floats: bool = True,
) -> int:
    """``value`` as an ``int``: a whole number within ``minimum..maximum`` (each optional).

    Args:
        value: an ``int`` (or numpy integer), or, with ``floats``, a float of whole value (``3.0``:
            JSON clients and JavaScript send whole numbers that way).
        name: what the value is, as messages name it (``prototype``).
        minimum: the smallest allowed value.
        maximum: the largest allowed value.
        floats: accept floats of whole value; without it only integers are.

    Raises:
        InputError: not a number, a boolean, not whole (``2.5``), not finite, or out of range.
    """
    if isinstance(value, bool):
        raise InputError(f"{name} must be a whole number, not {_kind(value)}")
    try:
        number = operator.index(value)  # int and numpy integers; refuses floats and text
    except TypeError:
        if not (floats and isinstance(value, numbers.Real)):
            expected = "a whole number" if floats else "an integer"
            raise InputError(f"{name} must be {expected}, not {_kind(value)}") from None
        real = float(value)
        if not math.isfinite(real) or not real.is_integer():
            raise InputError(f"{name} must be a whole number, not {_kind(value)}") from None
        number = int(real)
    _check_range(number, value, name, minimum, maximum)
    return number


def prototype_index(value: object, count: int, name: str = "prototype") -> int:
    """A prototype number of a model with ``count`` prototypes: a whole number in ``0..count-1``.

    Raises:
        InputError: as :func:`whole_number`; out of range names the model's range.
    """
    return whole_number(value, name, minimum=0, maximum=count - 1)


def real_number(
    value: object, name: str, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """``value`` as a finite ``float`` within ``minimum..maximum`` (each optional).

    Raises:
        InputError: not a number (text, a boolean, ``None``), not finite, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, not {_kind(value)}")
    real = float(value)
    if not math.isfinite(real):
        raise InputError(f"{name} must be a finite number, not {_kind(value)}")
    _check_range(real, value, name, minimum, maximum)
    return real


def bounded_text(
    value: object,
    name: str,
    limit: int,
    *,
    strip: bool = False,
    allow_empty: bool = True,
    one_line: bool = False,
) -> str:
    """``value`` as text of at most ``limit`` characters (after trimming, with ``strip``).

    Args:
        value: the text.
        name: what the text is, as messages name it (``reviewer``).
        limit: the most characters allowed; the message states this number.
        strip: trim white space at both ends first.
        allow_empty: accept the empty text.
        one_line: refuse line breaks and tabs.

    Raises:
        InputError: not text, NUL characters, empty (unless allowed), too long, or not on one line.
    """
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, not {_kind(value)}")
    if "\x00" in value:
        raise InputError(f"{name} must not contain NUL characters")
    text = value.strip() if strip else value
    if not allow_empty and not text:
        raise InputError(f"{name} must not be empty")
    if len(text) > limit:
        raise InputError(f"{name} is {len(text):,} characters long; at most {limit:,} are allowed")
    if one_line and any(ch in text for ch in "\r\n\t"):
        raise InputError(f"{name} must be on one line")
    return text


def choice(value: object, name: str, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options``.

    Raises:
        InputError: naming the options.
    """
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise InputError(f"{name} must be one of {listed}, not {_kind(value)}")
    return value


def flag(value: object, name: str) -> bool:
    """``value`` as a switch: ``True`` or ``False`` (``None``, an unset box, is ``False``).

    Raises:
        InputError: anything else (``"yes"``, ``1``).
    """
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, not {_kind(value)}")
    return value
