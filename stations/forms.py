"""Panel forms. Forms validate input; the services in stations.services decide and save."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django import forms
from django.utils import timezone

from cpo.models import Cpo
from ocpp_spec.commands import (
    COMMAND_KINDS,
    KINDS_ALLOWED_WHEN_PENDING,
    TRIGGERABLE_MESSAGES,
    TRIGGERED_PER_CONNECTOR,
    CommandKind,
)
from stations.models import (
    Connector,
    IdTag,
    OcppVersion,
    Protocol,
    RegistrationStatus,
    Station,
)
from stations.services.local_list import local_list_params
from stations.services.station_settings import visibility_missing

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
    proof = forms.CharField(
        label="Serial number or claim code",
        max_length=255,
        required=False,
        help_text=(
            "The charger's serial number as it reported it when it booted (on its label or "
            "in its own settings), or the claim code your system administrator gave you."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    generate_password = forms.BooleanField(
        label="Generate a charger password (OCPP security profile 1)",
        required=False,
        initial=True,
        help_text=(
            "Recommended: without a password anyone who knows the CBID can connect as this "
            "charger. The password is shown once. A connected charger is sent it and keeps "
            "working; an offline one must be given it by hand before it connects again."
        ),
    )

    def __init__(self, *args, cpos, require_proof: bool = False, **kwargs):
        """`cpos`: the CPOs the user may add stations to (Cpo.objects.for_user(..., admin)).
        `require_proof`: strong claim mode (CLAIM_REQUIRE_PROOF) asks for `proof`."""
        super().__init__(*args, **kwargs)
        if not require_proof:
            del self.fields["proof"]
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


# ---- station settings -------------------------------------------------------------------


class CommaDecimalField(forms.DecimalField):
    """A decimal number that also takes a decimal comma (60,1699), as Finnish keyboards type it."""

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().replace(",", ".")
        return super().to_python(value)


class StationSettingsForm(forms.Form):
    """Station settings: place, flags and per-connector plug and power.

    The form checks shapes (numbers, ranges); `station_settings_update` decides the rest
    (rounding coordinates to 6 decimals and power to 0.1 kW, the "Visible to customers"
    rule), and its per-field errors come back here.
    """

    name = forms.CharField(label="Name", max_length=100, required=False)
    street = forms.CharField(label="Street", max_length=200, required=False)
    postal_code = forms.CharField(label="Postal code", max_length=20, required=False)
    city = forms.CharField(label="City", max_length=100, required=False)
    country = forms.CharField(
        label="Country",
        max_length=2,
        required=False,
        help_text="Two-letter code (ISO 3166-1), e.g. FI.",
        widget=forms.TextInput(attrs={"autocomplete": "country", "size": 3}),
    )
    latitude = CommaDecimalField(
        label="Latitude",
        required=False,
        min_value=-90,
        max_value=90,
        help_text="Decimal degrees, −90 to 90 (e.g. 60.169857).",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    longitude = CommaDecimalField(
        label="Longitude",
        required=False,
        min_value=-180,
        max_value=180,
        help_text="Decimal degrees, −180 to 180 (e.g. 24.938379).",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    free_usage = forms.BooleanField(
        label="Free usage",
        required=False,
        help_text="Anyone may charge without an accepted id tag.",
    )
    reservation_enabled = forms.BooleanField(label="Reservation enabled", required=False)
    visible = forms.BooleanField(
        label="Visible to customers",
        required=False,
        help_text="Shown in customer apps and maps. Needs a CPO, a name, an address and "
        "coordinates.",
    )

    def __init__(self, *args, station: Station, connectors, **kwargs):
        """`connectors`: the station's connectors, one plug type and power field pair each."""
        initial = {
            field: getattr(station, field)
            for field in (
                "name",
                "street",
                "postal_code",
                "city",
                "country",
                "latitude",
                "longitude",
                "free_usage",
                "reservation_enabled",
                "visible",
            )
        }
        self.connectors = list(connectors)
        for connector in self.connectors:
            initial[self.plug_field(connector)] = connector.plug_type
            initial[self.power_field(connector)] = connector.max_power_kw
        super().__init__(*args, initial=initial, **kwargs)
        if not station.visible and visibility_missing(station):
            # Not tickable until the requirements are saved; static/js/station_settings.js
            # enables it as soon as the fields on the page meet them (the service checks).
            self.fields["visible"].widget.attrs.update(
                {
                    "disabled": True,
                    "aria-describedby": "id_visible_helptext visible-missing",
                    "data-has-cpo": "1" if station.cpo_id else "0",
                }
            )
        for connector in self.connectors:
            self.fields[self.plug_field(connector)] = forms.ChoiceField(
                label=f"Connector {connector.label}: plug type",
                choices=[("", "Not set"), *Connector.PlugType.choices],
                required=False,
            )
            self.fields[self.power_field(connector)] = CommaDecimalField(
                label=f"Connector {connector.label}: maximum power (kW)",
                required=False,
                min_value=Decimal("0.1"),
                max_value=5000,
                widget=forms.TextInput(attrs={"inputmode": "decimal"}),
            )

    @staticmethod
    def plug_field(connector: Connector) -> str:
        return f"connector_{connector.pk}_plug_type"

    @staticmethod
    def power_field(connector: Connector) -> str:
        return f"connector_{connector.pk}_max_power_kw"

    def connector_rows(self) -> list[tuple[Connector, forms.BoundField, forms.BoundField]]:
        """(connector, plug type field, power field) for the template's table."""
        return [(c, self[self.plug_field(c)], self[self.power_field(c)]) for c in self.connectors]

    def settings_data(self) -> dict:
        """The cleaned form as `station_settings_update` takes it."""
        data = {
            key: value
            for key, value in self.cleaned_data.items()
            if not key.startswith("connector_")
        }
        data["connectors"] = [
            {
                "id": c.pk,
                "plug_type": self.cleaned_data[self.plug_field(c)],
                "max_power_kw": self.cleaned_data[self.power_field(c)],
            }
            for c in self.connectors
        ]
        return data

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Put SettingsError's messages beside their fields ("connectors.<pk>.x" included)."""
        for key, messages in errors.items():
            field = key
            if key.startswith("connectors."):
                _, pk, attribute = (key.split(".") + ["", ""])[:3]
                field = f"connector_{pk}_{attribute}"
            if field not in self.fields:
                field = None
            for message in messages:
                self.add_error(field, message)


