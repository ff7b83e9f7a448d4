"""The Gradio app on 127.0.0.1, driven through gradio_client as a remote user would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from explorer.api import Explorer
from tests.conftest import SHIPPED_MODELS
from tests.corpus import bad_image_corpus
from tests.serving import app_process, served_app


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with served_app() as url:
        yield Client(url, verbose=False)


def explain(client: Client, image: Path, model_id: str) -> tuple:
    return client.predict(
        handle_file(str(image)), model_id, 10, "contribution", "predicted class", "jet",
        api_name="/explain",
    )  # fmt: skip


@pytest.mark.parametrize("model_id", SHIPPED_MODELS)
def test_explain_answers_for_every_shipped_model(client: Client, model_id: str) -> None:
    example = Explorer().bundle(model_id).examples()[0]
    summary, label, evidence, table, pairs, post_hoc, own, note = explain(client, example, model_id)
    assert summary.startswith("Predicted *")
    assert label["label"] in summary
    assert len(table["data"]) == 10
    assert [row[0] for row in table["data"]] == list(range(1, 11))
    assert len(pairs) == 10
    assert evidence is not None and post_hoc is not None and own is not None
    assert "Grad-CAM" in note or "gradcam" in note


def test_attribution_and_why_not_answer(client: Client) -> None:
    example = Explorer().bundle("fashion_mnist").examples()[0]
    for method in ("Grad-CAM", "Occlusion", "Integrated Gradients"):
        left, right, note = client.predict(
            handle_file(str(example)), "fashion_mnist", "predicted class", method, "prototype", "P13 · Trouser",
            False, True, "cividis", api_name="/attribute",
        )  # fmt: skip
        assert left is not None and right is not None and "prototype" in note
    figure, text = client.predict(
        handle_file(str(example)), "fashion_mnist", "predicted class", "Bag", api_name="/why_not"
    )
    assert figure is not None and text.startswith("**Text view of the chart** — Why")


def test_prototype_browser_answers_for_every_shipped_model(client: Client) -> None:
    for model_id in SHIPPED_MODELS:
        details, source, self_map, weights, _train, _test = client.predict(
            model_id, 1, api_name="/prototype"
        )
        assert details.startswith("### Prototype 1")
        assert source is not None and self_map is not None and weights is not None


@pytest.mark.slow
def test_redundancy_tab_and_what_if_answer_for_every_shipped_model(client: Client) -> None:
    for model_id in SHIPPED_MODELS:
        summary, heatmap, _, _ = client.predict(model_id, 0.2, api_name="/redundancy")
        assert "clusters at threshold 0.20" in summary and heatmap is not None
        outcome, per_class = client.predict(model_id, 0.2, "0, 1", None, api_name="/what_if")
        assert "Disabled P0, P1" in outcome and "→" in outcome
        assert len(per_class["data"]) == len(Explorer().bundle(model_id).spec.class_names)
    with pytest.raises(AppError, match="not a prototype number"):
        client.predict("synthetic", 0.2, "P999", None, api_name="/what_if")


def test_attribute_explanations_answer(client: Client) -> None:
    example = Explorer().bundle("synthetic").examples()[0]
    figure, text = client.predict(
        handle_file(str(example)), "synthetic", "P7 · hue", "disentangled",
        "reference (raw, as the paper)", api_name="/attributes",
    )  # fmt: skip
    assert figure is not None and "prototype 7" in text and "reading" in text
    # shipped with the model: answered at once, nothing computed
    chart, text, _ = client.predict(
        "elpv", 3, "reference", "reference (raw, as the paper)", api_name="/prototype_attributes"
    )
    assert chart is not None and "Prototype 3" in text and "from train to test" in text


@pytest.mark.slow
def test_nearest_patches_and_global_attributes_are_computed_through_the_app(client: Client) -> None:
    details, _, _, _, train, test = client.predict("synthetic", 4, api_name="/nearest")
    assert "from its own class" in details and len(train) == 5 and len(test) == 5
    chart, text, dose = client.predict(
        "synthetic", 4, "reference", "reference (raw, as the paper)", api_name="/compute_attributes"
    )
    assert chart is not None and dose is not None
    assert "Prototype 4" in text and "from train to test" in text and "Welch" in text
    card = client.predict("synthetic", api_name="/model_card")
    assert "Nearest patches and per-image scores, test split: shipped with the model, 20" in card
    assert "Attribute explanation (reference set), train split: shipped with the model" in card


def test_labels_import_through_the_app(client: Client, tmp_path: Path) -> None:
    from explorer.labels import exchange
    from explorer.labels.store import LabelStore

    other = LabelStore(tmp_path / "other.sqlite3")
    bundle = Explorer().bundle("synthetic")
    other.add(bundle.content_hash, "synthetic", 9, "redundant", "Cleo", comment="same as P8")
    exchange.export_json(other, tmp_path / "labels.json")
    message = client.predict(
        "synthetic", handle_file(str(tmp_path / "labels.json")), api_name="/import_labels"
    )
    assert message.startswith("Imported 1 new events")
    again = client.predict(
        "synthetic", handle_file(str(tmp_path / "labels.json")), api_name="/import_labels"
    )
    assert again.startswith("Imported 0 new events")
    with pytest.raises(AppError):
        client.predict(
            "synthetic", handle_file(str(tmp_path / "other.sqlite3")), api_name="/import_labels"
        )


def test_model_card_answers_for_every_shipped_model(client: Client) -> None:
    for model_id in SHIPPED_MODELS:
        card = client.predict(model_id, api_name="/model_card")
        bundle = Explorer().bundle(model_id)
        assert card.startswith(f"# {bundle.spec.title}") and bundle.content_hash in card
        assert "Licence" in card and "Nearest patches, train split" in card


def test_bad_upload_gets_a_clear_message_and_the_app_keeps_serving(
    client: Client, tmp_path: Path
) -> None:
    corpus = bad_image_corpus(tmp_path)
    for name in ("text.png", "truncated.png", "huge.png"):
        path, expect = corpus[name]
        with pytest.raises(AppError, match=expect):
            explain(client, path, "fashion_mnist")
    rgba, _ = corpus["rgba.png"]
    summary, *_ = explain(client, rgba, "synthetic")
    assert summary.startswith("Predicted")
    with pytest.raises(AppError, match="out of range"):
        client.predict("fashion_mnist", 100000, api_name="/prototype")


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


@pytest.mark.slow
def test_python_app_py_serves_the_default_model_on_loopback_only() -> None:
    with app_process() as (url, page, seconds):
        print(f"app ready after {seconds:.1f} s")
        assert "Prototype explanation explorer" in page
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
