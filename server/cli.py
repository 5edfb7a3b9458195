"""The ``shortvid`` command: serve, manage tokens, and one-shot tools for people."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from scraper.archive import DEFAULT_NAME as ARCHIVE_NAME
from scraper.config import BrowserSettings, load_browser_settings
from scraper.errors import ScraperError
from scraper.naming import DEFAULT_TEMPLATE
from server.logs import configure_logging
from server.settings import Settings, SettingsError, load_settings, log_format_from_env


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _fail(message: str, code: int = 2) -> int:
    print(f"shortvid: {message}", file=sys.stderr)
    return code


def scrape_error(exc: ScraperError) -> str:
    """One line for a person: ``not found: the video 123 was deleted`` (the error's stable code in
    words, then what happened), never a Python class name."""
    return f"{exc.code.replace('_', ' ')}: {exc.message}"


# ---- serve -----------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from server.app import create_app
    from server.connections import serve
    from server.node import NodeBusy

    settings = load_settings().with_overrides(
        host=args.host,
        port=args.port,
        role=args.role,
        workers=args.workers,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        database_url=args.database_url,
        offline=True if args.offline else None,
    )

    def first_token(token: str, info: Any) -> None:
        if getattr(info, "webhook_secret", None):
            print(f"its webhook signing secret: {info.webhook_secret}", file=sys.stderr, flush=True)
        print(
            f"No API tokens existed, so one admin token with unlimited credits was created.\n"
            f"It is shown only this once; keep it:\n{token}",
            flush=True,
        )

    app = create_app(settings, on_first_token=first_token)
    mode = " (offline: fixture site)" if settings.offline else ""
    print(
        f"shortvid {settings.role} on http://{settings.host}:{settings.port}{mode}, "
        f"data in {settings.data_dir.resolve()}",
        flush=True,
    )
    try:
        asyncio.run(
            serve(
                app,
                settings.host,
                settings.port,
                keepalive_timeout=settings.keepalive_timeout.total_seconds(),
            )
        )
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    except NodeBusy as busy:  # a second process on this node's data directory
        return _fail(str(busy))
    return 0


# ---- tokens ----------------------------------------------------------------------------------------


@asynccontextmanager
async def _database_sessions(settings: Settings) -> AsyncIterator[Any]:
    """Sessions on the configured database, its schema brought up to date (a tool may run first)."""
    from models.db import create_schema, make_engine, session_factory
    from models.transactions import dispose_engine

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        await create_schema(engine)
        yield session_factory(engine)
    finally:
        await dispose_engine(engine)


def _database_settings(args: argparse.Namespace) -> Settings:
    return load_settings().with_overrides(
        data_dir=Path(args.data_dir) if args.data_dir else None, database_url=args.database_url
    )


async def _token_command(args: argparse.Namespace) -> int:
    from server.tokens import TokenStore

    async with _database_sessions(_database_settings(args)) as sessions:
        store = TokenStore(sessions)
        if args.token_cmd == "create":
            if not args.unlimited and args.credits is None:
                return _fail("token create needs --credits N or --unlimited")
            token, info = await store.create(
                name=args.name, credits=args.credits or 0, unlimited=args.unlimited, admin=args.admin
            )
            print(f"created token {info.id} ({info.name}); it is shown only now:", file=sys.stderr)
            print(
                f"its webhook signing secret (X-Shortvid-Signature of callbacks): {info.webhook_secret}",
                file=sys.stderr,
            )
            print(token)
            return 0
        if args.token_cmd == "list":
            _print_json([t.to_json() for t in await store.list()])
            return 0
        found = await store.find(args.ref)
        if found is None:
            return _fail(f"no token with id, name or prefix {args.ref!r} (see `shortvid token list`)")
        if args.token_cmd == "topup":
            found = await store.topup(found.id, args.amount)
        elif args.token_cmd in ("ban", "unban"):
            found = await store.set_banned(found.id, args.token_cmd == "ban")
        _print_json(found.to_json())
        return 0


def cmd_token(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_token_command(args))
    except (ValueError, LookupError) as exc:
        return _fail(str(exc))


# ---- one-shot tools ---------------------------------------------------------------------------------


def cmd_resolve(args: argparse.Namespace) -> int:
    from scraper.urls import classify

    try:
        _print_json(classify(args.url).to_json())
    except ScraperError as exc:
        return _fail(exc.message)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from scraper.extract import extract_file

    path = Path(args.file)
    if not path.is_file():
        return _fail(f"{path} is not a file")
    try:
        _print_json(extract_file(path))
    except ScraperError as exc:
        return _fail(scrape_error(exc), 1)
    return 0


@asynccontextmanager
async def _browser(offline: bool) -> AsyncIterator[Any]:
    """A pool for one-shot commands; with ``offline`` against a fixture site of its own."""
    from scraper.pool import BrowserPool

    settings: BrowserSettings = load_browser_settings()
    site = None
    if offline:
        from fixtures.site import FixtureSite

        site = FixtureSite()
        await site.start()
        settings = settings.pointed_at(site)
    pool = BrowserPool(settings)
    try:
        await pool.start()
        yield pool
    finally:
        await pool.close()
        if site is not None:
            await site.close()


def _url_and_query(args: argparse.Namespace) -> tuple[Any, Any] | int:
    """The URL and the channel query (``--count --since --tz``) of a command, or its exit code."""
    from scraper.channel import ChannelQuery
    from scraper.since import DEFAULT_TIMEZONES, BadChannelParameter, parse_count, parse_since, parse_timezone
    from scraper.urls import classify

    try:
        parsed = classify(args.url)
        zone = parse_timezone(args.tz, DEFAULT_TIMEZONES[parsed.platform])
        return parsed, ChannelQuery(count=parse_count(args.count), since=parse_since(args.since, zone))
    except ScraperError as exc:
        return _fail(exc.message)
    except BadChannelParameter as exc:
        return _fail(str(exc))


async def _parse(args: argparse.Namespace) -> int:
    from scraper.service import scrape_url

    request = _url_and_query(args)
    if isinstance(request, int):
        return request
    parsed, query = request
    async with _browser(args.offline) as pool:
        try:
            result = await scrape_url(pool, parsed, query)
        except ScraperError as exc:
            return _fail(scrape_error(exc), 1)
    _print_json(result)
    return 0


def cmd_parse(args: argparse.Namespace) -> int:
    return asyncio.run(_parse(args))


async def _download(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from scraper.archive import DEFAULT_NAME, DownloadArchive
    from scraper.batch import Destination, download_url
    from scraper.naming import BadTemplate, OutputTemplate

    console = Console(stderr=True, highlight=False)
    request = _url_and_query(args)
    if isinstance(request, int):
        return request
    _, query = request
    folder = Path(args.out)
    try:
        template = OutputTemplate.parse(args.output)
    except BadTemplate as exc:
        return _fail(str(exc))
    archive = None if args.no_archive else DownloadArchive(Path(args.archive or folder / DEFAULT_NAME))
    where = Destination(folder, template, archive)
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    bars: dict[Path, TaskID] = {}
    with (
        Progress(*columns, console=console, transient=True) as files,
        Progress(
            TextColumn("posts"), BarColumn(), MofNCompleteColumn(), console=console, transient=False
        ) as overall,
    ):
        posts = overall.add_task("posts", total=None)

        def on_bytes(path: Path, done: int, total: int | None, finished: bool) -> None:
            bar = bars.get(path)
            if bar is None:
                bar = bars[path] = files.add_task(_short(path, folder), total=total)
            files.update(bar, completed=done, total=total)
            if finished:
                files.remove_task(bars.pop(path))
                console.print(f"  {_short(path, folder)}  {done / 1e6:.1f} MB", markup=False)

        async with _browser(args.offline) as pool:
            try:
                report = await download_url(
                    pool,
                    args.url,
                    where,
                    query=query,
                    concurrency=args.concurrency,
                    on_total=lambda total: overall.update(posts, total=total),
                    on_post=lambda post, ok: overall.advance(posts),
                    on_bytes=on_bytes,
                )
            except ScraperError as exc:
                return _fail(scrape_error(exc), 1)
    console.print(
        f"downloaded {len(report.done)} post(s), {len(report.files)} file(s), "
        f"{report.bytes / 1e6:.1f} MB into {folder}; already there: {len(report.skipped)}; "
        f"failed: {len(report.failed)}",
        markup=False,
    )
    for video_id, reason in report.failed.items():
        console.print(f"  failed {video_id}: {reason}", markup=False)
    if args.json:
        _print_json(
            {
                "done": report.done,
                "skipped": report.skipped,
                "failed": report.failed,
                "files": [{"path": str(f.path), "size": f.size, "sha256": f.sha256} for f in report.files],
            }
        )
    return 1 if report.failed and not (report.done or report.skipped) else 0


def _short(path: Path, folder: Path) -> str:
    """A file's name as shown while it downloads: relative to the output folder."""
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def cmd_download(args: argparse.Namespace) -> int:
    return asyncio.run(_download(args))


