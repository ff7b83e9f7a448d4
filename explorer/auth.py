"""Optional login for shared deployments: a credentials file of salted password hashes.

The file has one ``user:hash`` line per user (``#`` starts a comment). Hashes are PBKDF2-HMAC-SHA256
(``hashlib``, 600,000 iterations, 16-byte random salt) written as
``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>``; plain-text passwords are refused, so the file
never holds a password. Create or update it with ``python -m explorer users add NAME --file PATH``.

Checks take the same time whether or not the user exists (a dummy hash is verified for unknown
users) and compare digests with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.files import write_atomically

__all__ = ["AuthError", "Credentials", "add_user", "hash_password", "verify_password"]

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
