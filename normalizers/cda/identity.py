"""The patient of a document (recordTarget/patientRole): INS, local ids, legal names,
birth and multiple birth."""

from __future__ import annotations

from datetime import date
from typing import Any

from normalizers.cda.common import SDTC
from normalizers.dates import BAD_TS_TEXT, hl7_ts_to_iso
from normalizers.identity import authority_of, insee_code, read_joined_family
from normalizers.model import InsIdentifier, LocalIdentifier, PatientIdentity
from normalizers.nir import ins_kind, ins_nir_like, nir_valid
from parsers.cda.model import RecordTarget

_INS_ARC = "1.2.250.1.213.1.4."  # the ANS's arc of INS OIDs (ins_oids.csv names its kinds)
PATIENT_PATH = "/ClinicalDocument/recordTarget/patientRole"


def patient_identity(rt: RecordTarget) -> PatientIdentity:
    """The patient the document names (CI-SIS recordTarget): INS under the INS OIDs (blanks
    inside dropped, as printed on a card), other ids as local ids; the first given name is
    the first given at birth (``qualifier="BR"``) when given, else the list's first; a
    birthTime that is no date is said and ignored, never compared."""
    identity = PatientIdentity()
    for ii in rt.ids:
        if ii.null_flavor:
            # an II with a nullFlavor is no identifier (HL7 V3 data types), whatever its
            # extension says: a masked (MSK) or unknown INS was read as the INS, a
            # placeholder IPP as the patient's
            if ii.extension.strip():
                identity.warnings.append(f"{PATIENT_PATH}/id: nullFlavor "
                                         f"{ii.null_flavor[:8]} beside an extension: no "
                                         "identifier, not used")
            continue
        # the root as its bare OID: 'urn:oid:1.2.250.1.213.1.4.8' (FHIR-minded generators)
        # was a local identifier of authority 'urn:oid:...', the INS never read as one
        root = authority_of("", ii.root.strip(), "ISO")
        extension = ii.extension.strip()
        if not root or not extension:
            continue
        if root != ii.root.strip():
            identity.warnings.append(f"{PATIENT_PATH}/id: root written as a URN "
                                     "('urn:oid:'), read as its OID")
        kind = ins_kind(root)
        if kind is not None:
            nir = "".join(extension.split()).upper()
            valid = nir_valid(nir) if ins_nir_like(root) else True
            identity.ins.append(InsIdentifier(nir, root, kind, valid))
        else:
            if root.startswith(_INS_ARC):
                identity.warnings.append(f"{PATIENT_PATH}/id: root {root[:64]} is in the "
                                         "INS arc but names no INS kind known here: read "
                                         "as a local identifier, never as an INS")
            identity.local_ids.append(LocalIdentifier(root, extension, "PI"))
    if identity.ins:
        identity.identity_status = "VALI"  # CI-SIS: only a qualified INS goes into a CDA
    name = _legal_name(rt.names)
    if name is not None:
        birth = name.families("BR")
        used = name.families("SP") or name.families("CL")
        other = [p.value for p in name.family if p.qualifier not in ("BR", "SP", "CL")]
        identity.birth_family = birth[0] if birth else ""
        identity.family = (used or other or birth or [""])[0]
        if not birth or not used:  # one name for both ('MARTIN épouse DUPONT')
            read_joined_family(identity, f"{PATIENT_PATH}/patient/name/family")
        givens = [p.value for p in name.given if p.qualifier == "BR"] or \
            [p.value for p in name.given if p.qualifier != "CL"] or \
            [p.value for p in name.given]
        first = givens[0].replace(",", " ").split() if givens else []
        identity.given = first[0] if first else ""
    if rt.administrative_gender is not None:
        identity.sex = rt.administrative_gender.code.upper()[:1]
    identity.multiple_birth = _multiple_birth(rt)
    # CI-SIS: the INSEE code of the birth commune in birthplace/place/addr/county
    place = rt.birthplace.addr if rt.birthplace is not None else None
    identity.birth_place = insee_code(place.get("county")) if place is not None else ""
    if rt.birth_time is not None and 0 < len(rt.birth_time.value) < 8:
        # '1979', '197903': PID-7 says so for a partial date, the CDA path said nothing
        identity.warnings.append(f"{PATIENT_PATH}/patient/birthTime: birth date is partial "
                                 "(year or month), kept empty")
        if len(rt.birth_time.value) in (4, 6) and rt.birth_time.value.isdigit():
            value = rt.birth_time.value
            identity.birth_date_partial = value[:4] + (f"-{value[4:6]}" if value[4:] else "")
    if rt.birth_time is not None and len(rt.birth_time.value) >= 8:
        try:
            identity.birth_date = hl7_ts_to_iso(rt.birth_time.value[:8])
        except ValueError:  # '19551399': compared, it would match nobody or the wrong one
            identity.warnings.append(f"CDA_BAD_DATE: {PATIENT_PATH}/patient/birthTime: "
                                     f"{BAD_TS_TEXT}, birth date ignored")
    return identity


def _multiple_birth(rt: RecordTarget) -> bool:
    """The patient is one of a multiple birth: ``sdtc:multipleBirthInd`` true, else (none
    sent) an ``sdtc:multipleBirthOrderNumber`` past the first, as PID-24/PID-25 are read
    (normalizers/identity.py). Twins share family name, birth date and often sex, and a
    newborn's given name is a placeholder: identity resolution never matches them on their
    traits. Read, the document's twin went into the other twin's dossier."""
    said = order = ""
    for ext in rt.extensions:
        if ext.namespace != SDTC:
            continue
        if ext.name == "multipleBirthInd":
            said = ext.attributes.get("value", "").strip().lower()
        elif ext.name == "multipleBirthOrderNumber":
            order = ext.attributes.get("value", "").strip()
    return said == "true" or (said not in ("true", "false") and order.isdigit()
                              and int(order) > 1)


# HL7 EntityNameUse codes of a name that is not the one a person is registered under: a
# pseudonym or nickname (P), an artist's (A), religious (R), indigenous (I) or assigned
# (ASGN) name, and the search, phonetic or script variants (SRCH, PHON, SNDX, ABC, SYL, IDE)
_NOT_LEGAL_USES = frozenset({"P", "A", "R", "I", "ASGN", "SRCH", "PHON", "SNDX", "ABC", "SYL",
                             "IDE"})


def _today_digits() -> str:
    """Today as 'YYYYMMDD', formatted by hand: this runs once per CDA document just after
    its parse, and the first ``strftime`` after an lxml parse costs 0.03-0.8 ms in glibc
    depending on the machine's load (its locale and zone data are out of the caches;
    bench/README.md, round 2), a few microseconds otherwise."""
    today = date.today()
    return f"{today.year:04d}{today.month:02d}{today.day:02d}"


def _legal_name(names: list) -> Any:
    """The patient's name to identify them by: the one marked legal or official registry
    (use L, OR), else the first that is no nickname or variant, else the first. A C-CDA may
    list the nickname ('Betty', use P) before the legal name: it was the one compared."""
    names = [n for n in names if not n.null_flavor] or names
    # A name whose validTime ended is a former one (a maiden name kept beside the married
    # one): compared with the dossier, it conflicted with the name the patient goes by now.
    today = _today_digits()
    names = [n for n in names if not n.valid_until or n.valid_until[:8] >= today] or names
    if not names:
        return None
    uses = [set(n.use.split()) for n in names]
    return next((n for n, u in zip(names, uses, strict=True) if u & {"L", "OR"}), None) or \
        next((n for n, u in zip(names, uses, strict=True) if not u & _NOT_LEGAL_USES),
             names[0])
