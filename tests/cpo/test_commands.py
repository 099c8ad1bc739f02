"""The CLI: `manage.py cpo ...` and `manage.py stations ...`, on the same services."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from cpo.models import Cpo, Membership
from stations.models import RegistrationStatus, Station, StationAssignment
from tests.factories import make_station, make_user

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_cpo_create_makes_a_cpo():
    output = run("cpo", "create", "  Helen Charging ")

    assert Cpo.objects.get().name == "Helen Charging"
    assert "Created CPO “Helen Charging”" in output


def test_cpo_create_refuses_a_name_taken_in_another_case(cpo_a):
    with pytest.raises(CommandError, match="already exists"):
        run("cpo", "create", "cpo a")

    assert Cpo.objects.count() == 1


def test_add_member_gives_an_existing_user_a_role(cpo_a):
    make_user("dave")

    output = run("cpo", "add-member", "cpo a", "dave", "--role", "technician")

    membership = Membership.objects.get(user__username="dave")
    assert (membership.cpo, membership.role) == (cpo_a, Membership.Role.TECHNICIAN)
    assert "dave is technician of CPO A" in output


def test_add_member_changes_the_role_of_a_member(alice, cpo_a):
    make_user("dave")
    run("cpo", "add-member", "CPO A", "dave", "--role", "admin")

    run("cpo", "add-member", "CPO A", "alice", "--role", "viewer")

    assert Membership.objects.get(user=alice, cpo=cpo_a).role == Membership.Role.VIEWER


def test_add_member_never_demotes_the_last_admin(alice, cpo_a):
    with pytest.raises(CommandError, match="alice is the last admin of CPO A"):
        run("cpo", "add-member", "CPO A", "alice", "--role", "viewer")

    assert Membership.objects.get(user=alice, cpo=cpo_a).role == Membership.Role.ADMIN


def test_add_member_creates_the_user_with_a_password(cpo_a):
    run(
        "cpo", "add-member", "CPO A", "erin", "--role", "admin",
        "--create-user", "--password", "a-long-enough-passphrase",
    )  # fmt: skip

    erin = get_user_model().objects.get(username="erin")
    assert erin.check_password("a-long-enough-passphrase")
    assert Membership.objects.get(user=erin).role == Membership.Role.ADMIN


def test_add_member_refuses_an_unknown_user_without_create_user(cpo_a):
    with pytest.raises(CommandError, match="--create-user"):
        run("cpo", "add-member", "CPO A", "nobody", "--role", "admin")


def test_add_member_refuses_a_weak_password(cpo_a):
    with pytest.raises(CommandError, match="Password refused"):
        run("cpo", "add-member", "CPO A", "erin", "--role", "admin", "--create-user",
            "--password", "123")  # fmt: skip

    assert not get_user_model().objects.filter(username="erin").exists()


def test_add_member_refuses_an_unknown_cpo(db):
    make_user("dave")

    with pytest.raises(CommandError, match="No CPO named “Nope”"):
        run("cpo", "add-member", "Nope", "dave", "--role", "admin")


def test_add_member_refuses_an_unknown_role(cpo_a):
    make_user("dave")

    with pytest.raises(CommandError):
        run("cpo", "add-member", "CPO A", "dave", "--role", "owner")


def test_stations_pool_lists_only_the_pool(cpo_a):
    make_station("CP-POOLED", vendor="Acme", model="Fast 22")
    make_station("CP-OWNED", cpo=cpo_a)

    output = run("stations", "pool")

    assert "CP-POOLED" in output and "Acme Fast 22" in output
    assert "CP-OWNED" not in output


def test_stations_pool_says_when_it_is_empty(db):
    assert "The pool is empty." in run("stations", "pool")


def test_stations_assign_puts_a_pooled_station_in_the_cpo(cpo_a):
    make_station("CP-POOLED")

    output = run("stations", "assign", " cp-pooled ", "--cpo", "cpo a")

    station = Station.objects.get(cbid="CP-POOLED")
    assert station.cpo == cpo_a
    assert station.registration_status == RegistrationStatus.ACCEPTED
    record = StationAssignment.objects.get(station=station)
    assert (record.source, record.by, record.to_cpo_name) == ("cli", None, "CPO A")
    assert "CP-POOLED: pool → CPO A." in output


def test_stations_assign_refuses_an_unknown_cbid(cpo_a):
    with pytest.raises(CommandError, match="No station with the CBID “CP-NONE”"):
        run("stations", "assign", "CP-NONE", "--cpo", "CPO A")


def test_stations_assign_refuses_an_unknown_cpo(db):
    make_station("CP-POOLED")

    with pytest.raises(CommandError, match="No CPO named"):
        run("stations", "assign", "CP-POOLED", "--cpo", "Nope")

    assert Station.objects.get(cbid="CP-POOLED").cpo is None


def test_stations_assign_refuses_a_station_already_there(cpo_a):
    make_station("CP-OWNED", cpo=cpo_a)

    with pytest.raises(CommandError, match="already in CPO A"):
        run("stations", "assign", "CP-OWNED", "--cpo", "CPO A")


def test_a_failing_command_exits_non_zero(tmp_path):
    """Through manage.py, as an administrator runs it: CommandError means exit status 1."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "cpo", "create", "  "],
        capture_output=True,
        text=True,
        env={
            "SECRET_KEY": "t",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
            "PATH": "/usr/bin:/bin",
        },
    )

    assert result.returncode == 1
    assert "CommandError: A CPO needs a name." in result.stderr


def test_add_member_never_resets_an_existing_users_password(alice, cpo_b):
    err = StringIO()
    call_command(
        "cpo", "add-member", "CPO B", "alice", "--role", "viewer",
        "--create-user", "--password", "a-brand-new-passphrase", stdout=StringIO(), stderr=err,
    )  # fmt: skip

    alice.refresh_from_db()
    assert not alice.check_password("a-brand-new-passphrase")
    assert "password was left unchanged" in err.getvalue()
