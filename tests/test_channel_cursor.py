"""Channel paging past one job: the opaque ``cursor`` of a channel result continues the listing.

* The listing's own rules (no browser): a platform of cursor-paged posts with pinned posts on its
  first page, read page after page from each result's resume point, by the fast path's way (from
  the resume page) and the navigation path's (from the top, skipping), gives the whole channel
  once, in order, for every page size, with and without ``since``, undated posts included.
* The token: made and read back; garbled, forged, foreign or oversized tokens are refused.
* The API: a garbled cursor, one of another account or platform, or one that contradicts the
  body's ``since`` is a 400 that charges nothing; a good one fixes the job's query.
* End to end (browser): the fixture site's big accounts listed in several jobs via the cursor
  return every post once, in order, on both platforms, by the fast path and by scrolling; a
  channel download given a listing's cursor downloads the next page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from fixtures.site import FixtureSite
from models.video import Author, Video
from scraper.channel import ChannelListing, ChannelQuery, Position, Resume
from scraper.config import load_browser_settings
from scraper.errors import NotFound
from scraper.pool import BrowserPool
from scraper.service import list_videos
from scraper.shapes.common import PostPage, Profile
from scraper.urls import classify
from server.cursors import (
    GARBLED,
    KEY_FILE,
    BadCursor,
    ListingCursor,
    cursor_key,
    decode,
    encode,
)
from server.keys import QUEUE, TOKENS
from server.settings import Settings
from tests.e2e import account_by_role, expected_channel, poll_job, start_app

DOUYIN_USER = "https://www.douyin.com/user/MS4wLjABAAAAcursorA"
OTHER_DOUYIN_USER = "https://www.douyin.com/user/MS4wLjABAAAAcursorB"
TIKTOK_USER = "https://www.tiktok.com/@cursor_owner"
ROUTES = {"douyin": "/api/channel/videos", "tiktok": "/api/tiktok/channel/videos"}


# --- the listing's rules, against a platform of cursor-paged posts --------------------------------

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def post(n: int, *, hours: int | None = None, pinned: bool = False) -> Video:
    """Post ``n``, made ``hours`` before T0 (None: undated)."""
    created = None if hours is None else (T0 - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    video_id = str(7_300_000_000_000_000_000 + n)
    return Video(video_id=video_id, create_time=created, platform="douyin", is_pinned=pinned)


def created(video: Video) -> datetime | None:
    return datetime.fromisoformat(video.create_time.replace("Z", "+00:00")) if video.create_time else None


@dataclass
class FakeChannel:
    """Posts as the platforms page them: pinned ones on the first page only, then the rest in
    their order, ``size`` a page; the cursor is the index after a page (opaque to the listing)."""

    pinned: list[Video]
    regular: list[Video]
    size: int

    def page(self, cursor: int) -> PostPage:
        rest = self.regular[cursor : cursor + self.size]
        end = cursor + len(rest)
        return PostPage([*(self.pinned if cursor == 0 else []), *rest], end < len(self.regular), end)


PROFILE = Profile(Author(nickname="n", sec_uid="MS4wLjABAAAAcursorA"), {})


def read_page(platform: FakeChannel, query: ChannelQuery, *, navigate: bool) -> ChannelListing:
    """One job's listing: the fast path asks from the resume page (the first page once before it
    when pinned posts are due); navigation reads from the top."""
    resume = query.resume
    listing = ChannelListing(query, start=0 if navigate else None)
    cursor = 0 if navigate or resume is None else resume.page
    if not navigate and resume is not None and resume.pinned and resume.page:
        first = ChannelListing(query, start=0, pinned_only=True)
        first.add(platform.page(0))
        listing.take_pinned(first)
    while not listing.complete:
        page = platform.page(cursor)
        listing.add(page)
        cursor = page.cursor
    return listing


def page_through(
    platform: FakeChannel, count: int, *, since: datetime | None = None, navigate: bool = False
) -> list[list[str]]:
    """Every page of the channel, each job continuing from the previous result's cursor."""
    made: dict[str, Resume] = {}

    def make_cursor(resume: Resume, author: Author) -> str:
        made[token := f"c{len(made)}"] = resume
        return token

    pages: list[list[str]] = []
    resume: Resume | None = None
    for _ in range(1000):
        query = ChannelQuery(count=count, since=since, resume=resume, make_cursor=make_cursor)
        result = read_page(platform, query, navigate=navigate).result(PROFILE)
        pages.append([video["video_id"] for video in result["videos"]])
        assert result["count"] == len(pages[-1]) <= count
        if not result["has_more"]:
            assert "cursor" not in result
            return pages
        resume = made[result["cursor"]]
    raise AssertionError("the listing never ended")


