"""Creating dossiers by hand (admin command, setup of demos and tests), with validation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from dossiers.patients import PatientError, create_patient, find_by_ins
from normalizers.nir import nir_key_valid

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
        if not _DATE.match(self.birth_date):
            raise ValueError("birth date must be YYYY-MM-DD")
        try:
            date.fromisoformat(self.birth_date)
        except ValueError:
            raise ValueError("birth date is not a calendar date") from None
        if self.sex not in ("F", "M"):
            raise ValueError("sex must be F or M")
        if self.ins is not None and not nir_key_valid(self.ins):
            raise ValueError("the INS is not a 15-character NIR/NIA with a valid key")


def create_dossiers(engine: Engine, items: list[DossierInput], *,
                    skip_existing: bool = False) -> list[int]:
    """Create every dossier or none (one transaction); returns the new internal ids."""
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
    return created
