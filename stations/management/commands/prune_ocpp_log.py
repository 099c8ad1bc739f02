"""Delete OCPP message log rows older than the retention period."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from stations.models import OcppMessage


class Command(BaseCommand):
    help = (
        "Delete OCPP message log rows older than --days "
        "(default OCPP_LOG_RETENTION_DAYS), in batches."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep this many days of log (default: settings.OCPP_LOG_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=5000,
            help="Rows deleted per statement (default 5000).",
        )

    def handle(self, *args, days: int | None, batch_size: int, **options) -> None:
        days = settings.OCPP_LOG_RETENTION_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be 0 or more.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        cutoff = timezone.now() - timedelta(days=days)
        old = OcppMessage.objects.filter(created_at__lt=cutoff)
        deleted = 0
        # Small batches: one huge DELETE would hold locks (and the log table is busy
        # with the gateway's inserts) and bloat the transaction log.
        while True:
            ids = list(old.order_by("created_at").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            count, _ = OcppMessage.objects.filter(pk__in=ids).delete()
            deleted += count
        self.stdout.write(f"Deleted {deleted} OCPP log rows older than {days} days.")
