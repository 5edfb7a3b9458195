"""Import cookies exported from a user's own browser, ready for ``BrowserContext.add_cookies()``.

Users run logged-in identities by exporting cookies with curl, yt-dlp or a browser extension
("Get cookies.txt", Cookie-Editor, EditThisCookie) or by saving a Playwright ``storage_state``.
Every format is normalized to Playwright's cookie dict (``name, value, domain, path, expires,
httpOnly, secure, sameSite``) and checked here, because Playwright rejects a whole
``add_cookies()`` batch over one bad cookie with an unhelpful protocol error.

Domains follow Playwright's convention: a leading dot makes a domain cookie (sent to
subdomains too), no dot a host-only cookie. ``platform_cookies()`` then keeps only the
platforms' cookies: we never load other sites' cookies (a user's Google session, say) into
our browser contexts.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scraper.hosts import host_allowed

#: Largest cookie file we read. Real exports are kilobytes; anything bigger is a wrong file.
MAX_FILE_BYTES = 5 * 1024 * 1024

#: Chromium refuses a cookie whose name plus value exceed this many bytes.
MAX_COOKIE_BYTES = 4096

_SAME_SITE = {
    "no_restriction": "None",
    "none": "None",
    "lax": "Lax",
    "strict": "Strict",
    "unspecified": "Lax",
    "": "Lax",
}
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_HTTPONLY_PREFIX = "#httponly_"
_DOMAIN_RE = re.compile(r"^\.?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?$")
# Characters Chromium refuses: ';' ends a cookie, '=' ends a name, control characters (tab too).
_BAD_NAME_RE = re.compile(r"[;=\x00-\x1f\x7f]")
_BAD_VALUE_RE = re.compile(r"[;\x00-\x1f\x7f]")


class CookieImportError(ValueError):
    """A cookie file we cannot use; the message says what to fix (file, line, cookie)."""


def _where(source: str, detail: str) -> str:
    """Prefix ``detail`` with the file name so errors from a CLI point at the right file."""
    return f"{source}: {detail}" if source else detail


def _cookie(
    *,
    name: str,
    value: str,
    domain: str,
    host_only: bool | None,
    path: str,
    expires: float,
    http_only: bool,
    secure: bool,
    same_site: str,
    where: str,
) -> dict[str, Any] | None:
    """One checked Playwright cookie, or None for a cookie to drop (empty name).

    ``host_only`` None keeps the domain as given (Playwright's own format); True/False
    removes/adds the leading dot that Playwright reads as "host-only"/"domain cookie".
    """
    if not name.strip():
        return None
    if _BAD_NAME_RE.search(name):
        raise CookieImportError(f"{where}: cookie name {name!r} contains ';', '=' or control characters")
    if _BAD_VALUE_RE.search(value):
        raise CookieImportError(f"{where}: value of cookie {name!r} contains ';' or control characters")
    if len(name.encode()) + len(value.encode()) > MAX_COOKIE_BYTES:
        raise CookieImportError(
            f"{where}: cookie {name!r} is longer than {MAX_COOKIE_BYTES} bytes, which browsers refuse"
        )
    domain = domain.strip().lower()
    if not domain.strip(".") or not _DOMAIN_RE.match(domain):
        raise CookieImportError(f"{where}: cookie {name!r} has an invalid domain {domain!r}")
    domain = domain.rstrip(".")
    bare = domain.lstrip(".")
    path = path.strip() or "/"
    if not path.startswith("/"):
        raise CookieImportError(f"{where}: cookie {name!r} has a path {path!r} that does not start with '/'")
    if name.startswith(("__Secure-", "__Host-")):
        secure = True  # the prefixes' contract: Chromium refuses them otherwise
    if name.startswith("__Host-"):
        host_only, path = True, "/"
    if host_only is True:
        domain = bare
    elif host_only is False:
        domain = "." + bare
    if same_site == "None":
        secure = True  # Chromium refuses SameSite=None without Secure
    return {
        "name": name,
        "value": value,
        "domain": domain,
        "path": path,
        "expires": float(expires) if expires > 0 else -1.0,
        "httpOnly": http_only,
        "secure": secure,
        "sameSite": same_site,
    }


def _finish(cookies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop expired cookies and keep the last of each (domain, path, name), as a browser would."""
    now = time.time()
    unique: dict[tuple[str, str, str], dict[str, Any]] = {}
    for cookie in cookies:
        if 0 < cookie["expires"] < now:
            continue
        key = (cookie["domain"], cookie["path"], cookie["name"])
        unique.pop(key, None)
        unique[key] = cookie
    return list(unique.values())


# --- Netscape cookies.txt ---------------------------------------------------------------------


def _netscape_bool(text: str, field: str, where: str) -> bool:
    """TRUE/FALSE fields (any case), so a typo is reported rather than read as False."""
    flag = text.strip().upper()
    if flag not in ("TRUE", "FALSE"):
        raise CookieImportError(f"{where}: {field} must be TRUE or FALSE, not {text!r}")
    return flag == "TRUE"


def parse_netscape(text: str, *, source: str = "") -> list[dict[str, Any]]:
    """Parse a Netscape/Mozilla ``cookies.txt`` (curl, yt-dlp, "Get cookies.txt" extensions).

    Lines are ``domain, includeSubdomains, path, secure, expiry, name, value`` separated by
    tabs; ``#`` starts a comment except curl's ``#HttpOnly_`` domain prefix. The format has
    no SameSite, so cookies get "Lax", what Chromium assumes for an unspecified SameSite.
    """
    cookies: list[dict[str, Any]] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.rstrip("\r")
        where = _where(source, f"line {number}")
        http_only = False
        if line[: len(_HTTPONLY_PREFIX)].lower() == _HTTPONLY_PREFIX:
            http_only, line = True, line[len(_HTTPONLY_PREFIX) :]
        elif line.lstrip().startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            hint = ""
            if "\t" not in line and len(line.split()) == 7:
                hint = " (the fields are separated by spaces; an editor or copy-paste replaced the tabs)"
            raise CookieImportError(
                f"{where}: expected 7 tab-separated fields (domain, includeSubdomains, path, "
                f"secure, expiry, name, value), found {len(fields)}{hint}"
            )
        domain, subdomains, path, secure, expiry, name, value = fields
        try:
            expires = float(expiry.strip())
        except ValueError:
            raise CookieImportError(f"{where}: expiry must be a unix timestamp, not {expiry!r}") from None
        if not math.isfinite(expires):
            raise CookieImportError(f"{where}: expiry must be a unix timestamp, not {expiry!r}")
        cookie = _cookie(
            name=name.strip(),
            value=value,
            domain=domain,
            host_only=not _netscape_bool(subdomains, "includeSubdomains (field 2)", where),
            path=path,
            expires=expires,
            http_only=http_only,
            secure=_netscape_bool(secure, "secure (field 4)", where),
            same_site="Lax",
            where=where,
        )
        if cookie is not None:
            cookies.append(cookie)
    return _finish(cookies)


# --- JSON: extension exports, Playwright storage_state -----------------------------------------


def _json_bool(entry: dict[str, Any], key: str, where: str) -> bool:
    """A boolean field; missing means False, and "false" must not read as True."""
    value = entry.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str) and str(value).strip().lower() in _BOOLS:
        return _BOOLS[str(value).strip().lower()]
    raise CookieImportError(f"{where}: {key} must be true or false, not {value!r}")


