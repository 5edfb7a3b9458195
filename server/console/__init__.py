"""The web console: server-rendered pages under ``/console`` for people running a shortvid node.

Sign in with a token, paste a link and watch its job, browse jobs and channel downloads, and (with
an admin token) manage tokens and watch the browser pool. No build step and no third-party
requests: templates and static files ship in this package.
"""

from __future__ import annotations

from server.console.routes import add_routes

__all__ = ["add_routes"]
