"""Callbacks: URL checks at submit and at delivery, signed notifications to a loopback listener
(allowed by the explicit test settings), retries with backoff, delivery state on the job, the
outbox's claims, and the per-token signing secret (admin API and CLI)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from models.db import session_factory
from models.tables import CallbackState, WebhookSecret
from models.types import utcnow
from scraper.errors import NotFound
from server.keys import ENGINE, QUEUE, SETTINGS, TOKENS
from server.queue import CallbackRequest, JobQueue
from server.settings import Settings, load_settings
from server.tokens import TokenStore
from server.webhooks import (
    CALLBACKS,
    AddressPolicy,
    BadCallback,
    CallbackStore,
    Claimed,
    Outcome,
    WebhookDispatcher,
    check_callback_url,
    parse_callback_url,
)
from tests.jobs import douyin_video
from tests.test_wait_events import Gate, Node, database_url, start_node

__all__ = ["database_url"]  # the fixture, shared with the wait tests (SQLite, a PostgreSQL database)

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = {"webhook_allow_http": True, "webhook_allow_loopback": True}


# ---- which URLs and addresses are accepted --------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),  # the cloud metadata service
        ("fe80::1", "a link-local address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("240.0.0.1", "a private address"),  # reserved, which Python also counts as private
        ("100.64.0.1", "a non-public address"),  # carrier-grade NAT
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1, which Python calls global
        ("64:ff9b::a9fe:a9fe", "a link-local address"),  # NAT64 of the cloud metadata address
        ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::", "a private address"),  # 6to4 of 10.0.0.1
    ],
)
def test_only_public_addresses_may_be_called(address: str, reason: str | None) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) == reason


def test_the_test_setting_opens_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = AddressPolicy(allow_loopback=True)
    assert opened.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert opened.refusal(ipaddress.ip_address("10.0.0.1")) == "a private address"
    defaults = load_settings()
    assert defaults.webhook_allow_loopback is False and defaults.webhook_allow_http is False
    monkeypatch.setenv("SHORTVID_WEBHOOK_ALLOW_LOOPBACK", "1")
    assert load_settings().webhook_allow_loopback is True


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        (5, "must be a non-empty string"),
        ("", "must be a non-empty string"),
        ("http://hooks.example.com/x", "must start with https://"),
        ("ftp://hooks.example.com/x", "must start with https://"),
        ("https:///x", "must name a host"),
        ("https://user:pw@hooks.example.com/x", "user name or password"),
        ("https://hooks.example.com/" + "x" * 2100, "at most 2048"),
        ("https://hooks.example.com/a b", "printable ASCII"),
        ("https://hööks.example.com/", "printable ASCII"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
    ],
)
def test_malformed_callback_urls_say_what_to_fix(url: object, needle: str) -> None:
    with pytest.raises(BadCallback, match=needle):
        parse_callback_url(url)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("https://127.0.0.1/hook", "127.0.0.1, a loopback address"),
        ("https://[::1]/hook", "a loopback address"),
        ("https://localhost/hook", "a loopback address"),  # a name that resolves inward
        ("https://169.254.169.254/latest/meta-data", "a link-local address"),
        ("https://10.0.0.8:8443/hook", "a private address"),
        ("https://2130706433/hook", "a loopback address"),  # 127.0.0.1 spelled as a number
        ("https://does-not-exist.invalid/hook", "does not resolve"),
    ],
)
async def test_inward_callback_urls_are_refused_at_submit(url: str, needle: str) -> None:
    with pytest.raises(BadCallback, match=needle):
        await check_callback_url(url, allow_http=False, policy=AddressPolicy())


async def test_a_public_literal_passes_without_any_lookup() -> None:
    url = await check_callback_url("https://8.8.8.8:8443/hook?x=1", allow_http=False, policy=AddressPolicy())
    assert url == "https://8.8.8.8:8443/hook?x=1"


# ---- a loopback receiver ------------------------------------------------------------------------


class Receiver:
    """An HTTP server on loopback that records every POST and answers ``statuses`` in turn."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = statuses or []
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.server = TestServer(app, host="127.0.0.1")

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="x" * 5000 if status >= 400 else "ok")

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    async def posts(self, n: int) -> list[tuple[dict[str, str], bytes]]:
        """Once ``n`` posts came (the timeout only bounds a regression)."""
        async with asyncio.timeout(30):
            while len(self.received) < n:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    listener = Receiver()
    await listener.server.start_server()
    yield listener
    await listener.server.close()


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (README): HMAC-SHA256 of the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Shortvid-Signature"])


