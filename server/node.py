"""This process as a node: a stable id in its data directory, an incarnation per start.

A node that restarts after a crash knows its dead predecessor by that id and takes back the
jobs it held at once, instead of waiting out their leases (the lock file proves it is dead).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from server.queue import JobQueue

log = logging.getLogger(__name__)


class NodeBusy(RuntimeError):
    """Another live process already is this node (same data directory and name)."""


def _node_name(name: str) -> str:
    """A file- and worker-id-safe node name: the configured one, else the host name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name or socket.gethostname())[:32] or "node"


@dataclass(slots=True)
class Node:
    """This process as a node (any role): a stable id kept in the data directory, a fresh
    incarnation per start, and a lock proving no other process is this node. The id names it in
    the node registry and on the files whose bytes it holds.

    Worker ids are ``<node_id>:<incarnation>:<n>``. Holding the lock proves every earlier
    incarnation is dead, so at start-up the node may take back their jobs at once instead of
    waiting for their leases. Files are named per node name (host name by default), so worker
    machines sharing one data directory over NFS stay distinct nodes.
    """

    node_id: str
    incarnation: str
    lock: IO[str]

    @classmethod
    def open(cls, data_dir: Path, name: str = "") -> Node:
        """Lock the node (raises NodeBusy if a live process holds it), then read or create its id."""
        base = _node_name(name)
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock(data_dir / f"node-{base}.lock")
        try:
            node_id = _stable_id(data_dir / f"node-{base}.id", base)
        except BaseException:
            lock.close()
            raise
        return cls(node_id=node_id, incarnation=uuid.uuid4().hex[:8], lock=lock)

    @property
    def prefix(self) -> str:
        """The worker-id prefix of every incarnation of this node."""
        return f"{self.node_id}:"

    @property
    def current(self) -> str:
        """The worker-id prefix of this incarnation."""
        return f"{self.node_id}:{self.incarnation}:"

    def worker_id(self, n: int) -> str:
        return f"{self.current}{n}"

    def close(self) -> None:
        """Release the lock (closing the file unlocks it; so does the process dying)."""
        self.lock.close()


def _lock(path: Path) -> IO[str]:
    """An exclusive, non-blocking flock on ``path``, with our pid written in for the error message."""
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise NodeBusy(
            f"another shortvid process (pid {holder}) already runs with {path.parent.resolve()}"
            f" as its data directory; give each node its own --data-dir (or, sharing one, its own"
            f" SHORTVID_WORKER_NAME)"
        ) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _stable_id(path: Path, base: str) -> str:
    """The node id stored in ``path``, created once (written whole, then renamed into place)."""
    try:
        stored = path.read_text().strip()
    except FileNotFoundError:
        stored = ""
    if stored:
        return stored
    stored = f"{base}-{uuid.uuid4().hex[:12]}"
    partial = path.with_suffix(".tmp")
    partial.write_text(stored + "\n")
    partial.replace(path)
    return stored


async def take_back_orphans(queue: JobQueue, node: Node) -> None:
    """Before our workers start: requeue (or fail and refund) the jobs our earlier incarnations
    held when they died, so a restarted node does not wait a whole lease for them."""
    recovered = await queue.recover_restarted(node.prefix, node.current)
    if any(recovered):
        log.info(
            "took back jobs of an earlier incarnation: requeued %d, failed %d, skipped %d",
            *recovered,
            extra={"node": node.node_id, "incarnation": node.incarnation},
        )
