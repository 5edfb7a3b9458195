"""The aiohttp app factory. ``cleanup_ctx`` opens database, fixture site, pool, workers and
scheduler in order and closes them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from aiohttp import web

from models.db import make_engine, session_factory, upgrade_schema
from models.transactions import dispose_engine
from scraper.config import BrowserSettings, load_browser_settings
from scraper.pool import BrowserPool
from server.auth import RATE_LIMITER, RateLimiter
from server.coalesce import Coalescer
from server.connections import CONNECTIONS, ConnectionLimits, ConnectionRegistry, request_deadline
from server.console import add_routes as add_console
from server.file_relay import relay_client
from server.files import FileStore
from server.job_events import JOB_EVENTS, LISTENER, JobEvents, listening
from server.keys import ENGINE, FILES, NODE, POOL, QUEUE, REGISTRY, SETTINGS, TASKS, TOKENS, WAKEUP
from server.media import JobContext
from server.metrics import METRICS, Metrics
from server.middleware import json_errors, request_ids, request_metrics, stamp_headers
from server.node import Node, take_back_orphans
from server.node_registry import NodeRegistry, advertised_url
from server.queue import JobQueue
from server.routes import admin, docs, files, health, jobs, metrics, tasks
from server.routes.tasks import notification_status
from server.scheduler import NodeDuties, build_scheduler
from server.settings import Settings
from server.tasks import TaskStore
from server.tokens import TokenInfo, TokenStore, bootstrap_admin
from server.webhooks import CALLBACKS, DISPATCHER, CallbackStore, WebhookDispatcher
from server.worker import Worker

log = logging.getLogger(__name__)

FirstTokenCallback = Callable[[str, TokenInfo], None]
BROWSER = web.AppKey("browser_settings", BrowserSettings)


def _log_first_token(token: str, info: TokenInfo) -> None:
    log.warning(
        "no API tokens existed; created admin token %r (%s...). Run `shortvid serve` to have it printed,"
        " or create one with `shortvid token create`.",
        info.name,
        info.token_prefix,
    )


def create_app(
    settings: Settings,
    *,
    browser: BrowserSettings | None = None,
    on_first_token: FirstTokenCallback = _log_first_token,
) -> web.Application:
    """Build the app; nothing is opened until the app starts (``cleanup_ctx``)."""
    app = web.Application(
        middlewares=[request_ids, request_deadline, request_metrics, json_errors],
        client_max_size=settings.max_body_bytes,
    )
    app.on_response_prepare.append(stamp_headers)  # X-Request-ID and X-RateLimit-*, streamed answers too
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[CONNECTIONS] = ConnectionRegistry(
        ConnectionLimits(
            header_timeout=settings.header_timeout.total_seconds(),
            per_client=settings.max_connections_per_client,
        )
    )
    app[BROWSER] = browser or load_browser_settings()
    app[WAKEUP] = asyncio.Event()
    app[RATE_LIMITER] = RateLimiter(settings.rate_limit)
    app[JOB_EVENTS] = JobEvents(max_waiters=settings.max_waiters)
    health.add_routes(app)
    jobs.add_routes(app)
    admin.add_routes(app)
    tasks.add_routes(app)
    files.add_routes(app)
    metrics.add_routes(app)
    add_console(app, BROWSER)
    docs.add_routes(app)
    app.cleanup_ctx.append(_node)
    app.cleanup_ctx.append(_database(on_first_token))
    app.cleanup_ctx.append(_registered)
    app.cleanup_ctx.append(relay_client)
    app.cleanup_ctx.append(_job_events)
    if settings.role != "api":
        if settings.offline:
            app.cleanup_ctx.append(_fixture_site)
        app.cleanup_ctx.append(_browser_pool)
        app.cleanup_ctx.append(_workers)
    app.cleanup_ctx.append(_scheduler)
    return app


def _database(on_first_token: FirstTokenCallback) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.resolved_database_url)
        async with upgrade_schema(engine) as connection:  # one lock for the schema and the first token
            first = await bootstrap_admin(connection)
        sessions = session_factory(engine)
        app[ENGINE] = engine
        app[TOKENS] = TokenStore(sessions)
        app[QUEUE] = JobQueue(
            sessions, lease=settings.lease, result_ttl=settings.result_ttl, notify=app[JOB_EVENTS].publish
        )
        app[QUEUE].on_lost = app[METRICS].job_lost
        app[CALLBACKS] = CallbackStore.for_settings(engine, settings)
        app[FILES] = FileStore(
            settings.files_dir,
            sessions,
            ttl=settings.file_ttl,
            max_bytes=settings.files_max_bytes,
            node_id=app[NODE].node_id,
            shared=settings.files == "shared",
        )
        app[REGISTRY] = NodeRegistry(sessions, timeout=settings.node_timeout)
        app[TASKS] = TaskStore(sessions)
        if first is not None:  # shown only once it is committed
            on_first_token(*first)
        yield
        await dispose_engine(engine)

    return ctx


async def _node(app: web.Application) -> AsyncIterator[None]:
    """This process's node identity, locked for its lifetime (every role: an api node is in the
    registry too, and a worker's files are recorded under its id)."""
    settings = app[SETTINGS]
    node = Node.open(settings.data_dir, settings.worker_name)
    app[NODE] = node
    try:
        yield
    finally:
        node.close()


