"""Running the server needs requirements.txt only, and says nothing alarming at start."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Code that only tests and measures: it may use requirements-dev.txt.
NOT_RUNTIME = {"tests", "bench"}


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def _installed_closure(requirements: list[Requirement]) -> set[str]:
    """The distributions installing `requirements` brings, with their dependencies."""
    seen: set[str] = set()
    todo = [(r.name, frozenset(r.extras)) for r in requirements]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in seen and not extras:
            continue
        seen.add(key)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            wanted = marker is None or any(
                marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                todo.append((requirement.name, frozenset(requirement.extras)))
    return seen


def _runtime_files() -> list[Path]:
    files = [PROJECT_DIR / "manage.py"]
    for package in PROJECT_DIR.iterdir():
        if (package / "__init__.py").is_file() and package.name not in NOT_RUNTIME:
            files += package.rglob("*.py")
    return files


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_server_imports_nothing_outside_requirements_txt():
    runtime = _installed_closure(_requirements(PROJECT_DIR / "requirements.txt"))
    first_party = {p.name for p in PROJECT_DIR.iterdir() if (p / "__init__.py").is_file()}
    providers = importlib.metadata.packages_distributions()
    missing = []
    for path in _runtime_files():
        for name in _top_level_imports(path) - first_party - set(sys.stdlib_module_names):
            distributions = {canonicalize_name(d) for d in providers.get(name, [])}
            if not distributions & runtime:
                missing.append(f"{path.relative_to(PROJECT_DIR)}: {name}")

    assert missing == [], "imported by the server but not installed by requirements.txt"


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_run_installs_only_requirements_txt():
    # -B: as on a fresh checkout (every target out of date); -n: print, do not run.
    plan = subprocess.run(
        ["make", "-B", "-n", "run"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout

    assert re.search(r"pip install .*-r requirements\.txt", plan)
    assert "requirements-dev.txt" not in plan


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_test_targets_install_the_dev_requirements():
    plan = subprocess.run(
        ["make", "-B", "-n", "unit"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout

    assert re.search(r"pip install .*-r requirements-dev\.txt", plan)


@pytest.mark.skipif(
    (PROJECT_DIR / ".env").exists(), reason="this checkout has a .env file: nothing to show"
)
def test_a_missing_env_file_is_not_reported_at_start():
    # Daphne configures logging at INFO before it loads the settings: do the same.
    code = "import logging; logging.basicConfig(level=logging.INFO);import django; django.setup()"
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "virta.settings", "DEBUG": "1"}
    started = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )

    assert started.returncode == 0, started.stderr
    assert "not found" not in started.stderr
