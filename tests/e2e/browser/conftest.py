"""Browser tests: pytest-playwright's `page` against pytest-django's `live_server`.

Playwright drives Debian's chromium (`CHROMIUM_PATH`, default /usr/bin/chromium): a browser
download (`playwright install`) is impossible in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last, whatever else the run holds.

    From the first browser test to the end of the session, pytest-playwright's sync API keeps
    an event loop running in the main thread; an asyncio test after that cannot start its own
    ("Runner.run() cannot be called from a running event loop"). `pytest -m e2e` runs both.
    """
    here = Path(__file__).parent
    browser = [item for item in items if here in Path(item.path).parents]
    if browser:
        others = [item for item in items if here not in Path(item.path).parents]
        items[:] = others + browser


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    if not os.path.exists(CHROMIUM_PATH):
        pytest.skip(f"no chromium at {CHROMIUM_PATH} (apt-get install chromium, or CHROMIUM_PATH)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM_PATH, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session", autouse=True)
def _allow_orm_in_the_test_thread() -> Iterator[None]:
    # Playwright's sync API runs an event loop in the test thread (from the session-scoped
    # `playwright` fixture on), and Django refuses ORM calls there, even creating the test
    # database. Set for the browser session only, not at import: collecting this file in a
    # unit-test run must not switch Django's check off for the rest of the suite.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def _cookies_over_plain_http(settings) -> None:
    # live_server speaks plain HTTP: secure-only cookies would never come back.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
