"""Connection limits aiohttp does not have: a deadline for a request's headers, and a cap on the
connections one client address may hold open.

aiohttp waits as long as a client likes for the rest of a request line and its headers, so a
few hundred connections that send half a request and stall ("slowloris") hold sockets and memory
for an hour (its keep-alive default). Each connection here goes through a thin protocol in front
of aiohttp's own: from the first byte of a request until its handler starts, a timer runs; when
it fires, the connection is closed. The body is bounded where it is read (``server.body``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """``header_timeout`` seconds to send a request's headers; at most ``per_client`` connections
    per client address (0 = no cap; raise it behind a reverse proxy, where every client shares one
    address)."""

    header_timeout: float = 5.0
    per_client: int = 64


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind a header deadline and the per-client count."""

    def __init__(self, inner: asyncio.Protocol, registry: ConnectionRegistry) -> None:
        self._inner = inner
        self._registry = registry
        self._transport: asyncio.Transport | None = None
        self._peer: str = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._in_handler = False
        self._refused = False

    # --- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._registry.admit(self._peer):
            self._refused = True
            log.warning("refused a connection over the per-client cap", extra={"client": self._peer})
            transport.abort()
            return
        self._registry.opened(transport, self, self._peer)
        self._inner.connection_made(transport)
        self._arm()  # a connection that never sends a whole request is closed too

    def data_received(self, data: bytes) -> None:
        if not self._in_handler and self._deadline is None:
            self._arm()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        if self._transport is not None:
            self._registry.closed(self._transport, self._peer)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def __getattr__(self, name: str) -> Any:
        # Anything else asyncio or aiohttp asks of the protocol is the inner one's.
        return getattr(self._inner, name)

    # --- called around each request by the middleware -------------------------------------------
    def handler_started(self) -> None:
        self._in_handler = True
        self._disarm()

    def handler_finished(self) -> None:
        self._in_handler = False

    # --- the deadline -------------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        timeout = self._registry.limits.header_timeout
        if timeout > 0:
            self._deadline = asyncio.get_running_loop().call_later(timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self._in_handler or self._transport is None:
            return
        log.info(
            "closed a connection that did not send its request headers in time", extra={"client": self._peer}
        )
        self._transport.abort()


class ConnectionRegistry:
    """The open guarded connections of one app, by transport and by client address."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._by_transport: dict[asyncio.BaseTransport, _Guarded] = {}
        self._per_client: Counter[str] = Counter()

    def protocol_factory(self, server: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory (``AppRunner.server``) for ``loop.create_server``."""
        return lambda: _Guarded(server(), self)

    def admit(self, client: str) -> bool:
        cap = self.limits.per_client
        return cap <= 0 or self._per_client[client] < cap

    def opened(self, transport: asyncio.BaseTransport, connection: _Guarded, client: str) -> None:
        self._by_transport[transport] = connection
        self._per_client[client] += 1

    def closed(self, transport: asyncio.BaseTransport, client: str) -> None:
        self._by_transport.pop(transport, None)
        self._per_client[client] -= 1
        if self._per_client[client] <= 0:
            del self._per_client[client]

    def open_count(self, client: str | None = None) -> int:
        return len(self._by_transport) if client is None else self._per_client[client]

    def of(self, request: web.BaseRequest) -> _Guarded | None:
        transport = request.transport
        return self._by_transport.get(transport) if transport is not None else None


CONNECTIONS = web.AppKey("connections", ConnectionRegistry)


@web.middleware
async def request_deadline(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Stop the header deadline once the handler runs (the body has its own, where it is read)."""
    registry = request.app.get(CONNECTIONS)
    connection = registry.of(request) if registry is not None else None
    if connection is None:  # a test server, or a connection that did not come through our site
        return await handler(request)
    connection.handler_started()
    try:
        return await handler(request)
    finally:
        connection.handler_finished()


class GuardedSite(web.TCPSite):
    """``web.TCPSite`` whose connections go through the app's ``ConnectionRegistry``."""

    def __init__(self, runner: web.AppRunner, registry: ConnectionRegistry, host: str, port: int) -> None:
        super().__init__(runner, host, port)
        self._registry = registry
        self._bind = (host, port)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._registry.protocol_factory(server), self._bind[0], self._bind[1], reuse_address=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        # start() stored what loop.create_server returned, an asyncio.Server; BaseSite declares
        # the attribute as the abstract base, which has no ``sockets``.
        server = cast("asyncio.Server | None", self._server)
        assert server is not None and server.sockets
        return int(server.sockets[0].getsockname()[1])


async def serve(app: web.Application, host: str, port: int, *, keepalive_timeout: float) -> None:
    """Run ``app`` on ``host:port`` until SIGINT/SIGTERM, every connection guarded (see the module)."""
    runner = web.AppRunner(app, handle_signals=True, access_log=None, keepalive_timeout=keepalive_timeout)
    await runner.setup()
    try:
        await GuardedSite(runner, app[CONNECTIONS], host, port).start()
        await asyncio.Event().wait()  # GracefulExit from the signal handler ends this
    finally:
        await runner.cleanup()
