"""`manage.py tags import FILE --cpo NAME` and `manage.py tags export --cpo NAME`."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from stations.models import IdTag

pytestmark = pytest.mark.django_db


def test_import_then_export(tmp_path, cpo_a):
    path = tmp_path / "tags.csv"
    path.write_text("\ufeffid_tag,status,label\nVAN-12,,Van 12\nALICE,Blocked,\n", "utf-8")
    out = io.StringIO()
    call_command("tags", "import", str(path), "--cpo", "cpo a", stdout=out)
    assert "2 added, 0 updated" in out.getvalue()
    assert set(IdTag.objects.values_list("tag", "status")) == {
        ("VAN-12", "Accepted"),
        ("ALICE", "Blocked"),
    }
    exported = io.StringIO()
    call_command("tags", "export", "--cpo", "CPO A", stdout=exported)
    assert exported.getvalue().splitlines() == [
        "id_tag,type,status,expiry,group,label",
        "ALICE,,Blocked,,,",
        "VAN-12,,Accepted,,,Van 12",
    ]


def test_a_bad_row_imports_nothing_and_names_the_line(tmp_path, cpo_a):
    path = tmp_path / "tags.csv"
    path.write_text("id_tag,status\nGOOD,\nBAD,Sometimes\n", "utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("tags", "import", str(path), "--cpo", "CPO A", stderr=err)
    assert f"{path}:3: status" in err.getvalue()
    assert not IdTag.objects.exists()


def test_an_unknown_cpo_is_an_error(tmp_path, db):
    with pytest.raises(CommandError, match="No CPO named"):
        call_command("tags", "export", "--cpo", "Nobody")


def test_export_to_a_file(tmp_path, cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    target = tmp_path / "out.csv"
    call_command("tags", "export", "--cpo", "CPO A", "--output", str(target))
    assert target.read_text("utf-8").splitlines()[1] == "VAN-12,,Accepted,,,"
