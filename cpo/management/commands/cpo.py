"""`manage.py cpo create NAME` and `manage.py cpo add-member CPO USERNAME --role ROLE`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cpo.models import Membership
from cpo.services import CpoError, cpo_create, cpo_get, cpo_member_add


class Command(BaseCommand):
    help = "Manage CPOs (charge point operators) and their members."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        create = sub.add_parser("create", help="Create a CPO.")
        create.add_argument("name")
        member = sub.add_parser("add-member", help="Give a user a role in a CPO.")
        member.add_argument("cpo", help="CPO name (any case)")
        member.add_argument("username")
        member.add_argument("--role", required=True, choices=Membership.Role.values)
        member.add_argument(
            "--create-user", action="store_true", help="create the user when it does not exist"
        )
        member.add_argument("--password", help="password of a user created with --create-user")

    def handle(self, *args, **options) -> None:
        try:
            if options["action"] == "create":
                cpo = cpo_create(name=options["name"])
                self.stdout.write(self.style.SUCCESS(f"Created CPO “{cpo.name}” (id {cpo.pk})."))
            else:
                cpo = cpo_get(name=options["cpo"])
                existed = (
                    get_user_model().objects.filter(username=options["username"].strip()).exists()
                )
                membership = cpo_member_add(
                    cpo=cpo,
                    username=options["username"],
                    role=options["role"],
                    create_user=options["create_user"],
                    password=options["password"],
                )
                if existed and options["password"]:
                    # Never reset a password as a side effect of a membership change.
                    self.stderr.write(
                        self.style.WARNING("The user exists: its password was left unchanged.")
                    )
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{membership.user.get_username()} is {membership.role} of {cpo.name}."
                    )
                )
        except CpoError as exc:
            raise CommandError(exc.message)
