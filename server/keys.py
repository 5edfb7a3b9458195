"""Typed application and request state (aiohttp ``AppKey`` / ``RequestKey``)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from scraper.pool import BrowserPool
from server.files import FileStore
from server.node import Node
from server.node_registry import NodeRegistry
from server.queue import JobQueue
from server.settings import Settings
from server.tasks import TaskStore
from server.tokens import TokenInfo, TokenStore

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
QUEUE = web.AppKey("queue", JobQueue)
TOKENS = web.AppKey("tokens", TokenStore)
POOL = web.AppKey("pool", BrowserPool)
WAKEUP = web.AppKey("wakeup", asyncio.Event)
FILES = web.AppKey("files", FileStore)
TASKS = web.AppKey("tasks", TaskStore)
NODE = web.AppKey("node", Node)
REGISTRY = web.AppKey("registry", NodeRegistry)
TOKEN = web.RequestKey("token", TokenInfo)