def whole_order(platform: FakeChannel, since: datetime | None = None) -> list[str]:
    """The channel in one listing's order: newest first, pinned posts by their time, undated last."""
    everything = [*platform.pinned, *platform.regular]
    inside = [v for v in everything if since is None or ((c := created(v)) is not None and c >= since)]
    return [v.video_id for v in sorted(inside, key=lambda v: Position.of(v).key, reverse=True)]


def channel(size: int = 7, undated: tuple[int, ...] = ()) -> FakeChannel:
    """60 regular posts, 3 hours apart, and pinned ones: older than all, in the middle, among the newest."""
    regular = [post(n, hours=None if n in undated else n * 3) for n in range(1, 61)]
    pinned = [post(100 + n, hours=hours, pinned=True) for n, hours in enumerate((500, 91, 4))]
    return FakeChannel(pinned, regular, size)


@pytest.mark.parametrize("navigate", [False, True], ids=["fast", "navigation"])
@pytest.mark.parametrize("count", [1, 2, 5, 7, 8, 20, 62, 63, 500])
def test_paging_gives_every_post_once_in_order(count: int, navigate: bool) -> None:
    platform = channel()
    pages = page_through(platform, count, navigate=navigate)
    flat = [video_id for page in pages for video_id in page]
    assert flat == whole_order(platform)
    assert all(len(page) == count for page in pages[:-1])


@pytest.mark.parametrize("navigate", [False, True], ids=["fast", "navigation"])
@pytest.mark.parametrize("count", [1, 4, 9])
def test_paging_keeps_the_since_day(count: int, navigate: bool) -> None:
    platform = channel()
    since = T0 - timedelta(hours=100)
    pages = page_through(platform, count, since=since, navigate=navigate)
    assert [video_id for page in pages for video_id in page] == whole_order(platform, since)


@pytest.mark.parametrize("count", [3, 10])
def test_undated_posts_come_after_every_dated_one_across_pages(count: int) -> None:
    platform = channel(undated=(2, 9, 33))
    pages = page_through(platform, count)
    flat = [video_id for page in pages for video_id in page]
    assert flat == whole_order(platform) and len(set(flat)) == len(flat)
    assert flat[-3:] == [post(33).video_id, post(9).video_id, post(2).video_id]


@pytest.mark.parametrize("navigate", [False, True], ids=["fast", "navigation"])
def test_a_channel_without_create_times_pages_in_id_order_without_reading_it_all(navigate: bool) -> None:
    # The platforms' ids grow with time, so their newest-first order is the ids' descending order.
    platform = FakeChannel([], [post(1000 - n) for n in range(40)], size=7)
    pages = page_through(platform, 5, navigate=navigate)
    assert [video_id for page in pages for video_id in page] == [v.video_id for v in platform.regular]
    assert len(pages) == 8
    first = read_page(platform, ChannelQuery(count=5), navigate=navigate)
    assert first.pages == 1  # as many undated posts as asked for, and no date seen: it stops there


def test_a_continuation_of_another_account_fails() -> None:
    resume = Resume(after=Position(0, "1"), page=0, account="MS4wLjABAAAAsomeoneelse")
    listing = ChannelListing(ChannelQuery(count=5, resume=resume))
    listing.add(channel().page(0))
    with pytest.raises(NotFound, match="another account"):
        listing.result(PROFILE)


def test_a_result_without_a_cursor_maker_has_no_cursor() -> None:
    listing = ChannelListing(ChannelQuery(count=5))
    listing.add(channel().page(0))
    result = listing.result(PROFILE)
    assert result["has_more"] is True and set(result) == {"author", "videos", "count", "has_more"}


# --- the token ---------------------------------------------------------------------------------

KEY = b"k" * 32


