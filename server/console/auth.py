"""Console sign-in: the API token in an HttpOnly, SameSite=Strict cookie, and CSRF tokens for forms.

The cookie holds the token itself (the console is a client of the API like any other), scoped to
``/console``; the API routes never read cookies, only ``Authorization``, so the cookie cannot be
used against them from another site. Every request looks the token up again (the same cache as
the API's, a couple of seconds), so a ban or a deleted token signs its holder out at once.

CSRF, twice over: SameSite=Strict keeps the cookie off cross-site requests, and every form carries
a synchronizer token bound to the session, ``HMAC(token, "console-csrf")``: whoever can forge it
already has the token. The sign-in form, which has no session yet, carries a random value that
must match a cookie set with the form (double submit), so another site cannot sign a visitor in
under its own token. POSTs whose ``Origin`` names another origin are refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from aiohttp import web

from server.auth import BANNED, INVALID_TOKEN
from server.error_map import ApiError
from server.keys import SETTINGS, TOKENS
from server.tokens import TokenInfo

COOKIE = "shortvid_console"
SIGNIN_COOKIE = "shortvid_console_signin"
COOKIE_PATH = "/console"
#: A signed-in session lasts this long in the browser (the token itself does not expire).
SESSION_SECONDS = 7 * 24 * 3600
SIGNIN_URL = "/console/signin"
FORBIDDEN_FORM = "Forbidden: this form has expired or came from another site. Reload the page and try again."


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in: their token (to call the API as them), its row and the form token."""

    token: str
    info: TokenInfo

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    @property
    def is_admin(self) -> bool:
        return self.info.is_admin


class SignInRefused(Exception):
    """The token cannot sign in: unknown or malformed (401), banned (403); in the API's words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), b"shortvid console csrf v1", hashlib.sha256).hexdigest()


def token_shaped(token: str) -> bool:
    """What ``Authorization: Bearer`` accepts: printable ASCII, no spaces, 1 to 200 characters."""
    return 0 < len(token) <= 200 and token.isascii() and token.isprintable() and " " not in token


async def check_token(request: web.Request, token: str) -> TokenInfo:
    """The token's row if it may sign in, else ``SignInRefused`` in the API's words."""
    if not token_shaped(token):
        raise SignInRefused(401, INVALID_TOKEN)
    info = await request.app[TOKENS].lookup_cached(token)
    if info is None:
        raise SignInRefused(401, INVALID_TOKEN)
    if info.banned:
        raise SignInRefused(403, BANNED)
    return info


async def current_viewer(request: web.Request) -> Viewer | None:
    """The signed-in viewer, None when there is no usable session cookie."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return Viewer(token, await check_token(request, token))
    except SignInRefused:
        return None


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site, ``//host`` included)."""
    if not target or not target.startswith("/console") or "\\" in target:
        return "/console"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return "/console"
    return target


def sign_in_redirect(request: web.Request) -> web.HTTPSeeOther:
    wanted = request.path_qs if request.method == "GET" else "/console"
    return web.HTTPSeeOther(f"{SIGNIN_URL}?next={quote(wanted, safe='')}")


async def require_viewer(request: web.Request, *, admin: bool = False) -> Viewer:
    """The viewer, or a redirect to the sign-in page; 403 for a user token on an admin page."""
    viewer = await current_viewer(request)
    if viewer is None:
        raise sign_in_redirect(request)
    if admin and not viewer.is_admin:
        raise ApiError(403, "Forbidden: this page needs an admin token.")
    return viewer


def _secure(request: web.Request) -> bool:
    """Mark cookies ``Secure`` when the console is reached over https (here or at the proxy)."""
    return request.secure or (request.app[SETTINGS].public_url or "").startswith("https://")


def set_session(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    response.del_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path=COOKIE_PATH)


def signin_nonce(request: web.Request) -> str:
    """The sign-in form's double-submit value: the browser's, else a fresh one."""
    sent = request.cookies.get(SIGNIN_COOKIE, "")
    return sent if 20 <= len(sent) <= 64 and sent.isascii() and sent.isalnum() else secrets.token_hex(16)


def set_signin_cookie(response: web.StreamResponse, request: web.Request, nonce: str) -> None:
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request came from a page of another origin (compared by host
    and port: behind a TLS proxy the scheme we see is not the browser's)."""
    origin = request.headers.get("Origin")
    if origin is None or (origin == "null" and request.headers.get("Sec-Fetch-Site") == "same-origin"):
        return True
    public = request.app[SETTINGS].public_url
    ours = {request.host.lower(), urlsplit(public).netloc.lower() if public else ""}
    return urlsplit(origin).netloc.lower() in ours - {""}


def check_form(request: web.Request, form: Mapping[str, object], expected: str | None) -> None:
    """403 unless the form's ``csrf`` is ``expected`` and the request is same-origin."""
    sent = form.get("csrf")
    if (
        expected is None
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent.encode(), expected.encode())
        or not same_origin(request)
    ):
        raise ApiError(403, FORBIDDEN_FORM)
