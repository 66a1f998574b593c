"""FHIR decimals with the precision they were sent with, and the one JSON writer of a
Bundle that keeps it (the CLI's export and the HTTP API both write with ``bundle_json``).

Why: R4 datatypes say of decimal that 'precision is significant' (5.40 is not 5.4: the lab
measured to the hundredth), and that a decimal is written as its digits in JSON. A result
is stored as its number (entries.value_num, a float: 5.4) beside the text the sender wrote
(entries.value: '5.40'); a float has no precision, so the export read 5.4. The stored data
stay as they are: the export gives the Quantity a ``SentDecimal``, a float (what the rest of
the export and its readers compute and compare with) that remembers the sender's digits,
and ``bundle_json`` writes those digits."""

from __future__ import annotations

import json
import re
from typing import Any

# R4 decimal's lexical form (datatypes: decimal), with the French comma some labs send
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)([.,][0-9]+)?([eE][+-]?[0-9]+)?")
# a SentDecimal in the JSON text while it is written (NUL is no FHIR string character)
_MARK = "\x00dec\x00"
_MARKED = re.compile(r'"\\u0000dec\\u0000([-0-9.eE+]+)"')


class SentDecimal(float):
    """A float that keeps the digits its sender wrote ('5.40'), for ``bundle_json``."""

    digits: str

    def __new__(cls, digits: str) -> SentDecimal:  # noqa: D102
        number = super().__new__(cls, float(digits))
        number.digits = digits
        return number


def sent_decimal(text: Any, number: float) -> float:  # noqa: ANN401
    """``number`` with the digits of ``text`` when the text is that number written as a
    FHIR decimal ('5.40', '5,40', '120'); else the number as it is (a value converted to
    another unit, words, an SN: their digits are not the number's)."""
    if isinstance(number, SentDecimal) or not isinstance(text, str):
        return number
    written = text.strip()
    if _DECIMAL.fullmatch(written) is None:
        return number
    written = written.replace(",", ".")
    return SentDecimal(written) if float(written) == number else number


def _marked(obj: Any) -> Any:  # noqa: ANN401
    """The Bundle with every SentDecimal as a marked string of its digits."""
    if isinstance(obj, SentDecimal):
        return f"{_MARK}{obj.digits}"
    if isinstance(obj, dict):
        return {k: _marked(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_marked(v) for v in obj]
    return obj


def bundle_json(bundle: Any, *, indent: int | None = None,  # noqa: ANN401
                separators: tuple[str, str] | None = None) -> str:
    """The Bundle as strict JSON (no NaN; UTF-8 text, not escaped), each SentDecimal as the
    digits it was sent with: json writes a float by its repr (5.4), whatever it holds."""
    text = json.dumps(_marked(bundle), ensure_ascii=False, allow_nan=False, indent=indent,
                      separators=separators)
    return _MARKED.sub(r"\1", text)
