"""The schema's Alembic environment, shipped inside the package so no ``alembic.ini`` is needed.

``models.db.create_schema`` upgrades to head on start; developers use ``python -m models.migrations``
(the alembic command line with this configuration) to write new revisions.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import Connection

SCRIPT_LOCATION = Path(__file__).resolve().parent

#: The revision that is the schema ``SQLModel.metadata.create_all`` made before migrations existed.
BASELINE = "0001"
BASELINE_TABLES = frozenset({"api_tokens", "jobs", "stored_files", "download_items"})


def alembic_config(connection: Connection | None = None) -> Config:
    """A config built in code; with ``connection`` the env runs on it (inside the caller's transaction)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config
