"""Brute force on panel logins: locked usernames and addresses are refused unchecked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from cpo.models import AuditEvent
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]
LOCKED = "Too many failed logins"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.LOGIN_MAX_FAILURES = 5
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 20
    settings.LOGIN_LOCKOUT_SECONDS = 900
    settings.PANEL_TRUST_X_FORWARDED_FOR = False


def _login(client: Client, username: str, password: str, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def _fail(client: Client, username: str, times: int, **extra) -> None:
    for _ in range(times):
        response = _login(client, username, "wrong-password", **extra)
        assert response.status_code == 200
        assert LOCKED not in response.content.decode()


def _logged_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def test_the_right_password_works_after_fewer_failures_than_the_limit(client, alice):
    _fail(client, "alice", 4)

    response = _login(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert _logged_in(client)


def test_after_five_failures_even_the_right_password_is_refused(client, alice):
    _fail(client, "alice", 5)

    response = _login(client, "alice", PASSWORD)

    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert not _logged_in(client)


def test_a_locked_login_does_not_check_the_password(client, alice):
    _fail(client, "alice", 5)

    with mock.patch("django.contrib.auth.forms.authenticate") as authenticate:
        response = _login(client, "alice", PASSWORD)

    assert response.status_code == 429
    authenticate.assert_not_called()


def test_the_lock_is_per_username(client, alice, bob):
    _fail(client, "alice", 5)

    response = _login(client, "bob", PASSWORD)

    assert response.status_code == 302
    assert _logged_in(client)


def test_the_lock_ignores_the_case_of_the_username(client, alice):
    _fail(client, "ALICE", 3)
    _fail(client, "Alice", 2)

    assert _login(client, "alice", PASSWORD).status_code == 429


def test_the_lock_ends_when_the_window_has_passed(client, alice, monkeypatch):
    _fail(client, "alice", 5)
    assert _login(client, "alice", PASSWORD).status_code == 429

    later = time.time() + 901
    monkeypatch.setattr(time, "time", lambda: later)
    response = _login(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert _logged_in(client)


def test_the_message_says_how_long_to_wait(client, alice):
    _fail(client, "alice", 5)

    response = _login(client, "alice", PASSWORD)

    assert "for the next 15 minutes" in response.content.decode()


def test_a_successful_login_resets_the_username_count(client, alice):
    _fail(client, "alice", 4)
    assert _login(client, "alice", PASSWORD).status_code == 302
    client.post(reverse("logout"))

    _fail(client, "alice", 4)
    response = _login(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert _logged_in(client)


def test_failures_from_one_address_lock_every_username_from_it(client, alice, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 6
    for name in ("ann", "ben", "cid", "dan", "eve", "fay"):
        _fail(client, name, 1, REMOTE_ADDR="203.0.113.7")

    from_there = _login(client, "alice", PASSWORD, REMOTE_ADDR="203.0.113.7")
    from_elsewhere = _login(Client(), "alice", PASSWORD, REMOTE_ADDR="198.51.100.1")

    assert from_there.status_code == 429
    assert from_elsewhere.status_code == 302


def test_a_forged_forwarded_for_header_does_not_escape_the_address_lock(client, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    for n in range(3):
        _fail(client, f"user{n}", 1, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    response = _login(client, "user9", "x", HTTP_X_FORWARDED_FOR="192.0.2.99")

    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(client, alice, settings):
    settings.PANEL_TRUST_X_FORWARDED_FOR = True
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for n in range(3):
        _fail(client, f"user{n}", 1, HTTP_X_FORWARDED_FOR="forged, 203.0.113.7", **proxy)

    attacker = _login(client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    someone_else = _login(Client(), "alice", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1", **proxy)

    assert attacker.status_code == 429
    assert someone_else.status_code == 302


def test_the_admin_login_is_throttled_too(client, root):
    url = reverse("admin:login")
    for _ in range(5):
        client.post(url, {"username": "root", "password": "wrong-password"})

    response = client.post(url, {"username": "root", "password": PASSWORD})

    assert LOCKED in response.content.decode()
    assert not _logged_in(client)


def test_a_lock_is_written_to_the_audit_log_once(client, alice):
    _fail(client, "alice", 5)
    _login(client, "alice", PASSWORD)
    _login(client, "alice", PASSWORD)

    locks = AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_LOCKED)
    assert [(e.username, e.target) for e in locks] == [("alice", "user")]
    # Refused attempts are not checked, so they are no failed logins either.
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED).count() == 5


def _settings_in_subprocess(**env) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.CACHES['default']))"
    )
    environment = {
        k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(DJANGO_SETTINGS_MODULE="virta.settings", SECRET_KEY="t", **env)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_with_redis_the_counters_live_in_the_shared_redis_cache():
    cache = _settings_in_subprocess(REDIS_URL="redis://127.0.0.1:6379/10")

    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == "redis://127.0.0.1:6379/10"


def test_without_redis_the_counters_live_in_process_memory():
    cache = _settings_in_subprocess()

    assert cache["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_a_lock_in_redis_is_seen_by_a_fresh_cache_connection(client, alice, settings):
    """Two processes share the lock: a new connection to the same Redis sees it."""
    redis_cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["REDIS_URL"],
        # Unique per run: nothing left from an earlier run, nothing left for the next.
        "KEY_PREFIX": f"test-throttle-{os.getpid()}-{time.time_ns()}",
    }
    settings.CACHES = {"default": redis_cache}
    # The keys expire on their own soon after: no FLUSHDB on a database others may use.
    settings.LOGIN_LOCKOUT_SECONDS = 30
    _fail(client, "alice", 5)
    settings.CACHES = {"default": dict(redis_cache)}  # drops the cache connection

    response = _login(Client(), "alice", PASSWORD, REMOTE_ADDR="198.51.100.1")

    assert response.status_code == 429


def test_with_the_cache_down_logins_go_on_unthrottled_and_say_so(client, alice, settings, caplog):
    # Nothing listens on port 1: every cache call fails at once.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    _fail(client, "alice", 1)

    response = _login(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert "Login throttle: cache unreachable" in caplog.text
