"""The CBID error names the character that is not allowed (issue 14)."""

from __future__ import annotations

import pytest

from ocpp_spec.identity import InvalidCbid, validate_cbid


@pytest.mark.parametrize(
    ("cbid", "said"),
    [
        ("CP 1", "spaces are not allowed"),
        ("Lähde", "'ä' is not allowed"),
        ("CP/1", "'/' is not allowed"),
        ("CP\t1", "the character U+0009 is not allowed"),
        ("OK-1 ä", "spaces are not allowed"),  # the first offence
    ],
)
def test_the_error_names_the_first_character_not_allowed(cbid, said):
    with pytest.raises(InvalidCbid) as raised:
        validate_cbid(cbid)

    message = str(raised.value)
    assert message.startswith(said)
    assert "A-Z a-z 0-9" in message and not message.endswith("..")


@pytest.mark.parametrize("cbid", ["CP-1", "a*b_c=d:e+f|g@h.i", "X" * 48])
def test_valid_cbids_pass(cbid):
    assert validate_cbid(cbid) == cbid
