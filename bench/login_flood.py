"""A signed-in user's trivial call while anonymous clients flood the sign-in, before and after the
sign-in gate (``explorer/ui/login.py``).

Starts the app on 127.0.0.1 in its own process with a users file (alice, PBKDF2 at 600,000
iterations), signs alice in, and times ``--calls`` sequential ``/model_card`` calls (a Markdown line:
the cheapest queued endpoint) first alone, then while ``--clients`` threads post wrong passwords for
made-up names to ``/login`` as fast as they are answered. Each flood stops by itself after the timed
calls, ``--seconds`` or 5,000 attempts per client, whichever comes first.

Rows: Gradio's own ``/login`` (the ``auth`` callable run on the event loop, as before the gate); the
gate (``python app.py --auth``) flooded from one address; and the gate flooded from a new address
every attempt (sent as ``X-Forwarded-For``, which uvicorn takes from loopback as from a local proxy),
so that the per-address limit never engages and only the bounded pool stands between the flood and
the server.

Medians and maxima are over the calls that completed; "failed" counts the calls that ended in
the client's own timeout.

    python -m bench.login_flood [--clients 8] [--calls 10] [--seconds 300] [--build-up 15]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from gradio_client import Client

from explorer.auth import add_user

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
CALL_TIMEOUT = 300  # s, for one signed-in call (a hang guard, not a target)
GRADIO_OWN_LOGIN = """
import sys
from explorer.api import Explorer
from explorer.auth import Credentials
from explorer.ui.app import QUEUE_SIZE, build_app
app = build_app(Explorer())
app.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
app.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]),
           auth=Credentials.load(sys.argv[2]).check, quiet=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(users: Path, gradio_own_login: bool, folder: Path):
    """The app on a free loopback port, in its own process; killed afterwards."""
    port = free_port()
    env = {**os.environ, "EXPLORER_LABELS_DB": str(folder / "labels.sqlite3")}
    if gradio_own_login:
        command = [sys.executable, "-c", GRADIO_OWN_LOGIN, str(port), str(users)]
    else:
        env |= {"EXPLORER_AUTH_FILE": str(users), "EXPLORER_PORT": str(port)}
        command = [sys.executable, "app.py"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        started = time.monotonic()
        while time.monotonic() - started < 120 and process.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                time.sleep(0.25)
        else:
            raise SystemExit("the app did not start")
        yield url
    finally:
        process.kill()
        process.wait(timeout=30)


def flood(url: str, spread: bool, stop: threading.Event, answers: Counter, lock, seconds: float):
    rng, deadline = random.Random(), time.monotonic() + seconds
    with httpx.Client(timeout=CALL_TIMEOUT) as client:
        for _ in range(5_000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            headers = {}
            if spread:
                headers["X-Forwarded-For"] = f"10.{rng.randrange(256)}.{rng.randrange(256)}.1"
            try:
                status = client.post(
                    url + "login", headers=headers,
                    data={"username": f"user{rng.randrange(10**9)}", "password": "guess"},
                ).status_code  # fmt: skip
            except httpx.HTTPError:
                status = "error"
            with lock:
                answers[status] += 1


def timed_calls(client: Client, calls: int) -> list[float]:
    """Seconds per call; a call that fails (the client's own timeouts) counts as infinite."""
    times = []
    with ThreadPoolExecutor(1) as runner:
        for _ in range(calls):
            started = time.perf_counter()
            call = runner.submit(client.predict, "synthetic", api_name="/model_card")
            try:
                call.result(timeout=CALL_TIMEOUT)
                times.append(time.perf_counter() - started)
            except Exception:
                times.append(float("inf"))
    return times


def measure(
    url: str, alice: Client, spread: bool, args: argparse.Namespace
) -> tuple[list, list, Counter, float]:
    timed_calls(alice, 2)  # warm-up
    alone = timed_calls(alice, args.calls)
    stop, lock, answers = threading.Event(), threading.Lock(), Counter()
    threads = [
        threading.Thread(
            target=flood, args=(url, spread, stop, answers, lock, args.seconds), daemon=True
        )
        for _ in range(args.clients)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(args.build_up)  # long enough for one address to pass its free failures
    try:
        flooded = timed_calls(alice, args.calls)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=CALL_TIMEOUT)
    return alone, flooded, answers, time.monotonic() - started


def median(times: list[float]) -> str:
    done = [t for t in times if t != float("inf")]
    return f"{statistics.median(done):.3f}" if done else "-"


def most(times: list[float]) -> str:
    done = [t for t in times if t != float("inf")]
    return f"{max(done):.2f}" if done else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--build-up", type=float, default=15.0, help="s of flood before timing")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        users = Path(folder) / "users.txt"
        add_user(users, "alice", PASSWORD)
        with server(users, True, Path(folder)) as url:
            alice = Client(url, auth=("alice", PASSWORD), verbose=False)
            rows.append(("Gradio's own /login", *measure(url, alice, False, args)))
        with server(users, False, Path(folder)) as url:
            # Signed in once, before the floods: the one-address flood holds 127.0.0.1's sign-ins.
            alice = Client(url, auth=("alice", PASSWORD), verbose=False)
            rows.append(("gate, many addresses", *measure(url, alice, True, args)))
            rows.append(("gate, one address", *measure(url, alice, False, args)))
    print(
        f"signed-in /model_card call while {args.clients} anonymous clients flood /login; "
        f"{args.calls} calls each, {os.cpu_count()} cores"
    )
    print(f"{'':22}{'alone: median':>14}{'max':>7}{'flooded: median':>17}{'max':>7}{'failed':>8}")
    for name, alone, flooded, answers, seconds in rows:
        total = sum(answers.values())
        shown = ", ".join(f"{status}: {n}" for status, n in sorted(answers.items(), key=str))
        failed = sum(t == float("inf") for t in alone + flooded)
        print(
            f"{name:22}{median(alone):>14}{most(alone):>7}{median(flooded):>17}{most(flooded):>7}"
            f"{failed:8}  flood: {total} attempts in {seconds:.0f} s ({shown})"
        )


if __name__ == "__main__":
    main()
