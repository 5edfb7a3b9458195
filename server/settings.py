"""Server settings: sensible defaults, overridden by ``SHORTVID_*`` environment variables and CLI flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, cast

from scraper.config import load_cache_settings
from scraper.since import DEFAULT_TIMEZONES

Role = Literal["all", "api", "worker"]
#: Who may read ``GET /metrics``: an admin token; anyone on loopback (others need an admin token); anyone.
MetricsAuth = Literal["admin", "loopback", "open"]
#: ``json``: one JSON object a line; ``text``: readable ``key=value`` lines.
LogFormat = Literal["json", "text"]

#: Credits per job type (vendor defaults).
DEFAULT_COSTS: dict[str, int] = {
    "video.parse": 10,
    "video.download": 10,
    "channel.videos": 20,
    "channel.download": 20,
    "tiktok.video.parse": 10,
    "tiktok.video.download": 10,
    "tiktok.channel.videos": 20,
    "tiktok.channel.download": 20,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server process needs to know, resolved once at start-up."""

    data_dir: Path = Path("data")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    role: Role = "all"
    workers: int = 2
    offline: bool = False
    max_body_bytes: int = 64 * 1024
    header_timeout: timedelta = timedelta(seconds=5)
    body_timeout: timedelta = timedelta(seconds=10)
    keepalive_timeout: timedelta = timedelta(seconds=15)
    max_connections_per_client: int = 64
    max_attempts: int = 3
    retry_base: timedelta = timedelta(seconds=2)
    retry_cap: timedelta = timedelta(minutes=2)
    lease: timedelta = timedelta(seconds=90)
    heartbeat: timedelta = timedelta(seconds=20)
    job_timeout: timedelta = timedelta(seconds=120)
    download_timeout: timedelta = timedelta(minutes=10)
    task_timeout: timedelta = timedelta(hours=2)
    download_concurrency: int = 3
    file_ttl: timedelta = timedelta(days=7)
    files_max_bytes: int = 20 * 1024**3
    public_url: str | None = None
    poll_interval: timedelta = timedelta(seconds=1)
    result_ttl: timedelta = timedelta(hours=24)
    recover_every: timedelta = timedelta(seconds=15)
    expire_every: timedelta = timedelta(seconds=60)
    rate_limit_per_minute: int = 120
    costs: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    channel_timezones: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TIMEZONES.items()))
    worker_name: str = ""
    #: Coalescing and the short result cache (parse and channel-listing jobs only).
    cache: bool = True
    cache_ttl_item: timedelta = timedelta(minutes=5)
    cache_ttl_listing: timedelta = timedelta(minutes=1)
    metrics_auth: MetricsAuth = "admin"
    log_format: LogFormat = "text"
    #: ``?wait=`` polls and event streams open at once in this process (each holds a connection).
    max_waiters: int = 1000
    #: How long an event stream stays open at most (the client reconnects; EventSource does by itself).
    sse_max_duration: timedelta = timedelta(minutes=10)
    #: A waiter re-reads its job at least this often, in case a wake-up was missed (another process
    #: on the same SQLite file, the PostgreSQL LISTEN connection reconnecting).
    wait_recheck: timedelta = timedelta(seconds=5)
    #: Callback deliveries: attempts, the first retry's delay (then x4), one attempt's time limit.
    webhook_attempts: int = 3
    webhook_retry_base: timedelta = timedelta(seconds=10)
    webhook_timeout: timedelta = timedelta(seconds=10)
    #: How often the delivery loop looks for due deliveries it was not woken for (retries, restarts).
    webhook_sweep_every: timedelta = timedelta(seconds=15)
    #: For tests only: ``http://`` callback URLs, and callbacks to loopback addresses. Both off.
    webhook_allow_http: bool = False
    webhook_allow_loopback: bool = False

    def __post_init__(self) -> None:
        if self.heartbeat >= self.lease:
            raise ValueError("the heartbeat interval must be shorter than the lease")
        if self.workers < 1 and self.role != "api":
            raise ValueError("workers must be at least 1")
        if self.webhook_attempts < 1:
            raise ValueError("webhook attempts must be at least 1")

    def timeout_for(self, job_type: str) -> timedelta:
        """Hard limit for one attempt of a job of this type (a channel download runs long)."""
        if job_type.endswith("channel.download"):
            return self.task_timeout
        if job_type.endswith("video.download"):
            return self.download_timeout
        return self.job_timeout

    def cache_ttl_for(self, job_type: str) -> timedelta | None:
        """How long a result of this job type may be reused; None: never shared (downloads, cache off)."""
        if not self.cache:
            return None
        if job_type.endswith("video.parse"):
            return self.cache_ttl_item
        if job_type.endswith("channel.videos"):
            return self.cache_ttl_listing
        return None

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def resolved_database_url(self) -> str:
        from models.db import sqlite_url

        return self.database_url or sqlite_url(self.data_dir)

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the non-None ``changes`` applied (CLI flags)."""
        # Any: the flags are of mixed types, one per field, which replace() cannot match statically.
        overrides: dict[str, Any] = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **overrides)


def _seconds(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    raw = env.get(name)
    return timedelta(seconds=float(raw)) if raw else default


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").lower() in ("1", "true", "yes")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name) or default
    if value not in choices:
        raise ValueError(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, not {value!r}")
    return value


def log_format_from_env(env: Mapping[str, str] | None = None) -> LogFormat:
    """``SHORTVID_LOG_FORMAT`` alone: the CLI sets up logging before (and without) the other settings."""
    env = os.environ if env is None else env
    return cast(LogFormat, _choice(env, "SHORTVID_LOG_FORMAT", ("json", "text"), "text"))


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read ``SHORTVID_*`` variables; unknown ones are ignored, bad numbers raise ValueError."""
    env = os.environ if env is None else env
    base = Settings()
    costs = dict(DEFAULT_COSTS)
    for job_type in costs:
        raw = env.get("SHORTVID_COST_" + job_type.upper().replace(".", "_"))
        if raw:
            costs[job_type] = int(raw)
    cache = load_cache_settings(env=env)
    role = env.get("SHORTVID_ROLE", base.role)
    if role not in ("all", "api", "worker"):
        raise ValueError(f"SHORTVID_ROLE must be all, api or worker, not {role!r}")
    return Settings(
        data_dir=Path(env.get("SHORTVID_DATA_DIR", str(base.data_dir))),
        database_url=env.get("SHORTVID_DATABASE_URL") or None,
        host=env.get("SHORTVID_HOST", base.host),
        port=int(env.get("SHORTVID_PORT", base.port)),
        role=cast(Role, role),  # checked against the Role values just above
        workers=int(env.get("SHORTVID_WORKERS", base.workers)),
        offline=_flag(env, "SHORTVID_OFFLINE"),
        max_body_bytes=int(env.get("SHORTVID_MAX_BODY_BYTES", base.max_body_bytes)),
        header_timeout=_seconds(env, "SHORTVID_HEADER_TIMEOUT", base.header_timeout),
        body_timeout=_seconds(env, "SHORTVID_BODY_TIMEOUT", base.body_timeout),
        keepalive_timeout=_seconds(env, "SHORTVID_KEEPALIVE_TIMEOUT", base.keepalive_timeout),
        max_connections_per_client=int(
            env.get("SHORTVID_MAX_CONNECTIONS_PER_CLIENT", base.max_connections_per_client)
        ),
        max_attempts=int(env.get("SHORTVID_MAX_ATTEMPTS", base.max_attempts)),
        retry_base=_seconds(env, "SHORTVID_RETRY_BASE", base.retry_base),
        lease=_seconds(env, "SHORTVID_LEASE", base.lease),
        heartbeat=_seconds(env, "SHORTVID_HEARTBEAT", base.heartbeat),
        job_timeout=_seconds(env, "SHORTVID_JOB_TIMEOUT", base.job_timeout),
        result_ttl=_seconds(env, "SHORTVID_RESULT_TTL", base.result_ttl),
        download_timeout=_seconds(env, "SHORTVID_DOWNLOAD_TIMEOUT", base.download_timeout),
        task_timeout=_seconds(env, "SHORTVID_TASK_TIMEOUT", base.task_timeout),
        download_concurrency=int(env.get("SHORTVID_DOWNLOAD_CONCURRENCY", base.download_concurrency)),
        file_ttl=_seconds(env, "SHORTVID_FILE_TTL", base.file_ttl),
        files_max_bytes=int(env.get("SHORTVID_FILES_MAX_BYTES", base.files_max_bytes)),
        public_url=env.get("SHORTVID_PUBLIC_URL") or None,
        recover_every=_seconds(env, "SHORTVID_RECOVER_EVERY", base.recover_every),
        expire_every=_seconds(env, "SHORTVID_EXPIRE_EVERY", base.expire_every),
        rate_limit_per_minute=int(env.get("SHORTVID_RATE_LIMIT", base.rate_limit_per_minute)),
        costs=costs,
        channel_timezones={
            "douyin": env.get("SHORTVID_DOUYIN_TZ", DEFAULT_TIMEZONES["douyin"]),
            "tiktok": env.get("SHORTVID_TIKTOK_TZ", DEFAULT_TIMEZONES["tiktok"]),
        },
        worker_name=env.get("SHORTVID_WORKER_NAME", ""),
        # One source with the browser keys: playwright.config's [cache], then SHORTVID_CACHE*.
        cache=cache.enabled,
        cache_ttl_item=timedelta(seconds=cache.item_ttl),
        cache_ttl_listing=timedelta(seconds=cache.listing_ttl),
        metrics_auth=cast(
            MetricsAuth,
            _choice(env, "SHORTVID_METRICS_AUTH", ("admin", "loopback", "open"), base.metrics_auth),
        ),
        log_format=log_format_from_env(env),
        max_waiters=int(env.get("SHORTVID_MAX_WAITERS", base.max_waiters)),
        sse_max_duration=_seconds(env, "SHORTVID_SSE_MAX_DURATION", base.sse_max_duration),
        wait_recheck=_seconds(env, "SHORTVID_WAIT_RECHECK", base.wait_recheck),
        webhook_attempts=int(env.get("SHORTVID_WEBHOOK_ATTEMPTS", base.webhook_attempts)),
        webhook_retry_base=_seconds(env, "SHORTVID_WEBHOOK_RETRY_BASE", base.webhook_retry_base),
        webhook_timeout=_seconds(env, "SHORTVID_WEBHOOK_TIMEOUT", base.webhook_timeout),
        webhook_sweep_every=_seconds(env, "SHORTVID_WEBHOOK_SWEEP_EVERY", base.webhook_sweep_every),
        webhook_allow_http=_flag(env, "SHORTVID_WEBHOOK_ALLOW_HTTP"),
        webhook_allow_loopback=_flag(env, "SHORTVID_WEBHOOK_ALLOW_LOOPBACK"),
    )
