"""Server settings: one typed object, read from ``SHORTVID_*`` environment variables (and an optional
``.env``), then CLI flags. Validation errors name the variable to fix (``SettingsError``).

The field's ``description`` is the README's settings table (``server/settings_table.py`` writes it and a
test keeps the two equal), so a setting documented is a setting that exists, with its real default.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from scraper.config import REPO_CONFIG
from scraper.since import DEFAULT_TIMEZONES

ENV_PREFIX = "SHORTVID_"
Role = Literal["all", "api", "worker"]
#: Who may read ``GET /metrics``: an admin token; anyone on loopback (others need an admin token); anyone.
MetricsAuth = Literal["admin", "loopback", "open"]
#: ``json``: one JSON object a line; ``text``: readable ``key=value`` lines.
LogFormat = Literal["json", "text"]
#: Where downloaded bytes live: on the disk of the node that fetched them, or one store all mount.
FilesMode = Literal["local", "shared"]

_NUMBER = re.compile(r"\s*[0-9]+(\.[0-9]*)?\s*")


def _seconds_from_text(value: object) -> object:
    """``"90"`` from the environment means 90 seconds (pydantic reads only ISO 8601 durations from text)."""
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return float(value)
    return value


#: A duration given in seconds (``"2.5"``), or as ISO 8601 (``"PT2M"``); never zero or negative.
Seconds = Annotated[timedelta, BeforeValidator(_seconds_from_text), Field(gt=timedelta(0))]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]


def _env(description: str, default: Any, *, shown: str | None = None, **constraints: Any) -> Any:
    """A field's README line: what it does, and (``shown``) its default as a person reads it."""
    extra: dict[str, Any] | None = {"shown_default": shown} if shown is not None else None
    return Field(default, description=description, json_schema_extra=extra, **constraints)


class SettingsError(ValueError):
    """Settings that do not validate; the message names each variable and says what it must be."""


