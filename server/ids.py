"""The shape of the ids we hand out (jobs, tasks, files: ``uuid4`` in lower-case text)."""

from __future__ import annotations

import re

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_our_id(text: str) -> bool:
    """Whether ``text`` can be one of our ids: checked before a lookup, so junk never reaches SQL."""
    return _UUID.fullmatch(text) is not None
