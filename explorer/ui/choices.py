"""Dropdown entries shared by several tabs, and their parsing."""

from __future__ import annotations

from explorer import Explorer

STRONGEST = "strongest match"


def prototype_choices(explorer: Explorer, model_id: str) -> list[str]:
    """``strongest match`` then ``P<j> · <class>`` for every prototype."""
    return [STRONGEST, *explorer.prototype_labels(model_id)]


def prototype_index(choice: str | None) -> int | None:
    """The prototype a :func:`prototype_choices` entry names (``None`` for the strongest match)."""
    if not choice or choice == STRONGEST:
        return None
    number = choice.split(" ", 1)[0].removeprefix("P")
    if not number.isdigit():
        raise ValueError(
            f"'{choice}' names no prototype: choose one from the list or type P<number>"
        )
    return int(number)


def required_prototype(choice: str | float | None) -> int:
    """A prototype number from a dropdown entry or a number field; the strongest match is refused
    (it names no fixed prototype)."""
    if isinstance(choice, int | float):
        return int(choice)
    index = prototype_index(choice)
    if index is None:
        raise ValueError(
            "choose a prototype from the list to label it (the strongest match has no fixed number)"
        )
    return index