#: (census key, header, fixed width or None) of the table: fits an 80-column terminal (the last
#: error takes what is left and is cut with an ellipsis; ``--json`` has everything).
SESSION_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("id", "id", 4),
    ("identity", "identity", 9),
    ("state", "state", 8),
    ("busy", "busy", 5),
    ("uses", "uses", 5),
    ("score", "score", 5),
    ("cooling_seconds", "cool s", 6),
    ("age_seconds", "age s", 6),
    ("last_error", "last error", None),
)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"
    return "" if value is None else str(value)


NODE_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("id", "id", 24),
    ("role", "role", 6),
    ("state", "state", 7),
    ("beat", "beat s", 6),
    ("files", "files", 6),
    ("size", "size", 8),
    ("url", "url", 14),
)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]  # an int in, a float on
    raise AssertionError("unreachable")


async def _nodes_command(args: argparse.Namespace) -> int:
    from models.types import utcnow
    from server.node_registry import NodeRegistry

    settings = _database_settings(args)
    async with _database_sessions(settings) as sessions:
        nodes = await NodeRegistry(sessions, timeout=settings.node_timeout).all()
    if args.json:
        _print_json([node.to_json() for node in nodes])
        return 0
    if not nodes:
        print("no node has registered on this database yet", file=sys.stderr)
        return 0
    from rich.console import Console
    from rich.table import Table

    now = utcnow()
    table = Table(box=None, pad_edge=False, expand=False)
    for _, header, width in NODE_COLUMNS:
        table.add_column(header, width=width, no_wrap=True, overflow="ellipsis")
    for node in nodes:
        cells = {
            **node.to_json(),
            "beat": (now - node.heartbeat_at).total_seconds(),
            "size": _size(node.file_bytes),
        }
        table.add_row(*(_cell(cells[key]) for key, _, _ in NODE_COLUMNS))
    Console(highlight=False).print(table, markup=False)
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    return asyncio.run(_nodes_command(args))


