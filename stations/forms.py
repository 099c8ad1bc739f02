"""Panel forms. Forms validate input; the services in stations.services decide and save."""

from __future__ import annotations

from django import forms

from cpo.models import Cpo
from stations.models import Protocol

CBID_LABEL = "CBID (Chargebox Identity)"
# The identity field's label per protocol; static/js/station_form.js switches it.
IDENTITY_LABELS = {
    Protocol.OCPP: CBID_LABEL,
    Protocol.ENSTO: "Device identifier (Ensto)",
    Protocol.REMOTEC: "Device identifier (Remotec)",
}


class StationAddForm(forms.Form):
    """Add new station: protocol, identity and (when the user has several) the CPO."""

    protocol = forms.ChoiceField(label="Protocol", choices=Protocol.choices, initial=Protocol.OCPP)
    cbid = forms.CharField(
        label=CBID_LABEL,
        max_length=48,
        help_text=(
            "OCPP: the identity the charger connects with, the last part of its backend URL. "
            "Ensto and Remotec: the device identifier."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    cpo = forms.ModelChoiceField(label="CPO", queryset=Cpo.objects.none(), empty_label=None)

    def __init__(self, *args, cpos, **kwargs):
        """`cpos`: the CPOs the user may add stations to (Cpo.objects.for_user(..., admin))."""
        super().__init__(*args, **kwargs)
        self.fields["cpo"].queryset = cpos
        choices = list(cpos[:2])
        if len(choices) == 1:
            # Exactly one CPO: nothing to choose, so no dropdown.
            self.fields["cpo"].widget = forms.HiddenInput()
            self.fields["cpo"].initial = choices[0].pk
        elif len(choices) > 1:
            self.fields["cpo"].empty_label = "Choose a CPO…"

    def clean_cbid(self) -> str:
        return self.cleaned_data["cbid"].strip()

    @property
    def cpo_is_hidden(self) -> bool:
        return isinstance(self.fields["cpo"].widget, forms.HiddenInput)


class StationCpoForm(forms.Form):
    """Change CPO on the station page: the other CPOs the user is admin of."""

    cpo = forms.ModelChoiceField(
        label="New CPO", queryset=Cpo.objects.none(), empty_label="Choose a CPO…"
    )

    def __init__(self, *args, cpos, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cpo"].queryset = cpos
