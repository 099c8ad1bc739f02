"""Dependencies point one way: virta → ocpp_gateway → alerts → stations → cpo → ocpp_spec.

A package may import its own modules and those of the layers below it, never one above;
the simulator (a client) imports only ocpp_spec. Our own modules are imported at module
level: an import inside a function that only dodges a cycle is code in the wrong module
(AppConfig.ready() excepted, where Django wants registrations). ocpp_spec is pure OCPP:
no database, no settings, no channel layer; the gateway writes no SQL and opens no
transaction (services do). See ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: each may import the ones before it.
LAYERS = ("ocpp_spec", "cpo", "stations", "alerts", "ocpp_gateway", "virta")
# Outside the layers: what each may import of ours.
TOOLS = {"simulator": {"ocpp_spec"}}
OURS = {*LAYERS, *TOOLS, "tests", "bench"}
# Third-party modules a layer must not use.
FORBIDDEN = {
    "ocpp_spec": ("django.db", "django.conf", "channels", "importlib"),
    # SQL and transactions live in the services and stations/bulk.py.
    "ocpp_gateway": ("django.db", "importlib"),
}
for _layer in LAYERS:
    FORBIDDEN.setdefault(_layer, ("importlib",))


def allowed(package: str) -> set[str]:
    if package in TOOLS:
        return {package, *TOOLS[package]}
    return set(LAYERS[: LAYERS.index(package) + 1])


def imports(source: str, module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in `source`."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                name = child.module or ""
                if child.level:
                    # Relative: never outside the module's own top package.
                    name = module.split(".")[0] + "." + name
                found.append((name, child.lineno, in_function))
            visit(child, nested)

    visit(ast.parse(source), False)
    return found


def violations(source: str, module: str) -> list[str]:
    package = module.split(".")[0]
    problems = []
    for name, line, in_function in imports(source, module):
        top = name.split(".")[0]
        where = f"{module}:{line} imports {name}"
        if top in OURS and top not in allowed(package):
            problems.append(f"{where}: {package} may not depend on {top}")
        elif top in OURS and in_function and not module.endswith(".apps"):
            problems.append(f"{where} inside a function: import it at the top, or move the code")
        elif any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN.get(package, ())):
            problems.append(f"{where}: {package} may not use it")
    return problems


def modules():
    for package in (*LAYERS, *TOOLS):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            yield ".".join(parts), path


@pytest.mark.parametrize(("module", "path"), list(modules()), ids=lambda v: str(v))
def test_imports_point_down(module, path):
    assert violations(path.read_text(), module) == []


@pytest.mark.parametrize(
    ("source", "module", "problem"),
    [
        ("from ocpp_gateway.db import db_call", "stations.services.x", "may not depend on"),
        ("import stations.models", "cpo.models", "may not depend on"),
        ("from stations import models", "ocpp_spec.identity", "may not depend on"),
        ("from ocpp_gateway import consumers", "simulator.run", "may not depend on"),
        ("def f():\n    from stations.services import commands", "stations.x", "inside"),
        ("from django.db import models", "ocpp_spec.commands.base", "may not use"),
        ("import importlib", "ocpp_gateway.calls", "may not use"),
        ("from django.db import transaction", "ocpp_gateway.group_commit", "may not use"),
    ],
)
def test_the_check_catches(source, module, problem):
    [found] = violations(source, module)
    assert problem in found


def test_every_package_is_checked():
    checked = {module.split(".")[0] for module, _ in modules()}
    assert checked == {*LAYERS, *TOOLS}
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert on_disk <= checked, f"place {on_disk - checked} in LAYERS or TOOLS"
