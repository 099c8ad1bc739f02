"""Helpers that walk the project's URLs and the forms on its pages, so that a URL or a form
added later is tested without anyone listing it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from django.urls import URLPattern, URLResolver, get_resolver, reverse

# Django admin (its own permission system) and the static file view are not the panel.
SKIPPED_PREFIXES = ("admin/", "^static/")
PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name"
    route: str  # "stations/<int:pk>/"
    params: tuple[str, ...]

    def url(self, values: dict[str, object]) -> str:
        missing = [p for p in self.params if p not in values]
        assert not missing, (
            f"{self.name} ({self.route}) takes <{', '.join(missing)}>: teach the walk "
            "which object of CPO A to put there"
        )
        return reverse(self.name, kwargs={p: values[p] for p in self.params})


def project_routes() -> list[Route]:
    """Every URL pattern of the project outside SKIPPED_PREFIXES, by its full name."""
    routes: list[Route] = []

    def walk(patterns, prefix: str, namespaces: tuple[str, ...]) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if route.startswith(SKIPPED_PREFIXES):
                continue
            if isinstance(pattern, URLResolver):
                namespace = (pattern.namespace,) if pattern.namespace else ()
                walk(pattern.url_patterns, route, namespaces + namespace)
            elif isinstance(pattern, URLPattern):
                assert pattern.name, f"the URL {route} has no name: name it to test it"
                name = ":".join((*namespaces, pattern.name))
                routes.append(Route(name, route, tuple(PARAM.findall(route))))

    walk(get_resolver().url_patterns, "", ())
    return routes


@dataclass
class Form:
    page: str
    method: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def has_csrf_token(self) -> bool:
        return "csrfmiddlewaretoken" in self.fields

    def data(self, *, with_token: bool) -> dict[str, str]:
        if with_token:
            return dict(self.fields)
        return {k: v for k, v in self.fields.items() if k != "csrfmiddlewaretoken"}


class _FormParser(HTMLParser):
    def __init__(self, page: str):
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(
                page=self.page,
                method=a.get("method", "get").lower(),
                action=a.get("action") or self.page,
            )
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file"):
                return
            self._form.fields[a["name"]] = a.get("value", "on" if kind == "checkbox" else "")
        elif tag == "button" and a.get("name"):
            self._form.fields.setdefault(a["name"], a.get("value", ""))
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select:
            # The selected option wins; else the first one stands.
            if "selected" in a or self._select not in self._form.fields:
                self._form.fields[self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form.fields[a["name"]] = ""

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea:
            self._form.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms_on(page: str, html: str) -> list[Form]:
    parser = _FormParser(page)
    parser.feed(html)
    return parser.forms