def cmd_sessions(args: argparse.Namespace) -> int:
    """Ask a running node for its pool census and print one row per session."""
    import urllib.error
    import urllib.request

    from rich.console import Console
    from rich.table import Table

    token = args.token or os.environ.get("SHORTVID_ADMIN_TOKEN", "")
    if not token:
        return _fail("needs an admin token: --token or SHORTVID_ADMIN_TOKEN")
    if not args.url.startswith(("http://", "https://")):
        return _fail("--url must be an http(s) URL of a shortvid node")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        args.url.rstrip("/") + "/api/admin/sessions", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (operator-given URL)
            census = json.loads(response.read())["data"]
    except urllib.error.HTTPError as error:
        return _fail(f"{args.url} answered {error.code}: {error.read()[:200].decode(errors='replace')}")
    except OSError as error:
        return _fail(f"cannot reach {args.url}: {error}")
    if args.json:
        _print_json(census)
        return 0
    console = Console(highlight=False)
    counts = ", ".join(f"{state} {n}" for state, n in census["sessions"].items())
    table = Table(title=f"browser pool: {counts}", box=None, pad_edge=False, expand=False)
    for _, header, width in SESSION_COLUMNS:
        table.add_column(header, width=width, no_wrap=True, overflow="ellipsis")
    for session in census["detail"]:
        table.add_row(*(_cell(session.get(key)) for key, _, _ in SESSION_COLUMNS))
    console.print(table, markup=False)
    console.print(
        f"browser alive: {census['browser_alive']}, uptime {census['browser_uptime_seconds']} s, "
        f"pages {census['browser_pages']}, relaunches {census['relaunches']}, retired {census['retired']}",
        markup=False,
    )
    return 0


# ---- fixtures ---------------------------------------------------------------------------------------


