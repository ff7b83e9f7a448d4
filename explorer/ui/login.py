"""The sign-in gate for ``python app.py --auth FILE``: nothing about the app before sign-in.

Gradio's own login page embeds the app's whole API description (every endpoint, model ids, class
names, prototype labels) for anyone, and its ``/login`` route runs the ``auth`` callable on the event
loop, so a flood of sign-ins (PBKDF2, 600,000 iterations) stalls every signed-in user. The
:class:`LoginGate` middleware sits in front of all of Gradio's routes instead:

* a request with a valid session cookie passes to Gradio untouched;
* without one, ``GET``/``HEAD`` of ``/`` and ``/login`` get a small self-contained sign-in page that
  names nothing of the app, ``POST /login`` is checked by :class:`explorer.auth.SignIn` (rate
  limits, hashing on its bounded pool, off the event loop), and every other route answers 401
  (but ``/gradio_api/startup-events``, which Gradio's ``launch`` calls and which says nothing).

On success the gate opens a session as Gradio's own route would (a token in ``app.tokens`` and
Gradio's two cookies), so Gradio's login checks, ``gr.Request.username`` and ``/logout`` work as
before. Gradio's ``auth`` callable is :func:`refuse`: its route is never reached, and would refuse.
"""

from __future__ import annotations

import asyncio
import html
import secrets
from typing import Any

from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from explorer.auth import SignIn, Verdict

__all__ = ["LoginGate", "gradio_login_options", "login_page", "refuse"]

MAX_BODY = 16 * 1024  # bytes of a sign-in request: a name and a password, with room to spare
PAGE_PATHS = ("/", "/login", "/login/")
# Passed to Gradio without a session: launch() itself calls it (it answers true or false only).
OPEN_PATHS = ("/gradio_api/startup-events",)
STATUS = {"ok": 200, "wrong": 400, "wait": 429, "busy": 503}


def refuse(user: str, password: str) -> bool:
    """Gradio's ``auth`` callable under the gate: its ``/login`` route is unreachable; if it were
    reached, it would refuse everyone."""
    return False


def _session_cookies(app: Any) -> tuple[str, str]:
    return f"access-token-{app.cookie_id}", f"access-token-unsecure-{app.cookie_id}"


def signed_in_user(scope: Scope) -> str | None:
    """The user of a valid Gradio session cookie on this request, else None."""
    app = scope.get("app")
    tokens = getattr(app, "tokens", None)
    if not tokens or getattr(app, "cookie_id", None) is None:
        return None
    cookies = HTTPConnection(scope).cookies
    for name in _session_cookies(app):
        user = tokens.get(cookies.get(name, ""))
        if user is not None:
            return user
    return None


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Sign in</title>
<style nonce="{nonce}">
body {{ font-family: system-ui, sans-serif; background: #f4f4f7; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem;
  border-radius: 0.75rem; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.15); }}
h1 {{ font-size: 1.4rem; margin-top: 0; }}
label {{ display: block; margin: 1rem 0 0.25rem; }}
input {{ width: 100%; box-sizing: border-box; padding: 0.5rem; font-size: 1rem; }}
button {{ margin-top: 1.5rem; width: 100%; padding: 0.6rem; font-size: 1rem; cursor: pointer; }}
#message {{ color: #b00020; min-height: 1.5em; margin: 1rem 0 0; }}
</style>
</head>
<body>
<main>
<h1>Sign in</h1>
<p>{notice}</p>
<form id="sign-in" method="post" action="login">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
<p id="message" role="alert">{message}</p>
</form>
</main>
<script nonce="{nonce}">
const form = document.getElementById("sign-in");
const message = document.getElementById("message");
form.addEventListener("submit", async (event) => {{
  event.preventDefault();
  message.textContent = "Signing in…";
  try {{
    const response = await fetch("login", {{
      method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin",
    }});
    if (response.ok) {{ location.assign("./"); return; }}
    const answer = await response.json().catch(() => ({{}}));
    message.textContent = answer.detail || "Sign-in failed (" + response.status + ").";
    document.getElementById("password").value = "";
  }} catch (error) {{
    message.textContent = "The server cannot be reached: try again.";
  }}
}});
</script>
</body>
</html>
"""


def login_page(notice: str, message: str = "", status: int = 200, head: bool = False) -> Response:
    """The sign-in page: a form and ``notice``; no script or style from anywhere else."""
    nonce = secrets.token_urlsafe(16)
    body = PAGE.format(nonce=nonce, notice=html.escape(notice), message=html.escape(message))
    response = HTMLResponse("" if head else body, status_code=status)
    response.headers.update(
        {
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
        }
    )
    if head:
        response.headers["Content-Length"] = str(len(body.encode("utf-8")))
    return response


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when it is longer than ``limit`` bytes or the client left."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _form_fields(scope: Scope, body: bytes) -> tuple[str, str] | None:
    """``username`` and ``password`` of a urlencoded or multipart form (no files), else None."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(scope, replay).form(max_files=0, max_fields=8) as form:
            user, password = form.get("username"), form.get("password")
    except Exception:  # malformed form of any kind: answered like a missing field
        return None
    if isinstance(user, UploadFile | None) or isinstance(password, UploadFile | None):
        return None
    return user, password


