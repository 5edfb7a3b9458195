"""The README's table of server settings, written from ``server.settings.Settings``.

Why generated: a hand-kept table drifts (a renamed variable, a changed default). ``--write`` rewrites
the block between the markers; ``--check`` (and ``tests/test_settings.py``) fails while they differ.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from pydantic.fields import FieldInfo

from server.settings import Settings, env_name

START = (
    "<!-- settings table: written by `python -m server.settings_table --write` from server/settings.py -->"
)
END = "<!-- end of settings table -->"
README = Path(__file__).resolve().parents[1] / "README.md"


def shown_default(field: FieldInfo) -> str:
    """The default as a person reads it: ``90`` s, off, ``./data``."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("shown_default"), str):
        return str(extra["shown_default"])
    value = field.default
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return f"`{int(seconds) if seconds.is_integer() else seconds}` s"
    if isinstance(value, Path):
        return f"`./{value}`"
    if value is None or value == "":
        return "unset"
    return f"`{value}`"


def table() -> str:
    """Markdown rows, one per setting; neighbours with one description share a row (the credit prices)."""
    rows: list[tuple[list[str], list[str], str]] = []
    for name, field in Settings.model_fields.items():
        description = field.description or ""
        if rows and rows[-1][2] == description:
            rows[-1][0].append(f"`{env_name(name)}`")
            rows[-1][1].append(shown_default(field))
            continue
        rows.append(([f"`{env_name(name)}`"], [shown_default(field)], description))
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for names, defaults, description in rows:
        shown = defaults[0] if len(set(defaults)) == 1 else " / ".join(defaults)
        lines.append(f"| {' / '.join(names)} | {shown} | {description} |")
    return "\n".join(lines)


def block() -> str:
    return f"{START}\n{table()}\n{END}"


def current_block(text: str) -> str | None:
    """The README's block as it stands, or None when its markers are missing."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(END)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the README's table")
    parser.add_argument("--readme", type=Path, default=README, help="the README to read or write")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    found = current_block(text)
    if found is None:
        print(f"{args.readme}: the settings table's markers are missing", file=sys.stderr)
        return 2
    if found == block():
        return 0
    if args.write:
        args.readme.write_text(text.replace(found, block()))
        return 0
    print(f"{args.readme}: the settings table is out of date; run python -m server.settings_table --write")
    return 1


if __name__ == "__main__":
    sys.exit(main())
