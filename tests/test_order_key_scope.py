"""``unscoped_order_key`` cuts the scope out of a key by position (it is asked for three keys
of every entry filed): it must give exactly what the definition says, field by field, for
any key, including keys that only look like order keys."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dossiers.deposit import unscoped_order_key


def _by_definition(key: str) -> str | None:
    """The key's third field cut at its '&', for a result or report key of four fields or
    more; None otherwise (the definition the fast version replaces)."""
    parts = key.split("|")
    if len(parts) < 4 or parts[0] not in ("result", "report") or "&" not in parts[2]:
        return None
    parts[2] = parts[2].partition("&")[0]
    return "|".join(parts)


_PIECES = st.sampled_from(["result", "report", "document", "resulté", "|", "&", "^", "LAB",
                           "24C0315-07", "2823-3", "LN", "1.2.250.1.999.1", "", "SIL-BIO"])


@given(st.lists(_PIECES, max_size=12).map("".join))
def test_same_as_the_definition_for_any_key(key: str) -> None:
    assert unscoped_order_key(key) == _by_definition(key)


@given(st.sampled_from(["result", "report"]), st.text(alphabet="0123456789-AZé", max_size=12),
       st.text(alphabet="ABC&^.12", max_size=12), st.lists(st.text(max_size=6), min_size=1,
                                                          max_size=4))
def test_same_as_the_definition_for_order_keys(kind: str, number: str, scope: str,
                                               rest: list[str]) -> None:
    key = "|".join([kind, number, scope, *rest])
    assert unscoped_order_key(key) == _by_definition(key)


def test_real_keys() -> None:
    assert unscoped_order_key("result|24C0315-07|&SIL-BIO^LABO-DEMO|2823-3|LN|") == \
        "result|24C0315-07||2823-3|LN|"
    assert unscoped_order_key("report|77|LAB&1.2.250.1.999.1|K") == "report|77|LAB|K"
    assert unscoped_order_key("result|PN2503270000001-1|GLIMS|1920-8|LN|") is None
    assert unscoped_order_key("document|100234|&DPI-Z^CHU") is None
    assert unscoped_order_key("report|77|&LAB") is None  # three fields: no code, no key
