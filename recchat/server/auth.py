"""Who may call: with `api.key` set, the key guards the API (/v1) and the Gradio UI (/ui) alike.

/v1 takes the key as `Authorization: Bearer <key>`, or a user token minted with the key (`user_token`): signed with
the key, so every worker accepts it without a table and changing the key ends them all; it carries its user and an
expiry, and the routes let it act for that user only (`TOKEN_USER` in the request's state). /ui takes the key the
same way (scripts, `gradio_client` with `headers=`), or as a cookie that its login page sets once the key is typed
there (browsers; also `gradio_client`'s `auth=(any name, key)`, which posts to the same page). The check runs before
anything reads the request's body, so a caller without the key learns nothing from how its body is parsed. /healthz
and /metrics stay open.

Whatever the key, /ui's file routes are closed: the page takes no files, and Gradio's upload route would otherwise
store anything it is sent."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import time
from urllib.parse import parse_qs

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from recchat.server.errors import HTTP_TYPES, error_response

API_PREFIX = "/v1"
UI_PREFIX = "/ui"
UI_LOGIN = "/ui/login"
UI_COOKIE = "recchat_ui"
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
CLOSED_UI_ROUTES = frozenset(
    f"{UI_PREFIX}/gradio_api/{route}" for route in ("upload", "upload_progress", "process_recording")
)
"""Gradio's routes that take files; the UI has no file input, so none of them is needed."""
MAX_LOGIN_BYTES = 4096
NEEDS_KEY = "send the API key (or a user token) as 'Authorization: Bearer <key>'"
TOKEN_PREFIX = "user."
TOKEN_USER = "recchat_token_user"
"""Where a request's state holds the user its token acts for (absent for the key holder)."""
LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>recchat: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body {{font-family: system-ui, sans-serif; max-width: 26rem; margin: 4rem auto; padding: 0 1rem;}}
input, button {{font-size: 1rem; padding: 0.4rem; margin-top: 0.5rem;}} .wrong {{color: #b91c1c;}}</style></head>
<body><h1>recchat</h1><p>This server needs its API key (<code>api.key</code>) to open the UI.</p>{notice}
<form method="post" action="login"><label>API key<br>
<input type="password" name="password" autocomplete="current-password" autofocus required></label><br>
<button type="submit">Open the UI</button></form></body></html>"""


def route_path(scope: Scope) -> str:
    """The path the app routes on: without the server's root path (`--root-path`), as Starlette's routing sees it."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class KeyGate:
    """ASGI middleware in front of the whole app: refuses /v1 and /ui calls without the key (when one is set), and
    the UI's file routes always."""

    def __init__(self, app: ASGIApp, key: SecretStr | None, on_refused=None):
        """`on_refused(type)`: counts each refusal (for /metrics)."""
        self.app = app
        self.key = None if key is None else key.get_secret_value().encode()
        self.cookie = None if self.key is None else ui_cookie(self.key)
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = route_path(scope)
        if path.rstrip("/") in CLOSED_UI_ROUTES:
            return await self.refuse(scope, receive, send, 404, "the UI takes no files")
        if self.key is None or not (under(path, API_PREFIX) or under(path, UI_PREFIX)):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if self.has_bearer_key(headers):
            return await self.app(scope, receive, send)
        if under(path, API_PREFIX):
            user, refused = token_user(self.key, bearer(headers))
            if user is None:
                return await self.refuse(scope, receive, send, 401, refused or NEEDS_KEY)
            scope.setdefault("state", {})[TOKEN_USER] = user
            return await self.app(scope, receive, send)
        if path.rstrip("/") == UI_LOGIN:
            return await self.login(scope, receive, send)
        if self.has_cookie(headers):
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
            return await RedirectResponse(login_url(scope), status_code=303)(scope, receive, send)
        await self.refuse(scope, receive, send, 401, f"{NEEDS_KEY}, or sign in at {UI_LOGIN}")

    def has_bearer_key(self, headers: Headers) -> bool:
        given = bearer(headers)
        return given is not None and hmac.compare_digest(given.encode(), self.key)

    def has_cookie(self, headers: Headers) -> bool:
        given = cookie_value(headers.get("cookie", ""), UI_COOKIE)
        return given is not None and hmac.compare_digest(given.encode(), self.cookie.encode())

    async def refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        kind = HTTP_TYPES[status]
        if self.on_refused is not None:
            self.on_refused(kind)
        if scope["type"] == "websocket":  # closing before accepting answers the handshake with 403
            return await send({"type": "websocket.close", "code": 1008, "reason": message})
        headers = BEARER_CHALLENGE if status == 401 else None
        await error_response(status, kind, message, headers)(scope, receive, send)

    async def login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET: the form. POST: the key typed there (form field `password`, as Gradio's own login names it) sets the
        cookie; a browser goes on to the UI, any other client gets `{"success": true}`, as from Gradio's login."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "POST"):
            return await self.refuse(scope, receive, send, 405, "GET the sign-in form or POST the key to it")
        browser = "text/html" in Headers(scope=scope).get("accept", "")
        if scope["method"] == "GET":
            return await login_page()(scope, receive, send)
        given = (await form_field(receive, "password")).encode()
        if not hmac.compare_digest(given, self.key):
            if self.on_refused is not None:
                self.on_refused(HTTP_TYPES[401])
            refused = login_page("That is not the key.", 401) if browser else error_response(
                401, HTTP_TYPES[401], "wrong API key", BEARER_CHALLENGE
            )
            return await refused(scope, receive, send)
        signed_in = RedirectResponse(ui_url(scope), 303) if browser else Response(
            '{"success": true}', media_type="application/json"
        )
        signed_in.set_cookie(
            UI_COOKIE, self.cookie, path=scope.get("root_path", "") + UI_PREFIX, httponly=True, samesite="strict",
            secure=scope.get("scheme") == "https",
        )
        await signed_in(scope, receive, send)


def bearer(headers: Headers) -> str | None:
    scheme, _, given = headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def user_token(key: bytes, user_id: str, expires_at: float) -> str:
    """A token that acts for `user_id` only, until `expires_at` (Unix seconds): the user, the expiry and their
    signature with the key."""
    payload = f"{TOKEN_PREFIX}{base64.urlsafe_b64encode(user_id.encode()).decode().rstrip('=')}.{int(expires_at)}"
    return f"{payload}.{_signature(key, payload)}"


def token_user(key: bytes, token: str | None, now: float | None = None) -> tuple[str | None, str | None]:
    """The user a valid token acts for, else None and why it is refused (None when it is no token at all)."""
    if token is None or not token.startswith(TOKEN_PREFIX):
        return None, None
    payload, _, signature = token.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _signature(key, payload).encode()):
        return None, "that user token is not valid for this server's key: mint another with the key"
    encoded, _, expires_at = payload[len(TOKEN_PREFIX):].partition(".")
    try:
        user_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        expired = int(expires_at) <= (time.time() if now is None else now)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None, "that user token is malformed"
    if expired:
        return None, "that user token has expired: mint another with the key (POST /v1/users/{id}/token)"
    return user_id, None


def _signature(key: bytes, payload: str) -> str:
    return hmac.new(key, b"recchat user token " + payload.encode(), hashlib.sha256).hexdigest()


def ui_cookie(key: bytes) -> str:
    """The UI's cookie: derived from the key, so it never carries the key itself, every worker accepts it, and
    changing the key signs everyone out."""
    return hmac.new(key, b"recchat ui", hashlib.sha256).hexdigest()


def cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        given_name, _, value = part.strip().partition("=")
        if given_name == name:
            return value
    return None


def login_page(notice: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p class="wrong">{html.escape(notice)}</p>' if notice else ""
    return HTMLResponse(LOGIN_PAGE.format(notice=shown), status_code=status, headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    })


async def form_field(receive: Receive, name: str) -> str:
    """One field of a url-encoded form body, read up to `MAX_LOGIN_BYTES` (a key is short); '' when absent."""
    body = b""
    while len(body) <= MAX_LOGIN_BYTES:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    values = parse_qs(body[:MAX_LOGIN_BYTES].decode("utf-8", "replace")).get(name, [""])
    return values[0]


def login_url(scope: Scope) -> str:
    return scope.get("root_path", "") + UI_LOGIN


def ui_url(scope: Scope) -> str:
    return scope.get("root_path", "") + UI_PREFIX + "/"