async def delivered(node: Node, job_id: str, state: str = CallbackState.DELIVERED) -> dict[str, Any]:
    """The job's ``callback`` once it reached ``state`` (polled: the state is the job's to show;
    the timeout only bounds a regression, which would otherwise hang the run)."""
    async with asyncio.timeout(30):
        while True:
            view = (await (await node.client.get(f"/api/job/{job_id}?detail=1")).json())["data"]
            if view["callback"]["state"] == state:
                return dict(view)
            await asyncio.sleep(0.02)


@pytest.fixture
async def hooked(tmp_path: Path, database_url: str | None) -> AsyncIterator[Node]:
    async with start_node(tmp_path, database_url, **LOOPBACK) as node:
        yield node


# ---- end to end ---------------------------------------------------------------------------------


async def test_one_signed_notification_whose_hmac_verifies(hooked: Node, receiver: Receiver) -> None:
    job_id = await hooked.submit(callback_url=receiver.url)
    pending = (await (await hooked.client.get(f"/api/job/{job_id}")).json())["data"]
    assert pending["callback"] == {
        "url": receiver.url,
        "state": "pending",
        "attempts": 0,
        "last_error": None,
        "last_status": None,
        "delivered_at": None,
    }
    gate = Gate()
    gate.release.set()
    hooked.run_worker({"video.parse": gate})
    [(headers, body)] = await receiver.posts(1)
    assert verified(hooked.secret, headers, body)
    assert not verified(hooked.secret + "x", headers, body)
    note = json.loads(body)
    assert note["id"] == job_id and headers["X-Shortvid-Job-Id"] == job_id
    assert note["event"] == "job.finished" and note["type"] == "video.parse" and note["state"] == "completed"
    assert note["error_code"] is None and note["retryable"] is None and note["attempt"] == 1
    assert note["result_url"] == str(hooked.client.make_url(f"/api/job/{job_id}"))
    assert note["sent_at"].endswith("Z") and note["finished_at"].endswith("Z")
    assert abs(int(headers["X-Shortvid-Timestamp"]) - utcnow().timestamp()) < 3600
    assert headers["Content-Type"] == "application/json"
    view = await delivered(hooked, job_id)
    assert view["callback"]["attempts"] == 1 and view["callback"]["last_status"] == 200
    assert view["callback"]["delivered_at"].endswith("Z")
    assert len(receiver.received) == 1