def cmd_fixtures(args: argparse.Namespace) -> int:
    from fixtures.dataset import build_dataset

    now = datetime.fromisoformat(args.now) if getattr(args, "now", None) else None
    if args.fixtures_cmd == "show":
        _print_json(build_dataset(now=now).to_json())
        return 0
    if args.fixtures_cmd == "urls":
        for label, url in sample_urls(build_dataset(now=now).to_json()):
            print(f"{label:<31} {url}")
        return 0
    return asyncio.run(_serve_fixtures(args, now))


def _first_url(items: list[dict[str, Any]], kind: str, state: str) -> str | None:
    return next((str(i["url"]) for i in items if i["kind"] == kind and i["state"] == state), None)


def sample_urls(dataset: dict[str, Any]) -> list[tuple[str, str]]:
    """One URL of each kind per platform, for trying the offline demo by hand."""
    samples: list[tuple[str, str]] = []
    for platform in ("douyin", "tiktok"):
        accounts = {a["role"]: a for a in dataset["accounts"] if a["platform"] == platform}
        items = [item for account in accounts.values() for item in account["items"]]
        first = functools.partial(_first_url, items)
        short = next((s["url"] for s in dataset["short_links"] if s["platform"] == platform), None)
        for label, url in (
            ("video", first("video", "public")),
            ("photo post", first("photo", "public")),
            ("short link", short),
            ("channel (35 posts)", accounts.get("medium", {}).get("profile_url")),
            ("channel (520 posts)", accounts.get("big", {}).get("profile_url")),
            ("deleted video (fails)", first("video", "deleted")),
            ("private video (fails)", first("video", "private")),
            ("private account (fails)", accounts.get("private", {}).get("profile_url")),
        ):
            if url:
                samples.append((f"{platform} {label}", url))
    return samples


