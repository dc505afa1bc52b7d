import pytest

from certnet.core.tlp import TLP


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amber", TLP.AMBER),
        ("TLP:AMBER+STRICT", TLP.AMBER_STRICT),
        ("tlp:white", TLP.CLEAR),
        (" Red ", TLP.RED),
        ("GREEN", TLP.GREEN),
    ],
)
def test_parse(text, expected):
    assert TLP.parse(text) is expected


def test_parse_unknown_says_what_is_allowed():
    with pytest.raises(ValueError, match=r"unknown TLP label 'amber-ish'.*clear, green"):
        TLP.parse("amber-ish")


def test_order_and_stix_ids():
    assert [t.rank for t in TLP] == [0, 1, 2, 3, 4]
    assert TLP.RED.is_stricter_than(TLP.AMBER_STRICT)
    assert not TLP.GREEN.is_stricter_than(TLP.GREEN)
    assert TLP.AMBER.stix_marking_id == "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
