"""Which `Host` headers the server answers. A page on any site can make a browser call a server on localhost by
rebinding its own name to 127.0.0.1 (DNS rebinding); the browser then sends that site's name as the Host, so a server
that answers only its own names is out of the page's reach. Names are matched without the port: a page can only
reach the port the server listens on anyway, and a reverse proxy may forward the Host without it."""

from __future__ import annotations

import logging
import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from recchat.config import ApiSettings
from recchat.server.errors import error_response

logger = logging.getLogger("recchat.server")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})
ANY_HOST = "*"
HOST_HEADER = re.compile(r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_.-]+))(?::\d{1,5})?", re.IGNORECASE)
"""host[:port], an IPv6 address in brackets (RFC 9110 and 3986, without the rarely sent percent-encoded names)."""


def answered_hosts(api: ApiSettings) -> frozenset[str] | None:
    """The host names the server answers (lower case, IPv6 without brackets); None for any. `api.allowed_hosts`
    when set; else the bound address, with all of localhost's names when that is a loopback one; else (bound to every
    address, where clients may use any name) any, with a warning."""
    if api.allowed_hosts is not None:
        names = frozenset(configured_host(host) for host in api.allowed_hosts)
        return None if ANY_HOST in names else names
    bound = configured_host(api.host)
    if bound in ANY_ADDRESS:
        logger.warning(
            "serving on %s without api.allowed_hosts: any Host header is answered; list the names clients use "
            "(e.g. RECCHAT_API__ALLOWED_HOSTS='[\"shop.example.com\"]') to refuse pages that rebind their own name "
            "to this server", api.host or "every address",
        )
        return None
    return LOOPBACK_NAMES | {bound} if bound in LOOPBACK_NAMES or bound.startswith("127.") else frozenset({bound})


def configured_host(name: str) -> str:
    """A host as the settings write it ('Shop.Example.com', '::1' or '[::1]'): lower case, IPv6 without brackets."""
    return name.strip().removeprefix("[").removesuffix("]").lower()


def header_host(header: str) -> str:
    """The host of a Host header: 'Shop.Example.com:8080' -> 'shop.example.com', '[::1]:8080' -> '::1'; '' for
    anything else ('a@b', 'name:port'), which no host matches."""
    match = HOST_HEADER.fullmatch(header.strip())
    return "" if match is None else (match["ipv6"] or match["name"]).lower()


class HostGate:
    """ASGI middleware: a request whose Host is not one of `hosts` is a JSON 400 (a websocket is closed) before
    anything else runs. Starlette's TrustedHostMiddleware does the same check but answers in plain text that does not
    say what to configure, and ignores IPv6 addresses written without brackets in its list."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None, on_refused=None):
        """`hosts`: from `answered_hosts` (None: any). `on_refused(type)`: counts each refusal (for /metrics)."""
        self.app, self.hosts, self.on_refused = app, hosts, on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hosts is None or scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given = Headers(scope=scope).get("host", "")
        if header_host(given) in self.hosts:
            return await self.app(scope, receive, send)
        if self.on_refused is not None:
            self.on_refused("InvalidHost")
        message = (
            f"this server does not answer to the host {given!r}; call it as {' or '.join(sorted(self.hosts))}, or add "
            "the name to api.allowed_hosts"
        )
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008,
                               "reason": "unknown host; see api.allowed_hosts"})
        await error_response(400, "InvalidHost", message)(scope, receive, send)
