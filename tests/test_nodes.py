"""Nodes and the files they hold: the registry's states, upkeep that touches only a node's own bytes,
lost files, the node signature, and a file served by a node that does not hold it (in-process)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, unused_port
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import session_factory, sqlite_url
from models.tables import NodeRecord
from models.types import utcnow
from scraper.download import Downloaded
from server.files import FileStore
from server.keys import FILES, NODE, REGISTRY, TOKENS
from server.metrics import METRICS
from server.node_auth import HEADER, MAX_SKEW_SECONDS, sign, verify
from server.node_registry import NodeRegistry, advertised_url
from server.settings import Settings
from tests.e2e import start_app

SECRET = "one secret every node of the test shares"


def _store(engine: AsyncEngine, root: Path, node_id: str | None, **kwargs: Any) -> FileStore:
    options: dict[str, Any] = {"ttl": timedelta(hours=1), "max_bytes": 10**9, **kwargs}
    return FileStore(root, session_factory(engine), node_id=node_id, **options)


async def _put(store: FileStore, item: str, data: bytes, *, pinned: bool = False) -> str:
    path = store.target(platform="douyin", author="author", item_id=item, name=f"video.{item}.mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    done = Downloaded(
        path, len(data), hashlib.sha256(data).hexdigest(), "video/mp4", "https://v26.douyinvod.com/x"
    )
    row = await store.register(
        done, platform="douyin", item_id=item, role="video", job_id=None, pinned=pinned
    )
    return row.id


def _files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


# --- upkeep per owner ---------------------------------------------------------------------------


async def test_expiry_on_one_node_never_deletes_another_nodes_bytes(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    a = _store(engine, tmp_path / "a", "node-a")
    b = _store(engine, tmp_path / "b", "node-b")
    a_files = [await _put(a, f"1{n}", os.urandom(50)) for n in range(3)]
    b_files = [await _put(b, f"2{n}", os.urandom(50)) for n in range(3)]
    later = utcnow() + timedelta(hours=2)  # every file is past its TTL

    assert await a.expire(now=later) == 3
    assert [await a.get(f) for f in a_files] == [None] * 3 and _files_under(tmp_path / "a") == []
    assert all([await b.get(f) for f in b_files]) and len(_files_under(tmp_path / "b")) == 3  # untouched

    assert await b.expire(now=later) == 3  # the owner expires its own: rows and bytes, nothing left over
    assert [await b.get(f) for f in b_files] == [None] * 3 and _files_under(tmp_path / "b") == []


async def test_each_node_caps_only_the_bytes_it_holds(engine: AsyncEngine, tmp_path: Path) -> None:
    a = _store(engine, tmp_path / "a", "node-a", max_bytes=150)
    b = _store(engine, tmp_path / "b", "node-b", max_bytes=150)
    for n in range(3):
        await _put(b, f"2{n}", os.urandom(100))  # b is over its cap; a holds nothing yet
    await _put(a, "10", os.urandom(100))
    assert await a.total_bytes() == 100 and await b.total_bytes() == 300
    assert await a.enforce_cap() == 0  # b's bytes are not a's to count or to evict
    assert len(_files_under(tmp_path / "b")) == 3
    assert await b.enforce_cap() == 2 and await b.total_bytes() == 100
    assert len(_files_under(tmp_path / "b")) == 1


async def test_a_shared_store_is_every_nodes_own(engine: AsyncEngine, tmp_path: Path) -> None:
    a = _store(engine, tmp_path / "shared", "node-a", shared=True)
    b = _store(engine, tmp_path / "shared", "node-b", shared=True)
    file_id = await _put(a, "30", b"bytes on the shared mount")
    row = await b.get(file_id)
    assert row is not None and row.node_id is None and b.holds(row)
    assert await b.expire(now=utcnow() + timedelta(hours=2)) == 1 and _files_under(tmp_path / "shared") == []


async def test_files_of_a_node_gone_too_long_are_lost_until_it_returns(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    a = _store(engine, tmp_path / "a", "node-a")
    b = _store(engine, tmp_path / "b", "node-b")
    registry = NodeRegistry(session_factory(engine), timeout=timedelta(seconds=30))
    await registry.register(node_id="node-b", role="worker", url="http://127.0.0.1:1", incarnation="i1")
    held = await _put(b, "40", b"x" * 10)
    assert await registry.gone_since(utcnow() - timedelta(days=1)) == []
    async with session_factory(engine)() as session, session.begin():
        await session.execute(
            update(NodeRecord)
            .values(heartbeat_at=utcnow() - timedelta(days=2))
            .where(NodeRecord.id == "node-b")
        )
    gone = await registry.gone_since(utcnow() - timedelta(days=1))
    assert gone == ["node-b"] and (await registry.get("node-b")).state == "gone"  # type: ignore[union-attr]
    assert await a.mark_lost(gone) == 1 and (await a.get(held)).lost_at is not None  # type: ignore[union-attr]
    assert await b.mark_lost(gone) == 0  # a node never marks its own files lost
    # Lost rows past their TTL are deleted by any node (their bytes are out of everyone's reach).
    lost_too = await _put(b, "41", b"y" * 10)
    await a.mark_lost(["node-b"])
    assert await a.expire(now=utcnow() + timedelta(hours=2)) == 2 and await a.get(lost_too) is None
    held = await _put(b, "42", b"z" * 10)
    await a.mark_lost(["node-b"])
    await registry.register(node_id="node-b", role="worker", url="http://127.0.0.1:1", incarnation="i2")
    assert (await a.get(held)).lost_at is None  # type: ignore[union-attr]  # back, with its disk


async def test_the_registry_lists_states_and_what_each_node_holds(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    registry = NodeRegistry(session_factory(engine), timeout=timedelta(seconds=30))
    for node_id, role in (("api-1", "api"), ("worker-1", "worker"), ("worker-2", "worker")):
        await registry.register(node_id=node_id, role=role, url=f"http://{node_id}:8000", incarnation="x")
    store = _store(engine, tmp_path, "worker-1")
    await _put(store, "50", b"a" * 7)
    await _put(store, "51", b"b" * 5)
    await registry.stopped("worker-2")
    nodes = {node.id: node for node in await registry.all()}
    assert {n: (v.role, v.state) for n, v in nodes.items()} == {
        "api-1": ("api", "up"),
        "worker-1": ("worker", "up"),
        "worker-2": ("worker", "stopped"),
    }
    assert (nodes["worker-1"].files, nodes["worker-1"].file_bytes) == (2, 12)
    assert nodes["api-1"].to_json()["heartbeat_at"].endswith("Z")
    await registry.beat("worker-2")
    assert (await registry.get("worker-2")).state == "up"  # type: ignore[union-attr]


async def test_orphan_bytes_are_swept_and_young_or_claimed_ones_kept(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    a = _store(engine, tmp_path / "a", "node-a")
    b = _store(engine, tmp_path / "b", "node-b")
    kept = await _put(a, "60", b"registered")
    other = await _put(b, "61", b"b's own")  # the same relative path on a's disk is no row of a's
    orphan = tmp_path / "a" / "douyin" / "author" / "61" / "video.61.mp4"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a crash")
    young = orphan.with_name("video.62.mp4")
    young.write_bytes(b"being registered right now")
    old = time.time() - 7200
    for path in (*_files_under(tmp_path / "a"),):
        if path != young:
            os.utime(path, (old, old))
    assert await a.sweep_orphans() == 1
    assert not orphan.exists() and young.exists()
    assert a.path_of(await a.get(kept)) is not None  # type: ignore[arg-type]
    assert b.path_of(await b.get(other)) is not None  # type: ignore[arg-type]


# --- the node signature -------------------------------------------------------------------------


def test_a_signature_opens_exactly_its_method_path_and_minute() -> None:
    key = SECRET.encode()
    now = 1_800_000_000.0
    header = sign(key, "GET", "/internal/files/abc", now=now)
    assert verify(key, "GET", "/internal/files/abc", header, now=now + MAX_SKEW_SECONDS)
    assert not verify(key, "HEAD", "/internal/files/abc", header, now=now)
    assert not verify(key, "GET", "/internal/files/abd", header, now=now)
    assert not verify(key, "GET", "/internal/files/abc", header, now=now + MAX_SKEW_SECONDS + 1)
    assert not verify(b"another secret", "GET", "/internal/files/abc", header, now=now)
    assert not verify(key, "GET", "/internal/files/abc", None, now=now)


@given(st.integers(min_value=0, max_value=10**12), st.data())
def test_no_altered_header_passes(stamp: int, data: st.DataObject) -> None:
    """Any change to a genuine header (a character, a cut, another stamp) is refused."""
    now = float(stamp)
    genuine = sign(SECRET.encode(), "GET", "/internal/files/f", now=now)
    at = data.draw(st.integers(min_value=0, max_value=len(genuine) - 1))
    altered = data.draw(
        st.one_of(
            st.sampled_from("0123456789abcdef.x").map(lambda c: genuine[:at] + c + genuine[at + 1 :]),
            st.just(genuine[:at]),
            st.integers(min_value=-60, max_value=60).map(
                lambda d: f"{stamp + d}{genuine[genuine.index('.') :]}"
            ),
        )
    )
    if altered != genuine:  # a replacement by the same character is the genuine header
        assert not verify(SECRET.encode(), "GET", "/internal/files/f", altered, now=now)


def test_the_advertised_url() -> None:
    assert advertised_url(Settings(host="127.0.0.1", port=8123)) == "http://127.0.0.1:8123"
    assert advertised_url(Settings(node_url="https://w1.internal:9000/")) == "https://w1.internal:9000"
    assert advertised_url(Settings(host="::1", port=1)) == "http://[::1]:1"
    assert "0.0.0.0" not in advertised_url(Settings(host="0.0.0.0"))  # its host name instead


# --- a file from the node that holds it, through another -----------------------------------------


@dataclass
class Pair:
    holder: TestClient
    other: TestClient
    file_id: str
    data: bytes


async def _node(tmp_path: Path, name: str, database: str, **changes: Any) -> TestClient:
    port = unused_port()
    settings = Settings(
        data_dir=tmp_path / name,
        database_url=database,
        role="api",
        rate_limit=0,
        port=port,
        node_url=f"http://127.0.0.1:{port}",
        **{"node_secret": SECRET, **changes},
    )
    return await start_app(settings, port=port)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    database = sqlite_url(tmp_path)
    holder = await _node(tmp_path, "holder", database)
    other = await _node(tmp_path, "other", database)
    data = os.urandom(300_000)
    file_id = await _put(holder.app[FILES], "70", data)
    try:
        yield Pair(holder, other, file_id, data)
    finally:
        await other.close()
        await holder.close()


async def test_a_file_is_served_by_a_node_that_does_not_hold_it(pair: Pair) -> None:
    assert pair.other.app[NODE].node_id != pair.holder.app[NODE].node_id
    assert not (pair.other.app[FILES].root / "douyin").exists()  # not on this node's disk
    whole = await pair.other.get(f"/api/files/{pair.file_id}")
    assert whole.status == 200 and await whole.read() == pair.data
    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Content-Length"] == str(len(pair.data))
    assert whole.headers["X-Content-SHA256"] == hashlib.sha256(pair.data).hexdigest()
    part = await pair.other.get(f"/api/files/{pair.file_id}", headers={"Range": "bytes=1000-1999"})
    assert part.status == 206 and await part.read() == pair.data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(pair.data)}"
    head = await pair.other.head(f"/api/files/{pair.file_id}")
    assert (
        head.status == 200
        and head.headers["Content-Length"] == str(len(pair.data))
        and await head.read() == b""
    )
    local = await pair.holder.get(f"/api/files/{pair.file_id}")  # the holder serves it from its disk
    assert await local.read() == pair.data
    relays = pair.other.app[METRICS].registry.get_sample_value
    assert relays("shortvid_file_relays_total", {"outcome": "streamed"}) == 3
    assert (
        pair.holder.app[METRICS].registry.get_sample_value(
            "shortvid_file_relays_total", {"outcome": "streamed"}
        )
        is None
    )


async def test_the_internal_route_answers_only_signed_requests(pair: Pair) -> None:
    path = f"/internal/files/{pair.file_id}"
    assert (await pair.holder.get(path)).status == 403
    forged = sign(b"a guessed secret", "GET", path)
    assert (await pair.holder.get(path, headers={HEADER: forged})).status == 403
    replayed = sign(SECRET.encode(), "HEAD", path)  # signed for HEAD, sent as GET
    assert (await pair.holder.get(path, headers={HEADER: replayed})).status == 403
    signed = sign(SECRET.encode(), "GET", path)
    answer = await pair.holder.get(path, headers={HEADER: signed})
    assert answer.status == 200 and await answer.read() == pair.data
    # The other node holds no bytes of it: it never relays a relay.
    assert (await pair.other.get(path, headers={HEADER: signed})).status == 404


async def test_bytes_gone_from_the_holder_are_a_404_everywhere(pair: Pair) -> None:
    row = await pair.holder.app[FILES].get(pair.file_id)
    assert row is not None
    (pair.holder.app[FILES].root / row.relpath).unlink()
    for client in (pair.holder, pair.other):
        answer = await client.get(f"/api/files/{pair.file_id}")
        assert answer.status == 404 and "expired" in (await answer.json())["error"]


async def test_a_stopped_holder_is_a_503_then_a_lost_file_a_410(pair: Pair) -> None:
    holder_id = pair.holder.app[NODE].node_id
    await pair.holder.close()  # a clean stop: marked stopped at once
    answer = await pair.other.get(f"/api/files/{pair.file_id}")
    body = await answer.json()
    assert answer.status == 503 and answer.headers["Retry-After"].isdigit()
    assert holder_id in body["error"] and "stopped" in body["error"]
    assert await pair.other.app[FILES].mark_lost([holder_id]) == 1
    lost = await pair.other.get(f"/api/files/{pair.file_id}")
    assert lost.status == 410 and "Run the download job again" in (await lost.json())["error"]
    counted = pair.other.app[METRICS].registry.get_sample_value
    assert counted("shortvid_file_relays_total", {"outcome": "owner_down"}) == 1


async def test_a_node_that_cannot_reach_the_holder_says_why(tmp_path: Path) -> None:
    database = sqlite_url(tmp_path)
    holder = await _node(tmp_path, "holder", database)
    no_secret = await _node(tmp_path, "plain", database, node_secret=None)
    wrong_secret = await _node(tmp_path, "wrong", database, node_secret="not the nodes' secret")
    try:
        file_id = await _put(holder.app[FILES], "80", b"held")
        plain = await no_secret.get(f"/api/files/{file_id}")
        assert plain.status == 503 and "SHORTVID_NODE_SECRET" in (await plain.json())["error"]
        wrong = await wrong_secret.get(f"/api/files/{file_id}")
        assert wrong.status == 503 and "refused this node's signature" in (await wrong.json())["error"]
        # A holder whose heartbeat stopped (killed, cut off) is gone after the timeout.
        registry = no_secret.app[REGISTRY]
        async with session_factory(no_secret.app[FILES]._sessions.kw["bind"])() as session, session.begin():
            await session.execute(
                update(NodeRecord)
                .values(heartbeat_at=utcnow() - timedelta(minutes=5))
                .where(NodeRecord.id == holder.app[NODE].node_id)
            )
        assert (await registry.get(holder.app[NODE].node_id)).state == "gone"  # type: ignore[union-attr]
        gone = await wrong_secret.get(f"/api/files/{file_id}")
        assert gone.status == 503 and " is gone since " in (await gone.json())["error"]
    finally:
        for client in (wrong_secret, no_secret, holder):
            await client.close()


async def test_the_admin_route_lists_the_nodes(pair: Pair) -> None:
    admin, _ = await pair.other.app[TOKENS].create(name="ops", unlimited=True, admin=True)
    user, _ = await pair.other.app[TOKENS].create(name="user", credits=10)
    refused = await pair.other.get("/api/admin/nodes", headers={"Authorization": f"Bearer {user}"})
    assert refused.status == 403
    answer = await pair.other.get("/api/admin/nodes", headers={"Authorization": f"Bearer {admin}"})
    nodes = {node["id"]: node for node in (await answer.json())["data"]}
    holder = nodes[pair.holder.app[NODE].node_id]
    assert holder["state"] == "up" and holder["files"] == 1 and holder["file_bytes"] == len(pair.data)
    assert holder["url"] == f"http://127.0.0.1:{pair.holder.server.port}"
    assert nodes[pair.other.app[NODE].node_id]["files"] == 0


async def test_rows_from_before_node_ids_go_to_the_node_whose_disk_has_them(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    legacy = _store(engine, tmp_path / "a", None)  # no node identity: rows name no owner, as before
    old = await _put(legacy, "90", b"written before nodes were recorded")
    a = _store(engine, tmp_path / "a", "node-a")
    b = _store(engine, tmp_path / "b", "node-b")
    assert await b.adopt_ownerless() == 0  # not on b's disk
    assert await a.adopt_ownerless() == 1
    row = await a.get(old)
    assert row is not None and row.node_id == "node-a" and not b.holds(row)
    assert await a.expire(now=utcnow() + timedelta(hours=2)) == 1 and _files_under(tmp_path / "a") == []
