"""Helpers of the accessibility browser tests: axe-core, keyboard moves, screenshots."""

from __future__ import annotations

import json
import os
from pathlib import Path

from playwright.sync_api import Page

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SCREENS = Path(os.environ.get("SCREENSHOT_DIR", HERE / "screens"))
# WCAG 2.0 and 2.1, A and AA, plus axe's best practices (as the audit of issue 20 ran).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
BLOCKING = {"serious", "critical"}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def axe_violations(page: Page) -> list[dict]:
    """Run axe-core on the page as it is now; all its violations."""
    if not AXE.exists():
        raise RuntimeError(
            f"{AXE} is missing: install the browser tests' npm packages "
            "(make test-deps, or npm ci --prefix tests/e2e/browser)"
        )
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, "
        "{runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return result["violations"]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        targets = [" ".join(map(str, n["target"])) for n in v["nodes"][:5]]
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} at {json.dumps(targets)}")
    return "\n".join(lines)


def blocking(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in BLOCKING]


def screenshot(page: Page, name: str) -> None:
    """A full-page picture into screens/ (gitignored; CI keeps it as an artifact)."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    if width and width < 720:
        # Screen-sized slices too: a whole phone page shrinks to illegible.
        height = page.evaluate("document.documentElement.scrollHeight")
        for n, top in enumerate(range(0, height, 1200)):
            clip = {"x": 0, "y": top, "width": width, "height": min(1200, height - top)}
            page.screenshot(path=str(SCREENS / f"{name}-{n}.png"), clip=clip, full_page=True)


def focused(page: Page, expression: str = "el => el") -> object:
    return page.evaluate(
        f"(() => {{ const el = document.activeElement; return ({expression})(el); }})()"
    )


def tab_to(page: Page, predicate: str, *, limit: int = 80, key: str = "Tab") -> None:
    """Press Tab until `predicate` (a JS function of the focused element) holds."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate(f"(() => ({predicate})(document.activeElement))()"):
            return
    raise AssertionError(f"{predicate} never got focus after {limit} × {key}")