def a_cursor(**changes: Any) -> ListingCursor:
    fields: dict[str, Any] = {
        "platform": "douyin",
        "url": DOUYIN_USER,
        "account": "MS4wLjABAAAAcursorA",
        "handle": None,
        "count": 20,
        "tz": "Asia/Shanghai",
        "since": None,
        "since_input": None,
        "resume": Resume(
            Position(1_772_000_000_000, "7300000000000000001"),
            page=1_772_000_000_000,
            pinned=True,
            account="MS4wLjABAAAAcursorA",
        ),
    }
    return ListingCursor(**{**fields, **changes})


def signed(payload: object, key: bytes = KEY) -> str:
    """A token over any JSON, signed as ours are: what a leaked key (or a bug of ours) could make."""
    raw = json.dumps(payload).encode()
    mac = hmac.new(key, raw, hashlib.sha256).digest()[:16]
    b64 = base64.urlsafe_b64encode
    return f"{b64(raw).rstrip(b'=').decode()}.{b64(mac).rstrip(b'=').decode()}"


def test_a_cursor_reads_back_as_made() -> None:
    cursor = a_cursor()
    token = encode(cursor, KEY)
    assert decode(token, KEY) == cursor
    assert len(token) < 600 and token.isascii() and all(c.isalnum() or c in "-_." for c in token)


def _flip(token: str, at: int) -> str:
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


