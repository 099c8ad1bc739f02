from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from cpo.models import Cpo, Membership
from ocpp_spec.meter import ENERGY_REGISTER, POWER_IMPORT


class Protocol(models.TextChoices):
    ENSTO = "ensto", "Ensto"
    OCPP = "ocpp", "OCPP"
    REMOTEC = "remotec", "Remotec"


class OcppVersion(models.TextChoices):
    V16 = "1.6", "OCPP 1.6J"
    V201 = "2.0.1", "OCPP 2.0.1"
    V21 = "2.1", "OCPP 2.1"


class RegistrationStatus(models.TextChoices):
    PENDING = "Pending", "Pending"
    ACCEPTED = "Accepted", "Accepted"
    REJECTED = "Rejected", "Rejected"


class StationQuerySet(models.QuerySet):
    def for_user(self, user) -> StationQuerySet:
        """Stations the user may see: those of the CPOs they belong to.

        Superusers see every station, the pool (no CPO) included.
        Anonymous users see nothing.
        """
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            cpo__in=Membership.objects.filter(user=user).values("cpo_id"),
        )

    def by_cbid(self, cbid: str) -> StationQuerySet:
        """The station with this CBID, whatever its case (uses the Lower(cbid) index)."""
        return self.alias(cbid_lower=Lower("cbid")).filter(cbid_lower=cbid.strip().lower())

    def in_pool(self) -> StationQuerySet:
        return self.filter(cpo__isnull=True)

    def online(self) -> StationQuerySet:
        return self.filter(connected=True)

    def visible(self) -> StationQuerySet:
        """Stations customers may see (the public map)."""
        return self.filter(visible=True, cpo__isnull=False)

    def connected_since(self, days: int) -> StationQuerySet:
        since = timezone.now() - timedelta(days=days)
        return self.filter(Q(connected=True) | Q(last_seen__gte=since))


