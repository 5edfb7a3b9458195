"""The fixture dataset: deterministic per (day, seed), with the accounts and items the scraper tests need."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fixtures.dataset import PLATFORMS, Dataset, build_dataset

NOW = datetime(2026, 11, 21, 15, 30, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return build_dataset(now=NOW, seed=1)


def test_same_now_and_seed_give_the_same_document(dataset: Dataset) -> None:
    assert build_dataset(now=NOW, seed=1).to_json() == dataset.to_json()


def test_ids_are_stable_within_a_day_and_change_with_the_seed(dataset: Dataset) -> None:
    def ids(d: Dataset) -> list[str]:
        return [i["id"] for a in d.to_json()["accounts"] for i in a["items"]]

    later = build_dataset(now=NOW.replace(hour=23, minute=59), seed=1)
    assert ids(later) == ids(dataset)
    assert [s.url for s in later.short_links] == [s.url for s in dataset.short_links]
    assert ids(build_dataset(now=NOW, seed=2)) != ids(dataset)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_account_roles_and_counts(dataset: Dataset, platform: str) -> None:
    counts = {a.role: len(a.items) for a in dataset.accounts if a.platform == platform}
    assert counts["empty"] == 0
    assert counts["single"] == 1
    assert counts["medium"] == 35
    assert counts["big"] == 520
    assert dataset.account(platform, "private").state == "private"
    assert dataset.account(platform, "missing").state == "missing"
    assert dataset.account(platform, "missing").items == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_today_and_yesterday_relative_to_now(dataset: Dataset, platform: str) -> None:
    medium = dataset.account(platform, "medium")
    dates = [i.create_time.date() for i in medium.items]
    assert dates.count(NOW.date()) >= 3
    assert dates.count(NOW.date() - timedelta(days=1)) >= 3
    every = dataset.items(platform)
    assert all(i.create_time <= NOW for i in every)
    assert all(i.create_time >= NOW - timedelta(days=90) for i in every)


def test_no_item_in_the_future_just_after_midnight() -> None:
    now = datetime(2026, 11, 21, 0, 0, 30, tzinfo=UTC)
    d = build_dataset(now=now)
    assert all(i.create_time <= now for i in d.items())
    assert any(i.create_time.date() == now.date() for i in d.items())


@pytest.mark.parametrize("platform", PLATFORMS)
def test_pinned_items_come_first_and_are_older_than_the_rest(dataset: Dataset, platform: str) -> None:
    for role in ("medium", "big"):
        items = dataset.account(platform, role).items
        pinned = [i for i in items if i.pinned]
        assert len(pinned) == 3
        assert items[:3] == pinned
        rest = items[3:]
        assert max(p.create_time for p in pinned) < min(i.create_time for i in rest)
        assert [i.create_ts for i in rest] == sorted((i.create_ts for i in rest), reverse=True)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_item_variety(dataset: Dataset, platform: str) -> None:
    items = dataset.items(platform)
    assert {i.state for i in items} == {"public", "deleted", "private"}
    photos = [i for i in items if i.kind == "photo"]
    assert photos and all(i.images >= 2 and i.duration == 0 for i in photos)
    videos = [i for i in items if i.kind == "video"]
    assert all(i.duration > 0 and i.duration_ms // 1000 == round(i.duration_ms / 1000) for i in videos)
    assert any("#" in i.title for i in items)
    assert any(not i.title.isascii() for i in items)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_realistic_ids(dataset: Dataset, platform: str) -> None:
    for account in (a for a in dataset.accounts if a.platform == platform):
        assert account.uid.isdigit()
        assert len(account.sec_uid) == 76 and account.sec_uid.startswith("MS4wLjABAAAA")
        for item in account.items:
            assert len(item.id) == 19 and item.id.isdigit()
            assert abs((int(item.id) >> 32) - item.create_ts) <= 2 * 3600


def test_lookups(dataset: Dataset) -> None:
    tiktok = dataset.account("tiktok", "medium")
    assert dataset.account_by_user("tiktok", tiktok.handle.upper()) is tiktok
    assert dataset.account_by_user("tiktok", "@" + tiktok.handle) is tiktok
    douyin = dataset.account("douyin", "medium")
    assert dataset.account_by_user("douyin", douyin.sec_uid) is douyin
    item = douyin.items[5]
    assert dataset.item("douyin", item.id) is item
    assert dataset.item("tiktok", item.id) is None
    assert dataset.account_by_user("douyin", "MS4wLjABAAAAnope") is None


def test_short_links_cover_videos_photos_and_profiles(dataset: Dataset) -> None:
    for platform in PLATFORMS:
        links = [s for s in dataset.short_links if s.platform == platform]
        assert {"video", "photo", "profile"} <= {s.kind for s in links}
        for link in links:
            if link.item_id:
                item = dataset.item(platform, link.item_id)
                assert item is not None and item.url == link.target
            if platform == "tiktok":
                assert link.location.startswith(link.target + "?_r=1&_t=")
            else:
                assert link.url.startswith("https://v.douyin.com/") and link.url.endswith("/")
                assert link.location.startswith("https://www.iesdouyin.com/share/")
    hosts = {s.url.split("/")[2] for s in dataset.short_links}
    assert {"vm.tiktok.com", "vt.tiktok.com", "www.tiktok.com", "v.douyin.com"} <= hosts
    assert any("/t/" in s.url for s in dataset.short_links)


def test_to_json_shape(dataset: Dataset) -> None:
    doc = dataset.to_json()
    account = doc["accounts"][2]
    for key in (
        "platform",
        "profile_url",
        "state",
        "items",
        "user",
        "uid",
        "nickname",
        "handle",
        "unique_id",
        "sec_uid",
    ):
        assert key in account
    item = account["items"][0]
    for key in (
        "id",
        "url",
        "kind",
        "state",
        "create_time",
        "pinned",
        "title",
        "media_sha256",
        "duration",
        "likes",
        "comments",
        "shares",
        "plays",
        "collects",
        "music_title",
        "width",
        "height",
        "images",
    ):
        assert key in item
    assert item["create_time"].endswith("Z")
    assert datetime.fromisoformat(item["create_time"].replace("Z", "+00:00")).tzinfo is not None
    assert {"url", "target"} <= set(doc["short_links"][0])
    assert doc["accounts"][0]["profile_url"].startswith("https://www.douyin.com/user/MS4wLjABAAAA")
    tiktok = next(a for a in doc["accounts"] if a["platform"] == "tiktok")
    assert tiktok["profile_url"] == f"https://www.tiktok.com/@{tiktok['handle']}"
    assert tiktok["user"] == tiktok["handle"]
