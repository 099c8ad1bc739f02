"""`manage.py stations pool`, `manage.py stations assign CBID --cpo NAME` and
`manage.py stations password CBID`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from cpo.services import CpoError, cpo_get
from stations.models import Station
from stations.services.claiming import ClaimError, station_assign
from stations.services.passwords import station_password_issue


class Command(BaseCommand):
    help = (
        "Stations for system administrators: list the pool, assign a station to a CPO, "
        "issue a charger password."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        sub.add_parser("pool", help="List the stations in the pool (no CPO).")
        assign = sub.add_parser("assign", help="Assign a station to a CPO.")
        assign.add_argument("cbid", help="the station's CBID (any case)")
        assign.add_argument("--cpo", required=True, help="CPO name (any case)")
        password = sub.add_parser(
            "password",
            help="Issue a charger (Basic-auth) password; shown once. A connected charger is "
            "sent it and keeps its old one until it confirms.",
        )
        password.add_argument("cbid", help="the station's CBID (any case)")

    def handle(self, *args, **options) -> None:
        if options["action"] == "pool":
            self._pool()
        elif options["action"] == "password":
            self._password(cbid=options["cbid"])
        else:
            self._assign(cbid=options["cbid"], cpo_name=options["cpo"])

    def _password(self, *, cbid: str) -> None:
        station = Station.objects.by_cbid(cbid).first()
        if station is None:
            raise CommandError(f"No station with the CBID “{cbid.strip()}”.")
        try:
            issued = station_password_issue(station=station, user=None)
        except ValueError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"{station.cbid}: {issued.password}")
        if issued.sent_to_charger:
            self.stdout.write(
                "Sent to the connected charger; its old password works until it confirms."
            )
        else:
            self.stdout.write("The charger is offline: configure it with this password.")

    def _pool(self) -> None:
        stations = Station.objects.in_pool().order_by("created_at", "id")
        if not stations:
            self.stdout.write("The pool is empty.")
            return
        self.stdout.write(f"{'CBID':<30} {'online':<7} {'vendor / model':<32} first connected")
        for station in stations:
            first = station.first_connected_at
            first_text = f"{timezone.localtime(first):%Y-%m-%d %H:%M}" if first else "-"
            vendor_model = f"{station.vendor} {station.model}".strip()[:32]
            online = "yes" if station.connected else "no"
            self.stdout.write(f"{station.cbid:<30} {online:<7} {vendor_model:<32} {first_text}")

    def _assign(self, *, cbid: str, cpo_name: str) -> None:
        station = Station.objects.by_cbid(cbid).select_related("cpo").first()
        if station is None:
            raise CommandError(f"No station with the CBID “{cbid.strip()}”.")
        try:
            cpo = cpo_get(name=cpo_name)
        except CpoError as exc:
            raise CommandError(exc.message)
        previous = station.cpo
        if previous is not None and previous.pk == cpo.pk:
            raise CommandError(f"{station.cbid} is already in {cpo.name}.")
        try:
            station = station_assign(station=station, cpo=cpo, by=None, source="cli")
        except ClaimError as exc:
            raise CommandError(exc.message)
        self.stdout.write(
            self.style.SUCCESS(
                f"{station.cbid}: {previous.name if previous else 'pool'} → {cpo.name}."
            )
        )
