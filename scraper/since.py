"""``since`` and ``count`` for channel listings: the start of a day in a time zone.

``today`` is resolved when a request is accepted, so a job retried after
midnight still means the day the client asked about.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scraper.hosts import Platform

#: Where a platform's "day" starts unless the request says otherwise.
DEFAULT_TIMEZONES: dict[Platform, str] = {"douyin": "Asia/Shanghai", "tiktok": "UTC"}
DEFAULT_COUNT = 20
MAX_COUNT = 500
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: Posts carry Unix times, so no post is older than the epoch; earlier days (and the year-1 dates
#: that overflow ``datetime`` once moved to UTC from a zone east of it) mean nothing here.
EARLIEST_SINCE = date(1970, 1, 1)


class BadChannelParameter(ValueError):
    """A ``count``, ``since`` or ``tz`` the client must fix (HTTP 400)."""


def parse_timezone(name: object, default: str) -> ZoneInfo:
    if name is None:
        name = default
    if not isinstance(name, str) or not name or len(name) > 64:
        raise BadChannelParameter('"tz" must be an IANA time zone name such as "Asia/Shanghai" or "UTC".')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadChannelParameter(
            f'unknown time zone {name!r} in "tz"; use a name like "Europe/Berlin".'
        ) from exc


def parse_since(value: object, zone: ZoneInfo, *, now: datetime | None = None) -> datetime | None:
    """The UTC instant the ``since`` day starts in ``zone``; None when absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadChannelParameter('"since" must be "today", "yesterday" or a date "YYYY-MM-DD".')
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    text = value.strip().lower()
    if text == "today":
        day = today
    elif text == "yesterday":
        day = today - timedelta(days=1)
    elif _DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise BadChannelParameter(f'"since" {value!r} is not a real date.') from exc
        if day > today:
            raise BadChannelParameter(f'"since" {value!r} is in the future.')
        if day < EARLIEST_SINCE:
            raise BadChannelParameter(
                f'"since" {value!r} is out of range: use a day from {EARLIEST_SINCE.isoformat()} to today.'
            )
    else:
        raise BadChannelParameter(
            f'"since" must be "today", "yesterday" or a date "YYYY-MM-DD", not {value!r}.'
        )
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def parse_count(value: object, *, default: int = DEFAULT_COUNT) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadChannelParameter(f'"count" must be a whole number from 1 to {MAX_COUNT}.')
    if not 1 <= value <= MAX_COUNT:
        raise BadChannelParameter(f'"count" must be from 1 to {MAX_COUNT}, not {value}.')
    return value
