"""What an ADT^A08 / A31's PID may change in the dossier's demographics (IHE PAM France).

Why a module of its own: the rules are about identity, not filing. A PID that a trusted match
found (a qualified INS, the hospital's own identifier) states the patient's traits, but:
- a PID naming only the used name (PID-5 type 'D') states neither the birth name nor the
  birth given names (its given name is the one used, 'prénom utilisé'): the dossier keeps
  its own (normalizers/identity.py ``birth_name_stated``);
- a PID whose birth date (full, or to the year or month) or sex contradicts the digits of
  the INS the dossier holds (digit 1 the sex, 2-3 the birth year, 4-5 the birth month) is
  not a statement of that person's traits: INSi returns traits that agree with the NIR.
  Applied, it left the dossier's traits contradicting its own INS, and the next message with
  the right traits no longer matched; nothing of that PID's identity is applied, and a
  warning names the trait (never a value);
- a PID whose identity status (PID-32) says its traits are not stated as the patient's own
  (PAM France's FICTI, an 'identité d'emprunt' under which a GAM admits a patient who must
  not be known by name; DOUTE, a doubtful identity; USUR, INVA, a collision, an alias, a
  default birth date: tables/identity_status.csv traits_own) is not a statement of the
  patient's traits (RNIV: a doubtful or fictitious identity is never qualified, and its
  traits are not the reference ones). Found by the hospital's own identifier, the A08 of a
  patient readmitted under a made-up name overwrote the dossier's real names with it;
- a PID stated before the one the dossier's traits come from (EVN-2, else MSH-7: an A08
  recorded in January reaching us after an A31 recorded in June, a GAM's backlog replayed
  under new control ids) is history: applied, it put back the name the patient had left. A
  statement dated like the held one is applied (the sender's later word), as for consent;
- a PID naming the dossier only by the identifiers of a record the hospital merged into
  another (MRG-1 of an ADT^A40 applied here: dossiers/merged.py ``merged_away_rows``) is the
  merged record's, which HL7 v2.5 3.3.40 says is never referenced again: the A08 of that
  duplicate record, replayed or sent late by a second queue, rewrote the surviving
  patient's traits with the duplicate's (often the misspelt name that made the duplicate).
"""

from __future__ import annotations

from datetime import datetime

from dossiers.consent import instant
from dossiers.patients import Patient
from normalizers.identity import read_identity_status
from normalizers.model import AdtEvent, PatientIdentity
from normalizers.nir import nir_contradicts

# Why an ADT naming the dossier by a merged record's identifier does not rewrite its traits.
MERGED_AWAY_HELD = (
    "identity not updated: PID-3 names the dossier only by identifiers of a record the "
    "hospital merged into another (MRG-1 of an earlier ADT^A40, never referenced again: HL7 "
    "v2.5 3.3.40): its traits are the merged record's, not the surviving patient's")


def identity_update(patient: Patient | None, ident: PatientIdentity, adt: AdtEvent,
                    held_since: datetime | None = None, *, merged_away: bool = False
                    ) -> tuple[dict[str, str | None], list[str]]:
    """The demographics to give ``update_identity`` (empty: nothing to apply) and the
    warnings saying what was held back and why. ``held_since``: the time of the identity
    statement the dossier's traits come from (``identity_stated_at``), None if unknown;
    ``merged_away``: PID-3 names the dossier only by identifiers a hospital's merge named as
    its merged patient's (MRG-1 of an ADT^A40)."""
    if merged_away:
        return {}, [MERGED_AWAY_HELD]
    if held_since is not None and instant(adt.stated_at) < held_since:
        return {}, ["identity not updated: the statement (EVN-2, else MSH-7) is older than "
                    "the one the dossier's traits come from (messages received out of order)"]
    doubted = read_identity_status(ident.identity_status).traits_doubted
    if doubted:
        return {}, [f"identity not updated: the identity status (PID-32) {'/'.join(doubted)} "
                    "says the traits sent are not stated as the patient's own (doubtful, "
                    "fictitious...): the dossier keeps its traits"]
    sex = ident.sex if ident.sex in ("F", "M") else None
    ins = patient.ins if patient is not None else None
    if ins:
        said = [trait for trait in (nir_contradicts(ins, "", sex or ""),
                                    nir_contradicts(ins, _birth(ident), "")) if trait]
        if said:
            return {}, [f"identity not updated: PID-7/PID-8 ({', '.join(said)}) contradict "
                        "the digits of the INS the dossier holds: not this person's traits"]
    birth = adt.birth_name_stated
    return {"family": ident.family, "given": ident.given if birth else None,
            "birth_family": ident.birth_family if birth else None,
            "birth_date": ident.birth_date, "sex": sex}, []


def _birth(ident: PatientIdentity) -> str:
    """PID-7 as far as it is known: the full date, else the year or the year and month.

    Why the reduced one: the patients whose INS traits carry '00' for the day or month (born
    abroad) are the ones whose PID-7 is sent to the year; compared only when full, a PID
    giving another birth year than the INS digits was applied to their dossier (its name)
    as this person's traits. ``nir_contradicts`` compares the year, the month when given."""
    return ident.birth_date or ident.birth_date_partial
