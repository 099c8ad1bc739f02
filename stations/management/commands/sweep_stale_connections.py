"""Mark offline the stations whose daphne process died without a disconnect, and finish
the commands whose outcome can no longer come.

Run from cron, or at start-up before daphne with --unheld: each live process also sweeps
every OCPP_LIVENESS_INTERVAL seconds (ocpp_gateway.liveness), so this only matters when no
gateway process is running at all. Another server may be running on the same database
(a second `make run`, a production process): --unheld leaves alone every station a live
process still refreshes, whatever this process is about to find out about its port.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from stations.services.commands import command_expire_stale
from stations.services.liveness import (
    stale_cutoff,
    station_sweep_stale_connections,
    unheld_cutoff,
)


class Command(BaseCommand):
    help = "Mark offline the stations still shown connected but not seen for a while."

    def add_arguments(self, parser) -> None:
        age = parser.add_mutually_exclusive_group()
        age.add_argument(
            "--unheld",
            action="store_true",
            help="every station no live process holds: not refreshed for 1.5 × "
            "OCPP_LIVENESS_INTERVAL (at start-up, instead of --older-than 0)",
        )
        age.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="seconds without last_seen (default: OCPP_LIVENESS_INTERVAL × "
            "OCPP_LIVENESS_STALE_AFTER)",
        )

    def handle(self, *args, older_than: float | None, unheld: bool, **options) -> None:
        if unheld:
            cutoff = unheld_cutoff()
        elif older_than is None:
            cutoff = stale_cutoff()
        else:
            cutoff = timezone.now() - timedelta(seconds=older_than)
        swept = station_sweep_stale_connections(stale_before=cutoff)
        self.stdout.write(f"Marked {swept} stale station connection(s) offline.")
        expired = command_expire_stale()
        if expired:
            self.stdout.write(f"Finished {expired} command(s) whose outcome can no longer come.")
