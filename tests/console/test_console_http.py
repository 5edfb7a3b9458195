"""The web console over HTTP without a browser (role api): sessions, CSRF, the API's own submit path,
privacy between tokens, escaping, the media proxy's limits and the security headers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy

from server.console.auth import COOKIE, csrf_token, safe_next
from server.console.chart import BlockHistory, chart
from server.console.media_proxy import media_url, signature
from server.console.queries import per_minute
from server.console.views import duration, file_links, href, number
from server.keys import QUEUE, TOKENS
from server.settings import Settings
from tests.e2e import start_app

DOUYIN_VIDEO = "https://www.douyin.com/video/7071967230287744267"
TIKTOK_PROFILE = "https://www.tiktok.com/@a3noticias"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Site:
    client: TestClient
    admin: str
    user: str
    user_id: int


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    first: list[str] = []
    client = await start_app(Settings(data_dir=tmp_path, role="api", rate_limit=0), first_tokens=first)
    app = client.app
    user, info = await app[TOKENS].create(name="alice", credits=100)
    try:
        yield Site(client, first[0], user, info.id)
    finally:
        await client.close()


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no form token on the page"
    return match.group(1)


async def sign_in(client: TestClient, token: str) -> str:
    """Sign in through the form; returns the form token of the signed-in pages."""
    client.session.cookie_jar.clear()
    form = await client.get("/console/signin")
    answer = await client.post(
        "/console/signin",
        data={"token": token, "csrf": csrf_of(await form.text()), "next": "/console"},
        allow_redirects=False,
    )
    assert answer.status == 303 and answer.headers["Location"] == "/console"
    home = await client.get("/console")
    assert home.status == 200
    return csrf_of(await home.text())


async def credits(site: Site, token: str) -> int:
    info = await site.client.app[TOKENS].lookup(token)
    assert info is not None
    return info.credits


def set_cookies(headers: CIMultiDictProxy[str]) -> list[str]:
    return headers.getall("Set-Cookie", [])


async def test_root_redirects_to_the_console_and_pages_need_a_session(site: Site) -> None:
    root = await site.client.get("/", allow_redirects=False)
    assert root.status == 302 and root.headers["Location"] == "/console"
    for path in ("/console", "/console/jobs", "/console/admin", "/console/jobs/x"):
        answer = await site.client.get(path, allow_redirects=False)
        assert answer.status == 303
        assert answer.headers["Location"].startswith("/console/signin?next=")


async def test_the_session_cookie_is_httponly_strict_and_no_url_carries_the_token(site: Site) -> None:
    form = await site.client.get("/console/signin")
    answer = await site.client.post(
        "/console/signin",
        data={"token": site.user, "csrf": csrf_of(await form.text()), "next": "/console/jobs"},
        allow_redirects=False,
    )
    assert answer.status == 303 and answer.headers["Location"] == "/console/jobs"
    [session] = [c for c in set_cookies(answer.headers) if c.startswith(COOKIE + "=")]
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/console" in session
    assert site.user not in answer.headers["Location"]


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/console", "/api/job/x", "/console\\x"]
)
def test_sign_in_goes_back_only_to_console_pages(target: str) -> None:
    assert safe_next(target) == "/console"
    assert safe_next("/console/jobs?state=failed") == "/console/jobs?state=failed"


async def test_sign_in_refuses_a_form_without_its_cookie_value_and_wrong_tokens(site: Site) -> None:
    site.client.session.cookie_jar.clear()
    forged = await site.client.post("/console/signin", data={"token": site.user, "csrf": "guess"})
    assert forged.status == 403
    assert not [c for c in set_cookies(forged.headers) if c.startswith(COOKIE + "=")]
    form = await site.client.get("/console/signin")
    wrong = await site.client.post(
        "/console/signin", data={"token": "sv_nope", "csrf": csrf_of(await form.text())}
    )
    assert wrong.status == 401 and "Invalid token" in await wrong.text()
    await site.client.app[TOKENS].set_banned(site.user_id, True)
    form = await site.client.get("/console/signin")
    banned = await site.client.post(
        "/console/signin", data={"token": site.user, "csrf": csrf_of(await form.text())}
    )
    assert banned.status == 403 and "Your account has been banned" in await banned.text()


async def test_forms_need_their_token_and_our_origin(site: Site) -> None:
    csrf = await sign_in(site.client, site.user)
    before = await credits(site, site.user)
    body = {"url": DOUYIN_VIDEO, "action": "parse"}
    for data, headers in (
        (body, {}),
        ({**body, "csrf": "0" * 64}, {}),
        ({**body, "csrf": csrf_token(site.admin)}, {}),
        ({**body, "csrf": csrf}, {"Origin": "https://evil.example"}),
    ):
        answer = await site.client.post("/console/submit", data=data, headers=headers, allow_redirects=False)
        assert answer.status == 403, data
    assert await credits(site, site.user) == before
    ok = await site.client.post(
        "/console/submit",
        data={**body, "csrf": csrf},
        headers={"Origin": f"http://{site.client.host}:{site.client.port}"},
    )
    assert ok.status == 200 and await credits(site, site.user) == before - 10


async def _api_error(site: Site, path: str, body: dict[str, Any], token: str) -> tuple[int, str]:
    answer = await site.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    return answer.status, (await answer.json())["error"]


def _page_error(html: str) -> str:
    match = re.search(r'<div class="alert error" role="alert" id="submit-error">(.*?)</div>', html, re.S)
    assert match, "no error on the page"
    return match.group(1).replace("&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")


@pytest.mark.parametrize(
    ("form", "path", "body"),
    [
        (
            {"url": "https://example.com/v/1", "action": "parse"},
            "/api/video/parse",
            {"url": "https://example.com/v/1"},
        ),
        ({"url": "  ", "action": "download"}, "/api/video/download", {"url": "  "}),
        ({"url": DOUYIN_VIDEO, "action": "channel"}, "/api/channel/videos", {"url": DOUYIN_VIDEO}),
        (
            {"url": TIKTOK_PROFILE, "action": "channel", "count": "abc"},
            "/api/tiktok/channel/videos",
            {"url": TIKTOK_PROFILE, "count": "abc"},
        ),
        (
            {"url": TIKTOK_PROFILE, "action": "channel_download", "count": "501"},
            "/api/tiktok/channel/download",
            {"url": TIKTOK_PROFILE, "count": 501},
        ),
        (
            {"url": TIKTOK_PROFILE, "action": "channel", "since": "1969-01-01"},
            "/api/tiktok/channel/videos",
            {"url": TIKTOK_PROFILE, "since": "1969-01-01"},
        ),
    ],
)
async def test_a_refused_submit_says_what_the_api_says_and_charges_nothing(
    site: Site, form: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    status, message = await _api_error(site, path, body, site.user)
    assert status == 400
    csrf = await sign_in(site.client, site.user)
    before = await credits(site, site.user)
    page = await site.client.post("/console/submit", data={**form, "csrf": csrf})
    assert page.status == status
    assert _page_error(await page.text()) == message
    assert await credits(site, site.user) == before


async def test_an_accepted_submit_is_the_apis_job_and_charge(site: Site) -> None:
    csrf = await sign_in(site.client, site.user)
    share = (
        f"3.87 复制打开抖音，看看【某人的作品】好看 {DOUYIN_VIDEO}?previous_page=app_code_link z@f.bA 05/11"
    )
    answer = await site.client.post(
        "/console/submit", data={"url": share, "action": "parse", "csrf": csrf}, allow_redirects=False
    )
    assert answer.status == 303
    job_id = answer.headers["Location"].rsplit("/", 1)[1]
    job = await site.client.app[QUEUE].get(job_id)
    assert job is not None
    assert (job.type, job.url, job.token_id, job.cost) == ("video.parse", DOUYIN_VIDEO, site.user_id, 10)
    assert await credits(site, site.user) == 90
    task = await site.client.post(
        "/console/submit",
        data={"url": TIKTOK_PROFILE, "action": "channel_download", "count": "3", "csrf": csrf},
        allow_redirects=False,
    )
    assert task.status == 303 and task.headers["Location"].startswith("/console/tasks/")
    row = await site.client.app[QUEUE].get(task.headers["Location"].rsplit("/", 1)[1])
    assert row is not None and row.type == "tiktok.channel.download" and row.payload["count"] == 3
    assert await credits(site, site.user) == 70


async def test_too_few_credits_is_the_apis_402(site: Site) -> None:
    poor, _ = await site.client.app[TOKENS].create(name="poor", credits=5)
    csrf = await sign_in(site.client, poor)
    page = await site.client.post(
        "/console/submit", data={"url": DOUYIN_VIDEO, "action": "parse", "csrf": csrf}
    )
    assert page.status == 402
    assert (
        _page_error(await page.text())
        == "Payment Required: Insufficient credits. You need 10 credits, but have 5."
    )


async def _completed_job(site: Site, token: str, result: dict[str, Any]) -> str:
    csrf = await sign_in(site.client, token)
    answer = await site.client.post(
        "/console/submit", data={"url": DOUYIN_VIDEO, "action": "parse", "csrf": csrf}, allow_redirects=False
    )
    job_id = answer.headers["Location"].rsplit("/", 1)[1]
    queue = site.client.app[QUEUE]
    claimed = await queue.claim("test-worker")
    assert claimed is not None and claimed.id == job_id
    assert await queue.complete(job_id, "test-worker", result)
    return job_id


HOSTILE = {
    "video_id": "7071967230287744267",
    "title": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "author": {
        "nickname": '"><svg onload=alert(3)>',
        "unique_id": "x",
        "avatar_url": "https://p3.douyinpic.com/a.jpeg?x=1&y=<b>",
    },
    "cover_url": "https://evil.example/cover.jpg",
    "download_url": "javascript:alert(4)",
    "share_url": "javascript:alert(5)",
    "duration": 9,
    "create_time": "2026-04-02T10:00:00.000Z",
    "statistics": {"likes": 1, "comments": 2, "shares": 3},
    "platform": "douyin",
    "media_type": "video",
    "music": {"title": "</textarea><b>x</b>", "author": "<i>y</i>"},
}


async def test_platform_text_is_escaped_and_hostile_links_are_dropped(site: Site) -> None:
    job_id = await _completed_job(site, site.user, HOSTILE)
    page = await site.client.get(f"/console/jobs/{job_id}")
    html = await page.text()
    assert page.status == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "<img src=x" not in html and "<svg onload" not in html and "<b>x</b>" not in html
    assert "javascript:" not in html.split('<pre class="json">')[0]  # only as text in the raw JSON
    assert 'src="https://evil.example' not in html  # not a platform host: never fetched, never shown
    avatar = re.search(r'<img class="avatar" src="([^"]+)"', html)
    assert avatar and avatar.group(1).startswith("/console/media?u=")


async def test_jobs_are_private_to_their_token_and_visible_to_admins(site: Site) -> None:
    job_id = await _completed_job(site, site.user, HOSTILE)
    bob, _ = await site.client.app[TOKENS].create(name="bob", credits=100)
    await sign_in(site.client, bob)
    assert (await site.client.get(f"/console/jobs/{job_id}")).status == 404
    assert job_id not in await (await site.client.get("/console/jobs")).text()
    assert (await site.client.get(f"/console/jobs/{job_id}/live")).status == 404
    assert (await site.client.get("/console/admin")).status == 403
    await sign_in(site.client, site.admin)
    assert (await site.client.get(f"/console/jobs/{job_id}")).status == 200
    listing = await (await site.client.get("/console/jobs?state=completed&type=video.parse")).text()
    assert job_id in listing and ">alice<" in listing


async def test_the_media_proxy_fetches_only_what_the_console_signed_for_this_viewer(site: Site) -> None:
    await sign_in(site.client, site.user)
    platform = "https://p3-sign.douyinpic.com/obj/cover.jpeg?x-expires=1"
    assert media_url(site.user, "https://evil.example/a.jpg") is None
    assert media_url(site.user, "http://p3.douyinpic.com/a.jpg") is None  # https only
    unsigned = await site.client.get("/console/media", params={"u": platform, "s": "0" * 32})
    assert unsigned.status == 403
    theirs = await site.client.get(
        "/console/media", params={"u": platform, "s": signature(site.admin, platform)}
    )
    assert theirs.status == 403
    local = "https://127.0.0.1/secret"
    refused = await site.client.get("/console/media", params={"u": local, "s": signature(site.user, local)})
    assert refused.status == 502  # signed or not, a non-platform host is never fetched
    query = parse_qs(urlsplit(media_url(site.user, platform) or "").query)
    assert query["u"] == [platform] and query["s"] == [signature(site.user, platform)]


async def test_console_answers_carry_a_strict_policy_and_the_api_is_unchanged(site: Site) -> None:
    for path in ("/console/signin", "/console/static/console.css", "/console/static/console.js"):
        answer = await site.client.get(path)
        assert answer.status == 200, path
        policy = answer.headers["Content-Security-Policy"]
        assert (
            "default-src 'self'" in policy
            and "script-src 'self'" in policy
            and "'unsafe-inline'" not in policy
        )
        assert "frame-ancestors 'none'" in policy and answer.headers["X-Content-Type-Options"] == "nosniff"
    page = await site.client.get("/console/signin")
    assert page.headers["Cache-Control"] == "no-store"
    assert " style=" not in await page.text()  # inline styles would break the policy
    health = await site.client.get("/api/health")
    assert "Content-Security-Policy" not in health.headers


async def test_admin_forms_run_the_admin_routes(site: Site) -> None:
    csrf = await sign_in(site.client, site.admin)
    made = await site.client.post(
        "/console/admin/tokens", data={"name": "carol", "credits": "40", "csrf": csrf}, allow_redirects=False
    )
    html = await made.text()
    assert made.status == 200 and re.search(r'id="new-token"[^>]*value="sv_', html)
    carol = next(t for t in await site.client.app[TOKENS].list() if t.name == "carol")
    assert carol.credits == 40
    dup = await site.client.post(
        "/console/admin/tokens", data={"name": "carol", "credits": "1", "csrf": csrf}
    )
    assert dup.status == 409 and "already exists" in await dup.text()
    bad = await site.client.post(
        f"/console/admin/tokens/{carol.id}/topup", data={"amount": "lots", "csrf": csrf}
    )
    assert bad.status == 400 and "&#34;amount&#34;" in await bad.text()
    for name in ("7", "d e", "x/y"):
        await site.client.app[TOKENS].create(name=name, credits=1)
    targets = {t.name: t for t in await site.client.app[TOKENS].list()}
    for name in ("7", "d e", "x/y"):
        done = await site.client.post(
            f"/console/admin/tokens/{targets[name].id}/ban", data={"csrf": csrf}, allow_redirects=False
        )
        assert done.status == 303, name
    after = {t.name: t for t in await site.client.app[TOKENS].list()}
    assert {n for n, t in after.items() if t.banned} == {"7", "d e", "x/y"}  # each exactly the one meant
    notice = await (await site.client.get(f"/console/admin?done=banned:{targets['7'].id}")).text()
    assert "Token “7” banned." in notice


def test_counts_per_minute_put_this_minute_last() -> None:
    now = datetime(2026, 12, 2, 10, 30, 20, tzinfo=UTC)
    moments = [
        now - timedelta(seconds=5),
        now - timedelta(minutes=1),
        now - timedelta(minutes=59),
        now - timedelta(hours=2),
    ]
    counts = per_minute(moments, now=now)
    assert len(counts) == 60 and counts[-1] == 1 and counts[-2] == 1 and counts[0] == 1 and sum(counts) == 3


def test_block_history_counts_growth_per_minute() -> None:
    clock = [0.0]
    history = BlockHistory(clock=lambda: clock[0])
    history.record(5)  # blocks before the first sample are not this hour's to show
    clock[0] = 70.0
    history.record(7)
    clock[0] = 200.0
    history.record(10)
    minutes = history.per_minute()
    assert len(minutes) == 60 and minutes[-1] == 3 and minutes[-2] == 0 and minutes[-3] == 2
    bars = chart([0] * 59 + [4], [0] * 60, minutes)
    assert bars.peak == 4 and bars.jobs[-1].height > bars.blocks[-1].height > 0


def test_formats_and_links() -> None:
    assert (number(999), number(1234), number(2_500_000), number(None)) == ("999", "1.2k", "2.5M", "–")
    assert (duration(75), duration(3725), duration(0)) == ("1:15", "1:02:05", "")
    assert href("https://www.douyin.com/video/1") and href("javascript:alert(1)") is None
    assert href("data:text/html,x") is None and href("//evil.example") is None
    files = [
        {"role": "image", "download_url": "/api/files/a"},
        {"role": "image", "download_url": "/api/files/b"},
        {"role": "music", "download_url": "/api/files/c"},
        {"role": "image", "download_url": "https://evil.example/x"},
    ]
    assert file_links(files) == [
        ("image 1", "/api/files/a"),
        ("image 2", "/api/files/b"),
        ("music", "/api/files/c"),
    ]
