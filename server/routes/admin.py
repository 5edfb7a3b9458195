"""Admin routes (ours): manage tokens over HTTP with an admin token, like ``shortvid token``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth import authenticate
from server.body import parse_body
from server.credits import CreditsOutOfRange
from server.error_map import ApiError, bad_request
from server.keys import POOL, REGISTRY, TOKENS
from server.schemas import CreateToken, TopUp
from server.tokens import TokenInfo, TokenNameTaken

ADMIN_ONLY = "Forbidden: this route needs an admin token."


async def _admin(request: web.Request) -> None:
    if not (await authenticate(request)).is_admin:
        raise ApiError(403, ADMIN_ONLY)


async def _target(request: web.Request) -> TokenInfo:
    info = await request.app[TOKENS].find(request.match_info["ref"])
    if info is None:
        raise ApiError(404, "Token not found")
    return info


def _ok(data: object) -> web.Response:
    return web.json_response({"success": True, "data": data})


async def list_tokens(request: web.Request) -> web.Response:
    await _admin(request)
    return _ok([t.to_json() for t in await request.app[TOKENS].list()])


async def create_token(request: web.Request) -> web.Response:
    await _admin(request)
    body = await parse_body(request, CreateToken)
    try:
        token, info = await request.app[TOKENS].create(
            name=body.name, credits=body.credits, unlimited=body.unlimited, admin=body.admin
        )
    except TokenNameTaken as exc:
        raise ApiError(409, f"Conflict: {exc}.") from exc
    return _ok({"token": token, **info.to_json()})


async def topup(request: web.Request) -> web.Response:
    await _admin(request)
    target = await _target(request)
    amount = (await parse_body(request, TopUp)).amount
    try:
        info = await request.app[TOKENS].topup(target.id, amount)
    except CreditsOutOfRange as exc:
        raise bad_request(f"{exc}.") from exc
    except LookupError as exc:
        raise ApiError(404, "Token not found") from exc
    return _ok(info.to_json())


def set_banned(banned: bool) -> Any:
    async def handler(request: web.Request) -> web.Response:
        await _admin(request)
        target = await _target(request)
        return _ok((await request.app[TOKENS].set_banned(target.id, banned)).to_json())

    return handler


async def rotate_webhook_secret(request: web.Request) -> web.Response:
    """A new callback signing secret for the token, shown in this answer only (the old one stops
    signing at once): for tokens made before callbacks existed, or a secret that leaked."""
    await _admin(request)
    target = await _target(request)
    try:
        secret = await request.app[TOKENS].rotate_webhook_secret(target.id)
    except LookupError as exc:
        raise ApiError(404, "Token not found") from exc
    return _ok({"id": target.id, "name": target.name, "webhook_secret": secret})


async def sessions(request: web.Request) -> web.Response:
    """Every browser session of this node: identity, state, score, cooldown, uses, age."""
    await _admin(request)
    if POOL not in request.app:
        raise ApiError(404, "This node runs no browser pool (role api).")
    return _ok(request.app[POOL].census())


async def nodes(request: web.Request) -> web.Response:
    """The node registry (every node on this database), with the files each holds."""
    await _admin(request)
    return _ok([node.to_json() for node in await request.app[REGISTRY].all()])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/admin/nodes", nodes)
    app.router.add_get("/api/admin/sessions", sessions)
    app.router.add_get("/api/admin/tokens", list_tokens)
    app.router.add_post("/api/admin/tokens", create_token)
    app.router.add_post("/api/admin/tokens/{ref}/topup", topup)
    app.router.add_post("/api/admin/tokens/{ref}/ban", set_banned(True))
    app.router.add_post("/api/admin/tokens/{ref}/unban", set_banned(False))
    app.router.add_post("/api/admin/tokens/{ref}/webhook-secret", rotate_webhook_secret)
