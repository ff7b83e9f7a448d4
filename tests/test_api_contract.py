"""The app's public API (every event with an ``api_name``) as a contract for ``gradio_client`` users.

The signature of each endpoint is pinned here: renaming a parameter or changing what comes back is a
breaking change for scripts, so it must show up as a failing test and be made on purpose. Every
endpoint must also be called by some test (this file or another), and the calls here check the
answers' meaning, not only that something came back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from explorer.api import Explorer
from tests.serving import served_app

CONTRACT: dict[str, tuple[list[str], list[str]]] = {
    "/attribute": (
        ["path", "model_id", "target_choice", "method_label", "kind", "proto", "smooth",
         "same_scale", "cmap"],
        ["Image", "Image", "Markdown"],
    ),
    "/attributes": (
        ["path", "model_id", "choice", "mode_name", "reading_name"], ["Plot", "Markdown"]
    ),
    "/before_after": (["before", "after"], ["Markdown"]),
    "/cancel_retrain": (["model_id"], ["Markdown", "Timer"]),
    "/compare": (["model_id"], ["Markdown"]),
    "/compute_attributes": (
        ["model_id", "prototype", "mode_name", "reading_name"], ["Plot", "Markdown", "Plot"]
    ),
    "/explain": (
        ["path", "model_id", "k", "rank", "target_choice", "cmap", "what_if_on"],
        ["Markdown", "Label", "Plot", "Dataframe", "Gallery", "Image", "Image", "Markdown"],
    ),
    "/export_labels": (["model_id", "what"], ["File"]),
    "/import_labels": (["model_id", "file"], ["Markdown"]),
    "/label": (["model_id", "chosen", "reason_text", "comment_text", "name"], ["Markdown"]),
    "/label_history": (["model_id", "number"], ["Dataframe"]),
    "/labels": (["model_id", "verdict_choice", "reviewer_name", "all_models"], ["Markdown", "Dataframe"]),
    "/metrics": (["model_id"], ["Markdown"]),
    "/model_card": (["model_id"], ["Markdown"]),
    "/nearest": (
        ["model_id", "prototype"], ["Markdown", "Image", "Image", "Plot", "Gallery", "Gallery"]
    ),
    "/prototype": (
        ["model_id", "prototype"], ["Markdown", "Image", "Image", "Plot", "Gallery", "Gallery"]
    ),
    "/prototype_attributes": (
        ["model_id", "prototype", "mode_name", "reading_name"], ["Plot", "Markdown", "Plot"]
    ),
    "/redundancy": (["model_id", "cut"], ["Markdown", "Plot", "Dataframe", "Gallery"]),
    "/report": (["path", "model_id", "what_if_on"], ["File"]),
    "/retrain": (["model_id"], ["Markdown", "Timer"]),
    "/review_queue": (["model_id"], ["Markdown", "Dataframe"]),
    "/undo_label": (["model_id", "chosen", "name"], ["Markdown"]),
    "/what_if": (["model_id", "cut", "disabled_text", "cluster_number"], ["Markdown", "Dataframe"]),
    "/why_not": (["path", "model_id", "target_choice", "other"], ["Plot", "Markdown"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with served_app() as url:
        yield Client(url, verbose=False)


def test_every_endpoint_keeps_its_signature(client: Client) -> None:
    api = client.view_api(return_format="dict", print_info=False)
    assert not api["unnamed_endpoints"], "every public event needs an api_name (or api_name=False)"
    actual = {
        name: (
            [p["parameter_name"] for p in endpoint["parameters"]],
            [r["component"] for r in endpoint["returns"]],
        )
        for name, endpoint in api["named_endpoints"].items()
    }
    assert actual == CONTRACT


def test_every_endpoint_is_exercised_by_a_test() -> None:
    tests = Path(__file__).parent
    called = set()
    for path in tests.rglob("test_*.py"):
        called |= set(re.findall(r'api_name="(/[a-z_]+)"', path.read_text()))
    assert set(CONTRACT) - called == set()


def test_report_endpoint_returns_the_html_and_pdf_of_the_case(client: Client) -> None:
    explorer = Explorer()
    example = explorer.bundle("synthetic").examples()[0]
    html, pdf = client.predict(handle_file(str(example)), "synthetic", False, api_name="/report")
    text = Path(html).read_text(encoding="utf-8")
    predicted = explorer.predict(example, "synthetic").predicted_class
    assert explorer.bundle("synthetic").content_hash in text and predicted in text
    assert not re.search(r"""(src|href)=["']https?://""", text)
    assert Path(pdf).read_bytes().startswith(b"%PDF")
    with pytest.raises(AppError, match="Upload an image"):
        client.predict(None, "synthetic", False, api_name="/report")


def test_compare_endpoint_sets_a_model_beside_its_data_sets_others(client: Client) -> None:
    table = client.predict("synthetic_pipnet", api_name="/compare")
    assert table.startswith("## Beside the other models of `synthetic`")
    assert "| family | PIP-Net | ProtoPNet |" in table
    assert client.predict("elpv", api_name="/compare") == ""


@pytest.mark.parametrize(
    ("endpoint", "arguments"),
    [
        ("/model_card", ["no_such_model"]),
        ("/prototype", ["no_such_model", 0]),
        ("/label", ["no_such_model", 0, "", "", "Ana"]),
        ("/redundancy", ["no_such_model", 0.2]),
        ("/compare", ["no_such_model"]),
        ("/metrics", ["no_such_model"]),
        ("/review_queue", ["no_such_model"]),
    ],
)
def test_an_unknown_model_is_named_in_the_error(
    client: Client, endpoint: str, arguments: list
) -> None:
    with pytest.raises(AppError, match="no_such_model"):
        client.predict(*arguments, api_name=endpoint)
    assert client.predict("synthetic", api_name="/model_card").startswith("#")


def test_retrain_endpoints_say_why_nothing_runs_and_compare_two_models(client: Client) -> None:
    with pytest.raises(AppError, match="Nothing to retrain from yet: label prototypes misleading"):
        client.predict("synthetic", api_name="/retrain")
    with pytest.raises(AppError, match=r"Not available: retraining from labels .*PIP-Net"):
        client.predict("synthetic_pipnet", api_name="/retrain")
    with pytest.raises(AppError, match="no retrain of 'synthetic' is running"):
        client.predict("synthetic", api_name="/cancel_retrain")
    with pytest.raises(AppError, match="different prototypes; a before/after compares a model"):
        client.predict("synthetic", "synthetic_pipnet", api_name="/before_after")
    with pytest.raises(AppError, match="after: unknown model 'nope'"):
        client.predict("synthetic", "nope", api_name="/before_after")