class Station(models.Model):
    """One charger, identified by its CBID (the OCPP identity)."""

    cbid = models.CharField("CBID", max_length=48)
    protocol = models.CharField(max_length=10, choices=Protocol.choices, default=Protocol.OCPP)
    ocpp_version = models.CharField(
        "OCPP version", max_length=8, choices=OcppVersion.choices, blank=True
    )
    cpo = models.ForeignKey(
        Cpo,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="stations",
        verbose_name="CPO",
    )
    name = models.CharField(max_length=100, blank=True)
    # The station's identity outside the panel (the public JSON API): random, so it tells
    # neither the CBID nor how many stations there are.
    public_id = models.UUIDField("public ID", default=uuid.uuid4, unique=True, editable=False)

    # What the charger told at boot. Generous lengths: real firmware sends over-long strings.
    vendor = models.CharField(max_length=255, blank=True)
    model = models.CharField(max_length=255, blank=True)
    serial_number = models.CharField("charge point serial", max_length=255, blank=True)
    charge_box_serial_number = models.CharField(max_length=255, blank=True)
    firmware_version = models.CharField(max_length=255, blank=True)
    iccid = models.CharField("ICCID", max_length=255, blank=True)
    imsi = models.CharField("IMSI", max_length=255, blank=True)
    meter_type = models.CharField(max_length=255, blank=True)
    meter_serial_number = models.CharField(max_length=255, blank=True)
    boot_reason = models.CharField(max_length=50, blank=True)
    last_boot_at = models.DateTimeField(null=True, blank=True)

    registration_status = models.CharField(
        max_length=10, choices=RegistrationStatus.choices, default=RegistrationStatus.PENDING
    )
    # Station-level status (StatusNotification on connector 0).
    status = models.CharField(max_length=30, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    status_info = models.CharField(max_length=255, blank=True)
    status_updated_at = models.DateTimeField(null=True, blank=True)

    # Connection state. `channel_name` names the consumer holding the socket (any process).
    connected = models.BooleanField(default=False)
    connected_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    first_connected_at = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    channel_name = models.CharField(max_length=200, blank=True)

    # Security profile 1/2 (HTTP Basic auth); empty hash = no password required.
    auth_password_hash = models.CharField(max_length=256, blank=True)
    # A rotated password not yet confirmed by the charger: both verify until it is.
    auth_password_pending_hash = models.CharField(max_length=256, blank=True)
    security_profile = models.PositiveSmallIntegerField(default=0)
    # When the charger first logged in with its current password; None: it has not yet
    # (the panel says "no password yet" until it has).
    auth_password_used_at = models.DateTimeField(null=True, blank=True)
    # Source address of the handshake that created the station (pool spam limits).
    created_from_addr = models.CharField(max_length=64, blank=True)
    # Source address of the last handshake admitted: never locked out by others' failures.
    connected_from_addr = models.CharField(max_length=64, blank=True)
    # Strict: OCPP schemas enforced as written. Lenient: unknown fields and over-long
    # strings from broken firmware accepted and logged.
    lenient_validation = models.BooleanField(default=False)

    # Settings staff edit after claiming.
    free_usage = models.BooleanField(default=False)
    reservation_enabled = models.BooleanField(default=False)
    visible = models.BooleanField("visible to customers", default=False)
    street = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)

    # The local authorization list as the backend believes the charger holds it (the
    # entries of the last list it accepted; stations.services.local_list), its version,
    # the outcome of the last SendLocalList and the version the charger last reported.
    local_list = models.JSONField(default=dict, blank=True)
    local_list_version = models.IntegerField("local list version", null=True, blank=True)
    local_list_status = models.CharField("local list status", max_length=20, blank=True)
    local_list_reported_version = models.IntegerField(null=True, blank=True)
    local_list_updated_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField("date added", auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(Lower("cbid"), name="station_cbid_ci_unique"),
        ]
        indexes = [
            models.Index(fields=["cpo", "-created_at"], name="station_cpo_created_idx"),
            models.Index(fields=["created_from_addr", "created_at"], name="station_origin_idx"),
        ]

    def __str__(self) -> str:
        return self.name or self.cbid

    @property
    def has_address(self) -> bool:
        return bool(self.street and self.city and self.country)

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


