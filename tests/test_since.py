"""``since`` days in time zones and ``count`` bounds."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from scraper.since import BadChannelParameter, parse_count, parse_since, parse_timezone

NOW = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)  # already the 22nd in Shanghai


def test_today_starts_at_local_midnight() -> None:
    assert parse_since("today", ZoneInfo("UTC"), now=NOW) == datetime(2026, 11, 21, tzinfo=UTC)
    assert parse_since("today", ZoneInfo("Asia/Shanghai"), now=NOW) == datetime(2026, 11, 21, 16, tzinfo=UTC)


def test_yesterday_and_dates() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    assert parse_since("yesterday", shanghai, now=NOW) == datetime(2026, 11, 20, 16, tzinfo=UTC)
    assert parse_since("2026-11-01", ZoneInfo("UTC"), now=NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since(" Today ", ZoneInfo("UTC"), now=NOW) == datetime(2026, 11, 21, tzinfo=UTC)
    assert parse_since(None, shanghai, now=NOW) is None


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01", "2026-11-31", "2027-01-01", "", 5, ["today"]])
def test_bad_since(value: object) -> None:
    with pytest.raises(BadChannelParameter):
        parse_since(value, ZoneInfo("UTC"), now=NOW)


def test_count_and_timezone_bounds() -> None:
    assert parse_count(None) == 20 and parse_count(500) == 500 and parse_count(1) == 1
    for bad in (0, 501, -1, 2.5, "3", True):
        with pytest.raises(BadChannelParameter):
            parse_count(bad)
    assert parse_timezone(None, "Asia/Shanghai").key == "Asia/Shanghai"
    for bad in ("", "Nowhere/City", 3, "../../etc/passwd"):
        with pytest.raises(BadChannelParameter):
            parse_timezone(bad, "UTC")
