"""A platform route: which page to load for an item, how to know it is ready, how to read it.

Douyin and TikTok differ only in these values (see ``scraper.douyin`` and
``scraper.tiktok``); ``scraper.service`` runs them with one mechanism.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.video import Video
from scraper.loader import Capture, LoadSpec
from scraper.urls import ParsedUrl


@dataclass(frozen=True, slots=True)
class ItemRoute:
    """One way to get an item: tried in order, the next one when the platform blocks this one."""

    name: str
    page_url: Callable[[ParsedUrl], str]
    spec: LoadSpec
    read: Callable[[Capture], dict[str, Any]]
    normalize: Callable[[dict[str, Any]], Video]
