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
def _rules() -> tuple[dict[str, dict[str, str]], tuple[tuple[str, dict[str, str]], ...]]:
    exact: dict[str, dict[str, str]] = {}
    prefixes: list[tuple[str, dict[str, str]]] = []
    for row in read_csv_rows(_TABLE):
        code = row["code"]
        if code.endswith("*"):
            prefixes.append((code[:-1], row))
        else:
            exact[code] = row
    prefixes.sort(key=lambda p: -len(p[0]))  # longest first; '' (the default) last
    return exact, tuple(prefixes)


def _row(code: str) -> dict[str, str] | None:
    """The table's row for ``code``: exact, else the longest prefix, else the default."""
    exact, prefixes = _rules()
    if code in exact:
        return exact[code]
    return next((row for prefix, row in prefixes if code.startswith(prefix)), None)


def advice(code: str | None) -> str | None:
    """What to do about an import that ended with ``code``; None without a code."""
    row = _row(code) if code else None
    return row["advice"] if row else None


RERUN_KINDS = ("yes", "resend", "by-id", "no")


def rerun_kind(code: str | None) -> str | None:
    """What a rerun of a group of imports that ended with ``code`` does (the table's
    ``rerun`` column): 'yes', it helps once the cause the advice names is fixed here;
    'resend', the same bytes fail the same way, the sender must resend; 'by-id', each one
    is checked and assigned by a person; 'no', nothing to rerun. Why: `imports list
    --group-by code` suggested rerunning a group of CDA_DTD_FORBIDDEN, which fails again
    unchanged. None without a code."""
    row = _row(code) if code else None
    return row["rerun"] if row else None