class LoginGate:
    """ASGI middleware: before sign-in only the sign-in page and ``POST /login`` are served."""

    def __init__(self, app: ASGIApp, sign_in: SignIn, notice: str) -> None:
        self.app, self.sign_in, self.notice = app, sign_in, notice

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or signed_in_user(scope) is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path, method = scope["path"], scope["method"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if path in ("/login", "/login/") and method == "POST":
            response = await self._sign_in(scope, receive)
        elif path in PAGE_PATHS and method in ("GET", "HEAD"):
            response = login_page(self.notice, head=method == "HEAD")
        else:
            response = JSONResponse({"detail": "Not authenticated"}, status_code=401)
        await response(scope, receive, send)

    async def _sign_in(self, scope: Scope, receive: Receive) -> Response:
        body = await _read_body(receive, MAX_BODY)
        if body is None:
            return JSONResponse({"detail": "The sign-in request is too long."}, status_code=413)
        fields = await _form_fields(scope, body)
        if fields is None:
            return JSONResponse({"detail": "Send a user name and a password."}, status_code=400)
        user, password = fields
        client = scope.get("client")
        verdict = await asyncio.wrap_future(
            self.sign_in.attempt(user, password, client[0] if client else None)
        )
        as_page = b"text/html" in dict(scope["headers"]).get(b"accept", b"")
        response = self._answer(verdict, as_page)
        if verdict.outcome == "ok":
            self._open_session(scope["app"], user.strip(), response)
        return response

    def _answer(self, verdict: Verdict, as_page: bool) -> Response:
        status = STATUS[verdict.outcome]
        if verdict.outcome == "ok":
            # A plain form post (no script) lands on the app; the page's script reloads itself.
            return RedirectResponse("./", 303) if as_page else JSONResponse({"success": True})
        if as_page:
            response = login_page(self.notice, verdict.message, status)
        else:
            content = {"detail": verdict.message, "retry_after": verdict.retry_after}
            response = JSONResponse(content, status_code=status)
        if verdict.retry_after is not None:
            response.headers["Retry-After"] = str(verdict.retry_after)
        return response

    @staticmethod
    def _open_session(app: Any, user: str, response: Response) -> None:
        """What Gradio's own ``/login`` does on success: a token and its two session cookies."""
        token = secrets.token_urlsafe(32)
        app.tokens[token] = user
        secure, unsecure = _session_cookies(app)
        response.set_cookie(secure, token, httponly=True, samesite="none", secure=True)
        response.set_cookie(unsecure, token, httponly=True)


def gradio_login_options(sign_in: SignIn, notice: str) -> dict[str, Any]:
    """``Blocks.launch`` keywords that put :class:`LoginGate` in front of the app."""
    return {
        "auth": refuse,
        "auth_message": notice,
        "app_kwargs": {"middleware": [Middleware(LoginGate, sign_in=sign_in, notice=notice)]},
    }
