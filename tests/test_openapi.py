"""GET /api/openapi.json and GET /docs: the document validates, describes every route, and what the
server really answers (jobs in every state, tasks, files, admin, errors) fits it; the docs page
renders in a real Chromium with no request leaving the machine."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec

from models.video import Author, Image, Music, Statistics, Video
from scraper.download import Downloaded
from server.auth import BANNED, MISSING_TOKEN, insufficient_credits
from server.body import validate_body
from server.coalesce import shared_result
from server.error_map import ApiError
from server.job_routes import JOB_ROUTES
from server.keys import FILES, QUEUE, TASKS, TOKENS
from server.media import download_result
from server.openapi import OPERATIONS, is_console, routes_of, undocumented_routes
from server.schemas import ChannelSubmit, CreateToken, JobType, RequestBody, SubmitContext, TopUp
from server.settings import Settings
from tests.chromium import bare_chromium
from tests.e2e import start_app

DOUYIN_VIDEO = "https://www.douyin.com/video/7071967230287744267"
TIKTOK_VIDEO = "https://www.tiktok.com/@a3noticias/video/6806030056956251397"
DOUYIN_PROFILE = "https://www.douyin.com/user/MS4wLjABAAAA" + "x" * 64


@dataclass
class Api:
    client: TestClient
    user: str
    admin: str
    doc: dict[str, Any]

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.user}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, role="api", rate_limit=0, max_body_bytes=16384)
    client = await start_app(settings)
    app = client.app
    user, _ = await app[TOKENS].create(name="client", credits=1000)
    admin, _ = await app[TOKENS].create(name="root", unlimited=True, admin=True)
    response = await client.get("/api/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    try:
        yield Api(client, user, admin, await response.json())
    finally:
        await client.close()


# --------------------------------------------------------------------------- the document itself


async def test_the_document_is_valid_openapi_3_1(api: Api) -> None:
    assert api.doc["openapi"].startswith("3.1")
    validate_spec(api.doc)  # raises on any violation of the OpenAPI 3.1 schema


async def test_every_route_is_in_the_document_and_nothing_else(api: Api) -> None:
    app = api.client.app
    assert undocumented_routes(app) == []
    documented = {(method.upper(), path) for path, item in api.doc["paths"].items() for method in item}
    assert documented == set(routes_of(app))
    in_router = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD" and not is_console(route.resource.canonical)
    }
    assert in_router <= documented
    assert {("POST", r.path) for r in JOB_ROUTES} <= documented
    assert ("HEAD", "/api/files/{file_id}") in documented
    assert set(JobType.__args__) == {r.job_type for r in JOB_ROUTES}  # type: ignore[attr-defined]


async def test_every_answer_documents_the_request_id(api: Api) -> None:
    for item in api.doc["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                if "$ref" in response:
                    response = api.doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                assert response["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}
    assert api.doc["components"]["headers"]["X-Request-ID"]["required"] is True


async def test_submit_routes_say_what_they_answer(api: Api) -> None:
    operation = api.doc["paths"]["/api/video/parse"]["post"]
    assert operation["security"] == [{"bearer": []}]
    assert set(operation["responses"]) == {
        "200",
        "400",
        "401",
        "402",
        "403",
        "405",
        "408",
        "413",
        "429",
        "500",
    }
    admin = api.doc["paths"]["/api/admin/tokens"]["post"]
    assert admin["security"] == [{"adminBearer": []}] and "409" in admin["responses"]
    assert api.doc["paths"]["/api/job/{job_id}"]["get"]["security"] == []
    assert api.doc["components"]["responses"]["E401"]["headers"]["WWW-Authenticate"]["required"] is True


def _examples(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every media type object with examples in the document: (where, media object)."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "schema" in node and "examples" in node:
            found.append((path, node))
        for key, value in node.items():
            found += _examples(value, f"{path}/{key}")
    return found


async def test_the_vendor_examples_are_examples_and_fit_their_schemas(api: Api) -> None:
    media = _examples(api.doc["paths"]) + _examples(api.doc["components"]["responses"])
    assert len(media) >= 20
    for where, item in media:
        validator = _validator(api.doc, item["schema"])
        for name, example in item["examples"].items():
            errors = [error.message for error in validator.iter_errors(example["value"])]
            assert errors == [], f"{where} example {name}: {errors}"
    text = json.dumps(api.doc)
    for vendor in (
        "Job queued. Poll GET /api/job/:jobId for result.",
        "Job queued. Poll GET /api/job/:jobId for download URL.",
        "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "c3d4e5f6-a7b8-9012-cdef-234567890123",
        "Could not extract video ID from URL",
        "2026-03-30T09:00:00.000Z",
        json.dumps(MISSING_TOKEN)[1:-1],
        insufficient_credits(10, 0),
        BANNED,
    ):
        assert vendor in text, vendor


# --------------------------------------------------------------------------- request models


_CHANNEL = SubmitContext("douyin", frozenset({"user", "short"}), "Asia/Shanghai")


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (ChannelSubmit, {"count": 0}, 'Missing "url" in the JSON body.'),
        (ChannelSubmit, {"url": None}, 'Missing "url" in the JSON body.'),
        (ChannelSubmit, {"url": 5, "count": 0}, '"url" must be a string, not int.'),
        (ChannelSubmit, {"url": " ", "count": 0}, '"url" is empty.'),
        (ChannelSubmit, {"url": DOUYIN_VIDEO, "count": 0}, "This is a video URL; use POST /api/video/parse"),
        (ChannelSubmit, {"url": DOUYIN_PROFILE, "tz": "Mars/Base", "since": "x"}, "unknown time zone"),
        (ChannelSubmit, {"url": DOUYIN_PROFILE, "since": "x", "count": 0}, '"since" must be "today"'),
        (
            ChannelSubmit,
            {"url": DOUYIN_PROFILE, "count": True},
            '"count" must be a whole number from 1 to 500.',
        ),
        (CreateToken, {"credits": 5}, '"name" must be a string of 1 to 100 printable characters.'),
        (
            CreateToken,
            {"name": "x", "credits": 3e9},
            '"credits" must be a whole number from 0 to 2147483647,',
        ),
        (TopUp, {}, '"amount" must be a whole number from -2147483647 to 2147483647, not None.'),
    ],
)
def test_bodies_fail_with_the_first_check_that_always_failed_first(
    model: type[RequestBody], body: dict[str, Any], message: str
) -> None:
    """The models keep the checks' order and words (url, then tz, since, count; name, then credits)."""
    with pytest.raises(ApiError) as failed:
        validate_body(model, body, context=_CHANNEL)
    assert failed.value.status_code == 400 and failed.value.message.startswith(message)


