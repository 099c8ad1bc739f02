"""End-to-end fixtures: real servers bound to the test database.

Run these tests on their own: `pytest -m e2e` (see the Makefile's `e2e` target).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from django.db import connection

from tests.e2e.servers import DaphneServer


def test_database_url() -> str:
    """A DATABASE_URL naming the test database this pytest run created (not the real one)."""
    db = connection.settings_dict
    engine = db["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise RuntimeError(
                "The SQLite test database is in memory; a server subprocess cannot open it. "
                'Set DATABASES["default"]["TEST"]["NAME"] to a file (virta/settings.py does).'
            )
        return f"sqlite:///{name}"
    if engine == "django.db.backends.postgresql":
        credentials = quote(db["USER"] or "", safe="")
        if db["PASSWORD"]:
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db["HOST"] or "127.0.0.1"
        port = f":{db['PORT']}" if db["PORT"] else ""
        return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"
    raise RuntimeError(f"No DATABASE_URL for {engine}")


def server_environment(**extra: str) -> dict[str, str]:
    """What a server subprocess needs: the test database and production-like settings."""
    env = {
        "DATABASE_URL": test_database_url(),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "e2e-test-secret",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        # The log and last_seen reach the database quickly, so tests can check them.
        "OCPP_LOG_FLUSH_INTERVAL": "0.05",
        # Static files from static/, no collectstatic (tests/e2e/test_static_files.py
        # collects and serves them as production does).
        "STATIC_MANIFEST": "0",
    }
    # The server keeps Django's async-safety checks, whatever the browser tests allow here.
    env["DJANGO_ALLOW_ASYNC_UNSAFE"] = ""
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    return env | extra


@pytest.fixture
def daphne_env() -> dict[str, str]:
    """Extra environment for `daphne_server`; override or update it in a test module."""
    return {}


@pytest.fixture
def daphne_server(transactional_db, daphne_env: dict[str, str]) -> Iterator[DaphneServer]:
    """A started daphne serving `virta.asgi:application` on the test database.

    Needs `transactional_db`: the server writes from another process, so data must be
    committed to be seen either way. It stops before the tables are flushed.
    """
    server = DaphneServer(env=server_environment(**daphne_env))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        # Captured: pytest shows the server's log beside a failing test.
        print(f"--- daphne log ({server.http_url}) ---\n{server.log_text()[-20000:]}")
        server.close()
