"""Server settings: every variable parses, every bad value is named, and the README's table is the model."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from server.job_routes import JOB_ROUTES
from server.settings import Settings, SettingsError, env_name, load_settings
from server.settings_table import README, block, current_block, main

REPO = Path(__file__).resolve().parents[1]

#: Fields whose type is free text (any value is taken as it is), except the zones, which are checked.
FREE_TEXT = {
    name
    for name, field in Settings.model_fields.items()
    if field.annotation in (str, str | None, Path, SecretStr | None) and not name.endswith("_tz")
}
NUMERIC_OR_CHOICE = [name for name in Settings.model_fields if name not in FREE_TEXT]


def test_the_readme_table_is_written_from_the_model() -> None:
    assert current_block(README.read_text()) == block(), "run: python -m server.settings_table --write"
    assert main([]) == 0


def test_the_table_check_fails_on_a_stale_readme(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text().replace("| `SHORTVID_PORT` | `8000` |", "| `SHORTVID_PORT` | `80` |"))
    assert main(["--readme", str(stale)]) == 1
    assert main(["--readme", str(stale), "--write"]) == 0
    assert current_block(stale.read_text()) == block()


def test_every_job_type_has_a_price_and_only_those() -> None:
    assert set(Settings().costs) == {route.job_type for route in JOB_ROUTES}
    assert Settings().costs["tiktok.channel.download"] == 20  # the vendor's price


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SHORTVID_LEASE": "45",
        "SHORTVID_RETRY_BASE": "2.5",
        "SHORTVID_TASK_TIMEOUT": "PT3H",
        "SHORTVID_OFFLINE": "yes",
        "SHORTVID_RATE_LIMIT": "0",
        "SHORTVID_COST_TIKTOK_VIDEO_PARSE": "7",
        "SHORTVID_DOUYIN_TZ": "Europe/Berlin",
        "SHORTVID_CURSOR_KEY": "shared",
        "SHORTVID_PUBLIC_URL": "",  # empty is unset, as in a shell's `VAR=`
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.lease == timedelta(seconds=45)
    assert settings.retry_base == timedelta(seconds=2.5)
    assert settings.task_timeout == timedelta(hours=3)
    assert settings.offline is True and settings.rate_limit == 0
    assert settings.costs["tiktok.video.parse"] == 7 and settings.costs["video.parse"] == 10
    assert settings.channel_timezones == {"douyin": "Europe/Berlin", "tiktok": "UTC"}
    assert settings.cursor_key is not None and settings.cursor_key.get_secret_value() == "shared"
    assert "shared" not in repr(settings)  # a secret never reaches a log line
    assert settings.public_url is None


def _garbage_for(name: str) -> str:
    return "Mars/Olympus" if name.endswith("_tz") else "not-a-value"


@pytest.mark.parametrize("name", NUMERIC_OR_CHOICE)
def test_every_bad_value_is_refused_by_its_variable_name(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env_name(name), _garbage_for(name))
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith(env_name(name) + ": ") and _garbage_for(name) in message
    assert ";" not in message  # one problem, one line: the other settings are fine


@given(st.sampled_from([n for n, f in Settings.model_fields.items() if f.annotation is timedelta]), st.data())
def test_durations_must_be_positive(name: str, data: st.DataObject) -> None:
    bad = data.draw(st.sampled_from(["0", "-1", "-0.5", "P0D"]))
    with pytest.raises(SettingsError, match=env_name(name)):
        Settings().with_overrides(**{name: bad})


@given(st.floats(min_value=0.001, max_value=10**6, allow_nan=False))
def test_any_positive_number_of_seconds_is_a_duration(seconds: float) -> None:
    lease = Settings().with_overrides(lease=repr(seconds), heartbeat="0.0005")
    assert abs(lease.lease.total_seconds() - seconds) < 1e-6


def test_settings_that_contradict_each_other_name_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHORTVID_LEASE", "10")
    monkeypatch.setenv("SHORTVID_HEARTBEAT", "10")
    with pytest.raises(SettingsError, match="SHORTVID_HEARTBEAT must be shorter than SHORTVID_LEASE"):
        load_settings()
    monkeypatch.delenv("SHORTVID_HEARTBEAT")
    monkeypatch.delenv("SHORTVID_LEASE")
    with pytest.raises(SettingsError, match="SHORTVID_WORKERS must be at least 1"):
        Settings().with_overrides(workers=0)
    assert Settings().with_overrides(workers=0, role="api").workers == 0


def test_flags_are_validated_like_the_environment() -> None:
    with pytest.raises(SettingsError, match="SHORTVID_PORT"):
        Settings().with_overrides(port=70000)
    assert Settings().with_overrides(port=None).port == 8000  # an absent flag changes nothing


def test_a_dotenv_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("SHORTVID_PORT=9123\nSHORTVID_WORKERS=5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(Settings.model_config, "env_file", ".env")
    monkeypatch.setenv("SHORTVID_WORKERS", "3")
    settings = load_settings()
    assert (settings.port, settings.workers) == (9123, 3)


def _config(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "playwright.config"
    path.write_text(text)
    monkeypatch.setenv("SHORTVID_PLAYWRIGHT_CONFIG", str(path))


def test_the_cache_table_of_playwright_config_is_the_lowest_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, "[cache]\nenabled = true\nitem_ttl = 40\nlisting_ttl = 4\n", monkeypatch)
    settings = load_settings()
    assert settings.cache_ttl_for("video.parse") == timedelta(seconds=40)
    assert settings.cache_ttl_for("tiktok.channel.videos") == timedelta(seconds=4)
    assert settings.cache_ttl_for("video.download") is None  # downloads are never shared
    monkeypatch.setenv("SHORTVID_CACHE_TTL_ITEM", "9")
    assert load_settings().cache_ttl_item == timedelta(seconds=9)
    assert load_settings().cache_ttl_listing == timedelta(seconds=4)
    monkeypatch.setenv("SHORTVID_CACHE", "false")
    assert load_settings().cache_ttl_for("video.parse") is None


def test_defaults_without_the_cache_table_or_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, "pool_size = 2\n", monkeypatch)
    assert load_settings().cache_ttl_item == timedelta(minutes=5)
    monkeypatch.setenv("SHORTVID_PLAYWRIGHT_CONFIG", str(tmp_path / "missing.config"))
    assert load_settings().cache_ttl_listing == timedelta(minutes=1)
    _config(tmp_path, "[cache]\nitem_ttl = 'soon'\n", monkeypatch)
    with pytest.raises(SettingsError, match="SHORTVID_CACHE_TTL_ITEM"):
        load_settings()


def test_the_command_line_names_the_bad_variable(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "SHORTVID_PORT": "eighty",
        "SHORTVID_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "shortvid: bad setting: SHORTVID_PORT: Input should be a valid integer, unable to parse string as an"
        " integer (got 'eighty')"
    ]
    assert not (tmp_path / "shortvid.db").exists()  # refused before anything was made


def test_every_variable_is_typed() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} needs a description: it is the README's text"
        assert field.annotation is not typing.Any