async def _serve_fixtures(args: argparse.Namespace, now: datetime | None) -> int:
    from fixtures.dataset import build_dataset
    from fixtures.site import FixtureSite

    site = FixtureSite(
        dataset=build_dataset(now=now),
        port=args.port,
        state_dir=Path(args.state_dir) if args.state_dir else None,
    )
    await site.start()
    print(
        f"fixture site on {site.address}\n"
        f"SHORTVID_HOST_MAP={site.address}\nSHORTVID_TRUST_SPKI={site.spki_sha256}\n"
        f"CA file: {site.ca_pem_path}",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await site.close()
    return 0


# ---- parser -----------------------------------------------------------------------------------------


OFFLINE_HELP = "use the built-in replica of the two sites instead of the real ones"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shortvid")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shortvid", description=__doc__)
    parser.add_argument("--version", action="version", version=f"shortvid {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API with workers and scheduler")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument(
        "--role", choices=["all", "api", "worker"], help="all (default), api only, worker only"
    )
    serve.add_argument("--workers", type=int, help="concurrent jobs in this process (default 2)")
    serve.add_argument("--data-dir", help="database and files (default $SHORTVID_DATA_DIR or ./data)")
    serve.add_argument(
        "--database-url", help="e.g. postgresql://user@host/db (default: SQLite in the data dir)"
    )
    serve.add_argument(
        "--offline", action="store_true", help="scrape the built-in fixture site, not the real one"
    )
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="manage API tokens")
    token.add_argument("--data-dir", help="as for serve: where the SQLite database is")
    token.add_argument("--database-url", help="as for serve: e.g. postgresql://user@host/db")
    tsub = token.add_subparsers(dest="token_cmd", required=True)
    create = tsub.add_parser("create", help="create a token; prints it alone on the last line")
    create.add_argument("--name", required=True, help="a unique name for the token")
    create.add_argument("--credits", type=int, help="starting credits (0 to 2147483647)")
    create.add_argument("--unlimited", action="store_true", help="never runs out of credits")
    create.add_argument("--admin", action="store_true", help="may use the admin routes")
    tsub.add_parser("list", help="list tokens (never shows the tokens themselves)")
    topup = tsub.add_parser("topup", help="add credits")
    topup.add_argument("ref", help="token id, name or prefix")
    topup.add_argument("amount", type=int, help="credits to add")
    for name, says in (("ban", "refuse the token's requests"), ("unban", "accept the token again")):
        tsub.add_parser(name, help=says).add_argument("ref", help="token id, name or prefix")
    token.set_defaults(func=cmd_token)

    parse = sub.add_parser("parse", help="parse a video or list a channel now, without the server")
    parse.add_argument("url", help="a video, photo post, profile or short link")
    parse.add_argument("--count", type=int, help="channels: how many posts (1-500, default 20)")
    parse.add_argument("--since", help="channels: today, yesterday or YYYY-MM-DD")
    parse.add_argument("--tz", help="channels: the time zone of --since (default Asia/Shanghai or UTC)")
    parse.add_argument("--offline", action="store_true", help=OFFLINE_HELP)
    parse.set_defaults(func=cmd_parse)

    nodes = sub.add_parser("nodes", help="list the nodes on this database: role, state, heartbeat, files")
    nodes.add_argument("--data-dir", help="as for serve (the SQLite database's directory)")
    nodes.add_argument("--database-url", help="as for serve: e.g. postgresql://user@host/db")
    nodes.add_argument("--json", action="store_true", help="print the registry as JSON")
    nodes.set_defaults(func=cmd_nodes)

    sessions = sub.add_parser("sessions", help="show each browser session of a running node")
    sessions.add_argument("--url", default="http://127.0.0.1:8000", help="the node (default local)")
    sessions.add_argument("--token", help="an admin token (or SHORTVID_ADMIN_TOKEN)")
    sessions.add_argument("--json", action="store_true", help="print the census as JSON")
    sessions.set_defaults(func=cmd_sessions)

    dl = sub.add_parser("download", help="download a video, photo post or channel to a folder")
    dl.add_argument("url", help="a video, photo post, profile or short link")
    dl.add_argument("--out", default="downloads", help="folder (default ./downloads)")
    dl.add_argument("--count", type=int, help="channels: how many posts (1-500, default 20)")
    dl.add_argument("--since", help="channels: today, yesterday or YYYY-MM-DD")
    dl.add_argument("--tz", help="channels: the time zone of --since")
    dl.add_argument("--concurrency", type=int, default=2, help="posts downloaded at once")
    dl.add_argument(
        "-o",
        "--output",
        default=DEFAULT_TEMPLATE,
        help="file names inside --out, with {author} {author_id} {date} {title} {id} {platform} {n} {ext}"
        f" (default {DEFAULT_TEMPLATE!r})".replace("%", "%%"),
    )
    dl.add_argument(
        "--archive", help=f"the download archive (default {{out}}/{ARCHIVE_NAME}; yt-dlp's format)"
    )
    dl.add_argument("--no-archive", action="store_true", help="neither read nor write an archive")
    dl.add_argument("--json", action="store_true", help="print what was downloaded as JSON on stdout")
    dl.add_argument("--offline", action="store_true", help=OFFLINE_HELP)
    dl.set_defaults(func=cmd_download)

    resolve = sub.add_parser("resolve", help="classify a URL without network access")
    resolve.add_argument("url", help="a URL or a whole share text")
    resolve.set_defaults(func=cmd_resolve)

    extract = sub.add_parser("extract", help="normalized result from a saved page or API response")
    extract.add_argument("file", help="an HTML page or a JSON API response saved from the platform")
    extract.set_defaults(func=cmd_extract)

    fixtures = sub.add_parser("fixtures", help="the offline replica site")
    fsub = fixtures.add_subparsers(dest="fixtures_cmd", required=True)
    show = fsub.add_parser("show", help="print the dataset as JSON")
    show.add_argument("--now", help="ISO timestamp the dataset is built around (default: now)")
    urls = fsub.add_parser("urls", help="a few sample URLs of each kind, to try the offline demo")
    urls.add_argument("--now", help="ISO timestamp the dataset is built around (default: now)")
    fserve = fsub.add_parser("serve", help="serve the fixture site")
    fserve.add_argument("--port", type=int, default=8443, help="port on 127.0.0.1 (default 8443)")
    fserve.add_argument("--state-dir", help="where the site keeps its TLS keys and state")
    fserve.add_argument("--now", help="ISO timestamp the dataset is built around (default: now)")
    fixtures.set_defaults(func=cmd_fixtures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        log_format = log_format_from_env()
    except ValueError as exc:
        return _fail(str(exc))
    configure_logging(
        log_format, level=logging.INFO if args.verbose or args.command == "serve" else logging.WARNING
    )
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:  # names the variable to fix
        return _fail(f"bad setting: {exc}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