def test_a_valid_channel_body_gives_the_options_the_job_stores() -> None:
    body = validate_body(
        ChannelSubmit,
        {"url": " " + DOUYIN_PROFILE, "since": "Today", "count": 7, "refresh": True, "other": 1},
        context=_CHANNEL,
    )
    assert body.url.canonical_url == DOUYIN_PROFILE and body.raw["other"] == 1
    options = body.options()
    assert options["count"] == 7 and options["tz"] == "Asia/Shanghai" and options["refresh"] is True
    assert options["since_input"] == "Today" and options["since"].endswith("T16:00:00+00:00")
    unlimited = validate_body(CreateToken, {"name": " ops ", "unlimited": True, "admin": "yes"})
    assert (unlimited.name, unlimited.credits, unlimited.unlimited, unlimited.admin) == (
        "ops",
        0,
        True,
        False,
    )


# --------------------------------------------------------------------------- answers fit the document


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> OAS31Validator:
    return OAS31Validator({**schema, "components": doc["components"]})


def _response_spec(doc: dict[str, Any], method: str, template: str, status: int) -> dict[str, Any]:
    responses = doc["paths"][template][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {template} answered an undocumented {status}"
    spec: dict[str, Any] = responses[str(status)]
    if "$ref" in spec:
        spec = doc["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    return spec


async def _check(api: Api, response: ClientResponse, template: str, *, method: str | None = None) -> Any:
    """The answer's status is documented for the route and its JSON body fits the schema.

    ``method``: the documented operation whose answers apply (a 405 to PUT is the GET's 405)."""
    spec = _response_spec(api.doc, method or response.method, template, response.status)
    body = await response.read()
    for header, declared in spec.get("headers", {}).items():
        if "$ref" in declared:
            declared = api.doc["components"]["headers"][declared["$ref"].rsplit("/", 1)[1]]
        if declared.get("required"):
            assert header in response.headers, f"{template} {response.status} lacks {header}"
    if response.content_type != "application/json":
        return body
    payload = json.loads(body)
    _validator(api.doc, spec["content"]["application/json"]["schema"]).validate(payload)
    return payload


def _video(platform: str = "douyin", **changes: Any) -> Video:
    fields: dict[str, Any] = {
        "video_id": "7071967230287744267",
        "title": "标题 <b>and</b> text",
        "author": Author(nickname="someone", uid="1", sec_uid="MS4wLjABAAAAx", unique_id="some1"),
        "cover_url": "https://p3-sign.douyinpic.com/cover.jpeg",
        "download_url": "https://v3-web.douyinvod.com/play.mp4",
        "duration": 15,
        "create_time": "2026-04-02T10:00:00.000Z",
        "statistics": Statistics(likes=1000, comments=50, shares=10, plays=9000, collects=3),
        "platform": platform,
        "music": Music(title="a song", author="a singer", url="https://sf3.douyinvod.com/a.mp3", duration=30),
        "width": 1080,
        "height": 1920,
        "watermark": False,
    }
    fields.update(changes)
    fields.setdefault("share_url", f"https://www.{platform}.com/video/{fields['video_id']}")
    return Video(**fields)


async def _stored_file(api: Api, job_id: str) -> Any:
    files = api.client.app[FILES]
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(1000)
    target = files.target(platform="douyin", author="some1", item_id="7071967230287744267", name="video.mp4")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    done = Downloaded(
        target, len(data), hashlib.sha256(data).hexdigest(), "video/mp4", "https://v3-web.douyinvod.com/a"
    )
    return await files.register(
        done, platform="douyin", item_id="7071967230287744267", role="video", job_id=job_id
    )


async def _submit(api: Api, path: str, body: dict[str, Any]) -> str:
    response = await api.client.post(path, json=body, headers=api.auth())
    data = (await _check(api, response, path))["data"]
    return str(data.get("jobId") or data["taskId"])


async def test_jobs_in_every_state_fit_the_document(api: Api) -> None:
    queue = api.client.app[QUEUE]
    photo = _video(
        media_type="photo",
        images=[Image(url="https://p3-sign.douyinpic.com/1.jpeg", width=1080, height=1440)],
        download_url=None,
        duration=0,
        create_time=None,
        missing=["create_time"],
    )
    listing = {
        "author": _video().author.model_dump(mode="json"),
        "videos": [_video().to_result(), photo.to_result()],
        "count": 2,
        "has_more": True,
    }
    results: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("/api/video/parse", {"url": DOUYIN_VIDEO}, _video().to_result()),
        ("/api/tiktok/video/parse", {"url": TIKTOK_VIDEO}, shared_result(_video("tiktok").to_result())),
        ("/api/video/parse", {"url": "https://v.douyin.com/iRNBho6u/"}, photo.to_result()),
        ("/api/channel/videos", {"url": DOUYIN_PROFILE, "since": "today"}, listing),
        ("/api/channel/download", {"url": DOUYIN_PROFILE, "count": 2}, {"total": 2, "done": 1, "failed": 1}),
        ("/api/video/download", {"url": DOUYIN_VIDEO}, {}),
    ]
    seen: set[str] = set()
    for path, body, result in results:
        job_id = await _submit(api, path, body)
        view = (await _check(api, await api.client.get(f"/api/job/{job_id}"), "/api/job/{job_id}"))["data"]
        assert view["state"] == "waiting"
        claimed = await queue.claim("w")
        assert claimed is not None and claimed.id == job_id
        active = await api.client.get(f"/api/job/{job_id}")
        assert (await _check(api, active, "/api/job/{job_id}"))["data"]["state"] == "active"
        if path == "/api/video/download":  # a real stored file in a download result
            result = download_result(_video(), [await _stored_file(api, job_id)])
        await queue.complete(job_id, "w", result)
        done = await _check(api, await api.client.get(f"/api/job/{job_id}"), "/api/job/{job_id}")
        seen.add(done["data"]["state"])
    job_id = await _submit(api, "/api/tiktok/video/download", {"url": TIKTOK_VIDEO})
    await queue.claim("w")
    await queue.retry_later(
        job_id, "w", error="Blocked by the platform: captcha", code="blocked", delay=timedelta(0)
    )
    delayed = await _check(api, await api.client.get(f"/api/job/{job_id}"), "/api/job/{job_id}")
    assert delayed["data"]["state"] == "delayed" and delayed["data"]["last_error"]
    await queue.claim("w")
    await queue.fail(job_id, "w", error="Video not found: the video was deleted", code="not_found")
    failed = await _check(api, await api.client.get(f"/api/job/{job_id}"), "/api/job/{job_id}")
    assert failed["data"] == {
        "id": job_id,
        "state": "failed",
        "error": "Video not found: the video was deleted",
    }
    assert seen == {"completed"}


async def test_tasks_and_files_fit_the_document(api: Api) -> None:
    task_id = await _submit(api, "/api/channel/download", {"url": DOUYIN_PROFILE, "count": 2})
    started = await _check(api, await api.client.get(f"/api/task/{task_id}"), "/api/task/{task_id}")
    assert started["data"]["status"] == "started"
    tasks = api.client.app[TASKS]
    items = await tasks.add_items(
        task_id, [_video().to_result(), _video(video_id="7071967230287744268").to_result()]
    )
    row = await _stored_file(api, task_id)
    assert items[0].id is not None and items[1].id is not None
    await tasks.finish_item(items[0].id, state="done", size=row.size, file_ids=[row.id])
    await tasks.finish_item(items[1].id, state="failed", error="Video not found: gone")
    running = await _check(api, await api.client.get(f"/api/task/{task_id}"), "/api/task/{task_id}")
    assert running["data"]["items"][0]["download_url"].endswith(f"/api/files/{row.id}")
    file_path = "/api/files/{file_id}"
    whole = await api.client.get(f"/api/files/{row.id}")
    assert whole.status == 200 and len(await _check(api, whole, file_path)) == row.size
    part = await api.client.get(f"/api/files/{row.id}", headers={"Range": "bytes=0-9"})
    assert part.status == 206 and len(await _check(api, part, file_path)) == 10
    outside = await api.client.get(f"/api/files/{row.id}", headers={"Range": "bytes=999999-"})
    assert outside.status == 416
    await _check(api, outside, file_path)
    head = await api.client.head(f"/api/files/{row.id}")
    assert head.status == 200
    await _check(api, head, file_path)
    await _check(api, await api.client.get(f"/api/files/{uuid.uuid4()}"), file_path)
    await _check(api, await api.client.get("/api/task/nope"), "/api/task/{task_id}")


async def test_health_admin_and_errors_fit_the_document(api: Api) -> None:
    client = api.client
    await _check(api, await client.get("/api/health"), "/api/health")
    await _check(api, await client.get("/api/admin/tokens", headers=api.auth(api.admin)), "/api/admin/tokens")
    created = await client.post(
        "/api/admin/tokens", json={"name": "bob", "credits": 4}, headers=api.auth(api.admin)
    )
    bob = (await _check(api, created, "/api/admin/tokens"))["data"]
    ref = "/api/admin/tokens/{ref}"
    for action, body in (("topup", {"amount": 2}), ("ban", None), ("unban", None)):
        answer = await client.post(
            f"/api/admin/tokens/{bob['id']}/{action}", json=body, headers=api.auth(api.admin)
        )
        assert answer.status == 200
        await _check(api, answer, f"{ref}/{action}")
    await _check(
        api, await client.get("/api/admin/sessions", headers=api.auth(api.admin)), "/api/admin/sessions"
    )
    errors: list[tuple[ClientResponse, str, int]] = [
        (await client.post("/api/video/parse", json={"url": DOUYIN_VIDEO}), "/api/video/parse", 401),
        (await client.post("/api/video/parse", data=b"{", headers=api.auth()), "/api/video/parse", 400),
        (
            await client.post("/api/video/parse", json={"url": DOUYIN_VIDEO}, headers=api.auth(bob["token"])),
            "/api/video/parse",
            402,
        ),
        (
            await client.post(
                "/api/channel/videos", json={"url": DOUYIN_PROFILE, "count": 0}, headers=api.auth()
            ),
            "/api/channel/videos",
            400,
        ),
        (
            await client.post("/api/video/parse", json={"url": "x" * 20000}, headers=api.auth()),
            "/api/video/parse",
            413,
        ),
        (await client.get("/api/job/00000000-0000-0000-0000-000000000000"), "/api/job/{job_id}", 404),
        (await client.put("/api/job/x"), "/api/job/{job_id}", 405),
        (await client.get("/api/admin/tokens", headers=api.auth()), "/api/admin/tokens", 403),
        (
            await client.post(
                "/api/admin/tokens", json={"name": "bob", "credits": 1}, headers=api.auth(api.admin)
            ),
            "/api/admin/tokens",
            409,
        ),
        (await client.post("/api/admin/tokens/nobody/ban", headers=api.auth(api.admin)), f"{ref}/ban", 404),
        (await client.get("/metrics", headers=api.auth()), "/metrics", 403),
        (await client.get("/docs/nothing.js"), "/docs/{asset}", 404),
    ]
    for response, template, status in errors:
        assert response.status == status, (template, status, await response.text())
        await _check(api, response, template, method="GET" if response.method == "PUT" else None)
    metrics = await client.get("/metrics", headers=api.auth(api.admin))
    assert metrics.status == 200
    await _check(api, metrics, "/metrics")


async def test_every_operation_has_an_entry_with_a_unique_id(api: Api) -> None:
    ids = [op.operation_id for op in OPERATIONS.values()]
    assert len(ids) == len(set(ids))
    for item in api.doc["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in ids


# --------------------------------------------------------------------------- the docs page, offline


@pytest.mark.browser
async def test_docs_page_renders_offline_with_the_vendor_routes(api: Api, tmp_path: Path) -> None:
    page_response = await api.client.get("/docs")
    assert (
        page_response.status == 200
        and "script-src 'self'" in page_response.headers["Content-Security-Policy"]
    )
    base = str(api.client.make_url("/docs"))
    outside: list[str] = []
    problems: list[str] = []
    async with bare_chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 2000})

        async def only_loopback(route: Any) -> None:
            host = urlsplit(route.request.url).hostname
            if route.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
                await route.continue_()
            else:
                outside.append(route.request.url)
                await route.abort()

        await context.route("**/*", only_loopback)
        page = await context.new_page()
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        await page.goto(base)
        await page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = [
            text.replace("\u200b", "")
            for text in await page.locator(".opblock-summary-path").all_inner_texts()
        ]
        title = await page.locator(".info .title").inner_text()
        shot = tmp_path / "docs.png"
        await page.screenshot(path=str(shot), full_page=True)
        await context.close()
    for vendor in ("/api/video/parse", "/api/tiktok/video/parse", "/api/channel/videos", "/api/job/{job_id}"):
        assert vendor in paths
    assert len(paths) == sum(len(item) for item in api.doc["paths"].values())
    assert "shortvid" in title
    assert outside == [], "the docs page asked for something off this machine"
    assert problems == [], problems
    assert shot.stat().st_size > 10_000
