"""Every command kind has its form on the station page, and every form a kind."""

from __future__ import annotations

from ocpp_spec.commands import COMMAND_KINDS
from stations.forms import COMMAND_FORMS


def test_every_kind_has_a_form_and_every_form_a_kind():
    assert set(COMMAND_FORMS) == set(COMMAND_KINDS)
    assert all(form.kind == kind for kind, form in COMMAND_FORMS.items())


def test_the_page_offers_them_in_the_table_order():
    assert list(COMMAND_FORMS) == list(COMMAND_KINDS)