# ---- commands to chargers -----------------------------------------------------------------

STATION_WIDE = "0"


def _is_v2(station: Station) -> bool:
    return station.ocpp_version in (OcppVersion.V201, OcppVersion.V21)


def _version(station: Station) -> str:
    # A station that never connected has no version yet: its forms are 1.6's.
    return station.ocpp_version or OcppVersion.V16


def connector_choice_label(connector: Connector) -> str:
    if connector.evse_id is None:
        return f"Connector {connector.connector_id}"
    return f"EVSE {connector.evse_id}, connector {connector.connector_id}"


def connector_params(connector: Connector | None) -> dict:
    """The version-neutral address of a connector (`ocpp_spec.commands`)."""
    if connector is None:
        return {"connector_id": None, "evse_id": None}
    return {"connector_id": connector.connector_id, "evse_id": connector.evse_id}


class CommandForm(forms.Form):
    """One command on the station page; `params()` gives `command_request`'s params.

    `kind` names its entry in `ocpp_spec.commands.COMMAND_KINDS`, which says everything
    else about it (OCPP names, versions, whether a Pending station may take it). Each
    kind's form has its own prefix (its kind), so several share one page.
    """

    kind: ClassVar[str]
    button: ClassVar[str] = "Send"
    description: ClassVar[str] = ""

    def __init__(self, *args, station: Station, connectors, transactions=(), **kwargs):
        super().__init__(*args, prefix=self.kind, **kwargs)
        self.station = station
        self.v2 = _is_v2(station)
        self.connectors = {str(c.pk): c for c in connectors}
        self.transactions = {str(t.pk): t for t in transactions}

    @property
    def spec(self) -> CommandKind:
        return COMMAND_KINDS[self.kind]

    @property
    def action_name(self) -> str:
        """The OCPP action for this station's version (GetConfiguration / GetVariables…)."""
        return self.spec.action_for(_version(self.station))

    def _connector_field(self, *, label: str, required: bool, empty: str | None) -> None:
        choices = [(pk, connector_choice_label(c)) for pk, c in self.connectors.items()]
        if empty is not None:
            choices.insert(0, ("", empty))
        self.fields["connector"] = forms.ChoiceField(
            label=label, choices=choices, required=required
        )

    def _chosen_connector(self) -> Connector | None:
        return self.connectors.get(self.cleaned_data.get("connector") or "")

    @property
    def unavailable(self) -> str:
        """Why this command cannot be sent now ('' when it can)."""
        return ""

    def params(self) -> dict:
        return {}