class Settings(BaseSettings):
    """Everything the server process needs to know, resolved once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    data_dir: Path = _env(
        "database (SQLite) and files; two instances with different dirs run side by side", Path("data")
    )
    database_url: str | None = _env(
        "`postgresql://user@host/db` to scale out", None, shown="SQLite in the data dir"
    )
    host: str = _env("listen address", "127.0.0.1")
    port: int = _env("listen port", 8000, ge=1, le=65535)
    role: Role = _env("`api` (HTTP only), `worker` (jobs only) or `all`", "all")
    workers: Count = _env("jobs run at once in this process (the pool grows to match)", 2)
    offline: bool = _env("scrape the built-in fixture site", False)
    max_body_bytes: Positive = _env("request body limit", 64 * 1024)
    header_timeout: Seconds = _env(
        "time a client has to send a request's headers; then the connection is closed", timedelta(seconds=5)
    )
    body_timeout: Seconds = _env(
        "time a client has to send a request's body; then it is answered 408", timedelta(seconds=10)
    )
    keepalive_timeout: Seconds = _env(
        "an idle keep-alive connection is closed after this", timedelta(seconds=15)
    )
    max_connections_per_client: Count = _env(
        "open connections per client address (0 = no cap; raise it behind a reverse proxy, where all"
        " clients share one address)",
        64,
    )
    max_attempts: Positive = _env("attempts for retryable failures (blocks, timeouts, crashes)", 3)
    retry_base: Seconds = _env("first retry delay, doubled per attempt", timedelta(seconds=2))
    retry_cap: Seconds = _env("longest retry delay", timedelta(minutes=2))
    lease: Seconds = _env("a worker's lease on a job", timedelta(seconds=90))
    heartbeat: Seconds = _env(
        "how often a worker renews its leases (shorter than the lease)", timedelta(seconds=20)
    )
    job_timeout: Seconds = _env("hard limit for one attempt of a parse or listing", timedelta(seconds=120))
    download_timeout: Seconds = _env("limit for one attempt of a download job", timedelta(minutes=10))
    task_timeout: Seconds = _env("limit for one attempt of a channel download task", timedelta(hours=2))
    download_concurrency: Positive = _env("posts a channel task downloads at once", 3)
    file_ttl: Seconds = _env("downloaded files are deleted after this", timedelta(days=7))
    files_max_bytes: Positive = _env(
        "cap on the file store; the oldest unpinned files go first", 20 * 1024**3, shown="20 GiB"
    )
    public_url: str | None = _env(
        "base of the `download_url`s we hand out (set it behind a proxy)",
        None,
        shown="the address the client used",
    )
    poll_interval: Seconds = _env(
        "how often an idle worker looks for jobs it was not woken for", timedelta(seconds=1)
    )
    result_ttl: Seconds = _env(
        'results are deleted after this; the job then answers "expired"', timedelta(hours=24)
    )
    recover_every: Seconds = _env(
        "how often the scheduler takes up jobs whose lease ran out", timedelta(seconds=15)
    )
    expire_every: Seconds = _env("how often the scheduler expires results and files", timedelta(seconds=60))
    rate_limit: Count = _env("requests per minute per token (0 = off)", 120)
    cost_video_parse: Count = _env("credits per `video.parse` job (vendor price)", 10)
    cost_video_download: Count = _env("credits per `video.download` job (vendor price)", 10)
    cost_channel_videos: Count = _env("credits per `channel.videos` job (vendor price)", 20)
    cost_channel_download: Count = _env("credits per `channel.download` job (vendor price)", 20)
    cost_tiktok_video_parse: Count = _env("credits per `tiktok.video.parse` job (vendor price)", 10)
    cost_tiktok_video_download: Count = _env("credits per `tiktok.video.download` job (vendor price)", 10)
    cost_tiktok_channel_videos: Count = _env("credits per `tiktok.channel.videos` job (vendor price)", 20)
    cost_tiktok_channel_download: Count = _env("credits per `tiktok.channel.download` job (vendor price)", 20)
    douyin_tz: str = _env("where a Douyin `since` day starts (IANA name)", DEFAULT_TIMEZONES["douyin"])
    tiktok_tz: str = _env("where a TikTok `since` day starts (IANA name)", DEFAULT_TIMEZONES["tiktok"])
    worker_name: str = _env(
        "this node's name, the prefix of its node id and worker ids (processes sharing one data dir"
        " need one each)",
        "",
        shown="the host name",
    )
    cursor_key: SecretStr | None = _env(
        "secret that signs channel cursors; give every node of one database the same",
        None,
        shown="a random `cursor.key` in the data dir",
    )
    node_url: str | None = _env(
        "this node's base URL as the other nodes reach it (they stream its files from it)",
        None,
        shown="`http://<host>:<port>` (the host name when listening on every address)",
    )
    node_secret: SecretStr | None = _env(
        "shared by every node of one database: signs the internal file route between them (unset:"
        " a file is served only by the node that holds it)",
        None,
        shown="unset",
    )
    node_heartbeat: Seconds = _env(
        "how often a node writes its heartbeat to the registry", timedelta(seconds=10)
    )
    node_timeout: Seconds = _env(
        "a node whose heartbeat is older is gone (its files answer 503)", timedelta(seconds=30)
    )
    files: FilesMode = _env(
        "`local`: each node keeps its downloads on its own disk and serves the others' through them;"
        " `shared`: one store every node mounts at the same data dir, which every node treats as its own",
        "local",
    )
    files_lost_after: Seconds = _env(
        "the files of a node gone this long are marked lost (they answer 410)", timedelta(days=1)
    )
    cache: bool = _env(
        "coalesce identical parse / channel-listing requests and reuse recent results (`false`: one"
        " scrape per job); `[cache] enabled` in `playwright.config`",
        True,
    )
    cache_ttl_item: Seconds = _env(
        "how long a scrape of a video is reused; `[cache] item_ttl`", timedelta(minutes=5)
    )
    cache_ttl_listing: Seconds = _env(
        "how long a scrape of a channel listing is reused; `[cache] listing_ttl`", timedelta(minutes=1)
    )
    metrics_auth: MetricsAuth = _env(
        "who may read `GET /metrics`: `admin` (an admin token), `loopback` (clients on 127.0.0.1 / ::1"
        " without a token, others with an admin token), `open` (anyone)",
        "admin",
    )
    log_format: LogFormat = _env("`json`: one JSON object a line; `text`: readable `key=value` lines", "text")
    max_waiters: Positive = _env("`?wait=` polls and event streams open at once per process (then 503)", 1000)
    sse_max_duration: Seconds = _env(
        "an event stream is closed after this (clients reconnect)", timedelta(minutes=10)
    )
    wait_recheck: Seconds = _env(
        "a waiter re-reads its job at least this often, in case a wake-up was missed (another process on"
        " the same SQLite file, the PostgreSQL LISTEN connection reconnecting)",
        timedelta(seconds=5),
    )
    webhook_attempts: Positive = _env("callback attempts", 3)
    webhook_retry_base: Seconds = _env("the first callback retry's delay (then ×4)", timedelta(seconds=10))
    webhook_timeout: Seconds = _env("time limit of one callback attempt", timedelta(seconds=10))
    webhook_sweep_every: Seconds = _env(
        "how often each node looks for due callbacks it was not woken for (retries, restarts)",
        timedelta(seconds=15),
    )
    webhook_allow_http: bool = _env("for tests only: `http://` callback URLs", False)
    webhook_allow_loopback: bool = _env("for tests only: callbacks to 127.0.0.1 and ::1", False)

    @field_validator("douyin_tz", "tiktok_tz")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("an unknown time zone (use an IANA name like Europe/Berlin)") from None
        return name

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.heartbeat >= self.lease:
            raise ValueError(f"{env_name('heartbeat')} must be shorter than {env_name('lease')}")
        if self.node_heartbeat >= self.node_timeout:
            raise ValueError(f"{env_name('node_heartbeat')} must be shorter than {env_name('node_timeout')}")
        if self.workers < 1 and self.role != "api":
            raise ValueError(f"{env_name('workers')} must be at least 1 unless {env_name('role')} is api")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, then the environment, then ``.env``, then ``playwright.config``'s ``[cache]``."""
        return init_settings, env_settings, dotenv_settings, CacheSection(settings_cls)

    # --- derived ---------------------------------------------------------------------------------

    @property
    def costs(self) -> dict[str, int]:
        """Credits per job type (``video.parse``, ``tiktok.channel.download``…)."""
        # No job type has an underscore of its own: cost_tiktok_video_parse is tiktok.video.parse.
        return {name.removeprefix("cost_").replace("_", "."): value for name, value in _cost_fields(self)}

    @property
    def channel_timezones(self) -> dict[str, str]:
        return {"douyin": self.douyin_tz, "tiktok": self.tiktok_tz}

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
        """A copy with the non-None ``changes`` applied and validated (CLI flags, tests)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update({k: v for k, v in changes.items() if v is not None})
        try:
            # model_validate, not the constructor: the environment was read once already.
            return type(self).model_validate(values)
        except ValidationError as exc:
            raise SettingsError(describe(exc)) from None


def _cost_fields(settings: Settings) -> list[tuple[str, int]]:
    return [
        (name, getattr(settings, name)) for name in type(settings).model_fields if name.startswith("cost_")
    ]


def env_name(field: str) -> str:
    """The environment variable of a field: ``rate_limit`` → ``SHORTVID_RATE_LIMIT``."""
    return ENV_PREFIX + field.upper()


def describe(error: ValidationError) -> str:
    """One line per problem, each naming its variable: ``SHORTVID_PORT: Input should be ... (got 'x')``."""
    lines = []
    for problem in error.errors(include_url=False):
        message = problem["msg"].removeprefix("Value error, ")
        if problem["loc"]:
            field = str(problem["loc"][0])
            shown = problem["input"]
            secret = (
                Settings.model_fields.get(field)
                and Settings.model_fields[field].annotation == SecretStr | None
            )
            shown = "(hidden)" if secret else repr(shown)
            lines.append(f"{env_name(field)}: {message} (got {shown})")
        else:
            lines.append(message)
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """The settings of this process (environment, ``.env``, ``playwright.config``), or ``SettingsError``."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


def log_format_from_env() -> LogFormat:
    """``SHORTVID_LOG_FORMAT`` alone: the CLI sets up logging before (and without) the other settings."""
    value = os.environ.get(env_name("log_format")) or "text"
    if value not in ("json", "text"):
        raise SettingsError(f"{env_name('log_format')}: must be json or text (got {value!r})")
    return "json" if value == "json" else "text"


class CacheSection(PydanticBaseSettingsSource):
    """``[cache]`` of ``playwright.config`` (the browser's file, shared with the pool): the lowest source."""

    KEYS: ClassVar[dict[str, str]] = {
        "enabled": "cache",
        "item_ttl": "cache_ttl_item",
        "listing_ttl": "cache_ttl_listing",
    }

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole section at once

    def __call__(self) -> dict[str, Any]:
        path = Path(os.environ.get("SHORTVID_PLAYWRIGHT_CONFIG") or REPO_CONFIG)
        if not path.exists():
            return {}
        section = tomllib.loads(path.read_text()).get("cache", {})
        if not isinstance(section, dict):
            raise SettingsError(f"{path}: [cache] must be a table")
        return {ours: section[theirs] for theirs, ours in self.KEYS.items() if theirs in section}
