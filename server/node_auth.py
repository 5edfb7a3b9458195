"""Node-to-node authentication for the internal file route: an HMAC of the request under the
secret every node shares (``SHORTVID_NODE_SECRET``).

Why signed and not the secret itself in a header: the secret never crosses the wire, and a signature
names its method, path and second, so one seen in a log or a proxy's capture opens nothing else and
is dead a minute later.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

#: The request header carrying ``<unix seconds>.<hex HMAC-SHA256>``.
HEADER = "X-Shortvid-Node-Auth"
#: How far a signature's clock may be from ours (the nodes' clocks and the request's time in flight).
MAX_SKEW_SECONDS = 60
_FORM = re.compile(r"([0-9]{1,12})\.([0-9a-f]{64})")


def _mac(secret: bytes, method: str, path: str, stamp: int) -> str:
    message = f"shortvid node v1\n{method.upper()}\n{path}\n{stamp}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, method: str, path: str, *, now: float | None = None) -> str:
    """The header value for ``method path`` sent now."""
    stamp = int(time.time() if now is None else now)
    return f"{stamp}.{_mac(secret, method, path, stamp)}"


def verify(secret: bytes, method: str, path: str, value: str | None, *, now: float | None = None) -> bool:
    """Whether ``value`` signs exactly ``method path`` with ``secret``, within the allowed skew."""
    match = _FORM.fullmatch(value or "")
    if match is None:
        return False
    stamp = int(match.group(1))
    if abs((time.time() if now is None else now) - stamp) > MAX_SKEW_SECONDS:
        return False
    return hmac.compare_digest(_mac(secret, method, path, stamp), match.group(2))
