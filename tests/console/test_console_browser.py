"""The web console as a person uses it, in a real Chromium, against ``shortvid serve --offline``.

Every test signs in, works through the pages and saves a desktop and a phone screenshot of each
(``test-artifacts/console/``). The ``guard`` fixture fails a test whose page asked any other host
than ours, broke its own Content-Security-Policy or opened a dialog.
"""

from __future__ import annotations

import re
from functools import cache

import pytest
from playwright.sync_api import Page, expect
from pytest_playwright.pytest_playwright import CreateContextCallback

from fixtures.dataset import HOSTILE_MUSIC, HOSTILE_NICKNAME, HOSTILE_TITLE, Dataset, Item, build_dataset
from tests.console.conftest import Console, Guard, Shoot
from tests.e2e import http_json

pytestmark = pytest.mark.browser

#: Bounds a hung job, never a measured time: offline jobs end in a second or two.
JOB_DEADLINE_MS = 60_000


@cache
def dataset() -> Dataset:
    """The replica's dataset (the server builds the same one: it depends on the day and seed)."""
    return build_dataset()


def first_public(platform: str, kind: str) -> Item:
    """The replica's first public post of ``kind`` by a public account on ``platform``."""
    return next(
        i
        for i in dataset().items(platform)
        if i.kind == kind and i.state == "public" and i.author.state == "public"
    )


def sign_in(page: Page, console: Console, token: str) -> None:
    page.goto(console.url("/console/signin"))
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(console.url("/console"))


def submit(page: Page, console: Console, text: str, action: str) -> None:
    """Paste ``text`` in the home page's box and press ``action`` (the button's label)."""
    page.goto(console.url("/console"))
    page.locator("#url").fill(text)
    page.get_by_role("button", name=re.compile(f"^{re.escape(action)}")).click()


def wait_finished(page: Page, state: str = "completed") -> None:
    expect(page.locator("#job-state")).to_have_text(state, timeout=JOB_DEADLINE_MS)


def images_loaded(page: Page, selector: str) -> list[int]:
    """The natural width of every image under ``selector`` once each has finished loading."""
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.complete)", arg=selector, timeout=JOB_DEADLINE_MS
    )
    widths: list[int] = page.eval_on_selector_all(selector, "els => els.map(i => i.naturalWidth)")
    return widths


