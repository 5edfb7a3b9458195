"""The outcome classifier: one place that says what a platform's answer means.

Every extractor and the downloader ask it, so a deleted video is never blamed
on the session and a captcha is never reported as "not found":

* ``ok``        the data is there;
* ``business``  the platform answered about the item (not found, private...): fail fast, keep the session;
* ``risk``      risk control (captcha, verify, challenge that never clears, empty body, 403/429):
                cool the session down or retire it, retry on another;
* ``network``   the connection failed: retry;
* ``layout``    the page settled without the data where we expect it: the site changed.
"""

from __future__ import annotations

import enum
import re

from scraper import errors


class Outcome(enum.StrEnum):
    OK = "ok"
    BUSINESS = "business"
    RISK = "risk"
    NETWORK = "network"
    LAYOUT = "layout"


#: Markup that means a block, whatever else the page holds (platforms.md §E).
DEFINITIVE_MARKERS: tuple[tuple[str, str], ...] = (
    ("验证码中间页", "Douyin captcha page"),
    # Not the bare "TTGCaptcha": real iesdouyin share pages carry the SDK's glue code too
    # (../shared/real-captures/douyin-iesdouyin-share-video-page.*.html); only the captcha page
    # renders it (douyin-captcha-middle-page.douyinstream-pro-20260115.html).
    ("TTGCaptcha.render", "captcha page"),
    ("verify_center", "verification page"),
    ("tiktok-verify-page", "TikTok verification page"),
    # TikTok's "Security Check" middle page configures its slider in this script
    # (../shared/real-captures/tiktok-captcha-security-check-page.tkkstarlink-20260415.html).
    ('id="captcha-config"', "TikTok captcha page"),
    ("Blocked by ArgusSecurityPlugin", "Argus block"),
    ("当前环境存在风险", "risk-control notice"),
)
#: Challenges a real browser clears by itself (run a script, reload); a block only if they persist.
TRANSIENT_MARKERS: tuple[tuple[str, str], ...] = (
    ("_wafchallengeid", "WAF proof-of-work challenge that did not clear"),
    ("byted_acrawler", "acrawler challenge that did not clear"),
)
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.S | re.I)


def page_title(html: str) -> str:
    """The document title, for error messages."""
    match = _TITLE_RE.search(html)
    return match.group(1).strip()[:120] if match else ""


def _first(markers: tuple[tuple[str, str], ...], text: str) -> str | None:
    return next((reason for marker, reason in markers if marker in text), None)


def definitive_block(html: str) -> str | None:
    """Why this page is certainly a block (checked while we wait, to fail fast), or None."""
    return _first(DEFINITIVE_MARKERS, html[:200_000])


def block_reason(html: str, *, headers: dict[str, str] | None = None) -> str | None:
    """Why this page is a block once waiting is over (transient challenges count now), or None."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if lowered.get("x-tt-system-error"):
        return "TikTok block shell (X-TT-System-Error)"
    return definitive_block(html) or _first(TRANSIENT_MARKERS, html[:200_000])


def page_response_error(status: int, headers: dict[str, str], url: str) -> errors.ScraperError | None:
    """A document response that is a block by its status or headers alone."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("x-tt-system-error"):
        return errors.Blocked(
            f"TikTok block shell (X-TT-System-Error: {lowered['x-tt-system-error']})", url=url
        )
    if status == 429:
        return errors.RateLimited("the platform rate-limited the page load (HTTP 429)", url=url)
    return None


def api_answer_error(
    status: int, body: bytes, headers: dict[str, str], url: str
) -> errors.ScraperError | None:
    """The API blocks: 200 with an empty body (bad signature, risk control), 403 Argus, 429."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if status == 429:
        return errors.RateLimited("rate limited (HTTP 429)", url=url)
    if status == 403:
        return errors.Blocked("HTTP 403 from the API: " + body[:120].decode("utf-8", "replace"), url=url)
    if not body.strip():
        extra = " (tt_orcas_res)" if lowered.get("tt_orcas_res") else ""
        return errors.Blocked(
            f"HTTP {status} with an empty body{extra}: the platform's risk control refused the request",
            url=url,
        )
    text = body[:4096].decode("utf-8", "replace")
    if text.lstrip().startswith("<"):
        reason = block_reason(text)
        if reason:
            return errors.Blocked(f"{reason} instead of JSON", url=url)
    return None


def media_answer_error(role: str, content_type: str, head: bytes, url: str) -> errors.ScraperError:
    """Media that is not media: a captcha page, an HTML page, or something else."""
    text = head.decode("utf-8", "replace")
    reason = block_reason(text) or (
        "an HTML page" if "html" in content_type or text.lstrip()[:1] == "<" else None
    )
    if reason:
        return errors.Blocked(f"the CDN sent {reason} instead of the {role}", url=url)
    return errors.Blocked(f"the CDN sent something that is not a {role} ({content_type})", url=url)


def media_status_error(status: int, body: bytes, url: str) -> errors.ScraperError:
    if status == 404:
        return errors.NotFound(f"the media URL answered 404: {url[:120]}", url=url)
    if status == 429:
        return errors.RateLimited("the media CDN rate-limited us (HTTP 429)", url=url)
    detail = body[:120].decode("utf-8", "replace").strip()
    return errors.Blocked(f"the media CDN refused the download (HTTP {status}) {detail}".strip(), url=url)


def outcome_of(error: BaseException | None) -> Outcome:
    """The outcome a raised error stands for (None: success)."""
    if error is None:
        return Outcome.OK
    if isinstance(error, errors.Blocked):
        return Outcome.RISK
    if isinstance(error, errors.LayoutChanged):
        return Outcome.LAYOUT
    if isinstance(error, (errors.NotFound, errors.PrivateContent, errors.Unavailable, errors.InvalidUrl)):
        return Outcome.BUSINESS
    return Outcome.NETWORK
