"""Loading of the CSV tables in normalizers/tables/.

Why CSV and not code: the mapping tables are data that admins and integrators extend without a
release (and a rerun replays old inputs with today's tables). Every table is read once per
process (functools.cache); callers build their dicts from the rows once as well.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from functools import cache
from pathlib import Path

TABLES_DIR = Path(__file__).resolve().parent / "tables"


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of one CSV file as dicts; blank lines and lines starting with '#' are skipped.

    Values are stripped of surrounding blanks (hand-edited tables), keys too."""
    with path.open(encoding="utf-8", newline="") as fh:
        lines: Iterable[str] = (ln for ln in fh if ln.strip() and not ln.lstrip().startswith("#"))
        reader = csv.DictReader(lines)
        if reader.fieldnames is None:
            return []
        rows = []
        for n, row in enumerate(reader, start=2):
            if None in row:  # more values than columns: an unquoted comma in a value
                raise ValueError(f"table {path.name}: row {n} has too many values")
            rows.append({k.strip(): (v or "").strip() for k, v in row.items()})
        return rows


@cache
def table(name: str) -> tuple[dict[str, str], ...]:
    """The rows of ``normalizers/tables/<name>.csv`` (cached, treat as read-only)."""
    return tuple(read_csv_rows(TABLES_DIR / f"{name}.csv"))


@cache
def column_map(name: str, key: str, value: str) -> dict[str, str]:
    """``{row[key]: row[value]}`` for a table (cached, treat as read-only)."""
    return {row[key]: row[value] for row in table(name)}
