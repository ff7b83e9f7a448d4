"""Sign-in limits under ``--auth``: backoff per account and per address, bounded memory, and the
bounded hashing pool — unit tests on an injected clock (no sleeps) and a flood of the real app."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from explorer.api import Explorer
from explorer.auth import (
    Credentials,
    HashPool,
    LoginLimits,
    LoginThrottle,
    PoolBusy,
    SignIn,
    add_user,
    address_key,
    hash_password,
)
from explorer.ui.app import launch
from tests.serving import free_port

PASSWORD = "correct horse battery"
HERE, THERE = "203.0.113.7", "198.51.100.9"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cheap_credentials(*users: str) -> Credentials:
    """Users whose password is PASSWORD, hashed with few iterations so tests run fast."""
    return Credentials({user: hash_password(PASSWORD, iterations=1_000) for user in users})


def test_right_password_is_refused_after_k_failures_until_the_backoff_passes() -> None:
    clock, limits = Clock(), LoginLimits()
    sign_in = SignIn(cheap_credentials("alice"), limits, clock)
    for attempt in range(1, limits.account_free + 1):
        verdict = sign_in.check("alice", f"guess {attempt}", HERE)
        assert verdict.outcome == "wrong", attempt
    assert "try again in 1 second." in verdict.message  # the K-th failure starts the wait
    refused = sign_in.check("alice", PASSWORD, HERE)
    assert (refused.outcome, refused.retry_after) == ("wait", 1)
    assert "try again in 1 second" in refused.message
    clock.now += 0.5
    assert sign_in.check("alice", PASSWORD, HERE).outcome == "wait"  # still refused, unchecked
    assert sign_in.pool.done == limits.account_free  # refused attempts never reached the hashing
    clock.now += 0.5
    assert sign_in.check("alice", PASSWORD, HERE).outcome == "ok"
    # The success cleared the account: K more failures are free again.
    for _ in range(limits.account_free - 1):
        assert sign_in.check("alice", "wrong", HERE).retry_after is None


def test_waits_double_up_to_the_cap_and_are_forgotten_after_an_hour() -> None:
    clock, limits = Clock(), LoginLimits()
    sign_in = SignIn(cheap_credentials("alice"), limits, clock)
    waits = []
    for _ in range(limits.account_free + 12):
        verdict = sign_in.check("alice", "wrong", HERE)
        if verdict.retry_after:
            waits.append(verdict.retry_after)
            assert sign_in.check("alice", PASSWORD, HERE).outcome == "wait"
            clock.now += verdict.retry_after
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    assert "try again in 15 minutes" in verdict.message
    # An hour after the last failure they are forgotten: K failures are free again.
    clock.now += limits.forget_after
    for _ in range(limits.account_free - 1):
        assert sign_in.check("alice", "wrong", HERE).retry_after is None


def test_answers_do_not_tell_whether_an_account_exists() -> None:
    clock = Clock()
    sign_in = SignIn(cheap_credentials("alice"), LoginLimits(), clock)

    def answers(user: str, address: str) -> list[tuple]:
        return [
            (v.outcome, v.message, v.retry_after)
            for v in (sign_in.check(user, "wrong", address) for _ in range(7))
        ]

    # mallory does not exist: her checks verify a dummy hash, and her failures count the same way
    assert answers("alice", HERE) == answers("mallory", THERE)


def test_an_address_waits_after_failures_across_many_names() -> None:
    clock = Clock()
    sign_in = SignIn(cheap_credentials("alice", "bob"), LoginLimits(address_free=3), clock)
    for name in ("bob", "carol!", "x" * 65):  # names that cannot exist count against the address
        assert sign_in.check(name, "wrong", HERE).outcome == "wrong"
    assert sign_in.check("alice", PASSWORD, HERE).outcome == "wait"  # a spray from HERE
    assert sign_in.check("alice", PASSWORD, THERE).outcome == "ok"  # another address is not held
    assert sign_in.check("alice", PASSWORD, HERE).outcome == "wait"  # success does not clear HERE
    clock.now += 1
    assert sign_in.check("alice", PASSWORD, HERE).outcome == "ok"


def test_memory_stays_bounded_with_many_names_and_addresses() -> None:
    clock, limits = Clock(), LoginLimits(max_keys=1_000)
    throttle = LoginThrottle(["alice"], limits, clock)
    for _ in range(limits.account_free + 10):
        throttle.record("alice", HERE, ok=False)
    assert throttle.wait("alice", THERE) == limits.max_wait
    for n in range(50_000):  # distinct made-up names from distinct addresses
        throttle.record(f"user{n}", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", ok=False)
        clock.now += 1e-4
    sizes = throttle.sizes()
    assert sizes == {"accounts": 1, "unknown_names": 1_000, "addresses": 1_000}
    # alice is in the credentials file: the flood of made-up names cannot evict her failures.
    assert throttle.wait("alice", THERE) > 0
    # One IPv6 host holds a /64: its addresses share one key, so rotating them gains nothing.
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "unknown"


def test_the_pool_refuses_checks_beyond_its_capacity_at_once() -> None:
    pool, release = HashPool(workers=1, waiting=2), threading.Event()
    try:
        futures = [pool.submit(release.wait, 30) for _ in range(3)]
        with pytest.raises(PoolBusy):
            pool.submit(release.wait, 30)
        assert (pool.refused, pool.held) == (1, 3)
        release.set()
        assert all(future.result(timeout=30) for future in futures)
        assert pool.submit(lambda: "again").result(timeout=30) == "again"
        assert (pool.peak_running, pool.peak_held, pool.done) == (1, 3, 4)
    finally:
        release.set()
        pool.shutdown()


def test_a_full_pool_answers_busy_without_checking() -> None:
    sign_in = SignIn(cheap_credentials("alice"), LoginLimits(waiting=0), Clock())
    release = threading.Event()
    sign_in.pool.submit(release.wait, 30)  # the one worker is taken
    try:
        verdict = sign_in.check("alice", PASSWORD, HERE)
        assert (verdict.outcome, verdict.retry_after) == ("busy", 2)
        assert "busy" in verdict.message
    finally:
        release.set()
    assert sign_in.throttle.sizes()["addresses"] == 0  # a refusal unchecked is no failure


@pytest.mark.parametrize(
    "limits",
    [
        {"max_keys": 0},
        {"workers": 0},
        {"waiting": -1},
        {"max_wait": 7200.0},  # longer than forget_after: waits would be forgotten early
        {"first_wait": 1000.0},
    ],
)
def test_unusable_limits_are_refused(limits: dict) -> None:
    with pytest.raises(ValueError):
        LoginLimits(**limits)


FLOOD_CLIENTS = 8
FLOOD_SECONDS = 300  # hang guard: each flooding client stops by itself after this long
FLOOD_ATTEMPTS = 3_000  # ... or after this many attempts


def flood(url: str, stop: threading.Event, statuses: Counter, lock: threading.Lock) -> None:
    """Anonymous sign-ins with made-up names from made-up addresses (a distributed flood, as
    uvicorn takes X-Forwarded-For from loopback), until ``stop`` or the bounds above."""
    rng, deadline = random.Random(), time.monotonic() + FLOOD_SECONDS
    with httpx.Client(timeout=30) as client:
        for _ in range(FLOOD_ATTEMPTS):
            if stop.is_set() or time.monotonic() > deadline:
                return
            address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            response = client.post(
                url + "login",
                data={"username": f"user{rng.randrange(10**9)}", "password": "guess"},
                headers={"X-Forwarded-For": address},
            )
            with lock:
                statuses[response.status_code] += 1


@pytest.mark.slow
def test_signed_in_users_are_served_while_anonymous_clients_flood_the_login(
    tmp_path: Path,
) -> None:
    users = tmp_path / "users.txt"
    add_user(users, "alice", PASSWORD)  # the real cost: 600,000 iterations
    sign_in = SignIn(Credentials.load(users))
    pool, port = sign_in.pool, free_port()
    app = launch(Explorer(), port=port, sign_in=sign_in, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    stop, lock, statuses = threading.Event(), threading.Lock(), Counter()
    threads = [
        threading.Thread(target=flood, args=(url, stop, statuses, lock), daemon=True)
        for _ in range(FLOOD_CLIENTS)
    ]
    try:
        alice = Client(url, auth=("alice", PASSWORD), verbose=False)
        card = alice.predict("synthetic", api_name="/model_card")
        for thread in threads:
            thread.start()
        waited = time.monotonic()
        while pool.refused == 0 and time.monotonic() - waited < 30:
            time.sleep(0.05)
        assert pool.refused > 0, "the flood never filled the pool"
        refused_before = pool.refused
        with ThreadPoolExecutor(1) as runner:  # each call under a hang guard
            for _ in range(5):
                call = runner.submit(alice.predict, "synthetic", api_name="/model_card")
                assert call.result(timeout=60) == card
        # The calls completed while the flood ran and was being refused.
        assert all(thread.is_alive() for thread in threads)
        assert pool.refused > refused_before
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    try:
        assert not any(thread.is_alive() for thread in threads)
        assert set(statuses) <= {400, 429, 503}, statuses  # never signed in, never an error
        assert statuses[503] == pool.refused  # every busy answer was a refusal, never queued
        assert pool.peak_running <= sign_in.limits.workers
        assert pool.peak_held <= pool.capacity
        assert max(sign_in.throttle.sizes().values()) <= sign_in.limits.max_keys
        # alice's own account and address were not held by the flood.
        Client(url, auth=("alice", PASSWORD), verbose=False)
    finally:
        app.close()
        sign_in.close()
