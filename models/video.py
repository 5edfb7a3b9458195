"""The API result shapes: one ``Video`` for both platforms.

The vendor's keys come first and are never removed; the keys marked *ours* in
vendor-api.md are extras a vendor client simply ignores.

Only ``video_id`` (and ``platform``) is required of a post: everything else
can be absent from what the platform sent, and one absent field must not cost
the whole item. An absent field is ``null`` (or the vendor type's empty value:
``""``, ``0``) and its name is listed in ``missing``, so "0 likes" and "likes not
sent" stay distinguishable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def iso_utc_ms(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, the vendor's timestamp format."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Author(_Shape):
    nickname: str = ""
    uid: str | None = None
    sec_uid: str | None = None
    unique_id: str | None = None
    avatar_url: str | None = None


class Statistics(_Shape):
    likes: int = 0
    comments: int = 0
    shares: int = 0
    plays: int | None = None
    collects: int | None = None


class Music(_Shape):
    title: str | None = None
    author: str | None = None
    url: str | None = None
    duration: int | None = None


class Image(_Shape):
    url: str
    width: int | None = None
    height: int | None = None


class Video(_Shape):
    """A normalized video or photo post, as returned in a job result."""

    video_id: str
    title: str = ""
    author: Author = Field(default_factory=Author)
    cover_url: str | None = None
    download_url: str | None = None
    duration: int = 0
    create_time: str | None  # null when the platform did not send it (older Douyin lists)
    statistics: Statistics = Field(default_factory=Statistics)
    # ours
    platform: Literal["douyin", "tiktok"]
    media_type: Literal["video", "photo"] = "video"
    share_url: str | None = None
    music: Music | None = None
    images: list[Image] | None = None
    width: int | None = None
    height: int | None = None
    download_url_expires_at: str | None = None
    watermark: bool | None = None
    is_pinned: bool = False
    #: Result fields the platform did not send, in field order (``"statistics.likes"`` for one
    #: counter); empty when the post is complete. Photo posts have no ``download_url`` or
    #: ``duration`` by nature, so those are never listed for them.
    missing: list[str] = Field(default_factory=list)

    def to_result(self) -> dict[str, object]:
        """The JSON-ready dict stored as a job result."""
        return self.model_dump(mode="json")
