"""The one place where typed errors become API errors: HTTP statuses and job error messages."""

from __future__ import annotations

from scraper import errors

#: Job error prefixes by error type, most specific first.
_JOB_MESSAGES: tuple[tuple[type[errors.ScraperError], str], ...] = (
    (errors.InvalidUrl, "Could not extract video ID from URL"),
    (errors.NotFound, "Video not found"),
    (errors.PrivateContent, "Video is private"),
    (errors.Unavailable, "Video is unavailable"),
    (errors.RateLimited, "Rate limited by the platform"),
    (errors.Blocked, "Blocked by the platform"),
    (errors.LayoutChanged, "The platform's page changed; extraction failed"),
    (errors.ScrapeTimeout, "Timed out talking to the platform"),
    (errors.BrowserCrashed, "The browser crashed"),
    (errors.NetworkError, "Network error talking to the platform"),
)


def job_error(exc: BaseException) -> tuple[str, str]:
    """(message, code) stored on a failed job; never a stack trace."""
    if isinstance(exc, errors.ScraperError):
        for kind, prefix in _JOB_MESSAGES:
            if isinstance(exc, kind):
                return f"{prefix}: {exc.message}", exc.code
        return exc.message, exc.code
    if isinstance(exc, TimeoutError):
        return "The job took too long and was stopped", "timeout"
    return "Internal error while processing the job", "internal"


class ApiError(Exception):
    """An error answered in the vendor's envelope ``{"success": false, "error": ...}``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def http_error_for(exc: errors.ScraperError) -> ApiError:
    """Errors raised while validating a request (before a job exists)."""
    if isinstance(exc, errors.InvalidUrl):
        return bad_request(exc.message)
    return ApiError(502, exc.message)
