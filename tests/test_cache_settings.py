"""``[cache]`` in playwright.config and its SHORTVID_CACHE* overrides, as the server applies them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from scraper.config import CacheSettings, load_cache_settings
from server.settings import settings_from_env


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "playwright.config"
    path.write_text(text)
    return path


def test_the_cache_table_is_read_from_the_file(tmp_path: Path) -> None:
    path = _config(tmp_path, "[cache]\nenabled = false\nitem_ttl = 30\nlisting_ttl = 5\n")
    assert load_cache_settings(path, env={}) == CacheSettings(enabled=False, item_ttl=30, listing_ttl=5)


def test_defaults_without_the_table_or_the_file(tmp_path: Path) -> None:
    assert load_cache_settings(_config(tmp_path, "pool_size = 2\n"), env={}) == CacheSettings()
    assert load_cache_settings(tmp_path / "missing.config", env={}) == CacheSettings()


def test_environment_overrides_each_key(tmp_path: Path) -> None:
    path = _config(tmp_path, "[cache]\nenabled = true\nitem_ttl = 30\nlisting_ttl = 5\n")
    env = {"SHORTVID_CACHE": "false", "SHORTVID_CACHE_TTL_ITEM": "12", "SHORTVID_CACHE_TTL_LISTING": "3"}
    assert load_cache_settings(path, env=env) == CacheSettings(enabled=False, item_ttl=12, listing_ttl=3)
    only_item = load_cache_settings(path, env={"SHORTVID_CACHE_TTL_ITEM": "9"})
    assert only_item == CacheSettings(enabled=True, item_ttl=9, listing_ttl=5)


def test_the_server_takes_its_ttls_per_job_type_from_the_config(tmp_path: Path) -> None:
    path = _config(tmp_path, "[cache]\nitem_ttl = 40\nlisting_ttl = 4\n")
    settings = settings_from_env(
        {"SHORTVID_PLAYWRIGHT_CONFIG": str(path), "SHORTVID_DATA_DIR": str(tmp_path)}
    )
    assert settings.cache_ttl_for("video.parse") == timedelta(seconds=40)
    assert settings.cache_ttl_for("tiktok.channel.videos") == timedelta(seconds=4)
    assert settings.cache_ttl_for("video.download") is None  # downloads are never shared
    off = settings_from_env({"SHORTVID_PLAYWRIGHT_CONFIG": str(path), "SHORTVID_CACHE": "false"})
    assert off.cache_ttl_for("video.parse") is None