async def test_failures_are_retried_with_backoff_then_given_up(
    hooked: Node, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.statuses = [500, 502, 503]
    job_id = await hooked.submit(callback_url=receiver.url)
    gate = Gate(error=NotFound("the video was deleted"))
    gate.release.set()
    hooked.run_worker({"video.parse": gate})
    posts = await receiver.posts(3)
    view = await delivered(hooked, job_id, CallbackState.FAILED)
    assert [json.loads(body)["attempt"] for _, body in posts] == [1, 2, 3]
    assert all(verified(hooked.secret, headers, body) for headers, body in posts)
    note = json.loads(posts[0][1])
    assert note["state"] == "failed" and note["error_code"] == "not_found" and note["retryable"] is False
    callback = view["callback"]
    assert callback["attempts"] == 3 and callback["last_status"] == 503
    assert callback["last_error"].startswith("HTTP 503: xxx") and len(callback["last_error"]) <= 500
    assert len(receiver.received) == 3


async def test_a_retry_that_succeeds_is_delivered(hooked: Node, receiver: Receiver) -> None:
    receiver.statuses = [500]
    job_id = await hooked.submit(callback_url=receiver.url)
    gate = Gate()
    gate.release.set()
    hooked.run_worker({"video.parse": gate})
    view = await delivered(hooked, job_id)
    assert view["callback"]["attempts"] == 2 and view["callback"]["last_error"] is None
    assert len(receiver.received) == 2


async def test_a_channel_task_calls_back_with_its_status(hooked: Node, receiver: Receiver) -> None:
    profile = "https://www.douyin.com/user/MS4wLjABAAAAxyz1234567"
    task_id = await hooked.submit("/api/channel/download", url=profile, count=2, callback_url=receiver.url)
    gate = Gate(result={"videos": []})
    gate.release.set()
    hooked.run_worker({"channel.download": gate})
    [(headers, body)] = await receiver.posts(1)
    note = json.loads(body)
    assert verified(hooked.secret, headers, body)
    assert note["type"] == "channel.download" and note["status"] == "completed"
    assert note["result_url"] == str(hooked.client.make_url(f"/api/task/{task_id}"))
    task = (await (await hooked.client.get(f"/api/task/{task_id}")).json())["data"]
    assert task["callback"]["url"] == receiver.url


async def test_callback_urls_are_checked_before_anything_is_charged(tmp_path: Path) -> None:
    async with start_node(tmp_path, None) as node:  # the defaults: https only, no loopback
        tokens = node.client.app[TOKENS]
        before = (await tokens.lookup(node.token)).credits  # type: ignore[union-attr]
        for url, needle in (
            ("http://127.0.0.1:9/hook", "https://"),
            ("https://127.0.0.1:9/hook", "loopback"),
            ("https://169.254.169.254/", "link-local"),
            (["https://8.8.8.8/"], "string"),
        ):
            response = await node.client.post(
                "/api/video/parse", json={"url": douyin_video(1), "callback_url": url}, headers=node.auth()
            )
            assert response.status == 400 and needle in (await response.json())["error"]
        assert (await tokens.lookup(node.token)).credits == before  # type: ignore[union-attr]
        assert (await node.client.app[QUEUE].counts()).by_state == {}  # no job was made


async def test_a_token_without_a_secret_is_told_how_to_get_one(hooked: Node, receiver: Receiver) -> None:
    app = hooked.client.app
    info = await app[TOKENS].lookup(hooked.token)
    assert info is not None
    async with session_factory(app[ENGINE])() as session, session.begin():
        await session.execute(delete(WebhookSecret).where(col(WebhookSecret.token_id) == info.id))
    response = await hooked.client.post(
        "/api/video/parse", json={"url": douyin_video(2), "callback_url": receiver.url}, headers=hooked.auth()
    )
    assert response.status == 400
    assert f"POST /api/admin/tokens/{info.id}/webhook-secret" in (await response.json())["error"]
    plain = await hooked.client.post("/api/video/parse", json={"url": douyin_video(2)}, headers=hooked.auth())
    assert plain.status == 200  # without a callback the token works as before


# ---- delivery-time checks (DNS rebinding) ---------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_delivery_checks_the_address_again(hooked: Node, receiver: Receiver, host: str) -> None:
    """A URL accepted at submit whose host now points inward is refused at the connection: the
    resolver the HTTP client connects through checks (a literal is checked before the request)."""
    app = hooked.client.app
    strict = WebhookDispatcher(
        app[CALLBACKS], app[QUEUE], Settings(**{**LOOPBACK, "webhook_allow_loopback": False})
    )
    job_id = await hooked.submit()
    url = receiver.url.replace("127.0.0.1", host)
    async with strict.running():
        outcome = await strict.attempt(Claimed(job_id, url, "https://x/api/job/" + job_id, 1, hooked.secret))
    assert outcome.delivered is False and outcome.final is True
    assert "a loopback address" in (outcome.error or "")
    assert receiver.received == []


async def test_redirects_are_not_followed(hooked: Node, receiver: Receiver) -> None:
    receiver.statuses = [302]
    app = hooked.client.app
    dispatcher = WebhookDispatcher(app[CALLBACKS], app[QUEUE], app[SETTINGS])
    job_id = await hooked.submit()
    async with dispatcher.running():
        outcome = await dispatcher.attempt(Claimed(job_id, receiver.url, "r", 1, hooked.secret))
    assert outcome.delivered is False and outcome.status == 302
    assert outcome.error == "HTTP 302: redirects are not followed; call back the final URL"
    assert len(receiver.received) == 1


# ---- the outbox ---------------------------------------------------------------------------------


async def _ended_job_with_callback(engine: AsyncEngine) -> tuple[JobQueue, str]:
    queue = JobQueue(session_factory(engine), lease=timedelta(seconds=30), result_ttl=timedelta(hours=1))
    tokens = TokenStore(session_factory(engine))
    _, info = await tokens.create(name="t", credits=100)
    job = await queue.enqueue(
        token_id=info.id,
        job_type="video.parse",
        platform="douyin",
        url=douyin_video(3),
        payload={"callback": True},
        cost=0,
        max_attempts=1,
        callback=CallbackRequest(url="https://8.8.8.8/hook", result_prefix="https://sv/api/job/"),
    )
    claimed = await queue.claim("w")
    assert claimed is not None and await queue.complete(job.id, "w", {"video_id": "3"})
    return queue, job.id


async def test_only_ended_jobs_are_due_and_each_attempt_is_claimed_once(engine: AsyncEngine) -> None:
    store = CallbackStore(engine, attempts=3, retry_base=timedelta(seconds=10), lease=timedelta(seconds=40))
    queue, job_id = await _ended_job_with_callback(engine)
    running = await queue.enqueue(  # still waiting: its callback is not due
        token_id=None,
        job_type="video.parse",
        platform="douyin",
        url=douyin_video(4),
        payload={},
        cost=0,
        max_attempts=1,
        callback=CallbackRequest(url="https://8.8.8.8/hook", result_prefix="https://sv/api/job/"),
    )
    first, second = await asyncio.gather(store.claim(limit=8), store.claim(limit=8))
    taken = [*first, *second]
    assert [c.job_id for c in taken] == [job_id] and running.id != job_id
    assert taken[0].attempt == 1 and taken[0].result_url == "https://sv/api/job/" + job_id
    assert taken[0].secret is not None and taken[0].secret.startswith("whsec_")
    assert await store.claim(limit=8) == []  # claimed: not due again within its lease
    # The node died mid-attempt: after the lease the row is due again (at least once).
    later = utcnow() + timedelta(seconds=41)
    [again] = await store.claim(limit=8, now=later)
    assert again.attempt == 2
    assert (
        await store.record(again, Outcome(delivered=False, error="HTTP 500", status=500), now=later)
        == "pending"
    )
    assert await store.next_due() == later + timedelta(seconds=10 * 4)  # the second retry waits 4x


async def test_an_interrupted_last_attempt_ends_failed(engine: AsyncEngine) -> None:
    store = CallbackStore(engine, attempts=1, retry_base=timedelta(seconds=1), lease=timedelta(seconds=40))
    _, job_id = await _ended_job_with_callback(engine)
    assert len(await store.claim(limit=8)) == 1  # and then its node dies
    assert await store.claim(limit=8, now=utcnow() + timedelta(minutes=5)) == []
    view = await store.view(job_id)
    assert view is not None and view["state"] == "failed" and "interrupted" in view["last_error"]


async def test_a_recorded_outcome_of_a_stale_attempt_is_ignored(engine: AsyncEngine) -> None:
    store = CallbackStore(engine, attempts=3, retry_base=timedelta(seconds=1), lease=timedelta(seconds=1))
    _, job_id = await _ended_job_with_callback(engine)
    [first] = await store.claim(limit=8)
    [second] = await store.claim(limit=8, now=utcnow() + timedelta(seconds=2))
    await store.record(second, Outcome(delivered=True, status=200))
    await store.record(first, Outcome(delivered=False, error="late", status=500))  # the slow first node
    view = await store.view(job_id)
    assert view is not None and view["state"] == "delivered" and view["attempts"] == 2


# ---- the signing secret -------------------------------------------------------------------------


async def test_admin_api_shows_the_secret_at_creation_and_can_replace_it(tmp_path: Path) -> None:
    async with start_node(tmp_path, None) as node:
        admin, _ = await node.client.app[TOKENS].create(name="ops", unlimited=True, admin=True)
        auth = {"Authorization": f"Bearer {admin}"}
        made = (
            await (
                await node.client.post("/api/admin/tokens", json={"name": "n", "credits": 1}, headers=auth)
            ).json()
        )["data"]
        assert made["webhook_secret"].startswith("whsec_") and len(made["webhook_secret"]) > 40
        assert made["created_at"].endswith("Z") and len(made["created_at"]) == 24
        listed = (await (await node.client.get("/api/admin/tokens", headers=auth)).json())["data"]
        assert all("webhook_secret" not in token for token in listed)
        rotated = await node.client.post("/api/admin/tokens/n/webhook-secret", headers=auth)
        secret = (await rotated.json())["data"]["webhook_secret"]
        assert rotated.status == 200 and secret != made["webhook_secret"]
        assert await node.client.app[TOKENS].webhook_secret(made["id"]) == secret
        missing = await node.client.post("/api/admin/tokens/nobody/webhook-secret", headers=auth)
        assert missing.status == 404
        refused = await node.client.post("/api/admin/tokens/n/webhook-secret", headers=node.auth())
        assert refused.status == 403


def test_cli_token_create_shows_the_secret_and_keeps_the_token_last(tmp_path: Path) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "server.cli", "token", "create", "--name", "a", "--credits", "5"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"SHORTVID_DATA_DIR": str(tmp_path), "PATH": ""},
    )
    assert created.stdout.strip().startswith("sv_") and len(created.stdout.strip().splitlines()) == 1
    assert "webhook signing secret" in created.stderr and "whsec_" in created.stderr


async def test_the_secret_is_never_in_a_repr(engine: AsyncEngine) -> None:
    _, info = await TokenStore(session_factory(engine)).create(name="r", credits=1)
    assert info.webhook_secret and info.webhook_secret not in repr(info)
