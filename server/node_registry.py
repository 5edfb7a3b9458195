"""The node registry: every shortvid process on one database writes who it is, where its peers reach
it, and a heartbeat (table ``nodes``).

Why: a download lands on the disk of the worker that fetched it. Any node answering for that file
must know which node holds it, whether that node is alive, and how to reach it (``server.file_relay``);
upkeep must know whose bytes are whose. A node is ``up`` while its heartbeat is younger than
``SHORTVID_NODE_TIMEOUT``, ``stopped`` after a clean shutdown, ``gone`` otherwise (killed, cut off).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from models.db import read_sessions, uncancellable, writing
from models.tables import NodeRecord, StoredFile
from models.types import utcnow
from models.video import iso_utc_ms
from server.settings import Settings

log = logging.getLogger(__name__)

NodeState = Literal["up", "stopped", "gone"]
_ANY_ADDRESS = {"", "0.0.0.0", "::"}  # noqa: S104 (names of the wildcard, not a bind)


def package_version() -> str:
    try:
        return version("shortvid")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def advertised_url(settings: Settings) -> str:
    """Where the other nodes reach this one: ``SHORTVID_NODE_URL``, else the listen address (the
    host name when it listens on every address)."""
    if settings.node_url:
        return settings.node_url.rstrip("/")
    host = socket.gethostname() if settings.host in _ANY_ADDRESS else settings.host
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One registry row as the admin route, the CLI and the file relay see it."""

    id: str
    role: str
    url: str
    version: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    state: NodeState
    files: int = 0
    file_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "state": self.state,
            "url": self.url,
            "version": self.version,
            "host": self.host,
            "pid": self.pid,
            "started_at": iso_utc_ms(self.started_at),
            "heartbeat_at": iso_utc_ms(self.heartbeat_at),
            "stopped_at": iso_utc_ms(self.stopped_at) if self.stopped_at else None,
            "files": self.files,
            "file_bytes": self.file_bytes,
        }


def state_of(record: NodeRecord, *, now: datetime, timeout: timedelta) -> NodeState:
    if record.stopped_at is not None:
        return "stopped"
    return "up" if now - record.heartbeat_at <= timeout else "gone"


class NodeRegistry:
    """This node's row (register, beat, stop) and everyone's (list, look up)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, timeout: timedelta) -> None:
        self._sessions = sessions
        self._reads = read_sessions(sessions)
        self.timeout = timeout

    @uncancellable
    async def register(self, *, node_id: str, role: str, url: str, incarnation: str) -> None:
        """Write (or take over) this node's row, up from now; its files are reachable again."""
        now = utcnow()
        async with writing(self._sessions) as session:
            await session.merge(
                NodeRecord(
                    id=node_id,
                    role=role,
                    url=url,
                    version=package_version(),
                    host=socket.gethostname()[:255],
                    pid=os.getpid(),
                    incarnation=incarnation,
                    started_at=now,
                    heartbeat_at=now,
                    stopped_at=None,
                )
            )
            # A node back after its grace period still has its disk: what was marked lost is not.
            await session.execute(
                update(StoredFile)
                .where(col(StoredFile.node_id) == node_id, col(StoredFile.lost_at).is_not(None))
                .values(lost_at=None)
            )
        log.info("registered as node %s (%s) at %s", node_id, role, url, extra={"node": node_id})

    @uncancellable
    async def beat(self, node_id: str) -> None:
        async with writing(self._sessions) as session:
            await session.execute(
                update(NodeRecord)
                .where(col(NodeRecord.id) == node_id)
                .values(heartbeat_at=utcnow(), stopped_at=None)
            )

    @uncancellable
    async def stopped(self, node_id: str) -> None:
        """A clean shutdown: peers answer 503 for this node's files at once, not after the timeout."""
        async with writing(self._sessions) as session:
            await session.execute(
                update(NodeRecord).where(col(NodeRecord.id) == node_id).values(stopped_at=utcnow())
            )

    async def get(self, node_id: str) -> NodeInfo | None:
        async with self._reads() as session:
            record = await session.get(NodeRecord, node_id)
        return self._info(record, utcnow()) if record else None

    async def all(self) -> list[NodeInfo]:
        """Every node ever registered, with the files and bytes it holds, by id."""
        async with self._reads() as session:
            records = (await session.execute(select(NodeRecord).order_by(col(NodeRecord.id)))).scalars().all()
            held = {
                node_id: (count, int(size))
                for node_id, count, size in (
                    await session.execute(
                        select(
                            col(StoredFile.node_id),
                            func.count(),
                            func.coalesce(func.sum(col(StoredFile.size)), 0),
                        )
                        .where(col(StoredFile.node_id).is_not(None), col(StoredFile.lost_at).is_(None))
                        .group_by(col(StoredFile.node_id))
                    )
                ).all()
            }
        now = utcnow()
        return [self._info(record, now, *held.get(record.id, (0, 0))) for record in records]

    async def gone_since(self, cutoff: datetime) -> list[str]:
        """Ids of nodes whose last sign of life (heartbeat or clean stop) is older than ``cutoff``."""
        async with self._reads() as session:
            rows = await session.execute(
                select(col(NodeRecord.id)).where(col(NodeRecord.heartbeat_at) < cutoff)
            )
            return [node_id for (node_id,) in rows.all()]

    def _info(self, record: NodeRecord, now: datetime, files: int = 0, file_bytes: int = 0) -> NodeInfo:
        return NodeInfo(
            id=record.id,
            role=record.role,
            url=record.url,
            version=record.version,
            host=record.host,
            pid=record.pid,
            started_at=record.started_at,
            heartbeat_at=record.heartbeat_at,
            stopped_at=record.stopped_at,
            state=state_of(record, now=now, timeout=self.timeout),
            files=files,
            file_bytes=file_bytes,
        )
