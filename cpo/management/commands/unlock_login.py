"""`manage.py unlock_login USERNAME [--address IP]`: let a locked-out user log in again."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cpo.throttle import login_counters_shared, login_unlock


class Command(BaseCommand):
    help = (
        "Lift the panel's login lock of a username (and/or a client address) that too many "
        "failed logins locked, and forget its failures."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="?", default="", help="the locked username")
        parser.add_argument("--address", default="", help="a locked client IP address")

    def handle(self, *args, username: str, address: str, **options) -> None:
        username = username.strip()
        if not username and not address:
            raise CommandError("Name a username, an --address, or both.")
        if not login_counters_shared():
            # Each server process counts in its own memory: this process sees none of it.
            raise CommandError(
                "Without REDIS_URL the login counters live in each server process's memory, "
                "out of this command's reach: use Django admin (Users → Unlock panel logins) "
                "or restart the server."
            )
        try:
            was_locked = login_unlock(username=username, address=address)
        except ValueError:
            raise CommandError(f"“{address}” is not an IP address.")
        if username and not get_user_model().objects.filter(username__iexact=username).exists():
            self.stderr.write(self.style.WARNING(f"No user “{username}” (its counter is cleared)."))
        what = " and ".join(x for x in (username, address) if x)
        state = "was locked" if was_locked else "was not locked"
        self.stdout.write(self.style.SUCCESS(f"Logins for {what} unlocked ({state})."))
