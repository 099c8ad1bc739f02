from django.conf import settings
from django.core.management.base import BaseCommand

from alerts.services.worker import worker_run


class Command(BaseCommand):
    help = (
        "Evaluate alert rules and deliver notifications, every ALERTS_INTERVAL seconds. "
        "Several may run: one is active (PostgreSQL advisory lock), the others stand by."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one round, then exit")

    def handle(self, *args, once: bool = False, **options):
        worker_run(interval=settings.ALERTS_INTERVAL, once=once)
