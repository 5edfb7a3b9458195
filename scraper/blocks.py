"""Recognise the platforms' risk-control answers in a page or an API response.

One place for the markers (platforms.md §E), so every extractor tells a block
apart from a missing item the same way.
"""

from __future__ import annotations

import re

_BLOCK_PAGE_MARKERS: tuple[tuple[str, str], ...] = (
    ("验证码中间页", "Douyin captcha page"),
    ("TTGCaptcha", "captcha page"),
    ("verify_center", "verification page"),
    ("tiktok-verify-page", "TikTok verification page"),
    ("_wafchallengeid", "WAF challenge that did not clear"),
    ("byted_acrawler", "acrawler challenge that did not clear"),
    ("Blocked by ArgusSecurityPlugin", "Argus block"),
    ("当前环境存在风险", "risk-control notice"),
)
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.S | re.I)


def page_title(html: str) -> str:
    """The document title, for error messages."""
    match = _TITLE_RE.search(html)
    return match.group(1).strip()[:120] if match else ""


def block_reason(html: str, *, headers: dict[str, str] | None = None) -> str | None:
    """Why this page is a block, or None when it does not look like one."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if headers.get("x-tt-system-error"):
        return "TikTok block shell (X-TT-System-Error)"
    head = html[:200_000]
    for marker, reason in _BLOCK_PAGE_MARKERS:
        if marker in head:
            return reason
    return None


def empty_api_body_reason(status: int, body: bytes, headers: dict[str, str] | None = None) -> str | None:
    """The API blocks: 200 with an empty body (bad signature, risk control), 403 Argus, 429."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if status == 429:
        return "rate limited (HTTP 429)"
    if status == 403:
        return "HTTP 403 from the API: " + body[:120].decode("utf-8", "replace")
    if not body.strip():
        extra = " (tt_orcas_res)" if headers.get("tt_orcas_res") else ""
        return f"HTTP {status} with an empty body{extra}: the platform's risk control refused the request"
    return None
