"""Issue 11 point 6, the panel half, through the real server (daphne): a hostile query
string gets a 400/404, never a 500, and every page carries the Content-Security-Policy."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.e2e


def fetch(url: str) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Host": "127.0.0.1"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/stations/?page=99999999999999999999", 404),
        ("/stations/?q=%00", 400),
        ("/accounts/login/?next=%00", 400),
        ("/api/stations/00000000-0000-4000-8000-000000000000/", 404),
    ],
)
def test_hostile_queries_get_a_client_error_through_daphne(daphne_server, path, expected):
    status, _ = fetch(daphne_server.http_url + path)

    assert status == expected


def test_pages_carry_the_content_security_policy_through_daphne(daphne_server):
    status, headers = fetch(daphne_server.http_url + "/accounts/login/")

    assert status == 200
    policy = headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