def test_root_goes_to_the_console_and_a_wrong_token_is_refused(
    page: Page, guard: Guard, console: Console, shoot: Shoot
) -> None:
    page.goto(console.url("/"))
    expect(page).to_have_url(re.compile(r"/console/signin\?next="))
    shoot(page, "01-signin")
    page.get_by_label("API token").fill("sv_not_a_token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid token")
    assert "sv_not_a_token" not in page.url
    sign_in(page, console, console.user_token)
    expect(page.locator("#credits")).to_have_text("5,000")
    assert console.user_token not in page.url
    cookie = next(c for c in page.context.cookies() if c["name"] == "shortvid_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"


def test_a_pasted_share_text_becomes_a_job_that_updates_live(
    page: Page, guard: Guard, console: Console, shoot: Shoot
) -> None:
    data = dataset()
    link = next(s for s in data.short_links if s.platform == "douyin" and s.kind == "video")
    item = data.item("douyin", link.item_id or "")
    assert item is not None
    sign_in(page, console, console.user_token)
    share = f"7.92 复制打开抖音，看看【{item.author.nickname}的作品】{item.title[:12]} {link.url} JVl:/"
    streams: list[str] = []
    page.on(
        "request", lambda request: streams.append(request.url) if request.url.endswith("/events") else None
    )
    submit(page, console, share, "Parse")
    expect(page).to_have_url(re.compile(r"/console/jobs/[0-9a-f-]{36}$"))
    page.evaluate("window.__sameDocument = true")
    shown_first = page.locator("#job-state").text_content()
    wait_finished(page)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    if shown_first not in ("completed", "failed"):
        assert streams, "the page followed the job without the API's event stream"
    expect(page.locator("#post-title")).to_have_text(item.title)
    expect(page.locator("#author-nickname")).to_have_text(item.author.nickname)
    assert images_loaded(page, ".post-media img.cover")[0] > 0  # the cover, through our proxy
    expect(page.locator(".counters")).to_contain_text("Likes")
    page.get_by_text("Raw JSON").click()
    expect(page.locator("pre.json")).to_contain_text(f'"video_id": "{item.id}"')
    shoot(page, "03-job-parse")
    page.goto(console.url("/console"))
    expect(page.locator("#credits")).not_to_have_text("5,000")  # the API's charge, 10 credits
    shoot(page, "02-home")


def test_a_download_job_plays_its_video_in_the_page(
    page: Page, guard: Guard, console: Console, shoot: Shoot
) -> None:
    item = first_public("tiktok", "video")
    sign_in(page, console, console.user_token)
    # No event stream on this server (404, as before the API had one): the page polls the job.
    page.route("**/api/job/*/events", lambda route: route.fulfill(status=404, body="{}"))
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/api/job/" in request.url else None)
    submit(page, console, item.url, "Download")
    shown_first = page.locator("#job-state").text_content()
    wait_finished(page)
    if shown_first not in ("completed", "failed"):
        assert any(url.endswith(page.url.rsplit("/", 1)[1]) for url in polls), polls  # GET /api/job/{id}
    video = page.locator("video#player")
    expect(video).to_have_attribute("src", re.compile(r"^/api/files/[0-9a-f-]{36}$"))
    state = video.evaluate(
        """async v => {
            v.muted = true;
            await v.play();
            while (v.readyState < 2) await new Promise(r => v.addEventListener("canplay", r, {once: true}));
            return {readyState: v.readyState, duration: v.duration, width: v.videoWidth};
        }"""
    )
    assert state["readyState"] >= 2
    assert state["duration"] == pytest.approx(1.0, abs=0.15)  # the replica's MP4 lasts one second
    assert state["width"] == 64
    expect(page.get_by_role("link", name=re.compile("^Download video"))).to_have_attribute(
        "href", re.compile("^/api/files/")
    )
    shoot(page, "04-job-download-video")


def test_a_photo_post_shows_its_images_in_a_grid(
    page: Page, guard: Guard, console: Console, shoot: Shoot
) -> None:
    photo = first_public("douyin", "photo")
    sign_in(page, console, console.user_token)
    submit(page, console, photo.url, "Parse")
    wait_finished(page)
    widths = images_loaded(page, "#photo-grid img")
    assert len(widths) == photo.images and all(w > 0 for w in widths)
    expect(page.locator(".grid-title")).to_have_text(f"{photo.images} images")
    shoot(page, "05-job-photo-grid")


def test_a_channel_listing_is_a_table_with_thumbnails(
    page: Page, guard: Guard, console: Console, shoot: Shoot
) -> None:
    account = dataset().account("tiktok", "photos")
    public = [i for i in account.items if i.state == "public"]
    sign_in(page, console, console.user_token)
    submit(page, console, account.profile_url, "Channel videos")
    wait_finished(page)
    rows = page.locator("#channel-table tbody tr")
    expect(rows).to_have_count(len(public))
    assert all(w > 0 for w in images_loaded(page, "#channel-table img.thumb"))
    expect(page.locator("#author-nickname")).to_have_text(account.nickname)
    shoot(page, "06-job-channel")


def test_a_channel_download_shows_its_progress_to_the_end(
    page: Page, guard: Guard, console: Console, shoot: Shoot
) -> None:
    account = dataset().account("douyin", "photos")
    public = [i for i in account.items if i.state == "public"]
    sign_in(page, console, console.user_token)
    submit(page, console, account.profile_url, "Channel download")
    expect(page).to_have_url(re.compile(r"/console/tasks/[0-9a-f-]{36}$"))
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#task-status")).to_have_text("completed", timeout=JOB_DEADLINE_MS)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#task-progress")).to_have_attribute("value", "100")
    expect(page.locator("#task-counts")).to_contain_text(
        f"{len(public)} done · 0 failed · {len(public)} total"
    )
    items = page.locator("#task-items tbody tr")
    expect(items).to_have_count(len(public))
    links = page.locator("#task-items a[download]")
    expect(links.first).to_have_attribute("href", re.compile("^/api/files/"))
    hrefs = links.evaluate_all("els => els.map(a => a.getAttribute('href'))")
    images = sum(i.images if i.kind == "photo" else 1 for i in public)
    assert len(hrefs) >= images  # every video and every image of every post, each downloadable
    answer = page.request.get(console.url(hrefs[0]))
    assert answer.status == 200 and int(answer.headers["content-length"]) > 0
    shoot(page, "07-task")


def test_hostile_titles_and_nicknames_render_as_text(
    page: Page, guard: Guard, console: Console, shoot: Shoot
) -> None:
    account = dataset().account("douyin", "hostile")
    sign_in(page, console, console.user_token)
    submit(page, console, account.items[0].url, "Parse")
    wait_finished(page)
    expect(page.locator("#post-title")).to_have_text(HOSTILE_TITLE)
    expect(page.locator("#author-nickname")).to_have_text(HOSTILE_NICKNAME)
    expect(page.locator(".post-info .facts")).to_contain_text(HOSTILE_MUSIC)
    assert page.locator("main img[src='x'], main script, main svg[onload], main b").count() == 0
    shoot(page, "08-xss-post")
    tiktok = dataset().account("tiktok", "hostile")
    submit(page, console, tiktok.profile_url, "Channel videos")
    wait_finished(page)
    expect(page.locator("#channel-table .post-cell a")).to_have_text(HOSTILE_TITLE)
    expect(page.locator("#author-nickname")).to_have_text(HOSTILE_NICKNAME)
    assert page.locator("main img[src='x'], main script, main b").count() == 0
    assert guard.dialogs == []
    shoot(page, "09-xss-channel")


def test_the_jobs_list_shows_only_your_jobs_and_filters(
    page: Page, guard: Guard, console: Console, shoot: Shoot
) -> None:
    url = dataset().public_video_urls("tiktok")[1]
    status, body = http_json(
        "POST", console.url("/api/tiktok/video/parse"), {"url": url}, console.admin_token
    )
    assert status == 200, body
    admins = body["data"]["jobId"]
    submit_failing = dataset().account("douyin", "private").profile_url
    sign_in(page, console, console.user_token)
    submit(page, console, submit_failing, "Channel videos")
    wait_finished(page, "failed")
    expect(page.get_by_role("alert")).to_contain_text("private")
    page.goto(console.url("/console/jobs"))
    expect(page.locator("table.jobs tbody tr").first).to_be_visible()
    assert page.locator(f"a[href$='{admins}']").count() == 0  # the admin's job is not alice's
    page.get_by_label("State").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    states = page.locator("table.jobs tbody .badge").all_text_contents()
    assert states and set(states) == {"failed"}
    shoot(page, "10-jobs")
    page.goto(console.url(f"/console/jobs/{admins}"))
    expect(page.get_by_role("alert")).to_contain_text("no job of yours")


def test_an_admin_creates_tops_up_and_bans_a_token(
    page: Page, guard: Guard, console: Console, shoot: Shoot, new_context: CreateContextCallback
) -> None:
    sign_in(page, console, console.admin_token)
    page.get_by_role("link", name="Admin").click()
    expect(page.locator("#sessions tbody tr").first).to_be_visible()
    expect(page.locator("#pool-census")).to_contain_text("sessions")
    page.get_by_label("Name").fill("bob")
    page.get_by_label("Credits", exact=True).fill("50")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").input_value()
    assert token.startswith("sv_") and page.locator("#new-secret").input_value().startswith("whsec_")
    shoot(page, "12-token-created")
    page.get_by_role("link", name="Back to the tokens").click()
    row = page.locator("#tokens tr[data-token='bob']")
    row.get_by_label("Credits to add to bob").fill("25")
    row.get_by_role("button", name="Add").click()
    expect(page.locator("#tokens tr[data-token='bob'] td").nth(1)).to_have_text("75")
    shoot(page, "11-admin")

    bobs = new_context().new_page()
    sign_in(bobs, console, token)
    expect(bobs.locator("#credits")).to_have_text("75")
    assert bobs.get_by_role("link", name="Admin").count() == 0
    bobs.goto(console.url("/console/admin"))
    expect(bobs.get_by_role("alert")).to_contain_text("needs an admin token")

    page.locator("#tokens tr[data-token='bob']").get_by_role("button", name="Ban").click()
    expect(page.locator("#tokens tr[data-token='bob'] .badge")).to_have_text("banned")
    bobs.goto(console.url("/console"))
    expect(bobs).to_have_url(re.compile(r"/console/signin"))  # a ban signs its holder out
    bobs.get_by_label("API token").fill(token)
    bobs.get_by_role("button", name="Sign in").click()
    expect(bobs.get_by_role("alert")).to_have_text("Forbidden: Your account has been banned. Contact admin.")
    shoot(bobs, "13-signin-banned")
    page.locator("#tokens tr[data-token='bob']").get_by_role("button", name="Unban").click()
    expect(page.locator("#tokens tr[data-token='bob'] .badge")).to_have_text("active")
