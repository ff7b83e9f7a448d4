"""Optional login (``python app.py --auth FILE``), labels attributed to the login, and file confinement."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client

from explorer.auth import AuthError, Credentials, add_user, hash_password, verify_password
from explorer.labels.store import LabelStore
from tests.serving import app_process

PASSWORD = "correct horse battery"


def test_hash_round_trip_and_salting() -> None:
    first, second = (
        hash_password(PASSWORD, iterations=1_000),
        hash_password(PASSWORD, iterations=1_000),
    )
    assert first != second  # random salt
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "!", first)
    assert PASSWORD not in first


def test_credentials_file_is_created_private_and_never_holds_the_password(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    assert add_user(path, "alice", PASSWORD) is True
    assert add_user(path, "bob", "another secret") is True
    assert add_user(path, "alice", "a new password") is False  # replaced, not duplicated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text and "another secret" not in text
    credentials = Credentials.load(path)
    assert sorted(credentials.hashes) == ["alice", "bob"]
    assert credentials.check("alice", "a new password")
    assert not credentials.check("alice", PASSWORD)
    assert not credentials.check("mallory", "a new password")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("alice:hunter22\n", "line 1: not a pbkdf2_sha256 hash"),
        ("# nobody\n\n", "has no users"),
        ("no colon here\n", "line 1: expected"),
        ("alice:pbkdf2_sha256$10$AAAA$AAAA\n", "line 1: pbkdf2_sha256 hash with unusable"),
        ("alice:pbkdf2_sha256$x$AAAA$AAAA\n", "line 1: malformed"),
    ],
)
def test_bad_credentials_files_are_refused_by_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "users.txt"
    path.write_text(content)
    with pytest.raises(AuthError, match=message.replace("$", r"\$")):
        Credentials.load(path)


def test_duplicate_users_and_bad_new_users_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    encoded = hash_password(PASSWORD, iterations=1_000)
    path.write_text(f"alice:{encoded}\nalice:{encoded}\n")
    with pytest.raises(AuthError, match="line 2: user 'alice' appears twice"):
        Credentials.load(path)
    with pytest.raises(AuthError, match="at least 8"):
        add_user(tmp_path / "other.txt", "alice", "short")
    with pytest.raises(AuthError, match="user names"):
        add_user(tmp_path / "other.txt", "al:ice", PASSWORD)
    with pytest.raises(AuthError, match="cannot read"):
        Credentials.load(tmp_path / "missing.txt")


def test_users_cli_adds_a_user_and_app_refuses_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    done = subprocess.run(
        [sys.executable, "-m", "explorer", "users", "add", "carol", "--file", str(path),
         "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Credentials.load(path).check("carol", PASSWORD)
    path.write_text("carol:plaintext-password\n")
    started = subprocess.run(
        [sys.executable, "app.py", "--auth", str(path)], capture_output=True, text=True,
        timeout=120, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert started.returncode != 0
    assert "line 1: not a pbkdf2_sha256 hash" in started.stderr
    assert "Traceback" not in started.stderr


def call_raw(url: str, api_name: str, data: list) -> str:
    """Calls an endpoint over plain HTTP (Gradio's REST protocol) and returns the event stream."""
    request = urllib.request.Request(
        f"{url}gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        event = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event}", timeout=30) as response:
        return response.read().decode()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_login_guards_the_api_and_labels_carry_the_login(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    add_user(users, "alice", PASSWORD)
    store_path = tmp_path / "labels.sqlite3"
    with app_process(EXPLORER_AUTH_FILE=str(users), EXPLORER_LABELS_DB=str(store_path)) as (
        url, _, _,
    ):  # fmt: skip
        for path in ("config", "gradio_api/info", "gradio_api/file=" + os.path.abspath(__file__)):
            assert status_of(url + path) == 401, path
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("alice", "wrong password"), verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("mallory", PASSWORD), verbose=False)
        client = Client(url, auth=("alice", PASSWORD), verbose=False)
        # The typed reviewer name cannot impersonate anyone: the login is recorded.
        client.predict("synthetic", 2, "", "checked", "bob", api_name="/label")
    events = LabelStore(store_path).history()
    assert [(e.prototype, e.reviewer) for e in events] == [(2, "alice")]


@pytest.mark.slow
def test_files_outside_the_app_folders_are_not_served_or_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("model_id,prototype\nsecret,1\n")
    with app_process(EXPLORER_LABELS_DB=str(tmp_path / "labels.sqlite3")) as (url, _, _):
        for path in (
            "gradio_api/file=" + str(secret),
            "gradio_api/file=/etc/passwd",
            "gradio_api/file=../../../../etc/passwd",
            "gradio_api/file=%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "file=/etc/passwd",
        ):
            assert status_of(url + path) in (403, 404), path
        # A server path smuggled into an upload field (raw API call, no client-side upload) is
        # refused by Gradio before the app sees it: only files users uploaded are handed over.
        for path in (str(secret), "/etc/passwd"):
            assert call_raw(
                url, "import_labels", ["elpv", {"path": path, "meta": {"_type": "gradio.FileData"}}]
            ).startswith("event: error")
        _, table = Client(url, verbose=False).predict("elpv", "any", "", True, api_name="/labels")
        assert table["data"] == [], "nothing may have been imported"
