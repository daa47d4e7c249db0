"""The web UI: pages rendered on the server from the SDK's own operations, served by
``cauce server`` under ``/ui`` (``/w/NAME/ui`` for a named workspace) and by ``cauce ui``.

Templates are Jinja2; htmx swaps parts of a page (the runs table as its filter changes) and
uPlot draws the charts. Every asset ships in the package (``static/vendor``, each with its
licence): nothing is fetched at run time, and nothing is built.

A page is a thin shell, like a REST route: it checks the principal's role, then calls SDK
operations in a worker thread with the request's workspace current and the principal acting.
A viewer sees no write buttons, and the operations refuse the writes anyway.

In a browser the API token travels in a cookie set by ``/ui/login`` (HttpOnly, SameSite=Strict);
a write sent with that cookie must also carry htmx's ``HX-Request`` header, which a form on
another site cannot send (CORS stays closed), so that another site cannot write in the user's
name.
"""

from __future__ import annotations

from cauce.server.ui.pages import DATA, STATIC_PREFIX, TOKEN_COOKIE, add_routes

__all__ = ["DATA", "STATIC_PREFIX", "TOKEN_COOKIE", "add_routes"]
