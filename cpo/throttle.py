"""Brute-force protection for panel (and Django admin) logins.

Failed logins are counted per username and per client address in Django's cache. Once
either count reaches its limit within LOGIN_LOCKOUT_SECONDS, that username (or address) is
locked for LOGIN_LOCKOUT_SECONDS: every login attempt for it is refused before the password
is checked, even with the right password, so guessing further tells an attacker nothing.
A successful login clears its username's count (not the address's: one valid account must
not let an address keep guessing others' passwords).

The cache must be shared by every process serving logins: settings use Django's Redis
cache when REDIS_URL is set. With the default per-process memory cache, each process
counts on its own, so the effective limit is multiplied by the number of processes.
When the cache is unreachable (Redis down) logins go on unthrottled and each attempt logs
an error: locking every operator out of the panel during an outage would be worse.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import ngettext

from cpo.audit import Action, audit_record, client_address

logger = logging.getLogger(__name__)

LOCKED_MESSAGE = (
    "Too many failed logins for this account or from your address. Logins are refused "
    "for the next {minutes} minute{s}; try again later."
)


@dataclass(frozen=True)
class Subject:
    """One thing failures are counted for: a username or a client address."""

    kind: str  # "user" or "addr"
    value: str
    limit: int

    def _key(self, what: str) -> str:
        # Hashed: usernames may hold characters some cache backends refuse in keys.
        digest = hashlib.sha256(self.value.encode()).hexdigest()[:32]
        return f"login-{what}:{self.kind}:{digest}"

    @property
    def failures_key(self) -> str:
        return self._key("failures")

    @property
    def lock_key(self) -> str:
        return self._key("lock")


def _subjects(*, username: str, request: HttpRequest | None) -> list[Subject]:
    subjects = []
    if settings.LOGIN_MAX_FAILURES > 0 and username:
        # casefold: "Alice" and "alice" are one account to lock, whatever the database's
        # collation makes of them.
        subjects.append(Subject("user", username.casefold(), settings.LOGIN_MAX_FAILURES))
    address = client_address(request)
    if settings.LOGIN_MAX_FAILURES_PER_ADDRESS > 0 and address:
        subjects.append(Subject("addr", address, settings.LOGIN_MAX_FAILURES_PER_ADDRESS))
    return subjects


def login_locked_for(*, username: str, request: HttpRequest | None) -> int:
    """Seconds until logins for `username` from this request's client are allowed again
    (0: allowed now, or the cache is unreachable)."""
    subjects = _subjects(username=username, request=request)
    if not subjects:
        return 0
    try:
        locks = cache.get_many([s.lock_key for s in subjects])
    except Exception:
        logger.exception("Login throttle: cache unreachable, login of %r not throttled", username)
        return 0
    now = time.time()
    remaining = [until - now for until in locks.values() if isinstance(until, int | float)]
    return max([math.ceil(r) for r in remaining if r > 0], default=0)


def login_failure_record(*, username: str, request: HttpRequest | None) -> int | None:
    """Count one failed login; lock the username or address that reaches its limit.

    Returns how many more failures the closer of the two limits allows before logins are
    locked (0: locked now), or None when nothing is counted (no limit, cache away).
    """
    window = settings.LOGIN_LOCKOUT_SECONDS
    left: int | None = None
    for subject in _subjects(username=username, request=request):
        try:
            failures = _count(subject, window)
        except Exception:
            logger.exception("Login throttle: cache unreachable, %r not counted", username)
            return None
        remaining = max(subject.limit - failures, 0)
        left = remaining if left is None else min(left, remaining)
        if failures < subject.limit:
            continue
        logger.warning(
            "Panel logins locked for %ss: %s failures for %s %s",
            window,
            failures,
            "username" if subject.kind == "user" else "address",
            username if subject.kind == "user" else subject.value,
        )
        audit_record(
            action=Action.LOGIN_LOCKED,
            username=username,
            target=subject.kind,
            details={"failures": failures, "seconds": window},
            request=request,
        )
    return left


def _count(subject: Subject, window: int) -> int:
    """Add one failure for `subject`; at its limit, lock it and start counting afresh."""
    # add() starts the window at the first failure; incr() keeps its expiry.
    cache.add(subject.failures_key, 0, timeout=window)
    try:
        failures = cache.incr(subject.failures_key)
    except ValueError:  # Expired between add() and incr().
        cache.set(subject.failures_key, 1, timeout=window)
        failures = 1
    if failures >= subject.limit:
        cache.set(subject.lock_key, time.time() + window, timeout=window)
        cache.delete(subject.failures_key)
    return failures


def login_success_record(*, username: str) -> None:
    """A successful login: its username starts counting failures from zero again."""
    try:
        cache.delete_many([s.failures_key for s in _subjects(username=username, request=None)])
    except Exception:
        logger.exception("Login throttle: cache unreachable, count of %r not cleared", username)


def login_unlock(
    *, username: str = "", address: str = "", by: AbstractBaseUser | None = None
) -> bool:
    """Lift the lock (and forget the failures) of a username and/or a client address.

    For a superuser helping someone locked out (Django admin's action, `manage.py
    unlock_login`; `by`: who, None for the command line). Writes an audit line. Returns
    whether one of them was locked. Raises ValueError for an address that is not an IP
    address; the cache's own errors propagate (an unlock that did not happen must say so).
    """
    subjects = []
    if username:
        subjects.append(Subject("user", username.casefold(), settings.LOGIN_MAX_FAILURES))
    if address:
        address = str(ipaddress.ip_address(address.strip()))
        subjects.append(Subject("addr", address, settings.LOGIN_MAX_FAILURES_PER_ADDRESS))
    if not subjects:
        return False
    locks = cache.get_many([s.lock_key for s in subjects])
    now = time.time()
    was_locked = any(isinstance(u, int | float) and u > now for u in locks.values())
    cache.delete_many([key for s in subjects for key in (s.lock_key, s.failures_key)])
    audit_record(
        action=Action.LOGIN_UNLOCKED,
        user=by,
        target=username or address,
        details={"username": username, "address": address, "was_locked": was_locked},
    )
    return was_locked


def login_counters_shared() -> bool:
    """Whether another process (a management command) sees the servers' counters."""
    return "locmem" not in settings.CACHES["default"]["BACKEND"].lower()


def locked_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return LOCKED_MESSAGE.format(minutes=minutes, s="" if minutes == 1 else "s")


def last_attempt_message() -> str:
    """Said after the failure that leaves a single attempt before the lock."""
    minutes = max(1, math.ceil(settings.LOGIN_LOCKOUT_SECONDS / 60))
    return ngettext(
        "One more failed login will lock logins for this account (or from your address) "
        "for %(minutes)d minute.",
        "One more failed login will lock logins for this account (or from your address) "
        "for %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
