"""Bounds on credit amounts, checked once for the API, the CLI and the store.

A balance, grant or top-up is at most 2^31-1, so it fits the 32-bit integers
of any client, while the columns are 64-bit: a refund landing on a balance
that a top-up has just filled to the cap can exceed it without overflowing,
whatever the order of concurrent charges, refunds and top-ups.
"""

from __future__ import annotations

#: The largest balance a grant or top-up may reach.
MAX_CREDITS = 2**31 - 1


class CreditsOutOfRange(ValueError):
    """A credit amount outside what a token may hold (HTTP 400, CLI exit 2)."""


def check_credits(value: object, what: str, *, allow_negative: bool = False) -> int:
    """``value`` if it is a whole number within the bounds, else ``CreditsOutOfRange`` saying the range."""
    low = -MAX_CREDITS if allow_negative else 0
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_CREDITS:
        raise CreditsOutOfRange(f"{what} must be a whole number from {low} to {MAX_CREDITS}, not {value!r}")
    return value