def _json_expires(entry: dict[str, Any], where: str) -> float:
    """Unix seconds, -1 for a session cookie; millisecond timestamps are scaled down."""
    if entry.get("session") is True:
        return -1.0
    raw = entry.get("expirationDate", entry.get("expires"))
    if raw is None:
        return -1.0
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            raise CookieImportError(f"{where}: expiry must be a unix timestamp, not {raw!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise CookieImportError(f"{where}: expiry must be a unix timestamp, not {raw!r}")
    if raw > 1e11:  # milliseconds: 1e11 seconds would be the year 5138
        raw /= 1000
    return float(raw) if raw > 0 else -1.0


def _json_cookie(entry: Any, index: int, source: str) -> dict[str, Any] | None:
    """One cookie from an extension export or a Playwright cookie dict."""
    where = _where(source, f"cookie #{index + 1}")
    if not isinstance(entry, dict):
        raise CookieImportError(f"{where}: expected an object, found {type(entry).__name__}")
    name, value = entry.get("name"), entry.get("value")
    if not isinstance(name, str):
        raise CookieImportError(f"{where}: 'name' must be a string, not {name!r}")
    where = f"{where} ({name!r})"
    if not isinstance(value, str):
        raise CookieImportError(f"{where}: 'value' must be a string, not {value!r}")
    domain, path, secure = entry.get("domain"), entry.get("path"), _json_bool(entry, "secure", where)
    host_only: bool | None = None
    if "hostOnly" in entry:
        host_only = _json_bool(entry, "hostOnly", where)
    url = entry.get("url")
    if not domain and isinstance(url, str) and url:
        # Playwright's url form: the URL's host, host-only, with the path up to its last '/'.
        parts = urlsplit(url)
        if not parts.hostname:
            raise CookieImportError(f"{where}: 'url' {url!r} has no host")
        domain, host_only = parts.hostname, True
        path = parts.path[: parts.path.rfind("/") + 1] or "/"
        secure = secure or parts.scheme == "https"
    if not isinstance(domain, str) or not domain:
        raise CookieImportError(f"{where}: 'domain' is missing")
    if path is not None and not isinstance(path, str):
        raise CookieImportError(f"{where}: 'path' must be a string, not {path!r}")
    same_site_raw = entry.get("sameSite") or ""
    same_site = _SAME_SITE.get(str(same_site_raw).strip().lower())
    if same_site is None:
        raise CookieImportError(
            f"{where}: sameSite must be Strict, Lax, None, no_restriction or unspecified, "
            f"not {same_site_raw!r}"
        )
    return _cookie(
        name=name,
        value=value,
        domain=domain,
        host_only=host_only,
        path=path or "/",
        expires=_json_expires(entry, where),
        http_only=_json_bool(entry, "httpOnly", where),
        secure=secure,
        same_site=same_site,
        where=where,
    )


def parse_json(text: str, *, source: str = "") -> list[dict[str, Any]]:
    """Parse a JSON cookie export: a list of cookies or an object with a ``cookies`` list.

    Covers Cookie-Editor / EditThisCookie exports (``hostOnly``, ``session``,
    ``expirationDate``, extension ``sameSite`` names), Playwright's ``storage_state``
    (its ``origins`` local storage is ignored) and plain lists of Playwright cookie dicts.
    """
    try:
        data = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise CookieImportError(
            _where(source, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
        ) from None
    if isinstance(data, dict) and isinstance(data.get("cookies"), list):
        data = data["cookies"]
    if not isinstance(data, list):
        raise CookieImportError(
            _where(
                source,
                "expected a JSON list of cookies or a Playwright storage_state with a 'cookies' list",
            )
        )
    cookies = [cookie for i, entry in enumerate(data) if (cookie := _json_cookie(entry, i, source))]
    return _finish(cookies)


# --- Files --------------------------------------------------------------------------------------


def _looks_netscape(text: str) -> bool:
    """A comment or header first, or a first line with seven tab/space separated fields."""
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        return line.startswith("#") or "\t" in line or len(line.split()) == 7
    return False


def load_cookies(path: Path) -> list[dict[str, Any]]:
    """Read a cookie file, choosing the parser by its content since extensions name files freely."""
    path = Path(path)
    source = path.name or str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CookieImportError(_where(source, f"cannot read the file ({exc.strerror or exc})")) from None
    if len(data) > MAX_FILE_BYTES:
        raise CookieImportError(
            _where(source, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; not a cookie export")
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CookieImportError(_where(source, "not UTF-8 text; export the cookies again as text")) from None
    stripped = text.strip()
    if not stripped:
        raise CookieImportError(_where(source, "the file is empty"))
    if stripped[0] in "[{":
        return parse_json(text, source=source)
    if _looks_netscape(text):
        return parse_netscape(text, source=source)
    hint = ""
    if re.match(r"^(cookie:\s*)?[^\s=;]+=[^;]*(;\s*[^\s=;]+=[^;]*)*;?$", stripped, re.IGNORECASE):
        hint = " (it looks like a Cookie header, which lacks domains and flags)"
    raise CookieImportError(
        _where(
            source,
            "neither a Netscape cookies.txt nor a JSON cookie export" + hint + "; export with a "
            "'Get cookies.txt' or Cookie-Editor extension, or yt-dlp --cookies-from-browser",
        )
    )


def platform_cookies(cookies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the cookies of platform domains: other sites' cookies never enter our contexts."""
    return [cookie for cookie in cookies if host_allowed(str(cookie.get("domain", "")).lstrip("."))]
