"""Creating dossiers by hand (admin command, setup of demos and tests), with validation."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from dossiers.patients import PatientError, create_patient, find_by_ins, search_by_traits
from normalizers.nir import nir_key_valid, nir_valid
from pipelines.audit import Actor, record

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CSV_COLUMNS = ("family", "given", "birth_date", "sex")  # required; ins, ins_oid optional
FIND_LIMIT = 50  # rows `dossier find` lists: a lookup to choose from, not an export


@dataclass(slots=True)
class DossierInput:
    family: str
    given: str
    birth_date: str
    sex: str
    ins: str | None = None
    ins_oid: str | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, str]) -> DossierInput:
        return cls(family=row.get("family", "").strip(), given=row.get("given", "").strip(),
                   birth_date=row.get("birth_date", "").strip(),
                   sex=row.get("sex", "").strip().upper(),
                   ins=(row.get("ins") or "").strip().upper() or None,
                   ins_oid=(row.get("ins_oid") or "").strip() or None)

    def validate(self) -> None:
        if not self.family or not self.given:
            raise ValueError("family and given names are required")
        _valid_birth_date(self.birth_date)
        if self.sex not in ("F", "M"):
            raise ValueError("sex must be F or M")
        if self.ins is not None and not nir_key_valid(self.ins):
            raise ValueError("the INS is not a 15-character NIR/NIA with a valid key")
        if self.ins is not None and not nir_valid(self.ins):
            raise ValueError("the INS has birth order number 000 (digits 11-13: a NIR's is "
                             "001 to 999)")


def create_dossiers(engine: Engine, items: list[DossierInput], *,
                    skip_existing: bool = False, actor: Actor | None = None) -> list[int]:
    """Create every dossier or none (one transaction); returns the new internal ids. With
    ``actor`` (an operator's `dossier create`), each creation is in the dossier's audit
    trail, in the same transaction: a write the patient can see, as every other one is."""
    for item in items:
        item.validate()
    created: list[int] = []
    with engine.begin() as conn:
        for item in items:
            if item.ins and find_by_ins(conn, item.ins) is not None:
                if skip_existing:
                    continue
                raise PatientError("a dossier with this INS already exists")
            created.append(create_patient(conn, family=item.family, given=item.given,
                                          birth_date=item.birth_date, sex=item.sex,
                                          ins=item.ins, ins_oid=item.ins_oid))
            if actor is not None:
                record(conn, actor, "dossier.create", patient_id=created[-1],
                       details={"ins": item.ins is not None})
    return created


def _valid_birth_date(value: str) -> None:
    """A full calendar date, YYYY-MM-DD (what dossiers hold), or ValueError saying so."""
    if not _DATE.match(value):
        raise ValueError("birth date must be YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("birth date is not a calendar date") from None


def find_dossiers(engine: Engine, family: str, *, given: str | None = None,
                  birth_date: str | None = None, actor: Actor, reason: str,
                  limit: int = FIND_LIMIT) -> tuple[list[dict], bool]:
    """The dossiers an operator may mean (``dossier find``: assigning a quarantined import
    whose INS is wrong, after checking), at most ``limit``, and whether more matched. The
    traits listed are patient data: each dossier listed has the look in its audit trail,
    with the reason, as any read of a dossier; the criteria's names are kept, never their
    values (a name searched may be another person's)."""
    if not reason or not reason.strip():
        raise ValueError("a reason is required (--reason)")
    if not family or not family.strip():
        raise ValueError("a family name is required (--family)")
    if birth_date:
        _valid_birth_date(birth_date)
    criteria = [name for name, value in (("family", family), ("given", given),
                                         ("birth_date", birth_date)) if value]
    with engine.begin() as conn:
        found = search_by_traits(conn, family, given, birth_date, limit=limit + 1)
        more, found = len(found) > limit, found[:limit]
        for patient in found:
            record(conn, actor, "dossier.find", patient_id=patient.id, reason=reason.strip(),
                   details={"criteria": criteria, "listed": len(found)})
    return [{"id": p.id, "family": p.family, "given": p.given, "birth_family": p.birth_family,
             "birth_date": p.birth_date, "sex": p.sex, "ins": p.ins is not None,
             "opposed": p.opposed} for p in found], more


def read_dossiers_csv(path: str | Path) -> list[DossierInput]:
    """The dossiers of a CSV file (columns ins, family, given, birth_date, sex; others
    ignored), each validated, an error naming its line. What spreadsheets write is read: a
    UTF-8 byte order mark (read as part of the first column's name, it lost the 'ins'
    column: dossiers created without their INS, and created again by the next run), ';' or
    tab as the separator (a French Excel export). A header without the required columns is
    refused rather than read as rows of empty fields. ``OSError`` when it cannot be read,
    ``ValueError`` (one line, no patient data) for its content."""
    name = Path(path).name
    with open(path, encoding="utf-8-sig", newline="") as fh:
        try:
            text = fh.read()
        except UnicodeDecodeError:
            raise ValueError(f"{name}: not UTF-8 text (save the CSV as UTF-8)") from None
    header = text.splitlines()[0] if text.strip() else ""
    delimiter = max(",;\t", key=header.count)
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = {(c or "").strip().lower() for c in reader.fieldnames or ()}
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{name} line 1: no column {', '.join(missing)} (the header names "
                         f"ins, {', '.join(CSV_COLUMNS)})")
    items = []
    for row in reader:
        item = DossierInput.from_mapping({(k or "").strip().lower(): v or ""
                                          for k, v in row.items() if isinstance(v, str)})
        try:
            item.validate()
        except ValueError as exc:
            raise ValueError(f"{name} line {reader.line_num}: {exc}") from None
        items.append(item)
    return items
