"""The ID tags page: list, search, filter, add, edit, block, delete, CSV import and export;
who may do what (alice admin, tess technician, bob viewer, carol another CPO)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from cpo.models import AuditEvent, Membership
from stations.models import IdTag
from tests.factories import make_member, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def tess(cpo_a):
    user = make_user("tess")
    make_member(user, cpo_a, Membership.Role.TECHNICIAN)
    return user


def url(name: str, cpo, *args) -> str:
    return reverse(f"stations:{name}", args=[cpo.pk, *args])


def upload(text: str, name: str = "tags.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


# ---- list ------------------------------------------------------------------------------


def test_the_index_leads_to_the_users_only_cpo(client, alice, cpo_a):
    client.force_login(alice)
    response = client.get(reverse("stations:id_tags_index"))
    assert response.status_code == 302
    assert response.url == url("id_tags", cpo_a)


def test_the_navigation_links_the_id_tags_page(client, alice):
    client.force_login(alice)
    page = client.get(reverse("stations:list")).content.decode()
    assert reverse("stations:id_tags_index") in page


def test_list_search_and_status_filter(client, bob, cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="VAN-12", label="Van 12")
    IdTag.objects.create(cpo=cpo_a, tag="ALICE", label="Alice's card", status="Blocked")
    IdTag.objects.create(cpo=cpo_a, tag="OLD-1", expiry_date=timezone.now() - timedelta(days=1))
    client.force_login(bob)

    def shown(**params) -> set[str]:
        response = client.get(url("id_tags", cpo_a), params)
        assert response.status_code == 200
        return {tag.tag for tag in response.context["tags"]}

    assert shown() == {"VAN-12", "ALICE", "OLD-1"}
    assert shown(q="van") == {"VAN-12"}
    assert shown(q="alice's") == {"ALICE"}
    assert shown(status="blocked") == {"ALICE"}
    assert shown(status="expired") == {"OLD-1"}
    assert shown(status="accepted") == {"VAN-12"}


def test_list_is_paginated_in_a_fixed_number_of_queries(
    client, alice, cpo_a, django_assert_max_num_queries
):
    IdTag.objects.bulk_create(IdTag(cpo=cpo_a, tag=f"T-{i:04d}") for i in range(120))
    client.force_login(alice)
    with django_assert_max_num_queries(12):
        response = client.get(url("id_tags", cpo_a), {"page": 2})
    assert [tag.tag for tag in response.context["tags"]][0] == "T-0050"
    assert response.context["page"].paginator.count == 120


def test_a_viewer_sees_no_edit_buttons_and_a_read_only_form(client, bob, cpo_a):
    tag = IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    client.force_login(bob)
    page = client.get(url("id_tags", cpo_a)).content.decode()
    assert "Add ID tag" not in page and "Import CSV" not in page
    form = client.get(url("id_tag_edit", cpo_a, tag.pk))
    assert form.status_code == 200
    assert all(field.disabled for field in form.context["form"].fields.values())


# ---- add, edit, block, delete -------------------------------------------------------


def test_a_technician_adds_a_tag(client, tess, cpo_a):
    client.force_login(tess)
    response = client.post(
        url("id_tag_add", cpo_a),
        {
            "tag": "VAN-12",
            "label": "Van 12",
            "status": "Accepted",
            "token_type": "ISO14443",
            "expiry_date": "2030-01-31T12:00",
            "parent_id_tag": "FLEET",
        },
    )
    assert response.status_code == 302
    tag = IdTag.objects.get()
    assert (tag.tag, tag.label, tag.token_type, tag.parent_id_tag) == (
        "VAN-12",
        "Van 12",
        "ISO14443",
        "FLEET",
    )
    assert tag.expiry_date == datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
    assert AuditEvent.objects.filter(action="id_tags_changed", target="VAN-12").exists()


def test_a_tag_differing_only_in_case_is_refused(client, alice, cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="van-12")
    client.force_login(alice)
    response = client.post(url("id_tag_add", cpo_a), {"tag": "VAN-12", "status": "Accepted"})
    assert response.status_code == 400
    assert "already has this ID tag" in response.content.decode()
    assert IdTag.objects.count() == 1


def test_another_cpo_may_have_the_same_tag(client, carol, cpo_a, cpo_b):
    IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    client.force_login(carol)
    response = client.post(url("id_tag_add", cpo_b), {"tag": "VAN-12", "status": "Accepted"})
    assert response.status_code == 302
    assert IdTag.objects.filter(tag="VAN-12").count() == 2


def test_edit_block_unblock_and_delete(client, alice, cpo_a):
    tag = IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    client.force_login(alice)
    response = client.post(
        url("id_tag_edit", cpo_a, tag.pk), {"tag": "VAN-12", "label": "New", "status": "Accepted"}
    )
    assert response.status_code == 302
    tag.refresh_from_db()
    assert tag.label == "New"

    client.post(url("id_tag_status", cpo_a, tag.pk), {"status": "Blocked"})
    tag.refresh_from_db()
    assert tag.status == "Blocked"
    client.post(url("id_tag_status", cpo_a, tag.pk), {"status": "Accepted"})
    tag.refresh_from_db()
    assert tag.status == "Accepted"

    assert client.get(url("id_tag_delete", cpo_a, tag.pk)).status_code == 200
    assert client.post(url("id_tag_delete", cpo_a, tag.pk)).status_code == 302
    assert not IdTag.objects.exists()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("id_tag_add", {"tag": "NEW", "status": "Accepted"}),
        ("id_tag_edit", {"tag": "VAN-12", "label": "x", "status": "Accepted"}),
        ("id_tag_status", {"status": "Blocked"}),
        ("id_tag_delete", {}),
        ("id_tags_import", {"import": "1", "text": "id_tag\nNEW\n"}),
        ("id_tags_settings", {}),
        ("id_tags_sync", {}),
    ],
)
def test_a_viewer_changes_nothing(client, bob, cpo_a, name, data):
    tag = IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    client.force_login(bob)
    args = (tag.pk,) if name in ("id_tag_edit", "id_tag_status", "id_tag_delete") else ()
    response = client.post(url(name, cpo_a, *args), data)
    assert response.status_code == 403
    assert list(IdTag.objects.values_list("tag", "label", "status")) == [("VAN-12", "", "Accepted")]


@pytest.mark.parametrize("name", ["id_tags", "id_tag_edit", "id_tags_export", "id_tag_delete"])
def test_another_cpo_gets_404(client, carol, cpo_a, name):
    tag = IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    client.force_login(carol)
    args = (tag.pk,) if name in ("id_tag_edit", "id_tag_delete") else ()
    assert client.get(url(name, cpo_a, *args)).status_code == 404


def test_a_tag_of_another_cpo_under_ones_own_cpo_is_404(client, carol, cpo_a, cpo_b):
    tag = IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    client.force_login(carol)
    assert client.get(url("id_tag_edit", cpo_b, tag.pk)).status_code == 404


def test_only_admins_change_the_one_session_setting(client, alice, tess, cpo_a):
    client.force_login(tess)
    assert client.post(url("id_tags_settings", cpo_a), {}).status_code == 403
    client.force_login(alice)
    assert client.post(url("id_tags_settings", cpo_a), {}).status_code == 302
    cpo_a.refresh_from_db()
    assert cpo_a.one_session_per_tag is False
    client.post(url("id_tags_settings", cpo_a), {"one_session_per_tag": "on"})
    cpo_a.refresh_from_db()
    assert cpo_a.one_session_per_tag is True


# ---- CSV import and export ------------------------------------------------------------

GOOD_CSV = (
    "id_tag,type,status,expiry,group,label\n"
    "VAN-12,ISO14443,Accepted,2030-01-31T23:59:59+02:00,FLEET,Van 12\n"
    "alice,,blocked,,,Alice's card\n"
    "NEW-1,emaid,,2031-05-01,,\n"
)


def test_import_preview_saves_nothing_then_import_saves_all(client, alice, cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="ALICE", label="old")
    client.force_login(alice)
    preview = client.post(url("id_tags_import", cpo_a), {"file": upload(GOOD_CSV)})
    assert preview.status_code == 200
    body = preview.content.decode()
    assert "ready to import" in body and ">Import<" in body
    assert IdTag.objects.count() == 1
    assert (preview.context["preview"].added, preview.context["preview"].updated) == (2, 1)

    done = client.post(
        url("id_tags_import", cpo_a), {"import": "1", "text": preview.context["text"]}
    )
    assert done.status_code == 302
    tags = {t.tag: t for t in IdTag.objects.all()}
    assert set(tags) == {"ALICE", "VAN-12", "NEW-1"}
    assert (tags["ALICE"].status, tags["ALICE"].label) == ("Blocked", "Alice's card")
    assert tags["VAN-12"].expiry_date == datetime(2030, 1, 31, 21, 59, 59, tzinfo=UTC)
    assert tags["NEW-1"].token_type == "eMAID"
    assert tags["NEW-1"].expiry_date == datetime(2031, 5, 1, tzinfo=UTC)


def test_import_preview_lists_every_rows_errors_and_offers_no_import(client, alice, cpo_a):
    bad = (
        "id_tag;type;status;expiry;group;label\n"
        "GOOD-1;;;;;\n"
        ";;;;;no tag\n"
        "BÄD;Bluetooth;;;;\n"
        "X-1;;Maybe;tomorrow;;\n"
        "good-1;;;;;duplicate\n"
        f"{'L' * 37};;;;;\n"
    )
    client.force_login(alice)
    response = client.post(url("id_tags_import", cpo_a), {"file": upload(bad)})
    assert response.status_code == 400
    preview = response.context["preview"]
    errors = {row.line: row.errors for row in preview.rows}
    assert errors[2] == []
    assert any("Enter the ID tag" in e for e in errors[3])
    assert any("not an OCPP idToken type" in e for e in errors[4])
    assert any("Only printable ASCII" in e for e in errors[4])
    assert any("neither Accepted nor Blocked" in e for e in errors[5])
    assert any("not an ISO 8601" in e for e in errors[5])
    assert any("already on line 2" in e for e in errors[6])
    assert any("At most 36" in e for e in errors[7])
    body = response.content.decode()
    assert "nothing is imported" in body
    assert 'name="import"' not in body
    assert not IdTag.objects.exists()


def test_importing_a_bad_text_directly_saves_nothing(client, alice, cpo_a):
    client.force_login(alice)
    response = client.post(
        url("id_tags_import", cpo_a), {"import": "1", "text": "id_tag,status\nOK,\nBAD,Gone\n"}
    )
    assert response.status_code == 400
    assert not IdTag.objects.exists()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"", "empty"),
        (b"tag,colour\nA,red\n", "no id_tag column"),
        (b"id_tag\n", "no tags"),
    ],
)
def test_a_bad_file_is_refused_whole(client, alice, cpo_a, content, error):
    client.force_login(alice)
    file = SimpleUploadedFile("t.csv", content, content_type="text/csv")
    response = client.post(url("id_tags_import", cpo_a), {"file": file})
    assert response.status_code == 400
    assert error in response.content.decode()


def test_export_writes_the_import_columns_and_imports_again(client, bob, cpo_a, cpo_b):
    IdTag.objects.create(
        cpo=cpo_a,
        tag="VAN-12",
        label="Van 12, blue",
        token_type="ISO14443",
        parent_id_tag="FLEET",
        expiry_date=datetime(2030, 1, 1, tzinfo=UTC),
    )
    IdTag.objects.create(cpo=cpo_b, tag="B-ONLY")
    client.force_login(bob)
    response = client.get(url("id_tags_export", cpo_a))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["id_tag", "type", "status", "expiry", "group", "label"],
        ["VAN-12", "ISO14443", "Accepted", "2030-01-01T00:00:00+00:00", "FLEET", "Van 12, blue"],
    ]
