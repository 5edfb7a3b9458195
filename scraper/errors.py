"""Typed errors raised by the scraper.

They drive control flow: a business error (not found, private) fails the job
at once and keeps the session; a risk-control error (blocked, rate limited)
means rotate the session and retry. ``server.error_map`` turns them into job
errors and HTTP statuses in one place.
"""

from __future__ import annotations


class ScraperError(Exception):
    """Base class. ``retryable`` tells the queue whether another attempt may succeed."""

    retryable: bool = False
    code: str = "scraper_error"

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url

    def __str__(self) -> str:
        return self.message


class InvalidUrl(ScraperError):
    """The input is not a supported platform URL (rejected before a job exists)."""

    code = "invalid_url"


class WrongPlatform(InvalidUrl):
    """A valid platform URL sent to the other platform's route."""

    code = "wrong_platform"


class WrongKind(InvalidUrl):
    """A valid platform URL of the wrong kind (a profile on a video route, and so on)."""

    code = "wrong_kind"


class NotFound(ScraperError):
    """The item or account does not exist or was deleted."""

    code = "not_found"


class PrivateContent(ScraperError):
    """The item or account exists but is private or visible to its owner only."""

    code = "private"


class Unavailable(ScraperError):
    """The item exists but cannot be served (region lock, age gate, login wall)."""

    code = "unavailable"


class Blocked(ScraperError):
    """The platform's risk control answered (captcha, challenge loop, empty body)."""

    code = "blocked"
    retryable = True


class RateLimited(Blocked):
    """The platform asked us to slow down (HTTP 429 and friends)."""

    code = "rate_limited"


class LayoutChanged(ScraperError):
    """The page loaded but the data is not where we expect it: the site changed."""

    code = "layout_changed"


class ScrapeTimeout(ScraperError):
    """A navigation or a wait for data ran out of time."""

    code = "timeout"
    retryable = True


class BrowserCrashed(ScraperError):
    """The browser or the page died under us."""

    code = "browser_crashed"
    retryable = True


class NetworkError(ScraperError):
    """A connection failed (DNS, TLS, reset)."""

    code = "network_error"
    retryable = True


class FastPathMissed(ScraperError):
    """A fast (in-page fetch) route could not answer: a challenge in the reply, a layout surprise,
    a slow answer. Not the item's fault and not a block: the caller falls back to navigation in
    the same session, so this never reaches a job."""

    code = "fast_path_missed"
    retryable = True