class Connector(models.Model):
    """A connector of a station. 1.6 numbers connectors; 2.0.1 numbers them within an EVSE."""

    class PlugType(models.TextChoices):
        TYPE2 = "type2", "Type 2"
        TYPE2_CABLE = "type2_cable", "Type 2 (tethered cable)"
        CCS = "ccs", "CCS Combo 2"
        CHADEMO = "chademo", "CHAdeMO"
        TYPE1 = "type1", "Type 1"
        SCHUKO = "schuko", "Schuko"
        OTHER = "other", "Other"

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="connectors")
    # None for OCPP 1.6, the EVSE id for OCPP 2.x.
    evse_id = models.PositiveIntegerField(null=True, blank=True)
    connector_id = models.PositiveIntegerField()
    status = models.CharField(max_length=30, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    info = models.CharField(max_length=255, blank=True)
    vendor_id = models.CharField(max_length=255, blank=True)
    vendor_error_code = models.CharField(max_length=255, blank=True)
    status_timestamp = models.DateTimeField(null=True, blank=True)
    plug_type = models.CharField(max_length=20, choices=PlugType.choices, blank=True)
    max_power_kw = models.DecimalField(
        "maximum power (kW)", max_digits=7, decimal_places=1, null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["evse_id", "connector_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "connector_id"],
                condition=Q(evse_id__isnull=True),
                name="connector_v16_unique",
            ),
            models.UniqueConstraint(
                fields=["station", "evse_id", "connector_id"],
                condition=Q(evse_id__isnull=False),
                name="connector_v2_unique",
            ),
        ]

    def __str__(self) -> str:
        if self.evse_id is None:
            return f"{self.station.cbid} #{self.connector_id}"
        return f"{self.station.cbid} EVSE {self.evse_id} #{self.connector_id}"

    @property
    def label(self) -> str:
        if self.evse_id is None:
            return str(self.connector_id)
        return f"{self.evse_id}/{self.connector_id}"


class AuthorizationStatus(models.TextChoices):
    """The backend's verdict on a token (1.6 AuthorizationStatus, 2.x its subset we give)."""

    ACCEPTED = "Accepted", "Accepted"
    BLOCKED = "Blocked", "Blocked"
    EXPIRED = "Expired", "Expired"
    INVALID = "Invalid", "Invalid"
    CONCURRENT_TX = "ConcurrentTx", "Already in a running session"


class IdTagQuerySet(models.QuerySet):
    def for_user(self, user) -> IdTagQuerySet:
        """Tags the user may see: those of the CPOs they belong to (superusers: all)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(
            cpo__in=Membership.objects.filter(user=user).values("cpo_id"),
        )

    def by_tag(self, tag: str) -> IdTagQuerySet:
        """The tag with this value, whatever its case (uses the Lower(tag) constraint's index)."""
        return self.alias(tag_lower=Lower("tag")).filter(tag_lower=tag.lower())


class IdTag(models.Model):
    """An authorisation token (RFID card, app id) a CPO accepts.

    The value is unique within the CPO whatever its case (OCPP id tags are CiStrings).
    `status` is what staff set; "Expired" is derived from `expiry_date`, never stored.
    """

    class Status(models.TextChoices):
        ACCEPTED = "Accepted", "Accepted"
        BLOCKED = "Blocked", "Blocked"

    class TokenType(models.TextChoices):
        """2.x IdTokenEnumType; blank: any type matches (and 1.6 has none)."""

        ISO14443 = "ISO14443", "ISO 14443 (RFID)"
        ISO15693 = "ISO15693", "ISO 15693 (RFID)"
        EMAID = "eMAID", "eMAID (contract id)"
        CENTRAL = "Central", "Central"
        KEY_CODE = "KeyCode", "Key code"
        LOCAL = "Local", "Local"
        MAC_ADDRESS = "MacAddress", "MAC address"
        NO_AUTHORIZATION = "NoAuthorization", "No authorization"

    cpo = models.ForeignKey(
        Cpo, on_delete=models.CASCADE, related_name="id_tags", verbose_name="CPO"
    )
    # 1.6 idTag is at most 20 characters, 2.0.1 idToken at most 36.
    tag = models.CharField("ID tag", max_length=36)
    token_type = models.CharField(
        "token type",
        max_length=20,
        choices=TokenType.choices,
        blank=True,
        help_text="OCPP 2.x idToken type; blank: any type",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACCEPTED)
    expiry_date = models.DateTimeField("expires", null=True, blank=True)
    # The group the tag belongs to (1.6 parentIdTag, 2.x groupIdToken).
    parent_id_tag = models.CharField("group (parent) ID", max_length=20, blank=True)
    label = models.CharField(max_length=100, blank=True, help_text="Van 12, Alice's card")
    created_at = models.DateTimeField(auto_now_add=True)
    # Written at most about once a minute per tag (stations.services.id_tags).
    last_used_at = models.DateTimeField("last used", null=True, blank=True)

    objects = IdTagQuerySet.as_manager()

    class Meta:
        ordering = ["tag"]
        verbose_name = "ID tag"
        constraints = [
            models.UniqueConstraint("cpo", Lower("tag"), name="idtag_cpo_tag_ci_unique"),
        ]
        indexes = [
            models.Index(fields=["cpo", "tag"], name="idtag_cpo_tag_idx"),
        ]

    def __str__(self) -> str:
        return self.tag

    @property
    def is_expired(self) -> bool:
        return self.expiry_date is not None and self.expiry_date <= timezone.now()

    @property
    def effective_status(self) -> str:
        """Accepted, Blocked or Expired (an Accepted tag past its expiry)."""
        if self.status == self.Status.ACCEPTED and self.is_expired:
            return AuthorizationStatus.EXPIRED
        return self.status


class TransactionQuerySet(models.QuerySet):
    def with_signed_values(self) -> TransactionQuerySet:
        """Annotate `has_signed_values`: whether any sample of the session carries a signature."""
        signed = MeterValue.objects.filter(transaction=models.OuterRef("pk")).exclude(
            signed_data=""
        )
        return self.annotate(has_signed_values=models.Exists(signed))

    def with_latest_power(self) -> TransactionQuerySet:
        """Annotate `latest_power_w`: the session's last total active import power sample
        (W), None when it sent none (one probe of metervalue_tx_time_idx each)."""
        power = (
            MeterValue.objects.filter(
                transaction=models.OuterRef("pk"),
                measurand=POWER_IMPORT,
                normalized_unit="W",
                phase="",
            )
            .order_by("-timestamp", "-id")
            .values("normalized_value")[:1]
        )
        return self.annotate(latest_power_w=models.Subquery(power))


class Transaction(models.Model):
    """A charging session, from either OCPP version.

    OCPP 1.6: the backend assigns the integer transactionId (this row's pk).
    OCPP 2.x: the charger assigns a string transactionId (`charger_transaction_id`).

    Times are the charger's; `*_received_at` say when the backend got the message. The
    meter fields are the energy register in Wh: `meter_stop` and `energy_wh` are set
    when the session ends (see `stations.services.charging_sessions`); a running session's energy
    so far comes from `transaction_energy_so_far`. The flags say why a session needs a
    second look before it is billed; none of them stops it from being recorded.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="transactions")
    connector = models.ForeignKey(
        Connector, on_delete=models.SET_NULL, null=True, blank=True, related_name="transactions"
    )
    charger_transaction_id = models.CharField(max_length=36, blank=True)
    # OCPP 1.6: the transactionId of a StopTransaction for a transaction the backend never
    # started (-1 per the 1.6 errata, or an id from before a database restore).
    orphan_transaction_id = models.BigIntegerField(null=True, blank=True)
    id_tag = models.CharField(max_length=36, blank=True)
    id_tag_status = models.CharField(max_length=20, blank=True)
    stop_id_tag = models.CharField(max_length=36, blank=True)
    reservation_id = models.IntegerField(null=True, blank=True)
    # OCPP 2.x: the id the backend gave RequestStartTransaction (links a session to it).
    remote_start_id = models.IntegerField(null=True, blank=True)
    # OCPP 2.1: the tariff the charger applies (transactionInfo.tariffId).
    tariff_id = models.CharField(max_length=60, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    start_time = models.DateTimeField(null=True, blank=True)
    stop_time = models.DateTimeField(null=True, blank=True)
    start_received_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the start (1.6 StartTransaction, 2.x Started) arrived",
    )
    stop_received_at = models.DateTimeField(
        null=True, blank=True, help_text="When the stop (1.6 StopTransaction, 2.x Ended) arrived"
    )
    meter_start = models.BigIntegerField("meter start (Wh)", null=True, blank=True)
    meter_stop = models.BigIntegerField("meter stop (Wh)", null=True, blank=True)
    energy_wh = models.BigIntegerField("energy (Wh)", null=True, blank=True)
    stop_reason = models.CharField(max_length=50, blank=True)
    # OCPP 2.x TransactionEvent bookkeeping: the lowest and highest seqNo received and how
    # many distinct ones, which tells whether events are missing.
    first_seq_no = models.IntegerField(null=True, blank=True)
    last_seq_no = models.IntegerField(null=True, blank=True)
    seq_no_count = models.IntegerField(default=0)
    offline = models.BooleanField(default=False)
    # The session's stop arrived but its start never did.
    orphan_stop = models.BooleanField(default=False)
    # Messages of the session are missing: its start, its stop (superseded), or 2.x
    # events between the Started and the last seqNo.
    incomplete = models.BooleanField(default=False)
    # The energy register went backwards during the session (meter reset or replaced):
    # energy_wh counts only the register's forward steps.
    meter_reset = models.BooleanField(default=False)
    # Closed by the backend because a newer session started on the same connector/EVSE
    # before this one's stop arrived: stop_time is the newer one's start.
    superseded = models.BooleanField(default=False)
    superseded_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Closed by the backend because its stop never arrived: the connector reported
    # Available, or the station booted again, while it was still active. stop_time is
    # that moment; a stop arriving later replaces it.
    never_stopped = models.BooleanField(default=False)
    # A time the charger gave for this session lies far in the future of its receipt, or
    # before the charger first connected: the charger's clock was wrong.
    suspicious_timestamp = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TransactionQuerySet.as_manager()

    class Meta:
        ordering = ["-start_time", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "charger_transaction_id"],
                condition=~Q(charger_transaction_id=""),
                name="transaction_charger_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["station", "state"], name="transaction_station_state_idx"),
            # The session a connector's status falls in (the last one started before it):
            # one index probe, however many sessions the connector has had.
            models.Index(fields=["connector", "start_time"], name="transaction_conn_start_idx"),
            # The Sessions page: newest first by keyset (sort time, id), whole CPO or one
            # station; see stations.services.session_list.
            models.Index(
                Coalesce("start_time", "created_at").desc(),
                models.F("id").desc(),
                name="transaction_sort_idx",
            ),
            models.Index(
                "station",
                Coalesce("start_time", "created_at").desc(),
                models.F("id").desc(),
                name="transaction_station_sort_idx",
            ),
            # The running sessions of a tag (ConcurrentTx): few rows, whatever the history.
            models.Index(
                Lower("id_tag"),
                condition=Q(state="active"),
                name="transaction_active_tag_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.ocpp_id

    @property
    def ocpp_id(self) -> str:
        """The transactionId the charger knows."""
        if self.charger_transaction_id:
            return self.charger_transaction_id
        if self.orphan_transaction_id is not None:
            return str(self.orphan_transaction_id)
        return str(self.pk)


class TransactionEvent(models.Model):
    """One event of a session, in the charger's time: its state-change history.

    OCPP 2.x: every TransactionEvent (Started, Updated, Ended) with its seqNo, trigger,
    charging state and 2.1 cost details; a (transaction, seqNo) seen before is a resent
    copy. OCPP 1.6: the StartTransaction, the StopTransaction and the connector's
    StatusNotifications between them. `charging_state` is the one vocabulary of both
    (2.x ChargingStateEnumType; 1.6 statuses mapped onto it), blank when the event did
    not change it. The backend's own closing of a superseded session is an event too.
    """

    class Kind(models.TextChoices):
        STARTED = "Started", "Started"
        UPDATED = "Updated", "Updated"
        ENDED = "Ended", "Ended"
        STATUS = "Status", "Connector status"
        SUPERSEDED = "Superseded", "Superseded by a newer session"
        NEVER_STOPPED = "NoStop", "Closed: its stop never arrived"

    class ChargingState(models.TextChoices):
        CHARGING = "Charging", "Charging"
        EV_CONNECTED = "EVConnected", "EV connected, not charging"
        SUSPENDED_EV = "SuspendedEV", "Suspended by the EV"
        SUSPENDED_EVSE = "SuspendedEVSE", "Suspended by the charger"
        IDLE = "Idle", "Idle"

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    seq_no = models.IntegerField(null=True, blank=True)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    trigger_reason = models.CharField(max_length=40, blank=True)
    charging_state = models.CharField(max_length=20, blank=True)
    # OCPP 1.6: the connector status as sent (Charging, SuspendedEV, Finishing…).
    connector_status = models.CharField(max_length=30, blank=True)
    time_spent_charging = models.IntegerField("time spent charging (s)", null=True, blank=True)
    remote_start_id = models.IntegerField(null=True, blank=True)
    stopped_reason = models.CharField(max_length=50, blank=True)
    id_token = models.CharField(max_length=255, blank=True)
    id_token_type = models.CharField(max_length=20, blank=True)
    offline = models.BooleanField(default=False)
    tariff_id = models.CharField(max_length=60, blank=True)
    cost_details = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["timestamp", "seq_no", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["transaction", "seq_no"],
                condition=Q(seq_no__isnull=False),
                name="transactionevent_seq_no_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["transaction", "timestamp"], name="transactionevent_tx_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.transaction_id} {self.kind} {self.seq_no if self.seq_no is not None else ''}"


class MeterValue(models.Model):
    """One sampled value from MeterValues, StopTransaction or TransactionEvent.

    `value` is the number as the charger sent it (2.x: before `multiplier`); unit,
    measurand, context and location hold what was sent or, when left out, the OCPP
    default (the same rule for every version: `stations.services.meter_values`).
    `normalized_value` is the value in `normalized_unit`, the unit without prefix
    (Wh, W, varh, A…). A signed value (1.6 format SignedData, 2.x signedMeterValue) is
    kept verbatim in the `signed_*`/`public_key` fields, as long as its session.
    """

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="meter_values")
    transaction = models.ForeignKey(
        Transaction,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="meter_values",
    )
    connector_id = models.PositiveIntegerField(null=True, blank=True)
    evse_id = models.PositiveIntegerField(null=True, blank=True)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(null=True, blank=True)
    measurand = models.CharField(max_length=60, default=ENERGY_REGISTER)
    phase = models.CharField(max_length=10, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    multiplier = models.SmallIntegerField(default=0)
    context = models.CharField(max_length=30, blank=True)
    location = models.CharField(max_length=20, blank=True)
    value = models.CharField(max_length=2500)
    # The value as a number when it is one (1.6 sends strings), as sent.
    numeric_value = models.FloatField(null=True, blank=True)
    normalized_value = models.FloatField(null=True, blank=True)
    normalized_unit = models.CharField(max_length=20, blank=True)
    signed_data = models.TextField(blank=True)
    signing_method = models.CharField(max_length=50, blank=True)
    encoding_method = models.CharField(max_length=50, blank=True)
    public_key = models.TextField(blank=True)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(fields=["transaction", "timestamp"], name="metervalue_tx_time_idx"),
            models.Index(fields=["station", "timestamp"], name="metervalue_station_time_idx"),
            models.Index(
                fields=["transaction"],
                condition=~Q(signed_data=""),
                name="metervalue_signed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.measurand}={self.value}{self.unit}"

    @property
    def is_signed(self) -> bool:
        return bool(self.signed_data)


class OcppMessage(models.Model):
    """One OCPP-J frame, in or out, for the station log."""

    class Direction(models.TextChoices):
        IN = "in", "Charger → backend"
        OUT = "out", "Backend → charger"

    station = models.ForeignKey(
        Station, on_delete=models.CASCADE, related_name="messages", null=True, blank=True
    )
    cbid = models.CharField(max_length=48, blank=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    # 2 CALL, 3 CALLRESULT, 4 CALLERROR; null for a frame that could not be parsed.
    message_type = models.PositiveSmallIntegerField(null=True, blank=True)
    action = models.CharField(max_length=60, blank=True)
    unique_id = models.CharField(max_length=100, blank=True)
    payload = models.JSONField(null=True, blank=True)
    # The frame as received when it was not valid JSON (truncated).
    raw = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["station", "-created_at"], name="ocppmessage_station_time_idx"),
            models.Index(fields=["created_at"], name="ocppmessage_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.cbid} {self.direction} {self.message_type} {self.action} {self.unique_id}"


class ConnectionAttempt(models.Model):
    """A refused websocket handshake, for system administrators."""

    class Reason(models.TextChoices):
        BAD_CBID = "bad_cbid", "Invalid CBID"
        BAD_PATH = "bad_path", "Not an OCPP path"
        UNSUPPORTED_SUBPROTOCOL = "unsupported_subprotocol", "No supported OCPP subprotocol"
        BAD_PASSWORD = "bad_password", "Wrong credentials"
        # Not a password guess: never counted towards a lock-out.
        NO_CREDENTIALS = "no_credentials", "No credentials sent"
        UNKNOWN_CBID = "unknown_cbid", "Unknown CBID (unknown stations not allowed)"
        PLAIN_WS = "plain_ws", "Security profile requires TLS"
        RATE_LIMITED = "rate_limited", "Too many attempts"
        POOL_FULL = "pool_full", "Pool limit reached"
        PROTOCOL_MISMATCH = "protocol_mismatch", "CBID registered for another protocol"
        LIVE_CONNECTION = "live_connection", "Live connection kept (station has no password)"

    cbid = models.CharField("CBID", max_length=100, blank=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=30, choices=Reason.choices)
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Refusals are aggregated (per address, reason and minute) so spam cannot flood the table.
    count = models.PositiveIntegerField(default=1)
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="connattempt_time_idx"),
            models.Index(
                fields=["remote_addr", "reason", "created_at"], name="connattempt_addr_idx"
            ),
            models.Index(fields=["cbid", "reason", "created_at"], name="connattempt_cbid_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.cbid or '?'} refused: {self.get_reason_display()}"


class StationAssignment(models.Model):
    """Audit trail: every time a station's CPO is set or changed."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="assignments")
    from_cpo = models.ForeignKey(
        Cpo, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_cpo = models.ForeignKey(
        Cpo, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Names kept as text too: the audit trail outlives a deleted CPO or user.
    from_cpo_name = models.CharField(max_length=100, blank=True)
    to_cpo_name = models.CharField(max_length=100, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    by_username = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=20, default="panel")  # panel / admin / cli
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.station.cbid}: {self.from_cpo_name or 'pool'} → {self.to_cpo_name or 'pool'}"


class Command(models.Model):
    """A CALL to a charger, asked for from the panel: the durable record of it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        ERROR = "error", "Error"
        TIMED_OUT = "timed_out", "Timed out"
        OFFLINE = "offline", "Offline"

    FINAL_STATUSES = (
        Status.ACCEPTED,
        Status.REJECTED,
        Status.ERROR,
        Status.TIMED_OUT,
        Status.OFFLINE,
    )

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="commands")
    action = models.CharField(max_length=60)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    response = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["station", "-created_at"], name="command_station_time_idx"),
            # The open ones, which the liveness tick finishes when they are stale.
            models.Index(
                fields=["status", "created_at"],
                condition=Q(status__in=["queued", "sent"]),
                name="command_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} → {self.station.cbid} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES


class StationVariable(models.Model):
    """A configuration key (1.6) or component variable (2.x) the charger reported."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="variables")
    component = models.CharField(max_length=50, blank=True)
    component_instance = models.CharField(max_length=50, blank=True)
    evse_id = models.PositiveIntegerField(null=True, blank=True)
    connector_id = models.PositiveIntegerField(null=True, blank=True)
    variable = models.CharField(max_length=100)
    variable_instance = models.CharField(max_length=50, blank=True)
    attribute_type = models.CharField(max_length=10, default="Actual")
    value = models.CharField(max_length=2500, blank=True)
    mutability = models.CharField(max_length=10, blank=True)
    data_type = models.CharField(max_length=20, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["component", "variable"]

    def __str__(self) -> str:
        return f"{self.component}.{self.variable}={self.value}"
