"""Dropdown entries shared by several tabs, and their parsing."""

from __future__ import annotations

import re

from explorer import Explorer
from explorer.validation import InputError, shown, whole_number

STRONGEST = "strongest match"
_ENTRY = re.compile(r"P?([0-9]{1,18})(?: .*)?", re.DOTALL)  # "P<j> · <class>", "P<j>" or "<j>"


def prototype_choices(explorer: Explorer, model_id: str) -> list[str]:
    """``strongest match`` then ``P<j> · <class>`` for every prototype."""
    return [STRONGEST, *explorer.prototype_labels(model_id)]


def prototype_index(choice: object) -> int | None:
    """The prototype a :func:`prototype_choices` entry names (``None`` for the strongest match).

    The dropdowns accept typed entries, so an API client may send anything: ``P<number>`` (with or
    without the class after it) or a whole number names a prototype (its range is checked by the
    facade); anything else, 2.5 included, is an :class:`~explorer.validation.InputError`.
    """
    if choice is None or choice == "" or choice == STRONGEST:
        return None
    if not isinstance(choice, str):
        return whole_number(choice, "prototype")
    match = _ENTRY.fullmatch(choice.strip())
    if match is None:
        raise InputError(
            f"{shown(choice)} names no prototype: choose one from the list or type P<number>"
        )
    return int(match.group(1))


def required_prototype(choice: object) -> int:
    """A prototype number from a dropdown entry or a number field; the strongest match is refused
    (it names no fixed prototype)."""
    index = prototype_index(choice)
    if index is None:
        raise InputError(
            "choose a prototype from the list to label it (the strongest match has no fixed number)"
        )
    return index
