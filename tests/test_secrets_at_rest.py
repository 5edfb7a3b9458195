"""Secrets at rest: after a real run, no plain token is in the database files or the logs.

A `shortvid serve` process makes, uses, tops up, bans and mistypes tokens; then it is killed so
SQLite's WAL and shared-memory files stay as a crash leaves them. Every byte under the data
directory (and a ``pg_dump`` of the PostgreSQL database) is searched for each token; only the
bootstrap line on stdout may show the admin token, once.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.e2e import ServeProcess, http_json
from tests.pg_databases import fresh_database

pytestmark = pytest.mark.slow

VIDEO = "https://www.douyin.com/video/7071967230287744267"


def _exercise(node: ServeProcess, admin: str) -> list[str]:
    """Use the API the way clients and operators do; the plain tokens it handled."""
    tokens = [admin]
    for n in range(3):
        status, body = http_json(
            "POST", node.base + "/api/admin/tokens", {"name": f"user{n}", "credits": 100}, admin
        )
        assert status == 200, body
        tokens.append(body["data"]["token"])
    for token in tokens[1:]:
        for _ in range(3):
            assert http_json("POST", node.base + "/api/video/parse", {"url": VIDEO}, token)[0] == 200
        assert http_json("POST", node.base + "/api/video/parse", {"url": "nope"}, token)[0] == 400
    assert http_json("POST", node.base + "/api/admin/tokens/user0/topup", {"amount": 5}, admin)[0] == 200
    assert http_json("POST", node.base + "/api/admin/tokens/user1/ban", None, admin)[0] == 200
    assert http_json("POST", node.base + "/api/video/parse", {"url": VIDEO}, tokens[2])[0] == 403
    mistyped = tokens[3][:-1] + ("A" if tokens[3][-1] != "A" else "B")
    assert http_json("POST", node.base + "/api/video/parse", {"url": VIDEO}, mistyped)[0] == 401
    assert http_json("GET", node.base + "/api/admin/tokens", None, admin)[0] == 200
    return [*tokens, mistyped]


def _secret_parts(token: str) -> list[bytes]:
    """The token, and its part after the printed prefix (the one piece that is stored in plain)."""
    return [token.encode(), token[10:].encode()]


def _files_holding(root: Path, tokens: list[str]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path.name}: {t[:10]}…" for t in tokens if any(part in data for part in _secret_parts(t))]
    return found


def _run(node: ServeProcess) -> tuple[list[str], str]:
    """Start, exercise and kill the node; the tokens it saw and everything it printed."""
    node.start()
    try:
        admin = node.first_token()
        node.wait_ready()
        tokens = _exercise(node, admin)
    finally:
        process = node.process
        node.kill()  # no shutdown code: the WAL is left as a crash leaves it
    assert process is not None and process.stdout is not None
    return tokens, process.stdout.read() + node.log.read_text()


def _check_logs(tokens: list[str], printed: str) -> None:
    """``printed`` is all the node wrote after the bootstrap line (which ``first_token`` consumed)."""
    for token in tokens:
        assert token[10:] not in printed, f"{token[:10]}… leaked into the output"


def test_no_plain_token_in_sqlite_files_or_logs(tmp_path: Path) -> None:
    node = ServeProcess(tmp_path / "node", "--role", "api")
    tokens, printed = _run(node)
    assert any(p.name.endswith("-wal") for p in node.data_dir.rglob("*")), "expected the WAL a crash leaves"
    assert _files_holding(node.data_dir, tokens) == []
    _check_logs(tokens, printed)


@pytest.mark.pg
@pytest.mark.skipif(not PG_URL, reason="SHORTVID_TEST_DATABASE_URL is not set")
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
def test_no_plain_token_in_a_postgresql_dump_or_logs(tmp_path: Path) -> None:
    with fresh_database(PG_URL or "") as url:
        node = ServeProcess(tmp_path / "node", "--role", "api", "--database-url", url)
        tokens, printed = _run(node)
        dump = subprocess.run(
            ["pg_dump", "--no-owner", url], capture_output=True, check=True, timeout=60
        ).stdout
    assert [t[:10] for t in tokens if any(part in dump for part in _secret_parts(t))] == []
    assert _files_holding(node.data_dir, tokens) == []
    _check_logs(tokens, printed)
