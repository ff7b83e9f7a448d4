"""Every endpoint of the API contract, called with wrong types, out-of-range and absurd values.

Each call must be refused with a message that names the problem (the field and, for numbers and
text, the limit) -- never Gradio's generic "upstream app has raised an exception" nor an empty
error -- and the server must keep answering: a valid call follows every refused one. One app is
launched for the whole table. The checks themselves live in explorer/validation.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from explorer.api import Explorer
from explorer.labels.exchange import FORMAT_TAG
from tests.serving import served_app
from tests.test_api_contract import CONTRACT

MODEL = "synthetic"  # 30 prototypes, 6 classes: fast to explain
HUGE = "x" * 200_000
GENERIC = "upstream Gradio app has raised an exception"
MAX_MESSAGE_CHARS = 1_000  # a refusal quotes absurd values shortened
READING = "reference (raw, as the paper)"
EXAMPLE = str(Explorer().bundle(MODEL).examples()[0])
NOT_UPLOADED = "must be a file uploaded to this app"
CHOICES = "not in the list of choices"  # Gradio's own refusal for a fixed choice: names the choices
WHOLE = "must be a whole number, not 2.5"
RANGE = r"is out of range \(0\.\.29\)"


def upload() -> dict:
    return handle_file(EXAMPLE)


def labels_file(name: str, content: str) -> Callable[[Path], dict]:
    """An upload of a file written when the test runs (into its temporary folder)."""

    def write(tmp: Path) -> dict:
        path = tmp / name
        path.write_text(content, encoding="utf-8")
        return handle_file(str(path))

    return write


def forged_file() -> Callable[[Path], dict]:
    event = {
        "id": 1, "model_hash": Explorer().content_hash(MODEL), "model_id": MODEL, "prototype": 9,
        "case": None, "verdict": "misleading", "reason": None, "comment": "", "reviewer": "bob",
        "time": "2099-01-01T00:00:00+00:00", "reverses": None,
    }  # fmt: skip
    document = {"format": FORMAT_TAG, "version": 1, "events": [event]}
    return labels_file("forged.json", json.dumps(document))


# endpoint -> (valid arguments, [(parameter, bad value, what the message must say (a regex))]);
# a callable value is made when the test runs, from its temporary folder
def table() -> dict[str, tuple[list, list[tuple[str, object, str]]]]:
    return {
        "/attribute": (
            [upload(), MODEL, "predicted class", "Grad-CAM", "prototype", "P7 · hue", False, False, "jet"],
            [("path", "abc", NOT_UPLOADED), ("path", {"path": EXAMPLE}, NOT_UPLOADED),
             ("path", None, "Upload an image"), ("model_id", 5, CHOICES),
             ("target_choice", HUGE, "has no class 'x+'… \\(200,000 characters\\)"),
             ("target_choice", 5, "has no class 5"), ("method_label", "nope", CHOICES),
             ("kind", 2.5, CHOICES), ("proto", 2.5, WHOLE), ("proto", "P999", RANGE),
             ("proto", -1, RANGE), ("proto", 1e300, r"1e\+300 is out of range"),
             ("proto", "abc", "'abc' names no prototype"), ("proto", "P2.5", "names no prototype"),
             ("smooth", "yes", "SmoothGrad must be true or false, not the text 'yes'"),
             ("same_scale", 1, "Shared colour scale must be true or false, not 1"),
             ("cmap", "nope", CHOICES)],
        ),
        "/attributes": (
            [upload(), MODEL, "P7 · hue", "disentangled", READING],
            [("path", "abc", NOT_UPLOADED), ("model_id", 5, CHOICES),
             ("choice", 2.5, WHOLE), ("choice", "P999", RANGE), ("choice", True, "not True"),
             ("mode_name", "nope", CHOICES), ("reading_name", 5, CHOICES)],
        ),
        # the retrain endpoints' well-formed calls are refused for what the shipped models are (no
        # labels, no retrained model): their rows check both kinds of refusal
        "/before_after": (
            [MODEL, MODEL],
            [("before", None, "Choose two models of one lineage"),
             ("after", MODEL, "Choose two different models \\(both are 'synthetic'\\)"),
             ("after", HUGE, r"after: unknown model 'x+'… \(200,000 characters\)"),
             ("after", "nope", r"after: unknown model 'nope' \(available: elpv, ")],
        ),
        "/cancel_retrain": (
            [MODEL], [("model_id", 5, CHOICES), ("model_id", MODEL, "no retrain of 'synthetic' is running")],
        ),
        "/compare": (
            [MODEL],
            [("model_id", 5, CHOICES), ("model_id", "no_such_model", "no_such_model")],
        ),
        "/compute_attributes": (
            [MODEL, 4, "reference", READING],
            [("model_id", 5, CHOICES), ("prototype", 2.5, WHOLE), ("prototype", "abc", "not the text 'abc'"),
             ("prototype", 999, RANGE), ("prototype", -1, RANGE), ("prototype", None, "Enter a prototype number"),
             ("mode_name", "nope", CHOICES), ("reading_name", "nope", CHOICES)],
        ),
        "/explain": (
            [upload(), MODEL, 10, "contribution", "predicted class", "jet", False],
            [("path", "abc", NOT_UPLOADED), ("path", {"path": "/etc/passwd"}, NOT_UPLOADED),
             ("model_id", HUGE[:100], CHOICES),
             ("k", "abc", "Prototype pairs to show must be a whole number, not the text 'abc'"),
             ("k", 2.5, "Prototype pairs to show " + WHOLE), ("k", 0, r"0 is out of range \(1\.\.20\)"),
             ("k", 1e300, r"1e\+300 is out of range \(1\.\.20\)"), ("k", None, "not nothing \\(None\\)"),
             ("rank", "nope", CHOICES), ("target_choice", 5, "has no class 5"),
             ("cmap", 5, CHOICES), ("what_if_on", "yes", "What-if must be true or false")],
        ),
        "/export_labels": (
            [MODEL, "full history (JSON)"],
            [("model_id", 2.5, CHOICES), ("what", "nope", CHOICES)],
        ),
        "/import_labels": (
            [MODEL, labels_file("empty.csv", "model_hash,prototype,verdict,reviewer,time\n")],
            [("model_id", 5, CHOICES), ("file", "abc", NOT_UPLOADED), ("file", 5, NOT_UPLOADED),
             ("file", None, "Choose a CSV or JSON file"),
             ("file", labels_file("deep.json", "[" * 50_000 + "]" * 50_000),
              r"deep\.json nests too deeply: more than 32 levels"),
             ("file", forged_file(), "field 'time': .* lies in the future"),
             ("file", labels_file("junk.json", "{"), r"junk\.json line 1.*not valid JSON")],
        ),
        "/label": (
            [MODEL, 3, "", "", "Ana"],
            [("model_id", 5, CHOICES), ("chosen", 2.5, WHOLE), ("chosen", "abc", "not the text 'abc'"),
             ("chosen", 1e300, r"1e\+300 is out of range \(0\.\.29\)"), ("chosen", -1, RANGE),
             ("chosen", 999, RANGE), ("chosen", True, "not True"), ("chosen", None, "choose a prototype"),
             ("reason_text", "nope", CHOICES),
             ("comment_text", HUGE, "comment is 200,000 characters long; at most 10,000 are allowed"),
             ("name", "x" * 1001, "reviewer is 1,001 characters long; at most 100 are allowed"),
             ("name", "x" * 101, "reviewer is 101 characters long; at most 100 are allowed"),
             ("name", "", "reviewer must not be empty"), ("name", "two\nlines", "one line")],
        ),
        "/label_history": (
            [MODEL, 3],
            [("model_id", 5, CHOICES), ("number", 1e300, r"1e\+300 is out of range \(0\.\.29\)"),
             ("number", 2.5, "History of prototype " + WHOLE), ("number", "abc", "not the text 'abc'"),
             ("number", 999, RANGE), ("number", -1, RANGE), ("number", None, "Enter a prototype number")],
        ),
        "/labels": (
            [MODEL, "any", "", False],
            [("model_id", 5, CHOICES), ("verdict_choice", "nope", CHOICES),
             ("reviewer_name", HUGE, "reviewer is 200,000 characters long; at most 100 are allowed"),
             ("all_models", "yes", "All models must be true or false")],
        ),
        # well-formed, these two measure the prototypes (a minute): tests/test_trust_events.py
        "/metrics": ([MODEL], [("model_id", 5, CHOICES), ("model_id", "no_such_model", "no_such_model")]),
        "/model_card": ([MODEL], [("model_id", 5, CHOICES), ("model_id", "no_such_model", "no_such_model")]),
        "/nearest": (
            [MODEL, 4],
            [("model_id", 5, CHOICES), ("prototype", 2.5, WHOLE), ("prototype", "abc", "not the text 'abc'"),
             ("prototype", 999, RANGE), ("prototype", None, "Enter a prototype number")],
        ),
        "/prototype": (
            [MODEL, 4],
            [("model_id", 5, CHOICES), ("prototype", 2.5, WHOLE), ("prototype", "abc", "not the text 'abc'"),
             ("prototype", 1e300, r"1e\+300 is out of range"), ("prototype", -1, RANGE),
             ("prototype", None, "Enter a prototype number")],
        ),
        "/prototype_attributes": (
            [MODEL, 4, "reference", READING],
            [("model_id", 5, CHOICES), ("prototype", 2.5, WHOLE), ("prototype", 999, RANGE),
             ("prototype", "abc", "not the text 'abc'"), ("mode_name", "nope", CHOICES),
             ("reading_name", 5, CHOICES)],
        ),
        "/redundancy": (
            [MODEL, 0.2],
            [("model_id", 5, CHOICES), ("cut", "abc", "Cluster threshold \\(cut height\\) must be a number"),
             ("cut", 1e300, r"1e\+300 is out of range \(0\.02\.\.0\.6\)"), ("cut", -1, "out of range"),
             ("cut", None, "must be a number, not nothing")],
        ),
        "/report": (
            [upload(), MODEL, False],
            [("path", "abc", NOT_UPLOADED), ("path", None, "Upload an image"), ("model_id", 5, CHOICES),
             ("what_if_on", "yes", "What-if must be true or false")],
        ),
        "/retrain": (
            [MODEL], [("model_id", 5, CHOICES), ("model_id", MODEL, "Nothing to retrain from yet")],
        ),
        "/review_queue": (
            [MODEL], [("model_id", 5, CHOICES), ("model_id", "no_such_model", "no_such_model")],
        ),
        "/undo_label": (
            [MODEL, 3, "Ana"],
            [("model_id", 5, CHOICES), ("chosen", 2.5, WHOLE), ("chosen", 999, RANGE),
             ("chosen", "abc", "not the text 'abc'"), ("chosen", -1, RANGE),
             ("name", "x" * 101, "at most 100 are allowed"), ("name", "", "reviewer must not be empty")],
        ),
        "/what_if": (
            [MODEL, 0.2, "0, 1", None],
            [("model_id", 5, CHOICES), ("cut", "abc", "must be a number"),
             ("disabled_text", "P2.5", "'P2.5' is not a prototype number between 0 and 29"),
             ("disabled_text", HUGE, r"'x+'… \(200,000 characters\) is not a prototype number"),
             ("disabled_text", "P999", "not a prototype number between 0 and 29"),
             ("cluster_number", 2.5, WHOLE), ("cluster_number", "abc", "not the text 'abc'")],
        ),
        "/why_not": (
            [upload(), MODEL, "predicted class", "hue"],
            [("path", "abc", NOT_UPLOADED), ("model_id", 5, CHOICES),
             ("target_choice", HUGE, r"has no class 'x+'… \(200,000 characters\)"),
             ("other", 5, "has no class 5")],
        ),
    }  # fmt: skip


def made(value: object, tmp: Path) -> object:
    return value(tmp) if callable(value) else value


CASES = [(endpoint, *bad) for endpoint, (_, bads) in table().items() for bad in bads]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Path]]:
    tmp = tmp_path_factory.mktemp("inputs")
    explorer = Explorer(label_path=tmp / "labels.sqlite3")
    with served_app(explorer) as url:
        yield Client(url, verbose=False), tmp


def test_the_table_covers_every_parameter_of_every_endpoint() -> None:
    rows = table()
    assert set(rows) == set(CONTRACT)
    for endpoint, (valid, bads) in rows.items():
        parameters = CONTRACT[endpoint][0]
        assert len(valid) == len(parameters), endpoint
        assert {name for name, _, _ in bads} == set(parameters), endpoint


@pytest.mark.parametrize(
    ("endpoint", "parameter", "value", "expected"),
    CASES,
    ids=[f"{e}-{p}-{'file' if callable(v) else str(v)[:12]}" for e, p, v, _ in CASES],
)
def test_a_bad_value_gets_a_clear_refusal_and_the_server_keeps_serving(
    served: tuple[Client, Path], endpoint: str, parameter: str, value: object, expected: str
) -> None:
    client, tmp = served
    arguments = [made(v, tmp) for v in table()[endpoint][0]]
    arguments[CONTRACT[endpoint][0].index(parameter)] = made(value, tmp)
    with pytest.raises(AppError) as refused:
        client.predict(*arguments, api_name=endpoint)
    message = str(refused.value)
    assert GENERIC not in message and message not in ("", "None"), message
    assert re.search(expected, message), message
    assert "Traceback" not in message and len(message) < MAX_MESSAGE_CHARS, message[:300]
    assert client.predict(MODEL, api_name="/model_card").startswith("#")  # still serving


def test_valid_calls_still_answer_after_the_table(served: tuple[Client, Path]) -> None:
    client, tmp = served
    for endpoint in (
        "/label",
        "/undo_label",
        "/import_labels",
        "/labels",
        "/prototype",
        "/explain",
    ):
        arguments = [made(v, tmp) for v in table()[endpoint][0]]
        assert client.predict(*arguments, api_name=endpoint) is not None, endpoint
    history = client.predict(MODEL, 3, api_name="/label_history")
    assert [row[2] for row in history["data"]] == ["valid", "undo of #1"]