@pytest.mark.parametrize(
    "garble",
    [
        lambda t: _flip(t, 5),  # the payload changed
        lambda t: _flip(t, len(t) - 3),  # the signature changed
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: t.replace(".", ""),
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "not a cursor",
        lambda t: "A" * 5000,
        lambda t: t + "\u00e9",
        lambda t: "../../etc/passwd.AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_garbled_tokens_are_refused(garble: Callable[[str], str]) -> None:
    with pytest.raises(BadCursor) as refused:
        decode(garble(encode(a_cursor(), KEY)), KEY)
    assert str(refused.value) == GARBLED


def test_a_token_made_with_another_key_is_refused() -> None:
    with pytest.raises(BadCursor):
        decode(encode(a_cursor(), b"another key"), KEY)


@pytest.mark.parametrize("value", [None, 7, ["x"], {"cursor": "x"}, True])
def test_a_token_that_is_no_string_is_refused(value: object) -> None:
    with pytest.raises(BadCursor, match="must be a string"):
        decode(value, KEY)


@pytest.mark.parametrize(
    "change",
    [
        {"u": "http://127.0.0.1:8000/admin"},  # never a platform URL
        {"u": "https://www.douyin.com/user/MS4wLjABAAAAcursorA?next=http://127.0.0.1/"},  # not canonical
        {"u": TIKTOK_USER},  # another platform's URL
        {"p": "youtube"},
        {"g": -1},
        {"g": 2**64},
        {"g": "0"},
        {"a": [1, "../../x"]},
        {"a": [1.5, "1"]},
        {"c": 0},
        {"c": 501},
        {"c": True},
        {"z": "Mars/Olympus"},
        {"t": "yesterday"},
        {"s": "a b"},
        {"v": 2},
        {"extra": 1},
    ],
)
def test_a_signed_token_of_the_wrong_shape_is_still_refused(change: dict[str, Any]) -> None:
    payload = {**a_cursor().to_json(), **change}
    with pytest.raises(BadCursor):
        decode(signed(payload), KEY)
    assert decode(signed(a_cursor().to_json()), KEY) == a_cursor()  # the same, unchanged, is taken


def test_the_key_is_made_once_per_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "a")
    key = cursor_key(settings)
    assert cursor_key(settings) == key
    assert stat.S_IMODE(os.stat(settings.data_dir / KEY_FILE).st_mode) == 0o600
    assert cursor_key(Settings(data_dir=tmp_path / "b")) != key
    shared = "one secret for every node"
    assert cursor_key(Settings(data_dir=tmp_path / "a", cursor_key=shared)) == cursor_key(
        Settings(data_dir=tmp_path / "b", cursor_key=shared)
    )
    assert cursor_key(settings.with_overrides(cursor_key=shared)) != key


# --- the API (no browser) ---------------------------------------------------------------------------


@dataclass
class Api:
    client: TestClient
    token: str
    settings: Settings

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def post(self, platform: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = await self.client.post(ROUTES[platform], json=body, headers=self.auth())
        return response.status, await response.json()

    async def credits(self) -> int:
        info = await self.client.app[TOKENS].lookup(self.token)
        assert info is not None
        return info.credits

    def cursor(self, **changes: Any) -> str:
        return encode(a_cursor(**changes), cursor_key(self.settings))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, role="api", rate_limit=0)
    client = await start_app(settings)
    token, _ = await client.app[TOKENS].create(name="pager", credits=1000)
    try:
        yield Api(client, token, settings)
    finally:
        await client.close()


async def test_a_garbled_cursor_is_a_400_that_charges_nothing(api: Api) -> None:
    before = await api.credits()
    token = api.cursor()
    for bad in (token[:-2], _flip(token, 10), "nope", 12, encode(a_cursor(), b"someone else's key")):
        status, body = await api.post("douyin", {"url": DOUYIN_USER, "cursor": bad})
        assert status == 400, body
        assert body["success"] is False and '"cursor"' in body["error"]
    assert await api.credits() == before


async def test_a_cursor_of_another_account_is_a_400(api: Api) -> None:
    status, body = await api.post("douyin", {"url": OTHER_DOUYIN_USER, "cursor": api.cursor()})
    assert status == 400 and "another account" in body["error"] and DOUYIN_USER in body["error"]
    tiktok = api.cursor(platform="tiktok", url=TIKTOK_USER, account="MS4wLjABAAAAttA", handle="cursor_owner")
    status, body = await api.post("tiktok", {"url": "https://www.tiktok.com/@someone_else", "cursor": tiktok})
    assert status == 400 and "another account" in body["error"]


async def test_a_cursor_of_the_other_platform_is_a_400_naming_its_route(api: Api) -> None:
    tiktok = api.cursor(platform="tiktok", url=TIKTOK_USER, account="MS4wLjABAAAAttA", handle="cursor_owner")
    status, body = await api.post("douyin", {"url": DOUYIN_USER, "cursor": tiktok})
    assert status == 400 and "/api/tiktok/channel/videos" in body["error"]


async def test_a_cursor_fixes_since_and_tz_and_lends_its_count(api: Api) -> None:
    since = "2026-02-27T16:00:00+00:00"
    cursor = api.cursor(since=since, since_input="2026-02-28", count=35)
    status, body = await api.post("douyin", {"url": DOUYIN_USER, "cursor": cursor})
    assert status == 200, body
    job = await api.client.app[QUEUE].get(body["data"]["jobId"])
    assert job is not None
    payload = job.payload
    assert (payload["count"], payload["since"], payload["tz"]) == (35, since, "Asia/Shanghai")
    assert payload["cursor"] == {
        "after": [1_772_000_000_000, "7300000000000000001"],
        "page": 1_772_000_000_000,
        "pinned": True,
        "account": "MS4wLjABAAAAcursorA",
    }
    first = await api.post("douyin", {"url": DOUYIN_USER, "count": 35, "since": "2026-02-28"})
    first_job = await api.client.app[QUEUE].get(first[1]["data"]["jobId"])
    assert first_job is not None and first_job.dedupe_key != job.dedupe_key  # a later page is other work
    # The same body again with the cursor (since as typed, another page size) is taken ...
    status, body = await api.post(
        "douyin", {"url": DOUYIN_USER, "count": 5, "since": "2026-02-28", "cursor": cursor}
    )
    assert status == 200, body
    again = await api.client.app[QUEUE].get(body["data"]["jobId"])
    assert again is not None and again.payload["count"] == 5
    # ... another day or zone is not.
    for change in ({"since": "2026-02-20"}, {"tz": "UTC"}):
        status, body = await api.post("douyin", {"url": DOUYIN_USER, "cursor": cursor, **change})
        assert status == 400 and "the cursor continues" in body["error"], body


async def test_a_null_cursor_is_the_first_page(api: Api) -> None:
    status, body = await api.post("douyin", {"url": DOUYIN_USER, "cursor": None})
    assert status == 200, body
    job = await api.client.app[QUEUE].get(body["data"]["jobId"])
    assert job is not None and "cursor" not in job.payload


async def test_a_cursor_made_for_a_short_link_is_taken_with_the_short_link_or_the_profile(api: Api) -> None:
    short = "https://v.douyin.com/iRNBho6u/"
    cursor = api.cursor(url=classify(short).canonical_url)
    for url in (short, DOUYIN_USER):
        status, body = await api.post("douyin", {"url": url, "cursor": cursor})
        assert status == 200, (url, body)


# --- end to end: the fixture site's big accounts in several jobs ----------------------------------


async def list_page(client: TestClient, token: str, platform: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(ROUTES[platform], json=body, headers={"Authorization": f"Bearer {token}"})
    payload = await response.json()
    assert response.status == 200, payload
    job = await poll_job(client, payload["data"]["jobId"], deadline=180)
    assert job["state"] == "completed", job
    return dict(job["result"])


@pytest.mark.browser
@pytest.mark.parametrize("platform", ["douyin", "tiktok"])
@pytest.mark.parametrize(("role", "count"), [("big", 200), ("medium", 7)])
async def test_a_channel_listed_in_several_jobs_via_the_cursor_gives_every_post_once_in_order(
    client: TestClient, token: str, dataset: dict[str, Any], platform: str, role: str, count: int
) -> None:
    account = account_by_role(dataset, platform, role)
    expected = expected_channel(account, 10_000, None)
    assert len(expected) > 2 * count  # three pages at least, and the pinned posts come last
    body: dict[str, Any] = {"url": account["profile_url"], "count": count}
    pages: list[list[str]] = []
    while True:
        result = await list_page(client, token, platform, body)
        assert {"author", "videos", "count", "has_more"} <= set(result)
        assert result["author"]["sec_uid"] == account["sec_uid"] and result["count"] == len(result["videos"])
        pages.append([video["video_id"] for video in result["videos"]])
        if not result["has_more"]:
            assert "cursor" not in result
            break
        assert isinstance(result["cursor"], str) and len(pages) < 100
        body = {"url": account["profile_url"], "cursor": result["cursor"]}
    flat = [video_id for page in pages for video_id in page]
    assert flat == expected and all(len(page) == count for page in pages[:-1])


@pytest.mark.browser
async def test_a_channel_download_takes_the_cursor_of_a_listing(
    client: TestClient, token: str, dataset: dict[str, Any]
) -> None:
    account = account_by_role(dataset, "douyin", "medium")
    first = await list_page(client, token, "douyin", {"url": account["profile_url"], "count": 6})
    body = {"url": account["profile_url"], "count": 4, "cursor": first["cursor"]}
    response = await client.post(
        "/api/channel/download", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    started = await response.json()
    assert response.status == 200 and started["data"]["total"] == 4, started
    task_id = started["data"]["taskId"]
    for _ in range(6):  # each ?wait= answers at the task's end; six of them bound a hung test only
        task = (await (await client.get(f"/api/task/{task_id}?wait=30")).json())["data"]
        if task["status"] in ("completed", "partial", "failed"):
            break
    assert task["status"] == "completed", task
    assert [item["video_id"] for item in task["items"]] == expected_channel(account, 10_000, None)[6:10]


@pytest.fixture(scope="module")
async def scrolling_pool(site: FixtureSite) -> AsyncIterator[BrowserPool]:
    settings = replace(load_browser_settings().pointed_at(site), pool_size=1, fast_path=False)
    async with BrowserPool(settings) as pool:
        yield pool


@pytest.mark.browser
@pytest.mark.parametrize("platform", ["douyin", "tiktok"])
async def test_scrolling_continues_past_the_posts_earlier_pages_returned(
    scrolling_pool: BrowserPool, dataset: dict[str, Any], platform: str
) -> None:
    account = account_by_role(dataset, platform, "medium")
    made: dict[str, Resume] = {}

    def make_cursor(resume: Resume, author: Author) -> str:
        made[key := uuid.uuid4().hex] = resume
        return key

    pages: list[list[str]] = []
    resume: Resume | None = None
    while True:
        query = ChannelQuery(count=12, resume=resume, make_cursor=make_cursor)
        result = await list_videos(scrolling_pool, classify(account["profile_url"]), query)
        pages.append([video["video_id"] for video in result["videos"]])
        if not result["has_more"]:
            break
        resume = made[result["cursor"]]
    assert [video_id for page in pages for video_id in page] == expected_channel(account, 10_000, None)
    assert len(pages) == 3
