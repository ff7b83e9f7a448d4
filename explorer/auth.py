"""Optional login for shared deployments: a credentials file of salted password hashes.

The file has one ``user:hash`` line per user (``#`` starts a comment). Hashes are PBKDF2-HMAC-SHA256
(``hashlib``, 600,000 iterations, 16-byte random salt) written as
``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>``; plain-text passwords are refused, so the file
never holds a password. Create or update it with ``python -m explorer users add NAME --file PATH``.

Checks take the same time whether or not the user exists (a dummy hash is verified for unknown
users) and compare digests with :func:`hmac.compare_digest`.

Sign-ins go through :class:`SignIn`: failed attempts are counted per account and per client address
(:class:`LoginThrottle`, bounded tables) and each failure past a few free ones doubles the wait before
the next attempt is even checked, right password or not; the hashing runs on a small pool of threads
(:class:`HashPool`, ``hashlib.pbkdf2_hmac`` releases the GIL) that refuses attempts beyond its capacity
at once instead of queueing them, so a flood of sign-ins neither blocks the server nor piles up.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from explorer.errors import ExplorerError
from explorer.files import write_atomically

__all__ = [
    "AuthError",
    "Backoff",
    "Credentials",
    "HashPool",
    "LoginLimits",
    "LoginThrottle",
    "PoolBusy",
    "SignIn",
    "Verdict",
    "add_user",
    "hash_password",
    "verify_password",
]

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000
MIN_PASSWORD_LENGTH = 8
USER_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class AuthError(ExplorerError, ValueError):
    """A credentials file or a new user/password is not acceptable."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """The encoded salted PBKDF2-HMAC-SHA256 hash of ``password``."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[int, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM:
        raise AuthError(f"not a {ALGORITHM} hash (plain-text passwords are not accepted)")
    try:
        iterations = int(parts[1])
        salt, digest = (
            base64.b64decode(parts[2], validate=True),
            base64.b64decode(parts[3], validate=True),
        )
    except ValueError as error:
        raise AuthError(f"malformed {ALGORITHM} hash") from error
    if not 1_000 <= iterations <= 10_000_000 or len(salt) < 8 or len(digest) != 32:
        raise AuthError(f"{ALGORITHM} hash with unusable parameters")
    return iterations, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the encoded hash (constant-time comparison)."""
    iterations, salt, digest = _parse_hash(encoded)
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(candidate, digest)


def _check_new(user: str, password: str) -> None:
    if not USER_PATTERN.match(user):
        raise AuthError(
            "user names are 1-64 characters of letters, digits and . _ @ - (no spaces or colons)"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")


@dataclass(frozen=True)
class Credentials:
    """Users and their password hashes, read from a credentials file."""

    hashes: dict[str, str]
    source: Path | None = None

    @classmethod
    def load(cls, path: str | Path) -> Credentials:
        """Reads and validates a credentials file.

        Raises:
            AuthError: missing or unreadable file, a malformed line (named by number), a duplicate
                user, a plain-text password, or no users at all.
        """
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise AuthError(f"cannot read the credentials file {path}: {error}") from None
        hashes: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, encoded = line.partition(":")
            if not sep or not USER_PATTERN.match(user):
                raise AuthError(f"{path}, line {number}: expected 'user:{ALGORITHM}$...'")
            if user in hashes:
                raise AuthError(f"{path}, line {number}: user {user!r} appears twice")
            try:
                _parse_hash(encoded)
            except AuthError as error:
                raise AuthError(f"{path}, line {number}: {error}") from None
            hashes[user] = encoded
        if not hashes:
            raise AuthError(
                f"{path} has no users; add one with python -m explorer users add NAME --file {path}"
            )
        return cls(hashes, path)

    def check(self, user: str, password: str) -> bool:
        """Gradio's ``auth`` callable: True for a known user with the right password."""
        encoded = self.hashes.get(user)
        if encoded is None:
            verify_password(password, _dummy_hash())  # same cost as for a real user
            return False
        return verify_password(password, encoded)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a password", salt=b"\0" * 16)


def add_user(path: str | Path, user: str, password: str) -> bool:
    """Adds ``user`` (or replaces their password) in a credentials file, written atomically with
    owner-only permissions. Returns True when the user is new."""
    _check_new(user, password)
    path = Path(path).expanduser()
    hashes = Credentials.load(path).hashes if path.exists() else {}
    new = user not in hashes
    hashes[user] = hash_password(password)
    text = "# prototype explorer users: user:pbkdf2 hash (python -m explorer users add)\n"
    text += "".join(f"{name}:{encoded}\n" for name, encoded in hashes.items())
    write_atomically(path, text.encode("utf-8"), permissions=0o600)
    return new


