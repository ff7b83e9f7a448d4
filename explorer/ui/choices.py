"""Dropdown entries shared by several tabs, as ``(label, value)`` pairs, and the reading of the values
they send back.

The dropdowns show a label and hand their event function the value: a prototype's index, a class's
name, or a sentinel (:data:`STRONGEST`, :data:`PREDICTED`). They accept typed entries, and an API
client may send anything, so the readers here also take the older forms (``"P<j> · <class>"``,
``"P<j>"``, ``"<j>"``) and refuse the rest with a sentence.
"""

from __future__ import annotations

import re

from explorer import Explorer
from explorer.validation import InputError, shown, whole_number

STRONGEST = "strongest match"
PREDICTED = "predicted class"
_ENTRY = re.compile(r"P?([0-9]{1,18})(?: .*)?", re.DOTALL)  # "P<j> · <class>", "P<j>" or "<j>"


def prototype_choices(
    explorer: Explorer, model_id: str, strongest: bool = True
) -> list[tuple[str, int | str]]:
    """``("strongest match", STRONGEST)`` (unless ``strongest=False``), then ``("P<j> · <class>", j)``
    for every prototype."""
    entries: list[tuple[str, int | str]] = [
        (label, j) for j, label in enumerate(explorer.prototype_labels(model_id))
    ]
    return [(STRONGEST, STRONGEST), *entries] if strongest else entries


def prototype_index(choice: object) -> int | None:
    """The prototype a :func:`prototype_choices` value names (``None`` for the strongest match).

    A whole number, ``P<number>`` (with or without the class after it) or ``"<number>"`` names a
    prototype (its range is checked by the facade); anything else, 2.5 included, is an
    :class:`~explorer.validation.InputError`.
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
    """A prototype number from a dropdown value or a number field; the strongest match is refused
    (it names no fixed prototype)."""
    index = prototype_index(choice)
    if index is None:
        raise InputError(
            "choose a prototype from the list to label it (the strongest match has no fixed number)"
        )
    return index


def class_choices(
    explorer: Explorer, model_id: str, predicted: bool = True
) -> list[tuple[str, str]]:
    """``("predicted class", PREDICTED)`` (unless ``predicted=False``), then ``(name, name)`` for every
    class.

    The value is the class's name rather than its index: API clients send names (a bare number such
    as 5 is refused as "no class 5", never read as the sixth class), and a name is unique in a model.
    """
    entries = [(name, name) for name in explorer.class_names(model_id)]
    return [(PREDICTED, PREDICTED), *entries] if predicted else entries


def class_index(explorer: Explorer, model_id: str, choice: object) -> int | None:
    """The class a :func:`class_choices` value names; ``None`` for the predicted class (or no choice).

    Raises:
        InputError: the model has no such class (the message lists its classes).
    """
    if choice is None or choice == "" or choice == PREDICTED:
        return None
    names = explorer.class_names(model_id)
    if not isinstance(choice, str) or choice not in names:
        raise InputError(
            f"model '{model_id}' has no class {shown(choice)} (classes: {', '.join(names)})"
        )
    return names.index(choice)
