"""What an ADT^A08 / A31's PID may change in the dossier's demographics (IHE PAM France).

Why a module of its own: the rules are about identity, not filing. A PID that a trusted match
found (a qualified INS, the hospital's own identifier) states the patient's traits, but:
- a PID naming only the used name (PID-5 type 'D') states neither the birth name nor the
  birth given names (its given name is the one used, 'prénom utilisé'): the dossier keeps
  its own (normalizers/identity.py ``birth_name_stated``);
- a PID whose birth date or sex contradicts the digits of the INS the dossier holds (digit 1
  the sex, 2-3 the birth year, 4-5 the birth month) is not a statement of that person's
  traits: INSi returns traits that agree with the NIR. Applied, it left the dossier's traits
  contradicting its own INS, and the next message with the right traits no longer matched;
  nothing of that PID's identity is applied, and a warning names the trait (never a value).
"""

from __future__ import annotations

from dossiers.patients import Patient
from normalizers.model import AdtEvent, PatientIdentity
from normalizers.nir import nir_contradicts


def identity_update(patient: Patient | None, ident: PatientIdentity,
                    adt: AdtEvent) -> tuple[dict[str, str | None], list[str]]:
    """The demographics to give ``update_identity`` (empty: nothing to apply) and the
    warnings saying what was held back and why."""
    sex = ident.sex if ident.sex in ("F", "M") else None
    ins = patient.ins if patient is not None else None
    if ins:
        said = [trait for trait in (nir_contradicts(ins, "", sex or ""),
                                    nir_contradicts(ins, ident.birth_date, "")) if trait]
        if said:
            return {}, [f"identity not updated: PID-7/PID-8 ({', '.join(said)}) contradict "
                        "the digits of the INS the dossier holds: not this person's traits"]
    birth = adt.birth_name_stated
    return {"family": ident.family, "given": ident.given if birth else None,
            "birth_family": ident.birth_family if birth else None,
            "birth_date": ident.birth_date, "sex": sex}, []