# --- Sign-in limits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginLimits:
    """How many failed sign-ins are free, how the wait grows after them, and the bounds on memory
    and hashing work (see SECURITY.md, "Logins")."""

    account_free: int = 5  # failures per account name that cost no wait
    address_free: int = 20  # failures per client address (IPv6: per /64) that cost no wait
    first_wait: float = 1.0  # seconds after the first failure past the free ones; doubles each time
    max_wait: float = 900.0  # the longest wait (15 minutes)
    forget_after: float = 3600.0  # failures are forgotten an hour after the last one
    max_keys: int = 10_000  # unknown account names, and addresses, remembered (each table)
    workers: int = 1  # password checks running at once
    waiting: int = 4  # checks queued behind them; more are refused at once ("busy")

    def __post_init__(self) -> None:
        if min(self.max_keys, self.workers) < 1:
            raise ValueError("max_keys and workers must be at least 1")
        if min(self.account_free, self.address_free, self.waiting, self.first_wait) < 0:
            raise ValueError("free failures, waiting checks and first_wait cannot be negative")
        if not self.first_wait <= self.max_wait <= self.forget_after:
            raise ValueError("first_wait <= max_wait <= forget_after, or waits would be cut short")


@dataclass
class _Failures:
    count: int
    last: float  # clock time of the last failure
    until: float  # no attempt is checked before this clock time


class Backoff:
    """Failed attempts per key and when the key may try again, for at most ``max_keys`` keys.

    After ``free`` failures the key waits ``first_wait`` seconds before its next attempt, and every
    further failure doubles the wait, up to ``max_wait``. A key's failures are forgotten
    ``forget_after`` seconds after its last one, by :meth:`forget`, or, when more than ``max_keys``
    keys have failures, least recently failed first (memory stays bounded). Not thread-safe.
    """

    def __init__(
        self, *, free: int, first_wait: float, max_wait: float, forget_after: float,
        max_keys: int, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.free, self.first_wait, self.max_wait = free, first_wait, max_wait
        self.forget_after, self.max_keys, self.clock = forget_after, max_keys, clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def _current(self, key: str, now: float) -> _Failures | None:
        failures = self._failures.get(key)
        if failures is not None and now - failures.last >= self.forget_after:
            del self._failures[key]
            return None
        return failures

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0.0: now)."""
        now = self.clock()
        failures = self._current(key, now)
        return 0.0 if failures is None else max(0.0, failures.until - now)

    def failed(self, key: str) -> None:
        """Counts one failure of ``key``."""
        now = self.clock()
        failures = self._current(key, now) or _Failures(0, now, now)
        failures.count += 1
        failures.last = now
        extra = failures.count - self.free
        if extra >= 0:
            wait = min(self.first_wait * 2.0 ** min(extra, 64), self.max_wait)
            failures.until = max(failures.until, now + wait)
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


def address_key(host: str | None) -> str:
    """The key an address's failures are counted under: IPv4 as is, IPv6 by its /64 network (one
    host usually holds a whole /64), anything else as given (at most 100 characters)."""
    try:
        address = ipaddress.ip_address((host or "").split("%", 1)[0])
    except ValueError:
        return (host or "unknown")[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class LoginThrottle:
    """Failed sign-ins per account name and per client address (thread-safe).

    Accounts in the credentials file have a table that never evicts (one entry per user at most);
    other names have their own bounded table, so a flood of made-up names cannot push a real
    account's failures out. Both follow the same rule, so the answers never tell whether an
    account exists.
    """

    def __init__(
        self, users: Iterable[str], limits: LoginLimits = LoginLimits(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._users = frozenset(users)
        account = {
            "free": limits.account_free, "first_wait": limits.first_wait,
            "max_wait": limits.max_wait, "forget_after": limits.forget_after, "clock": clock,
        }  # fmt: skip
        self.accounts = Backoff(**account, max_keys=max(1, len(self._users)))
        self.unknown_names = Backoff(**account, max_keys=limits.max_keys)
        self.addresses = Backoff(
            **{**account, "free": limits.address_free}, max_keys=limits.max_keys
        )
        self._lock = threading.Lock()

    def _names(self, user: str) -> Backoff:
        return self.accounts if user in self._users else self.unknown_names

    def wait(self, user: str, address: str | None) -> float:
        """Seconds until ``user`` may try again from ``address`` (0.0: now)."""
        with self._lock:
            return max(self._names(user).wait(user), self.addresses.wait(address_key(address)))

    def record(self, user: str | None, address: str | None, ok: bool) -> None:
        """Counts a failure against the name (unless None) and the address; a success clears the
        name's failures (the address keeps its own, so one good login cannot reset a spray)."""
        with self._lock:
            if ok and user is not None:
                self._names(user).forget(user)
            elif not ok:
                if user is not None:
                    self._names(user).failed(user)
                self.addresses.failed(address_key(address))

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return {
                "accounts": len(self.accounts),
                "unknown_names": len(self.unknown_names),
                "addresses": len(self.addresses),
            }


