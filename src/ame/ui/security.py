"""Who may use ``ame ui``: the access token, CSRF tokens, and what counts as loopback.

The UI writes to the registry, so a page reachable from another machine must
not be usable by whoever finds the port. Bound to loopback it trusts the
machine's users (as ``mlflow ui`` does); bound anywhere else, every client
needs the token, including clients that reach it over 127.0.0.1, because a
server bound to 0.0.0.0 cannot tell a local proxy from a local person.

Forms carry a CSRF token: a random value kept in a ``SameSite=Strict`` cookie,
and in the form its HMAC under a key only this server process knows (a signed
double-submit token). Another site can make a browser post a form here, but
it can neither read the cookie nor compute the HMAC, so its post is refused.
Only the standard library is used (``hmac``, ``secrets``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from typing import Optional

from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_COOKIE = "ame_ui_token"
CSRF_COOKIE = "ame_ui_csrf"
CSRF_FIELD = "csrf"
TOKEN_PARAM = "token"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host.strip().lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh access token, printed by ``ame ui`` when none is given."""
    return secrets.token_urlsafe(24)


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is no credential
                continue
    return {key: morsel.value for key, morsel in jar.items()}


class Csrf:
    """Signed double-submit CSRF tokens under a key that lives only in this process."""

    def __init__(self, key: Optional[bytes] = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def new_nonce(self) -> str:
        """The random value for a browser's CSRF cookie."""
        return secrets.token_urlsafe(18)

    def token_for(self, nonce: str) -> str:
        """The token a form carries for the browser holding cookie ``nonce``."""
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()

    def check(self, nonce: Optional[str], token: Optional[str]) -> bool:
        """Whether ``token`` (from the form) matches ``nonce`` (from the cookie)."""
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.token_for(nonce), token)


_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ame ui: token needed</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
input{{font:inherit;padding:.5rem;width:100%;box-sizing:border-box}}
button{{font:inherit;margin-top:.75rem;padding:.5rem 1rem}}
.error{{color:#a40000}}</style></head><body>
<h1>ame ui</h1>
<p class="error" role="alert">{message}</p>
<form method="post" action="/_login">
<label for="token">Access token (printed by <code>ame ui</code> at start)</label>
<input id="token" name="token" type="password" autocomplete="off" required>
<input type="hidden" name="next" value="{next}">
<button type="submit">Open</button></form></body></html>"""


class TokenGate:
    """ASGI middleware: every request needs the access token, or nothing gets through.

    The token is accepted as ``Authorization: Bearer``, as the cookie set after
    logging in, or once as ``?token=`` (the link ``ame ui`` prints), which sets
    the cookie and redirects to the same page without it, so the token does
    not stay in the address bar or the history.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    def _ok(self, value: Optional[str]) -> bool:
        return bool(value) and hmac.compare_digest(str(value).encode(), self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            return
        headers = dict(scope.get("headers", []))
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer ") and self._ok(auth[7:].strip()):
            await self.app(scope, receive, send)
            return
        if self._ok(_cookies(scope).get(TOKEN_COOKIE)):
            await self.app(scope, receive, send)
            return
        from urllib.parse import parse_qsl, urlencode

        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        given = [v for k, v in query if k == TOKEN_PARAM]
        path = scope.get("path", "/")
        if scope["type"] == "http" and given and self._ok(given[0]):
            rest = urlencode([(k, v) for k, v in query if k != TOKEN_PARAM])
            await _redirect_with_cookie(send, path + (f"?{rest}" if rest else ""), self._token)
            return
        if scope["type"] == "http" and path == "/_login" and scope.get("method") == "POST":
            await self._login(scope, receive, send)
            return
        await self._refuse(scope, send, "this ame ui needs its access token")

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        from urllib.parse import parse_qs

        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > 8192:
                break
        fields = parse_qs(body.decode("utf-8", "replace"))
        nxt = (fields.get("next") or ["/"])[0]
        if not nxt.startswith("/") or nxt.startswith("//"):
            nxt = "/"
        if self._ok((fields.get("token") or [""])[0]):
            await _redirect_with_cookie(send, nxt, self._token)
            return
        await self._refuse(scope, send, "wrong access token", nxt)

    async def _refuse(self, scope: Scope, send: Send, message: str, nxt: str = "") -> None:
        import html

        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        target = nxt or scope.get("path", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        page = _LOGIN_PAGE.format(message=html.escape(message), next=html.escape(target))
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"www-authenticate", b'Bearer realm="ame ui"'),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": page.encode()})


async def _redirect_with_cookie(send: Send, location: str, token: bytes) -> None:
    cookie = f"{TOKEN_COOKIE}={token.decode()}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1", "replace")),
                (b"set-cookie", cookie.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:5000
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class LoopbackHosts:
    """ASGI middleware for a UI without a token: only requests addressed to loopback names.

    Bound to 127.0.0.1 the UI trusts this machine, but a web page elsewhere can
    point its own domain at 127.0.0.1 (DNS rebinding) and so read and post these
    pages as if it were local. Its requests still name its domain in ``Host``,
    so only loopback names and addresses are served.
    """

    def __init__(self, app: ASGIApp, extra: tuple[str, ...] = ()) -> None:
        self.app = app
        self._extra = {h.strip("[]").lower() for h in extra}

    def _allowed(self, host: str) -> bool:
        name = _host_name(host)
        return name in self._extra or is_loopback(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
            if not self._allowed(host):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4403})
                    return
                await send(
                    {
                        "type": "http.response.start",
                        "status": 421,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"ame ui answers only to loopback host names without a token\n",
                    }
                )
                return
        await self.app(scope, receive, send)
