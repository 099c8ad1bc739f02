"""What base.html's menu needs to know about the user's station rights."""

from __future__ import annotations

from django.http import HttpRequest

from cpo.models import Membership
from stations.services.claiming import addable_cpos


def station_menu(request: HttpRequest) -> dict:
    # A callable: evaluated (one or two queries) only where the menu is drawn.
    user = getattr(request, "user", None)

    def can_add_stations() -> bool:
        """As station_add decides: admins of a CPO; superusers and users without any CPO
        get a page that explains; viewers and technicians only a 403, so no link."""
        if user is None or not user.is_authenticated:
            return False
        if user.is_superuser or addable_cpos(user).exists():
            return True
        return not Membership.objects.filter(user=user).exists()

    return {"can_add_stations": can_add_stations}
