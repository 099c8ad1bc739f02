"""What every panel page needs to know about the user's roles (base.html's menu)."""

from __future__ import annotations

from django.http import HttpRequest

from cpo.current import cpo_choices, zone_of
from cpo.team import cpos_managed_by


def team_menu(request: HttpRequest) -> dict:
    # A callable: the template calls it (one query) only where the menu is drawn.
    user = getattr(request, "user", None)

    def manages_team() -> bool:
        return user is not None and cpos_managed_by(user).exists()

    return {"manages_team": manages_team}


def current_cpo(request: HttpRequest) -> dict:
    """The header's "working in" line: the current CPO, the user's role, the time zone."""
    current = getattr(request, "current_cpo", None)
    return {
        "current_cpo": current,
        "cpo_choices": cpo_choices(request) if hasattr(request, "session") else [],
        "current_time_zone": zone_of(current).key,
    }
