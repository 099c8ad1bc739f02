"""The panel's colours meet WCAG 2.1 AA, computed from static/css/panel.css itself: text and
status pills >= 4.5:1, the focus indicator and field borders >= 3:1 against every
background they are drawn on (issue 20)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parents[1] / "static" / "css" / "panel.css").read_text()
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
HEX = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")


def rules() -> list[tuple[str, dict[str, str]]]:
    text = re.sub(r"/\*.*?\*/", "", CSS, flags=re.S)
    found = []
    for match in RULE.finditer(text):
        declarations = {}
        for part in match.group(2).split(";"):
            if ":" in part:
                name, value = part.split(":", 1)
                declarations[name.strip()] = value.strip()
        found.append((" ".join(match.group(1).split()), declarations))
    return found


RULES = rules()
VARS = {k: v for selector, decl in RULES if selector == ":root" for k, v in decl.items()}


def colour(value: str) -> str | None:
    """The hex colour a declaration value names (through var()), or None (rgba, currentColor)."""
    value = re.sub(r"var\((--[\w-]+)\)", lambda m: VARS[m.group(1)], value)
    match = HEX.search(value)
    if not match or "rgba" in value:
        return None
    hex_ = match.group(0)[1:]
    if len(hex_) == 3:
        hex_ = "".join(c * 2 for c in hex_)
    return "#" + hex_.lower()


def luminance(hex_: str) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_wcag():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    # The measurements of the old palette.
    assert contrast("#9a6700", "#fff4d6") == pytest.approx(4.44, abs=0.01)
    assert contrast("#5cb8ff", "#ffffff") == pytest.approx(2.15, abs=0.01)


PILLS = [
    (selector, decl)
    for selector, decl in RULES
    if re.search(r"\.(chip|badge|message|alert)[\w-]*", selector)
    and "color" in decl
    and ("background" in decl or "background-color" in decl)
]


def test_every_status_pill_is_found():
    selectors = " ".join(s for s, _ in PILLS)
    for pill in (".chip-suspendedev", ".chip-cmd-timed_out", ".badge-waiting", ".chip-faulted"):
        assert pill in selectors


@pytest.mark.parametrize("selector,decl", PILLS, ids=[s for s, _ in PILLS])
def test_status_pill_text_is_at_least_4_5_to_1(selector, decl):
    fg = colour(decl["color"])
    bg = colour(decl.get("background") or decl["background-color"])
    assert fg and bg, f"{selector}: colours not resolvable"
    assert contrast(fg, bg) >= 4.5, f"{selector}: {fg} on {bg} is {contrast(fg, bg):.2f}:1"


# Where focus rings appear: the page, cards and inputs, command forms, read-only fields.
LIGHT_BACKGROUNDS = [VARS["--bg"], VARS["--surface"], "#fbfcfd", "#f3f5f8"]


def focus_outlines() -> list[tuple[str, str]]:
    found = []
    for selector, decl in RULES:
        if ":focus" not in selector:
            continue
        for name in ("outline", "outline-color"):
            if name in decl:
                found.append((selector, decl[name]))
    return found


def test_every_focus_outline_is_a_solid_colour():
    outlines = focus_outlines()
    assert any(s == ":focus-visible" for s, _ in outlines)
    for selector, value in outlines:
        assert colour(value), f"{selector}: outline {value!r} is not a solid colour"


@pytest.mark.parametrize("selector,value", focus_outlines())
def test_focus_indicator_is_at_least_3_to_1_against_its_backgrounds(selector, value):
    ring = colour(value)
    # The top bar is dark; its drop-down menus are white again.
    on_dark = selector.startswith(".topbar") and ".menu-list" not in selector
    backgrounds = [VARS["--topbar"]] if on_dark else LIGHT_BACKGROUNDS
    for bg in backgrounds:
        assert contrast(ring, bg) >= 3, f"{selector}: {ring} on {bg} is {contrast(ring, bg):.2f}:1"


def test_field_borders_are_at_least_3_to_1():
    border = colour(VARS["--field-border"])
    assert contrast(border, "#ffffff") >= 3
    fields = [d for s, d in RULES if 'input[type="text"]' in s and "border" in d]
    assert fields and all("var(--field-border)" in d["border"] for d in fields)


def test_muted_text_is_at_least_4_5_to_1_where_it_is_used():
    for bg in LIGHT_BACKGROUNDS + ["#eef1f5"]:
        assert contrast(VARS["--muted"], bg) >= 4.5


def test_disabled_commands_are_not_faded_below_the_text_contrast():
    # Opacity on a disabled command's fieldset put its explanation at 2.51:1.
    for selector, decl in RULES:
        if "disabled" in selector:
            assert "opacity" not in decl, selector