async def _registered(app: web.Application) -> AsyncIterator[None]:
    """In the node registry from start to clean stop (the scheduler beats in between)."""
    node, registry = app[NODE], app[REGISTRY]
    settings = app[SETTINGS]
    await registry.register(
        node_id=node.node_id, role=settings.role, url=advertised_url(settings), incarnation=node.incarnation
    )
    if adopted := await app[FILES].adopt_ownerless():
        log.info("took ownership of %d files on this disk that were recorded without a node", adopted)
    yield
    await registry.stopped(node.node_id)


async def _job_events(app: web.Application) -> AsyncIterator[None]:
    """Wake-ups from other nodes (PostgreSQL LISTEN) and the callback delivery loop, which every
    job end wakes."""
    events = app[JOB_EVENTS]
    async with listening(events, app[ENGINE]) as listener:
        if listener is not None:
            app[LISTENER] = listener
        dispatcher = WebhookDispatcher(
            app[CALLBACKS],
            app[QUEUE],
            app[SETTINGS],
            describe=functools.partial(notification_status, app[TASKS]),
        )
        events.on_end(dispatcher.kick)
        async with dispatcher.running():
            app[DISPATCHER] = dispatcher
            yield


async def _fixture_site(app: web.Application) -> AsyncIterator[None]:
    """Offline mode: serve the replica site and point the browser at it."""
    from fixtures.site import FixtureSite

    site = FixtureSite(state_dir=app[SETTINGS].data_dir / "fixture-site")
    await site.start()
    app[BROWSER] = app[BROWSER].pointed_at(site)
    log.info("offline fixture site on %s", site.address)
    yield
    await site.close()


async def _browser_pool(app: web.Application) -> AsyncIterator[None]:
    browser = app[BROWSER]
    if app[SETTINGS].workers > browser.pool_size:
        browser = replace(browser, pool_size=app[SETTINGS].workers)
    pool = BrowserPool(browser)
    await pool.start()
    app[POOL] = pool
    yield
    await pool.close()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """Lock this node, take back its dead incarnation's jobs, then run the workers under its id."""
    node = app[NODE]
    await take_back_orphans(app[QUEUE], node)
    tasks = [asyncio.create_task(w.run(), name=f"worker:{w.name}") for w in _make_workers(app, node)]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _make_workers(app: web.Application, node: Node) -> list[Worker]:
    settings = app[SETTINGS]
    context = JobContext(pool=app[POOL], files=app[FILES], tasks=app[TASKS], settings=settings)
    coalescer = Coalescer(app[QUEUE], settings)  # one per process: followers wake when a leader here ends
    return [
        Worker(
            queue=app[QUEUE],
            context=context,
            settings=settings,
            wakeup=app[WAKEUP],
            name=node.worker_id(n),
            coalescer=coalescer,
            metrics=app[METRICS],
        )
        for n in range(settings.workers)
    ]


async def _scheduler(app: web.Application) -> AsyncIterator[None]:
    scheduler = build_scheduler(
        app[SETTINGS], app[QUEUE], app.get(POOL), app[FILES], NodeDuties(app[REGISTRY], app[NODE].node_id)
    )
    scheduler.start()
    # Jobs orphaned by a previous crash are taken up at once, not at the first interval.
    recovered = await app[QUEUE].recover_expired()
    if any(recovered):
        log.info("start-up recovery: requeued %d, failed %d, skipped %d", *recovered)
    yield
    scheduler.shutdown(wait=False)
