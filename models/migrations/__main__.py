"""``python -m models.migrations <command>``: the alembic command line on the in-package config.

The database is ``-x url=...``, else ``SHORTVID_DATABASE_URL``, else SQLite in ``SHORTVID_DATA_DIR``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from alembic.config import CommandLine

from models.migrations import alembic_config


def main(argv: Sequence[str] | None = None) -> None:
    cli = CommandLine(prog="python -m models.migrations")
    options = cli.parser.parse_args(argv)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    config = alembic_config()
    config.cmd_opts = options
    cli.run_cmd(config, options)


if __name__ == "__main__":
    main(sys.argv[1:])
