"""Forms of the team pages: invite, change a role, filter the audit log."""

from __future__ import annotations

from zoneinfo import available_timezones

from django import forms
from django.utils.translation import gettext_lazy as _

from cpo.models import AuditEvent, Membership


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


class AuditFilterForm(forms.Form):
    """The audit log's filters; all optional, an invalid one is reported and ignored."""

    action = forms.ChoiceField(
        label=_("What"),
        required=False,
        choices=[("", _("Anything"))] + list(AuditEvent.Action.choices),
    )
    user = forms.CharField(label=_("Who"), required=False, max_length=150)
    target = forms.CharField(label=_("On"), required=False, max_length=200)
    since = forms.DateField(
        label=_("Since"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return cleaned


class CpoSettingsForm(forms.Form):
    """What a CPO's admins set for the whole CPO: the time zone of the panel's times."""

    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        help_text=_("Every time in the panel is shown in it, for everyone in this CPO."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(z, z) for z in sorted(available_timezones())]
