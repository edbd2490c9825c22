"""The WSGI entry point for servers run by hand: ``gunicorn 'dashboard.wsgi:application'``.

``dashboard serve`` does the same programmatically (dashboard.cli). Importing this module builds the app
from the environment (DASHBOARD_* variables), so let each worker import it (no ``--preload``): every worker
then opens its own database engines after the fork.
"""

from __future__ import annotations

from flask import Flask

from dashboard.app import create_app

application: Flask = create_app()
app = application  # the name some servers look for
