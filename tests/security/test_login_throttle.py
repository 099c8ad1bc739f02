"""Brute force on panel logins: locked usernames and addresses are refused unchecked."""

from __future__ import annotations

import io
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
from tests.e2e.conftest import test_database_url as database_of_this_run
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


# ---- the last attempt's warning, unlocking ------------------------------------------------

WARNING = "One more failed login will lock logins"


def test_the_form_warns_on_the_last_attempt_before_the_lock(client, alice):
    for _ in range(3):
        assert WARNING not in _login(client, "alice", "wrong-password").content.decode()

    fourth = _login(client, "alice", "wrong-password").content.decode()

    assert WARNING in fourth and "for 15 minutes" in fourth
    assert "Please enter a correct username and password" in fourth
    fifth = _login(client, "alice", "wrong-password")
    assert fifth.status_code == 200 and WARNING not in fifth.content.decode()
    assert _login(client, "alice", PASSWORD).status_code == 429


def test_the_warning_heeds_the_address_limit_too(client, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    first = _login(client, "ann", "wrong-password", REMOTE_ADDR="203.0.113.8")
    second = _login(client, "ben", "wrong-password", REMOTE_ADDR="203.0.113.8")

    assert WARNING not in first.content.decode()
    assert WARNING in second.content.decode()


def _lock(client: Client, username: str) -> None:
    _fail(client, username, 5)
    assert _login(client, username, PASSWORD).status_code == 429


def test_a_superuser_unlocks_a_user_in_django_admin(client, alice, root):
    _lock(Client(), "alice")
    client.force_login(root)
    changelist = reverse("admin:auth_user_changelist")
    assert "login locked" in client.get(changelist).content.decode().lower()

    response = client.post(
        changelist, {"action": "unlock_logins", "_selected_action": [alice.pk]}, follow=True
    )

    assert "Unlocked: alice." in response.content.decode()
    assert _login(Client(), "alice", PASSWORD).status_code == 302
    line = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_UNLOCKED)
    assert (line.username, line.target) == ("root", "alice")
    assert line.details["was_locked"] is True


def test_staff_who_are_not_superusers_cannot_unlock(client, alice):
    from django.contrib.auth.models import Permission

    from tests.factories import make_user

    staff = make_user("staffer")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(Permission.objects.filter(content_type__model="user"))
    client.force_login(staff)

    response = client.get(reverse("admin:auth_user_changelist"))

    assert response.status_code == 200
    assert "unlock_logins" not in response.content.decode()


@pytest.fixture
def shared_counters(monkeypatch):
    """The command's process and the test's share the (memory) cache: as with Redis."""
    from cpo.management.commands import unlock_login

    monkeypatch.setattr(unlock_login, "login_counters_shared", lambda: True)


def test_manage_py_unlock_login_unlocks_a_user(alice, shared_counters):
    from django.core.management import call_command

    _lock(Client(), "alice")
    out = io.StringIO()

    call_command("unlock_login", "alice", stdout=out)

    assert "Logins for alice unlocked (was locked)." in out.getvalue()
    assert _login(Client(), "alice", PASSWORD).status_code == 302
    assert AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_UNLOCKED).username == ""


def test_manage_py_unlock_login_unlocks_an_address(settings, shared_counters):
    from django.core.management import call_command

    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    for name in ("ann", "ben"):
        _login(Client(), name, "wrong-password", REMOTE_ADDR="203.0.113.9")
    assert _login(Client(), "cid", "x", REMOTE_ADDR="203.0.113.9").status_code == 429

    call_command("unlock_login", "--address", "203.0.113.9", stdout=io.StringIO())

    assert _login(Client(), "cid", "x", REMOTE_ADDR="203.0.113.9").status_code == 200


@pytest.mark.parametrize(
    ("args", "error"),
    [([], "Name a username"), (["--address", "not-an-ip"], "is not an IP address")],
)
def test_manage_py_unlock_login_refuses_bad_input(args, error, shared_counters):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=error):
        call_command("unlock_login", *args)


def test_manage_py_unlock_login_says_when_it_cannot_reach_the_counters():
    from django.core.management import CommandError, call_command

    # The per-process memory cache (no REDIS_URL): the servers' counters are elsewhere.
    with pytest.raises(CommandError, match="Django admin"):
        call_command("unlock_login", "alice")


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_manage_py_unlock_login_lifts_a_lock_the_server_keeps_in_redis(settings, db):
    """The real thing: the lock in the shared Redis, the command in its own process."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": "virta",  # as settings.py: the command's process uses it
        }
    }
    settings.LOGIN_LOCKOUT_SECONDS = 30  # the keys expire soon whatever happens
    username = f"locked-{os.getpid()}-{time.time_ns()}"
    _fail(Client(), username, 5)
    assert _login(Client(), username, "x").status_code == 429

    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # The test database, not the real one (which a fresh machine has not migrated).
    environment.update(
        DJANGO_SETTINGS_MODULE="virta.settings", SECRET_KEY="t", DATABASE_URL=database_of_this_run()
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "unlock_login", username],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "(was locked)" in result.stdout
    assert _login(Client(), username, "x").status_code == 200
