"""What an admin does about a failed or quarantined import, per error code.

The error message says what is wrong with this input (and where); the advice says what to do
about it, the same for every import of a code: a data file (tables/error_advice.csv) that
operators extend without a release, not an if-chain. An exact code wins, then the longest
prefix ending with '*', then the default '*'.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from normalizers.tabledata import read_csv_rows

_TABLE = Path(__file__).with_name("tables") / "error_advice.csv"


@cache
def _rules() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    exact: dict[str, str] = {}
    prefixes: list[tuple[str, str]] = []
    for row in read_csv_rows(_TABLE):
        code, text = row["code"], row["advice"]
        if code.endswith("*"):
            prefixes.append((code[:-1], text))
        else:
            exact[code] = text
    prefixes.sort(key=lambda p: -len(p[0]))  # longest first; '' (the default) last
    return exact, tuple(prefixes)


def advice(code: str | None) -> str | None:
    """What to do about an import that ended with ``code``; None without a code."""
    if not code:
        return None
    exact, prefixes = _rules()
    if code in exact:
        return exact[code]
    return next((text for prefix, text in prefixes if code.startswith(prefix)), None)
