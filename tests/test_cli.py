"""The ``shortvid`` command as people and scripts use it."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from server.cli import build_parser
from tests.e2e import REPO, ServeProcess, http_json

CAPTURES = REPO.parent / "shared" / "real-captures"


def shortvid(
    *args: str, data_dir: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if data_dir is not None:
        env["SHORTVID_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=check,
        cwd=REPO,
    )


def test_packages_are_imported_from_this_repository() -> None:
    import fixtures
    import models
    import scraper
    import server

    for package in (models, scraper, server, fixtures):
        assert Path(package.__file__).resolve().parent.parent == REPO, package.__file__


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "shortvid"
    assert script.exists()
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("serve", "token", "parse", "resolve", "extract", "fixtures"):
        assert command in out


def test_resolve_prints_json_without_network() -> None:
    out = json.loads(
        shortvid("resolve", "https://www.tiktok.com/@some.one/video/7301234567890123456?_r=1").stdout
    )
    assert out == {
        "platform": "tiktok",
        "kind": "video",
        "id": "7301234567890123456",
        "user": "some.one",
        "canonical_url": "https://www.tiktok.com/@some.one/video/7301234567890123456",
    }
    short = json.loads(shortvid("resolve", "https://v.douyin.com/iRNBho6u/").stdout)
    assert short["kind"] == "short" and short["id"] is None


def test_resolve_rejects_non_platform_urls_with_exit_2() -> None:
    done = shortvid("resolve", "http://169.254.169.254/latest/meta-data", check=False)
    assert done.returncode == 2
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1


def test_token_lifecycle(tmp_path: Path) -> None:
    created = shortvid("token", "create", "--name", "alice", "--credits", "50", data_dir=tmp_path)
    token = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"sv_[A-Za-z0-9_-]{40,}", token)
    listed = shortvid("token", "list", data_dir=tmp_path).stdout
    assert token not in listed and json.loads(listed)[0]["credits"] == 50
    assert json.loads(shortvid("token", "topup", "alice", "25", data_dir=tmp_path).stdout)["credits"] == 75
    assert json.loads(shortvid("token", "ban", "alice", data_dir=tmp_path).stdout)["banned"] is True
    assert json.loads(shortvid("token", "unban", "alice", data_dir=tmp_path).stdout)["banned"] is False
    unlimited = shortvid("token", "create", "--name", "ops", "--unlimited", data_dir=tmp_path)
    assert unlimited.stdout.strip().splitlines()[-1].startswith("sv_")
    assert shortvid("token", "create", "--name", "x", data_dir=tmp_path, check=False).returncode == 2
    assert shortvid("token", "ban", "nobody", data_dir=tmp_path, check=False).returncode == 2
    assert token not in (tmp_path / "shortvid.db").read_bytes().decode("latin-1")


@pytest.mark.skipif(not CAPTURES.is_dir(), reason="../shared/real-captures is not beside the repository")
def test_extract_reads_a_real_capture() -> None:
    out = json.loads(
        shortvid(
            "extract", str(CAPTURES / "douyin-web-api-user_post_detail.TikTokDownload-20230804.json")
        ).stdout
    )
    assert out["video_id"] == "7071967230287744267" and out["platform"] == "douyin"
    deleted = shortvid(
        "extract", str(CAPTURES / "douyin-web-api-user_post_delete.TikTokDownload-20230804.json"), check=False
    )
    assert deleted.returncode == 1 and deleted.stderr.startswith(
        "shortvid: private: "
    )  # status_self_see: hidden or deleted


@contextmanager
def offline_server(data_dir: Path) -> Iterator[tuple[str, str]]:
    """`shortvid serve --offline` in a subprocess; yields its base URL and the first-start token."""
    server = ServeProcess(data_dir, "--offline")
    server.start()
    try:
        yield server.base, server.first_token()
    finally:
        server.stop()


@pytest.mark.browser
def test_serve_offline_answers_the_vendor_curl_examples(tmp_path: Path) -> None:
    """`shortvid serve --offline`: first-start token, health, a Douyin and a TikTok parse to completion."""
    with offline_server(tmp_path) as (base, token):
        _vendor_curl_examples(base, token)


def _vendor_curl_examples(base: str, token: str) -> None:
    stop = time.monotonic() + 60
    while True:
        try:
            status, health = http_json("GET", base + "/api/health")
            break
        except OSError:
            assert time.monotonic() < stop, "server never answered"
            time.sleep(0.3)
    assert status == 200 and health["status"] == "ok"
    dataset = json.loads(shortvid("fixtures", "show").stdout)
    urls = {
        platform: next(
            item["url"]
            for account in dataset["accounts"]
            if account["platform"] == platform and account["state"] == "public"
            for item in account["items"]
            if item["state"] == "public" and item["kind"] == "video"
        )
        for platform in ("douyin", "tiktok")
    }
    routes = {"douyin": "/api/video/parse", "tiktok": "/api/tiktok/video/parse"}
    jobs = {
        platform: http_json("POST", base + route, {"url": urls[platform]}, token)[1]["data"]["jobId"]
        for platform, route in routes.items()
    }
    for platform, job_id in jobs.items():
        stop = time.monotonic() + 90
        while True:
            _, body = http_json("GET", f"{base}/api/job/{job_id}")
            if body["data"]["state"] in ("completed", "failed"):
                break
            assert time.monotonic() < stop, body
            time.sleep(0.3)
        assert body["data"]["state"] == "completed", body
        assert body["data"]["result"]["platform"] == platform
        assert body["data"]["result"]["video_id"] in urls[platform]


@pytest.mark.browser
def test_sessions_command_reads_a_running_node(tmp_path: Path) -> None:
    with offline_server(tmp_path) as (base, token):
        stop = time.monotonic() + 60
        while True:
            done = shortvid("sessions", "--url", base, "--token", token, "--json", check=False)
            if done.returncode == 0:
                break
            assert time.monotonic() < stop, done.stderr
            time.sleep(0.3)
        census = json.loads(done.stdout)
        assert census["sessions"]["total"] == len(census["detail"]) >= 1
        assert {s["state"] for s in census["detail"]} <= {"healthy", "cooling", "retired"}
        status, health = http_json("GET", f"{base}/api/health")
        assert status == 200
        assert health["pool"]["sessions"]["total"] == census["sessions"]["total"]
        assert "detail" not in health["pool"]
        assert health["queue"]["depth"] == 0 and health["pool"]["browser_alive"] is True
        table = shortvid("sessions", "--url", base, "--token", token)
        assert "healthy" in table.stdout
        assert max(len(line) for line in table.stdout.splitlines()) <= 80  # an 80-column terminal
        denied = shortvid("sessions", "--url", base, "--token", "sv_wrong", check=False)
        assert denied.returncode == 2 and "401" in denied.stderr


def test_version_and_help_for_every_command_and_option() -> None:
    assert shortvid("--version").stdout.strip().startswith("shortvid ")
    undocumented = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                for name, child in action.choices.items():
                    if not helps.get(name):
                        undocumented.append(f"{path} {name}")
                    walk(child, f"{path} {name}")
            elif not action.help:
                undocumented.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "shortvid")
    assert undocumented == []


def test_fixtures_urls_prints_a_sample_of_each_kind() -> None:
    lines = shortvid("fixtures", "urls").stdout.splitlines()
    labels = [line.rsplit(" ", 1)[0].strip() for line in lines]
    for platform in ("douyin", "tiktok"):
        for kind in ("video", "photo post", "short link", "channel (35 posts)", "deleted video (fails)"):
            assert f"{platform} {kind}" in labels
    assert all(line.rsplit(" ", 1)[1].startswith("https://") for line in lines)


@pytest.mark.browser
def test_errors_are_one_line_for_people() -> None:
    lines = shortvid("fixtures", "urls").stdout.splitlines()
    urls = {label.strip(): url for label, url in (line.rsplit(" ", 1) for line in lines)}
    deleted = urls["douyin deleted video (fails)"]
    done = shortvid("parse", "--offline", deleted, check=False)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("shortvid: not found: "), done.stderr
    assert "Error" not in done.stderr and "Traceback" not in done.stderr
    bad = shortvid("download", "--offline", "-o", "{title}.{ext}", deleted, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("shortvid: the output template must contain {id}")