class PoolBusy(Exception):
    """The password-check pool is full: the attempt was refused without being checked."""


class HashPool:
    """Runs password checks on ``workers`` threads with at most ``waiting`` more queued; a check
    beyond that raises :class:`PoolBusy` at once instead of queueing without bound.

    Counts what it did (``refused``, ``done``) and the most checks it ever ran at once
    (``peak_running``) and held at once, running or queued (``peak_held``).
    """

    def __init__(self, workers: int = 1, waiting: int = 4) -> None:
        self.workers, self.capacity = workers, workers + waiting
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="password-check")
        self._lock = threading.Lock()
        self.held = self.running = self.peak_held = self.peak_running = 0
        self.refused = self.done = 0

    def submit(self, function: Callable[..., object], *args: object) -> Future:
        with self._lock:
            if self.held >= self.capacity:
                self.refused += 1
                raise PoolBusy
            self.held += 1
            self.peak_held = max(self.peak_held, self.held)
        try:
            return self._executor.submit(self._run, function, args)
        except BaseException:
            with self._lock:
                self.held -= 1
            raise

    def _run(self, function: Callable[..., object], args: tuple) -> object:
        with self._lock:
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
        try:
            return function(*args)
        finally:  # before the future's result is set: its caller finds the slot free again
            with self._lock:
                self.running -= 1
                self.held -= 1
                self.done += 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Verdict:
    """The answer to one sign-in attempt. ``outcome``: ``ok``; ``wrong`` (bad name or password);
    ``wait`` (refused unchecked: too many failures); ``busy`` (refused unchecked: pool full).
    ``retry_after``: whole seconds before trying again is worth it (None: no wait)."""

    outcome: Literal["ok", "wrong", "wait", "busy"]
    message: str
    retry_after: int | None = None


WRONG = "Incorrect user name or password."
BUSY_RETRY = 2  # seconds


def _in_words(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{math.ceil(seconds / 60)} minutes"


def _held(wait: float, outcome: Literal["wrong", "wait"] = "wait") -> Verdict:
    """The answer while a name or an address must wait ``wait`` seconds (the same for both, and
    for names of no account)."""
    seconds = max(1, math.ceil(wait))
    message = (
        "Too many failed sign-ins for this name or from this address: "
        f"try again in {_in_words(seconds)}."
    )
    return Verdict(outcome, f"{WRONG} {message}" if outcome == "wrong" else message, seconds)


def _finished(verdict: Verdict) -> Future:
    future: Future = Future()
    future.set_result(verdict)
    return future


class SignIn:
    """Checks sign-ins against ``credentials`` within :class:`LoginLimits`.

    :meth:`attempt` never blocks: an attempt is refused unchecked while its name or address must
    wait (even with the right password) or while the pool is full; otherwise the check runs on the
    pool. The answers are the same for existing and made-up names.
    """

    def __init__(
        self, credentials: Credentials, limits: LoginLimits = LoginLimits(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.credentials, self.limits = credentials, limits
        self.throttle = LoginThrottle(credentials.hashes, limits, clock)
        self.pool = HashPool(limits.workers, limits.waiting)

    def attempt(self, user: str, password: str, address: str | None) -> Future:
        """A future :class:`Verdict` (already done when the attempt is refused unchecked)."""
        user = user.strip()
        wait = self.throttle.wait(user, address)
        if wait > 0:
            return _finished(_held(wait))
        if not USER_PATTERN.match(user):  # can name no account: counted against the address only
            self.throttle.record(None, address, ok=False)
            return _finished(self._wrong(user, address))
        try:
            return self.pool.submit(self._check, user, password, address)
        except PoolBusy:
            return _finished(
                Verdict(
                    "busy",
                    "The server is busy checking other sign-ins: try again in a few seconds.",
                    BUSY_RETRY,
                )
            )

    def check(self, user: str, password: str, address: str | None) -> Verdict:
        """:meth:`attempt`, waiting for the answer."""
        return self.attempt(user, password, address).result()

    def _wrong(self, user: str, address: str | None) -> Verdict:
        wait = self.throttle.wait(user, address)
        return _held(wait, "wrong") if wait > 0 else Verdict("wrong", WRONG)

    def _check(self, user: str, password: str, address: str | None) -> Verdict:
        ok = self.credentials.check(user, password)
        # Failures of attempts checked meanwhile count too: the right password is refused as well.
        wait = self.throttle.wait(user, address)
        if ok and wait > 0:
            return _held(wait)
        self.throttle.record(user, address, ok)
        return Verdict("ok", "Signed in.") if ok else self._wrong(user, address)

    def close(self) -> None:
        self.pool.shutdown()
