"""Forms of the team pages: invite, change a role."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cpo.models import Membership


class InviteForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=150,
        help_text=_("They get a link to set their password; it works once."),
    )
    role = forms.ChoiceField(
        label=_("Role"),
        choices=Membership.Role.choices,
        initial=Membership.Role.VIEWER,
        help_text=_(
            "Admin: everything, members included. Technician: station settings and "
            "commands. Viewer: reads only."
        ),
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)
