"""The checks every caller's values go through (explorer/validation.py); through the app:
tests/test_api_inputs.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explorer.errors import ExplorerError
from explorer.validation import (
    InputError,
    bounded_text,
    choice,
    flag,
    prototype_index,
    real_number,
    shown,
    whole_number,
)


@pytest.mark.parametrize(
    ("value", "expected"), [(3, 3), (3.0, 3), (np.int64(3), 3), (np.float32(3), 3)]
)
def test_whole_numbers_are_accepted_as_int(value: object, expected: int) -> None:
    number = prototype_index(value, 30)
    assert number == expected and type(number) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2.5, "prototype must be a whole number, not 2.5"),
        (True, "prototype must be a whole number, not True"),
        ("3", "prototype must be a whole number, not the text '3'"),
        (None, "prototype must be a whole number, not nothing (None)"),
        (math.nan, "prototype must be a whole number, not nan"),
        (math.inf, "prototype must be a whole number, not inf"),
        ([1], "prototype must be a whole number, not list [1]"),
        (-1, r"prototype -1 is out of range (0..29)"),
        (30, r"prototype 30 is out of range (0..29)"),
        (1e300, r"prototype 1e+300 is out of range (0..29)"),
        (10**400, "prototype a number of about 400 digits is out of range (0..29)"),
    ],
)
def test_anything_else_is_refused_naming_the_value_and_the_range(
    value: object, message: str
) -> None:
    with pytest.raises(InputError) as refused:
        prototype_index(value, 30)
    assert str(refused.value) == message
    assert isinstance(refused.value, ExplorerError) and isinstance(refused.value, ValueError)


def test_integers_only_when_floats_are_not_allowed() -> None:
    assert whole_number(np.int32(4), "prototype", floats=False) == 4
    with pytest.raises(InputError, match=r"prototype must be an integer, not 1\.0"):
        whole_number(1.0, "prototype", floats=False)
    with pytest.raises(InputError, match=r"at least 1"):
        whole_number(0, "pairs", minimum=1)


def test_real_numbers() -> None:
    assert real_number(0.25, "threshold", minimum=0.02, maximum=0.6) == 0.25
    with pytest.raises(InputError, match=r"threshold 0\.7 is out of range \(0\.02\.\.0\.6\)"):
        real_number(0.7, "threshold", minimum=0.02, maximum=0.6)
    for bad in ("0.3", None, True):
        with pytest.raises(InputError, match="threshold must be a number"):
            real_number(bad, "threshold")
    with pytest.raises(InputError, match="must be a finite number, not inf"):
        real_number(math.inf, "threshold")


def test_text_messages_state_the_limit_that_applies() -> None:
    assert bounded_text("  ann ", "reviewer", 100, strip=True) == "ann"
    for text, message in [
        ("x" * 1001, "reviewer is 1,001 characters long; at most 100 are allowed"),
        ("x" * 101, "reviewer is 101 characters long; at most 100 are allowed"),
        ("   ", "reviewer must not be empty"),
        ("a\nb", "reviewer must be on one line"),
        ("nul\x00", "reviewer must not contain NUL characters"),
        (5, "reviewer must be text, not 5"),
    ]:
        with pytest.raises(InputError) as refused:
            bounded_text(text, "reviewer", 100, strip=True, allow_empty=False, one_line=True)
        assert str(refused.value) == message


def test_choices_and_switches() -> None:
    assert choice("csv", "format", ("json", "csv")) == "csv"
    with pytest.raises(
        InputError, match=r"format must be one of 'json', 'csv', not the text 'pdf'"
    ):
        choice("pdf", "format", ("json", "csv"))
    assert flag(True, "what-if") is True and flag(None, "what-if") is False
    with pytest.raises(InputError, match="what-if must be true or false, not the text 'yes'"):
        flag("yes", "what-if")


def test_absurd_values_are_quoted_shortened() -> None:
    assert shown("x" * 200_000) == repr("x" * 60) + "… (200,000 characters)"
    assert shown(10**20) == "1e+20" and shown(12) == "12"
    nested: list = []
    for _ in range(10_000):
        nested = [nested]
    assert len(shown(nested)) < 100  # no RecursionError, no megabyte
