"""The audit log: every login, failed login, logout and state change writes its line."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from cpo.audit import audit_record
from cpo.models import AuditEvent, Membership
from cpo.services import cpo_create, cpo_member_add
from stations.services.claiming import station_assign
from stations.services.commands import command_request
from stations.services.station_settings import SettingsError, station_settings_update
from tests.factories import PASSWORD, make_cpo, make_member, make_station, make_user
from tests.security.conftest import A_CBID

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _only(action: str) -> AuditEvent:
    events = _events(action)
    assert len(events) == 1, events
    return events[0]


def test_a_login_is_recorded_with_the_user_and_address(client, alice):
    client.post(
        reverse("login"),
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="203.0.113.5",
    )

    event = _only(Action.LOGIN)
    assert (event.user, event.username, event.remote_addr) == (alice, "alice", "203.0.113.5")


def test_a_failed_login_is_recorded_with_the_name_tried(client, alice):
    client.post(reverse("login"), {"username": "alice", "password": "guess"})

    event = _only(Action.LOGIN_FAILED)
    assert (event.user, event.username, event.remote_addr) == (None, "alice", "127.0.0.1")
    assert "guess" not in str(event.details)


def test_a_failed_login_for_an_unknown_name_is_recorded_too(client, db):
    client.post(reverse("login"), {"username": "mallory", "password": "guess"})

    assert _only(Action.LOGIN_FAILED).username == "mallory"


def test_a_logout_is_recorded(client, alice):
    client.force_login(alice)

    client.post(reverse("logout"))

    event = _only(Action.LOGOUT)
    assert (event.user, event.username) == (alice, "alice")


def test_a_password_change_in_the_panel_is_recorded(client, alice):
    client.force_login(alice)

    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-passphrase-42",
            "new_password2": "a-new-long-passphrase-42",
        },
    )

    assert response.status_code == 302
    event = _only(Action.PASSWORD_CHANGED)
    assert (event.user, event.target) == (alice, "alice")


def test_a_password_change_from_the_command_line_is_recorded(alice):
    alice.set_password("another-long-passphrase-7")
    alice.save()

    assert _only(Action.PASSWORD_CHANGED).target == "alice"


def test_a_login_does_not_count_as_a_password_change(client, alice):
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert _events(Action.PASSWORD_CHANGED) == []


def test_claiming_a_station_in_the_panel_is_recorded(client, alice, cpo_a):
    make_station("CP-POOL-1")
    client.force_login(alice)

    response = client.post(
        reverse("stations:add"), {"protocol": "ocpp", "cbid": "CP-POOL-1", "cpo": cpo_a.pk}
    )

    assert response.status_code == 302
    claimed = _only(Action.STATION_CLAIMED)
    assert (claimed.user, claimed.cpo, claimed.target) == (alice, cpo_a, "CP-POOL-1")
    assigned = _only(Action.STATION_ASSIGNED)
    assert assigned.details == {"from": None, "to": "CPO A", "source": "panel"}


def test_a_panel_change_records_where_it_came_from(client, alice, cpo_a):
    make_station("CP-POOL-2")
    client.force_login(alice)

    client.post(
        reverse("stations:add"),
        {"protocol": "ocpp", "cbid": "CP-POOL-2", "cpo": cpo_a.pk},
        REMOTE_ADDR="198.51.100.23",
    )

    # The claiming service is not handed the request: the middleware keeps it at hand.
    assert _only(Action.STATION_CLAIMED).remote_addr == "198.51.100.23"
    assert _only(Action.STATION_ASSIGNED).remote_addr == "198.51.100.23"


def test_a_line_written_outside_any_request_has_no_address(alice, cpo_a):
    station_assign(station=make_station("CP-POOL-4"), cpo=cpo_a, by=None, source="cli")

    assert _only(Action.STATION_ASSIGNED).remote_addr is None


def test_registering_an_ensto_station_is_recorded_as_a_claim(client, alice, cpo_a):
    client.force_login(alice)

    client.post(reverse("stations:add"), {"protocol": "ensto", "cbid": "ENSTO-77", "cpo": cpo_a.pk})

    claimed = _only(Action.STATION_CLAIMED)
    assert (claimed.target, claimed.details["protocol"]) == ("ENSTO-77", "ensto")


def test_changing_a_station_cpo_in_the_panel_is_recorded(client, alice, cpo_a, station_a):
    cpo_c = make_cpo("CPO C")
    make_member(alice, cpo_c, Membership.Role.ADMIN)
    client.force_login(alice)

    response = client.post(reverse("stations:change_cpo", args=[station_a.pk]), {"cpo": cpo_c.pk})

    assert response.status_code == 302
    event = _only(Action.STATION_ASSIGNED)
    assert (event.user, event.cpo, event.target) == (alice, cpo_c, A_CBID)
    assert event.details == {"from": "CPO A", "to": "CPO C", "source": "panel"}


def test_a_cpo_change_from_the_command_line_is_recorded_as_the_system(station_a, cpo_b):
    station_assign(station=station_a, cpo=cpo_b, by=None, source="cli")

    event = _only(Action.STATION_ASSIGNED)
    assert (event.user, event.username, event.details["source"]) == (None, "", "cli")


def test_a_settings_change_is_recorded_with_the_fields_changed(alice, station_a):
    station_settings_update(station=station_a, user=alice, data={"city": "Espoo", "name": "X"})

    event = _only(Action.STATION_SETTINGS_CHANGED)
    assert (event.user, event.cpo_id, event.target) == (alice, station_a.cpo_id, A_CBID)
    assert sorted(event.details["fields"]) == ["city", "name"]


def test_settings_that_change_nothing_write_no_line(alice, station_a):
    station_settings_update(station=station_a, user=alice, data={"name": station_a.name})

    assert _events(Action.STATION_SETTINGS_CHANGED) == []


def test_refused_settings_write_no_line(alice, station_a):
    with pytest.raises(SettingsError):
        station_settings_update(station=station_a, user=alice, data={"country": "Finland"})

    assert _events(Action.STATION_SETTINGS_CHANGED) == []


def test_a_command_request_is_recorded(alice, station_a):
    station_a.connected = False
    station_a.save()

    command = command_request(station=station_a, kind="reset", params={"type": "Soft"}, user=alice)

    event = _only(Action.COMMAND_REQUESTED)
    assert (event.user, event.cpo_id, event.target) == (alice, station_a.cpo_id, A_CBID)
    assert event.details == {"command": command.pk, "action": "Reset", "status": "offline"}


def test_a_cpo_created_on_the_command_line_is_recorded(db):
    call_command("cpo", "create", "Gamma Charge")

    event = _only(Action.CPO_CREATED)
    assert (event.cpo.name, event.target, event.user) == ("Gamma Charge", "Gamma Charge", None)


def test_membership_changes_are_recorded(cpo_a, db):
    make_user("dave")

    cpo_member_add(cpo=cpo_a, username="dave", role="viewer")
    cpo_member_add(cpo=cpo_a, username="dave", role="technician")

    events = _events(Action.MEMBER_SET)
    assert [(e.cpo, e.target, e.details) for e in events] == [
        (cpo_a, "dave", {"role": "viewer", "new_member": True}),
        (cpo_a, "dave", {"role": "technician", "new_member": False}),
    ]


def test_a_user_created_with_a_membership_is_recorded(cpo_a):
    cpo_member_add(
        cpo=cpo_a, username="erin", role="viewer", create_user=True, password="erin-long-pass-91"
    )

    assert _only(Action.USER_CREATED).target == "erin"


def test_a_refused_cpo_name_writes_no_line(cpo_a):
    from cpo.services import CpoError

    with pytest.raises(CpoError):
        cpo_create(name="cpo a")

    assert _events(Action.CPO_CREATED) == []


def test_an_unknown_action_is_refused(db):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_record(action="station_stolen")


# ---- Django admin: superusers read, nobody edits ------------------------------------------


def test_a_superuser_reads_the_audit_log_in_the_admin(client, root, alice):
    audit_record(action=Action.LOGIN, user=alice)
    client.force_login(root)

    response = client.get(reverse("admin:cpo_auditevent_changelist"), {"action": "login"})

    assert response.status_code == 200
    assert "alice" in response.content.decode()


def test_the_audit_log_cannot_be_changed_in_the_admin(client, root, alice):
    event = audit_record(action=Action.LOGIN, user=alice)
    client.force_login(root)

    add = client.get(reverse("admin:cpo_auditevent_add"))
    delete = client.post(reverse("admin:cpo_auditevent_delete", args=[event.pk]), {"post": "yes"})
    change = client.post(reverse("admin:cpo_auditevent_change", args=[event.pk]), {"target": "x"})

    assert (add.status_code, delete.status_code, change.status_code) == (403, 403, 403)
    assert AuditEvent.objects.get(pk=event.pk).target == ""


def test_staff_who_are_not_superusers_do_not_see_the_audit_log(client, alice):
    from django.contrib.auth.models import Permission

    alice.is_staff = True
    alice.save()
    alice.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client.force_login(alice)

    response = client.get(reverse("admin:cpo_auditevent_changelist"))

    assert response.status_code == 403
