"""The fixed cast (as in healthchecks' hc/test.py):

- alice: admin of CPO A
- bob: viewer of CPO A
- carol: admin of CPO B
- root: superuser (system administrator)
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from cpo.models import Membership
from ocpp_gateway.refusals import refusal_log
from tests.factories import make_cpo, make_member, make_user


@pytest.fixture
def cpo_a(db):
    return make_cpo("CPO A")


@pytest.fixture
def cpo_b(db):
    return make_cpo("CPO B")


@pytest.fixture
def alice(cpo_a):
    user = make_user("alice")
    make_member(user, cpo_a, Membership.Role.ADMIN)
    return user


@pytest.fixture
def bob(cpo_a):
    user = make_user("bob")
    make_member(user, cpo_a, Membership.Role.VIEWER)
    return user


@pytest.fixture
def carol(cpo_b):
    user = make_user("carol")
    make_member(user, cpo_b, Membership.Role.ADMIN)
    return user


@pytest.fixture
def root(db):
    return make_user("root", superuser=True)


@pytest.fixture(autouse=True)
def _fast_settings(settings):
    # Flush the OCPP message log immediately in tests; tests call flush() anyway.
    settings.OCPP_LOG_FLUSH_INTERVAL = 0.01
    settings.OCPP_CALL_TIMEOUT = 5


@pytest.fixture(autouse=True)
def _fresh_refusal_log():
    # Refusals added up in one test must not be written into the next one's database.
    yield
    refusal_log.forget()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Close stray connections before the test database is dropped.

    Consumers reach the database from asgiref's worker threads (and e2e tests from daphne
    subprocesses); their connections would make PostgreSQL refuse to drop the database.
    """
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(scope="session", autouse=True)
def _static_files_from_the_source():
    """Serve static files straight from static/ and the apps, as with DEBUG.

    The suite runs with DEBUG=0, where STATIC_MANIFEST defaults to on: pages would need a
    `collectstatic` run first. Production serving (hashed names, compression, caching)
    has its own test through daphne (tests/e2e/test_static_files.py).
    """
    with override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        WHITENOISE_USE_FINDERS=True,
        WHITENOISE_AUTOREFRESH=True,
    ):
        yield