class ResetForm(CommandForm):
    kind = "reset"
    button = "Reset"
    description = (
        "Soft: the charger ends running transactions, then restarts. Hard: it reboots now."
    )

    type = forms.ChoiceField(
        label="Reset type",
        choices=[("soft", "Soft"), ("hard", "Hard")],
        initial="soft",
        widget=forms.RadioSelect,
    )

    def params(self) -> dict:
        return {"type": self.cleaned_data["type"]}


class TriggerMessageForm(CommandForm):
    kind = "trigger_message"
    button = "Trigger"
    description = "Ask the charger to send one message now."

    message = forms.ChoiceField(label="Message", choices=[(m, m) for m in TRIGGERABLE_MESSAGES])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connector_field(label="Connector", required=False, empty="Any / whole station")
        self.fields["connector"].help_text = "For StatusNotification and MeterValues."

    def params(self) -> dict:
        message = self.cleaned_data["message"]
        connector = self._chosen_connector()
        if message not in TRIGGERED_PER_CONNECTOR:
            connector = None
        return {"message": message, **connector_params(connector)}


class GetConfigurationForm(CommandForm):
    kind = "get_configuration"
    button = "Get"
    description = "Read configuration keys; the answer fills the configuration table."

    keys = forms.CharField(
        label="Keys",
        required=False,
        help_text="Comma-separated. Empty: every key.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.v2:
            self.fields["keys"].label = "Variables"
            self.fields["keys"].help_text = (
                "Component.Variable, comma-separated (e.g. OCPPCommCtrlr.HeartbeatInterval). "
                "Empty: the whole configuration (GetBaseReport ConfigurationInventory)."
            )

    def params(self) -> dict:
        keys = [k.strip() for k in self.cleaned_data["keys"].split(",") if k.strip()]
        return {"keys": keys}


class ChangeConfigurationForm(CommandForm):
    kind = "change_configuration"
    button = "Change"
    description = "Set one configuration key."

    key = forms.CharField(
        label="Key",
        max_length=100,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    value = forms.CharField(label="Value", max_length=1000, required=False, strip=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.v2:
            self.fields["key"].label = "Variable"
            self.fields[
                "key"
            ].help_text = "Component.Variable, e.g. OCPPCommCtrlr.HeartbeatInterval."

    def params(self) -> dict:
        return {"key": self.cleaned_data["key"], "value": self.cleaned_data["value"]}


class ChangeAvailabilityForm(CommandForm):
    kind = "change_availability"
    button = "Change"
    description = "Take the station or one connector out of service, or back in."

    availability = forms.ChoiceField(
        label="Availability",
        choices=[("operative", "Operative"), ("inoperative", "Inoperative")],
        initial="operative",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(pk, connector_choice_label(c)) for pk, c in self.connectors.items()]
        self.fields["target"] = forms.ChoiceField(
            label="Of", choices=[(STATION_WIDE, "The whole station"), *choices]
        )
        # The target first: "Of … : operative / inoperative".
        self.order_fields(["target", "availability"])

    def params(self) -> dict:
        target = self.connectors.get(self.cleaned_data["target"])
        address = connector_params(target) if target else {"connector_id": 0, "evse_id": None}
        return {**address, "operative": self.cleaned_data["availability"] == "operative"}


class UnlockConnectorForm(CommandForm):
    kind = "unlock_connector"
    button = "Unlock"
    description = "Release the cable of a connector."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connector_field(label="Connector", required=True, empty=None)

    @property
    def unavailable(self) -> str:
        return "" if self.connectors else "No connector has reported its status yet."

    def params(self) -> dict:
        return connector_params(self._chosen_connector())


class RemoteStartForm(CommandForm):
    kind = "remote_start"
    button = "Start"
    description = "Start charging for an id tag."

    id_tag = forms.CharField(
        label="Id tag",
        max_length=20,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.v2:
            self.fields["id_tag"].max_length = 36
            self.fields["id_tag"].widget.attrs["maxlength"] = "36"
        self._connector_field(label="Connector", required=False, empty="Let the charger choose")

    def params(self) -> dict:
        connector = self._chosen_connector()
        params = {"id_tag": self.cleaned_data["id_tag"], **connector_params(connector)}
        if self.v2:
            # 2.x starts on an EVSE, not on one connector of it.
            params["connector_id"] = None
        return params


class RemoteStopForm(CommandForm):
    kind = "remote_stop"
    button = "Stop"
    description = "Stop the current transaction."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["transaction"] = forms.ChoiceField(
            label="Transaction",
            choices=[
                (pk, f"{tx.ocpp_id} · id tag {tx.id_tag or '—'}")
                for pk, tx in self.transactions.items()
            ],
        )

    @property
    def unavailable(self) -> str:
        return "" if self.transactions else "No transaction is running."

    def params(self) -> dict:
        return {"transaction_id": self.transactions[self.cleaned_data["transaction"]].ocpp_id}


class ClearCacheForm(CommandForm):
    kind = "clear_cache"
    button = "Clear cache"
    description = "Empty the charger's authorization cache."


class SendLocalListForm(CommandForm):
    kind = "send_local_list"
    button = "Send list"
    description = (
        "The CPO's ID tags, kept on the charger so it authorizes offline: the changes since "
        "the list it holds, or the full list."
    )

    update = forms.ChoiceField(
        label="What to send",
        choices=[("changes", "Only the changes"), ("full", "The full list")],
    )

    def params(self) -> dict:
        return local_list_params(station=self.station, full=self.cleaned_data["update"] == "full")


class GetLocalListVersionForm(CommandForm):
    kind = "get_local_list_version"
    button = "Read version"
    description = "Ask which version of the local authorization list the charger holds."


class GetBaseReportForm(CommandForm):
    kind = "get_base_report"
    button = "Get report"
    description = "The charger reports its device model (NotifyReport); it fills the table."

    report_base = forms.ChoiceField(
        label="Report",
        choices=[
            ("ConfigurationInventory", "Configuration inventory"),
            ("FullInventory", "Full inventory"),
            ("SummaryInventory", "Summary inventory"),
        ],
    )

    def params(self) -> dict:
        return {"report_base": self.cleaned_data["report_base"]}


COMMAND_FORMS: dict[str, type[CommandForm]] = {
    form.kind: form
    for form in (
        ResetForm,
        TriggerMessageForm,
        GetConfigurationForm,
        ChangeConfigurationForm,
        ChangeAvailabilityForm,
        UnlockConnectorForm,
        RemoteStartForm,
        RemoteStopForm,
        ClearCacheForm,
        SendLocalListForm,
        GetLocalListVersionForm,
        GetBaseReportForm,
    )
}


def command_kinds_for(station: Station) -> list[str]:
    """The kinds the station page offers: those of its OCPP version, and only
    configuration and trigger commands while the station is not Accepted."""
    version = _version(station)
    kinds = [k for k in COMMAND_FORMS if version in COMMAND_KINDS[k].versions]
    if station.registration_status != RegistrationStatus.ACCEPTED:
        kinds = [k for k in kinds if k in KINDS_ALLOWED_WHEN_PENDING]
    return kinds


class SessionFilterForm(forms.Form):
    """The Sessions page's filters (GET). Stations are the user's, in the current CPO."""

    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    station = forms.ModelChoiceField(
        queryset=Station.objects.none(), required=False, empty_label="All stations"
    )
    tag = forms.CharField(label="ID tag", required=False, max_length=36)
    state = forms.ChoiceField(required=False)

    def __init__(self, *args, stations, states, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["station"].queryset = stations.only("pk", "cbid", "name").order_by("cbid")
        self.fields["state"].choices = [("", "Any state"), *states]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return data


class IdTagForm(forms.Form):
    """An ID tag's values; `stations.services.id_tag_registry` checks the rules and saves."""

    tag = forms.CharField(
        label="ID tag",
        max_length=36,
        help_text="The card's or token's id, as the charger sends it (case does not matter).",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    label = forms.CharField(
        label="Label", max_length=100, required=False, help_text="Van 12, Alice's card"
    )
    status = forms.ChoiceField(label="Status", choices=IdTag.Status.choices)
    token_type = forms.ChoiceField(
        label="Token type (OCPP 2.x)",
        choices=[("", "Any type"), *IdTag.TokenType.choices],
        required=False,
    )
    expiry_date = forms.DateTimeField(
        label="Expires",
        required=False,
        help_text="Empty: never.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    parent_id_tag = forms.CharField(
        label="Group (parent) ID",
        max_length=20,
        required=False,
        help_text="Tags of one group may stop each other's sessions; blocking the group's "
        "own tag blocks them all.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A time without an offset is read in the time zone the panel is showing.
        zone = timezone.get_current_timezone_name()
        self.fields["expiry_date"].help_text = f"Empty: never. Time zone: {zone}."

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.fields}

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        for name, messages in errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)


class IdTagImportForm(forms.Form):
    """Step one of an import: the file to preview."""

    file = forms.FileField(label="CSV file")


class CpoTagSettingsForm(forms.Form):
    one_session_per_tag = forms.BooleanField(
        label="One session at a time per ID tag",
        required=False,
        help_text="A tag already in a running session is refused elsewhere (ConcurrentTx).",
    )
