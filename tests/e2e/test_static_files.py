"""Static files as production serves them: `collectstatic`, then daphne (WhiteNoise) serves
hashed names compressed and cached for a year."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import server_environment
from tests.e2e.servers import PROJECT_DIR, DaphneServer

pytestmark = pytest.mark.e2e

A_YEAR = 365 * 24 * 3600
PANEL_CSS = PROJECT_DIR / "static" / "css" / "panel.css"


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    """STATIC_ROOT after the deploy step `manage.py collectstatic --noinput`."""
    root = tmp_path_factory.mktemp("static-root")
    env = os.environ | {
        "DEBUG": "0",
        "SECRET_KEY": "e2e-test-secret",
        "STATIC_ROOT": str(root),
        "STATIC_MANIFEST": "1",
    }
    completed = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return root


@pytest.fixture
def production_server(transactional_db, static_root) -> Iterator[DaphneServer]:
    env = server_environment(STATIC_ROOT=str(static_root), STATIC_MANIFEST="1")
    with DaphneServer(env=env) as server:
        yield server


def fetch(url: str, **headers: str):
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers, response.read()


def test_a_hashed_static_file_is_served_compressed_and_cached_for_a_year(production_server):
    _, _, page = fetch(f"{production_server.http_url}/accounts/login/")
    # The page links the hashed name collectstatic wrote.
    match = re.search(r'href="(/static/css/panel\.[0-9a-f]{12}\.css)"', page.decode())
    assert match, "the login page does not link a hashed panel.css"

    status, headers, body = fetch(
        production_server.http_url + match[1], **{"Accept-Encoding": "gzip"}
    )

    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in headers["Vary"]
    assert headers["Content-Type"].startswith("text/css")
    cache = headers["Cache-Control"]
    assert "immutable" in cache and "public" in cache
    assert int(re.search(r"max-age=(\d+)", cache)[1]) >= A_YEAR
    assert gzip.decompress(body) == PANEL_CSS.read_bytes()


def test_an_unhashed_name_is_cached_briefly_and_plain_for_clients_without_gzip(
    production_server,
):
    status, headers, body = fetch(f"{production_server.http_url}/static/css/panel.css")

    assert status == 200
    assert "Content-Encoding" not in headers
    assert body == PANEL_CSS.read_bytes()
    assert int(re.search(r"max-age=(\d+)", headers["Cache-Control"])[1]) <= 3600
