#!/usr/bin/env python3
r"""Synthetic, deterministic French CI-SIS CDA R2 documents for the DMP intake.

The committed set (``samples/cda/``, described in ``samples/cda/README.md`` and, machine-readable,
``samples/cda/expected.csv``) is rebuilt byte for byte by::

    python samples/generate_cda.py --out samples/cda

Large lab reports for benchmarks (``N`` CR-BIO files of ``--results`` structured results each,
about 50 KB for 100 results, plus the ``patients.csv`` of the people they name)::

    python samples/generate_cda.py --out DIR --big N [--results 100] [--seed S]

From Python (run from ``samples/`` or with the project root on ``sys.path``)::

    from samples.generate_cda import cr_bio, build_cda_set
    data = cr_bio(100, seed=3)          # bytes: one CR-BIO with exactly 100 result observations

Everything is built with the standard library (a small XML writer, a hand-made PDF), from
``random.Random`` streams seeded with strings; no clock is read, so one seed always gives the
same bytes. The people are those of the HL7v2 sample set (``samples/generate.py``, patients
K1..K8 and U1, their NIRs and their laboratories' local ids), so a CDA document and an HL7v2
message about the same person resolve to the same dossier.

Where the structures come from: the ANS public examples (TestContenuCDA, in
``../shared/corpus/cda``): BIO-CR-BIO_2021.01_Auto-Presentable.xml and BIO-CR-BIO_2023.01_
Electrophorese.xml (CR-BIO header, PALM sections, batteries, observations, reference ranges),
LDL-SES_2022.01.xml (discharge letter header and sections, treatments), VSM_1.4_2022.01.xml
(problems with CIM-10, allergies with their agent, treatments), AVC-AUNV_2022.01.xml (vital
signs), IMG_CR_IMG_2024.01.xml (imaging report sections, radiation dose), DOC_NON_STRUCTURE_
CDA-R2-N1.xml (level 1, nonXMLBody), BIO-CR-BIO_2021.01_Microbiologie_V2.xml (relatedDocument
RPLC). The template and code system OIDs below are copied from those files.

Identities: the NIRs are those of the HL7v2 sample set (valid keys), sent as INS under the test
OID 1.2.250.1.213.1.4.10, except in the two hospital letters which use the production INS-NIR
OID 1.2.250.1.213.1.4.8 as a real hospital would (the people are still invented). Organisation
OIDs for local ids and document ids are under 2.999 (the ITU-T example arc); RPPS numbers are
test-style (leading 8), FINESS-like numbers carry a Luhn key. None of these people exist.
"""

from __future__ import annotations

import argparse
import base64
import csv
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from random import Random

if __package__:
    from . import generate as hl7gen
else:  # run as a script: samples/ is sys.path[0]
    import generate as hl7gen

SAMPLE_SEED = hl7gen.SAMPLE_SEED  # 2025, as the HL7v2 sample set
DEFAULT_SEED = 1

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SDTC = "urn:hl7-org:sdtc"
LAB_NS = "urn:oid:1.3.6.1.4.1.19376.1.3.2"  # IHE PALM extension namespace (lab:statusCode)

# --------------------------------------------------------------------------------------------
# OIDs and code systems (copied from the ANS examples, see the module docstring)
# --------------------------------------------------------------------------------------------

INS_NIR = "1.2.250.1.213.1.4.8"  # production INS-NIR
INS_NIR_TEST = "1.2.250.1.213.1.4.10"  # test INS-NIR
RPPS = "1.2.250.1.71.4.2.1"  # PS national id (8 + RPPS)
STRUCT = "1.2.250.1.71.4.2.2"  # structure national id (1 + FINESS, 3 + SIRET)
LOINC = "2.16.840.1.113883.6.1"
SNOMED = "2.16.840.1.113883.6.96"
CIM10 = "2.16.840.1.113883.6.3"
ATC = "2.16.840.1.113883.6.73"
CIS = "1.2.250.1.213.2.3.1"
CIP = "1.2.250.1.213.2.3.2"
EDQM = "0.4.0.127.0.16.1.1.2.1"
DCM = "1.2.840.10008.2.16.4"
CONFIDENTIALITY = "2.16.840.1.113883.5.25"
GENDER = "2.16.840.1.113883.5.1"
INTERPRETATION = "2.16.840.1.113883.5.83"
ACT_CODE = "2.16.840.1.113883.5.4"
PROFESSION = "1.2.250.1.213.1.1.4.5"  # TRE_G15 profession / savoir-faire
PRACTICE_SETTING = "1.2.250.1.213.1.1.4.9"
FACILITY_TYPE = "1.2.250.1.71.4.2.4"
FUNCTION_CODE = "2.16.840.1.113883.5.88"
SPECIMEN_TYPE = "2.16.840.1.113883.18.311"
NABM = "1.2.250.1.213.2.7"
TA_ASIP = "1.2.250.1.213.1.1.4.322"

HL7_FRANCE = "2.16.840.1.113883.2.8.2.1"
CI_SIS = "1.2.250.1.213.1.1.1.1"
XDS_SD = "1.3.6.1.4.1.19376.1.2.20"

CONF_DISPLAY = {"N": "Normal", "R": "Restreint", "V": "Très restreint"}
INTERP_DISPLAY = {"N": "Normal", "H": "Haut", "L": "Bas"}

# Lab units as generate.py writes them -> UCUM (the CDA carries UCUM, as CI-SIS requires).
UCUM = {
    "G/L": "10*9/L", "T/L": "10*12/L", "µmol/L": "umol/L", "UI/L": "[IU]/L",
    "mUI/L": "m[IU]/L", "µg/L": "ug/L", "mL/min/1,73m²": "mL/min/{1.73_m2}",
}


def ucum(unit: str) -> str:
    return UCUM.get(unit, unit)


@dataclass(frozen=True)
class DocType:
    code: str
    display: str
    system: str
    templates: tuple[tuple[str, str], ...]  # (root, extension) after HL7 France and CI-SIS
    lab_ns: bool = False


CR_BIO = DocType("11502-2", "CR d'examens biologiques", LOINC,
                 (("1.3.6.1.4.1.19376.1.3.3", ""), ("1.2.250.1.213.1.1.1.55", "")), lab_ns=True)
CR_BIO_N1 = DocType("11502-2", "CR d'examens biologiques", LOINC, ((XDS_SD, ""),))
LDL_SES = DocType("11490-0", "Lettre de liaison à la sortie d'un établissement de soins", LOINC,
                  (("1.2.250.1.213.1.1.1.29", "2022.01"),))
VSM = DocType("SYNTH", "Synthèse", "1.2.250.1.213.1.1.4.12",
              (("1.2.250.1.213.1.1.1.13", "201310"),))
CR_IMG = DocType("18748-4", "CR d'imagerie médicale", LOINC,
                 (("1.2.840.10008.9.1", ""), ("1.2.840.10008.9.20", ""),
                  ("1.2.840.10008.9.21", ""), ("1.2.250.1.213.1.1.1.45", "2024.01")))

# --------------------------------------------------------------------------------------------
# A small XML writer: deterministic output, attribute order as written, readable indentation
# --------------------------------------------------------------------------------------------


class Comment(str):
    """An XML comment among an element's children."""


class E:
    """An element: tag, attributes (insertion order kept; None values dropped), children
    (elements, comments, text; lists are flattened, None skipped)."""

    __slots__ = ("tag", "attrs", "kids")

    def __init__(self, tag: str, attrs: dict[str, str | None] | None = None, *kids) -> None:
        self.tag = tag
        self.attrs = {k: v for k, v in (attrs or {}).items() if v is not None}
        self.kids: list = []
        self.add(*kids)

    def add(self, *kids) -> E:
        for k in kids:
            if k is None:
                continue
            if isinstance(k, list | tuple):
                self.add(*k)
            else:
                self.kids.append(k)
        return self


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(text: str) -> str:
    return _esc(text).replace('"', "&quot;")


def _open(e: E) -> str:
    return "<" + e.tag + "".join(f' {k}="{_attr(v)}"' for k, v in e.attrs.items())


def _is_text(k) -> bool:
    return isinstance(k, str) and not isinstance(k, Comment)


def _inline(e: E) -> str:
    if not e.kids:
        return _open(e) + "/>"
    inner = "".join(_esc(k) if _is_text(k) else f"<!--{k}-->" if isinstance(k, Comment)
                    else _inline(k) for k in e.kids)
    return f"{_open(e)}>{inner}</{e.tag}>"


def _render(e: E, depth: int, out: list[str], indent: str) -> None:
    pad = indent * depth
    if not e.kids or any(_is_text(k) for k in e.kids):  # empty, text or mixed content
        out.append(pad + _inline(e))
        return
    out.append(pad + _open(e) + ">")
    for k in e.kids:
        if isinstance(k, Comment):
            out.append(f"{pad}{indent}<!-- {k} -->")
        else:
            _render(k, depth + 1, out, indent)
    out.append(f"{pad}</{e.tag}>")


def serialize(root: E, *, prolog: Sequence[str] = (), indent: str = "  ",
              declaration: str = '<?xml version="1.0" encoding="UTF-8"?>') -> bytes:
    lines = [declaration, *prolog]
    _render(root, 0, lines, indent)
    return ("\n".join(lines) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------------
# Small builders for recurring CDA shapes
# --------------------------------------------------------------------------------------------


def T(root: str, ext: str = "") -> E:  # noqa: N802 - templateId
    return E("templateId", {"root": root, "extension": ext or None})


def II(root: str, ext: str | None = None) -> E:  # noqa: N802
    return E("id", {"root": root, "extension": ext})


def CD(tag: str, code: str, system: str, display: str | None = None,
       system_name: str | None = None, *kids, xsi_type: str | None = None) -> E:  # noqa: N802
    return E(tag, {"xsi:type": xsi_type, "code": code, "displayName": display,
                   "codeSystem": system, "codeSystemName": system_name}, *kids)


def loinc(tag: str, code: str, display: str, *kids) -> E:
    return CD(tag, code, LOINC, display, "LOINC", *kids)


def ref(target: str) -> E:
    return E("reference", {"value": "#" + target})


def text_ref(target: str) -> E:
    return E("text", None, ref(target))


def ts(utc: datetime, seconds: bool = True) -> str:
    return hl7gen.hl7_ts(utc, seconds)


def day(d: date) -> str:
    return d.strftime("%Y%m%d")


def fr_date(utc: datetime | date) -> str:
    """dd/mm/yyyy in Paris time, as French narratives print dates."""
    if isinstance(utc, datetime):
        utc = utc + timedelta(hours=hl7gen.paris_offset(utc))
    return utc.strftime("%d/%m/%Y")


def fr_datetime(utc: datetime) -> str:
    local = utc + timedelta(hours=hl7gen.paris_offset(utc))
    return local.strftime("%d/%m/%Y à %Hh%M")


def det_uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


def rpps(rng: Random) -> str:
    """A test-style national PS id: 8 + an 11-digit RPPS-like number with a Luhn key."""
    body = f"1{rng.randrange(10**9):09d}"
    return "8" + body + hl7gen.luhn_digit(body)


def finess(base8: str) -> str:
    return base8 + hl7gen.luhn_digit(base8)


# --------------------------------------------------------------------------------------------
# Organisations and professionals
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    key: str
    name: str
    struct_id: str  # extension under 1.2.250.1.71.4.2.2 (1 + FINESS, or 3 + SIRET)
    oid: str  # the organisation's own arc: local patient ids (IPP) and, under it, documents
    addr: tuple[str, str, str, str]  # house number, street, postcode, city
    tel: str
    setting: tuple[str, str]  # practiceSettingCode
    facility: tuple[str, str]  # healthCareFacility type (SA..)

    @property
    def doc_root(self) -> str:
        return self.oid + ".10"

    @property
    def set_root(self) -> str:
        return self.oid + ".11"


@dataclass(frozen=True)
class Pro:
    id: str  # 8 + RPPS
    family: str
    given: str
    prefix: str  # M / MME
    suffix: str  # DR / PR
    profession: tuple[str, str]
    org: Org


AMBULATOIRE = ("AMBULATOIRE", "Ambulatoire")
ETABLISSEMENT = ("ETABLISSEMENT", "Etablissement de santé")
LBM = ("SA25", "Laboratoire de biologie médicale")
SA01 = ("SA01", "Etablissement public de santé")
SA08 = ("SA08", "Cabinet de groupe")
BIOLOGIE = ("G15_10/SM03", "Médecin - Biologie médicale (SM)")
MG = ("G15_10/SM26", "Médecin - Qualifié en Médecine Générale (SM)")
INTERNE = ("G15_10/SM27", "Médecin - Médecine interne (SM)")
RADIO = ("G15_10/SM44", "Médecin - Radio-diagnostic (SM)")

_L = hl7gen.LAB_BY_KEY
LAB_ORGS = {
    "labm": Org("labm", _L["labm"].name, "1" + _L["labm"].finess, _L["labm"].id_oid,
                ("18", "rue de la République", "69002", "Lyon"), "0478000101", AMBULATOIRE, LBM),
    "synlab": Org("synlab", _L["synlab"].name, "1" + _L["synlab"].finess, _L["synlab"].id_oid,
                  ("42", "cours de l'Intendance", "33000", "Bordeaux"), "0556000202",
                  AMBULATOIRE, LBM),
    "chu": Org("chu", _L["chu"].name, "1" + _L["chu"].finess, _L["chu"].id_oid,
               ("2", "rue de l'Hôpital", "35000", "Rennes"), "0299000303", ETABLISSEMENT, SA01),
    "bioazur": Org("bioazur", _L["bioazur"].name, "1" + _L["bioazur"].finess,
                   _L["bioazur"].id_oid, ("9", "avenue Jean-Médecin", "06000", "Nice"),
                   "0493000404", AMBULATOIRE, LBM),
}
CHU_BX = Org("chu-bx", "Groupe hospitalier Bordeaux-Garonne", "1" + finess("33000871"),
             "2.999.250.2.1", ("5", "quai de la Souys", "33100", "Bordeaux"), "0557000505",
             ETABLISSEMENT, SA01)
CH_LYON = Org("ch-lyon", "Centre hospitalier Lyon-Confluence", "1" + finess("69000345"),
              "2.999.250.2.2", ("30", "cours Charlemagne", "69002", "Lyon"), "0472000606",
              ETABLISSEMENT, SA01)
IMG_NICE = Org("img-nice", "Centre d'imagerie médicale Riviera", "1" + finess("06000789"),
               "2.999.250.3.1", ("14", "boulevard Gambetta", "06000", "Nice"), "0493000707",
               AMBULATOIRE, SA08)
CABINET = Org("cabinet", "Cabinet médical des Gratte-Ciel", "3" + "44306184100047",
              "2.999.250.4.1", ("7", "avenue Henri-Barbusse", "69100", "Villeurbanne"),
              "0478000808", AMBULATOIRE, SA08)
CLINIQUE_X = Org("clinique-x", "Clinique du Parc des Oiseaux", "1" + finess("01000912"),
                 "2.999.250.9.1", ("3", "route de Lyon", "01000", "Bourg-en-Bresse"),
                 "0474000909", ETABLISSEMENT, ("SA04", "Etablissement privé non PSPH"))

_P = Random("dmp-cda:professionals")


def biologist(lab_key: str, i: int = 0) -> Pro:
    fam, given = hl7gen.LAB_BY_KEY[lab_key].biologists[i]
    return Pro(hl7gen.BIOLOGIST_IDS[(fam, given)], fam, given,
               "MME" if given in ("Bénédicte", "Agnès", "Gwénaëlle", "Chiara") else "M", "DR",
               BIOLOGIE, LAB_ORGS[lab_key])


# Where generate.py's prescribers practise (index 1, RIVIÈRE, is K2's médecin traitant).
_PRACTICES = [("69003", "Lyon"), ("69100", "Villeurbanne"), ("69007", "Lyon"),
              ("06300", "Nice"), ("33400", "Talence"), ("69200", "Vénissieux"),
              ("35000", "Rennes"), ("33700", "Mérignac"), ("69300", "Caluire-et-Cuire"),
              ("42000", "Saint-Étienne"), ("2A000", "Ajaccio"), ("06600", "Antibes")]


def practice(i: int) -> Org:
    if i == 1:
        return CABINET
    fam, given = hl7gen.PRESCRIBERS[i]
    r = Random(f"dmp-cda:practice:{i}")
    postcode, town = _PRACTICES[i]
    siret = f"{r.randrange(10**13, 10**14)}"
    return Org(f"cabinet-{i}", f"Cabinet du Dr {given} {fam.title()}", "3" + siret,
               f"2.999.250.4.{i + 10}", (str(r.randint(1, 60)), r.choice(hl7gen.STREETS),
                                        postcode, town),
               f"04{r.randrange(10**8):08d}", AMBULATOIRE, SA08)


def prescriber(i: int) -> Pro:
    fam, given = hl7gen.PRESCRIBERS[i]
    female = given in ("Anne", "Sarah", "Claire", "Élodie", "Cécile", "Amélie")
    return Pro(hl7gen.PRESCRIBER_IDS[i], fam, given, "MME" if female else "M", "DR", MG,
               practice(i))


DR_CAZENAVE = Pro(rpps(_P), "CAZENAVE", "Isabelle", "MME", "DR", INTERNE, CHU_BX)
PR_LABORDE = Pro(rpps(_P), "LABORDE", "Étienne", "M", "PR", INTERNE, CHU_BX)
DR_BENSAID = Pro(rpps(_P), "BENSAÏD", "Karim", "M", "DR", INTERNE, CH_LYON)
DR_ORSINI = Pro(rpps(_P), "ORSINI", "Laetitia", "MME", "DR", RADIO, IMG_NICE)
DR_LAPORTE = Pro(rpps(_P), "LAPORTE", "Grégoire", "M", "DR", INTERNE, CLINIQUE_X)
RIVIERE = prescriber(1)  # K2's médecin traitant (prescriber of his HL7v2 lab orders)


# --------------------------------------------------------------------------------------------
# Patients (those of the HL7v2 sample set)
# --------------------------------------------------------------------------------------------

BIRTH_TOWNS = {"69123": "LYON", "29232": "QUIMPER", "67482": "STRASBOURG", "2A004": "AJACCIO",
               "2B033": "BASTIA", "33063": "BORDEAUX", "97120": "POINTE-À-PITRE",
               "56260": "VANNES", "75115": "PARIS", "01053": "BOURG-EN-BRESSE"}


@lru_cache(maxsize=4)
def sample_set(seed: int = SAMPLE_SEED):
    """The HL7v2 sample set (files, patients) exactly as samples/generate.py builds it."""
    return hl7gen.build_sample_set(seed)


def sample_patients(seed: int = SAMPLE_SEED) -> dict[str, hl7gen.Patient]:
    return {p.key: p for p in sample_set(seed)[1]}


def extra_patient(seed: int = SAMPLE_SEED) -> hl7gen.Patient:
    """U2: a person nobody knows, for the unknown-identifier document (not in patients.csv)."""
    g = hl7gen.Generator(seed, stream="cda-extra")
    return g.fixed_patient("U2", "M", "Mathéo Louis", "Rousseau", "Rousseau", date(1983, 4, 9),
                           "01053", "VALI", "11 rue des Écoles", "Bourg-en-Bresse", "01000",
                           "labm", 0.2, known=False)


def split_street(street: str) -> tuple[str, str]:
    number, _, rest = street.partition(" ")
    return (number, rest) if number.isdigit() else ("", street)


def addr(house: str, street: str, postcode: str, city: str, use: str | None = None,
         country: str | None = None) -> E:
    return E("addr", {"use": use},
             E("houseNumber", None, house) if house else None,
             E("streetName", None, street), E("postalCode", None, postcode),
             E("city", None, city), E("country", None, country) if country else None)


def org_addr(org: Org) -> E:
    return addr(*org.addr)


def record_target(p: hl7gen.Patient, ids: Sequence[tuple[str, str]], *, upper: bool,
                  rng: Random, telecom: bool = True, deceased_ind: bool = False) -> E:
    """recordTarget as the CI-SIS examples write it: INS and local ids, address, names
    (birth name BR, all birth given names, first given name BR, used name CL; spouse name SP
    for a married woman), gender, birth date, birth place (INSEE code). ``deceased_ind`` adds
    the sdtc:deceasedInd extension (false) after birthTime."""
    up = str.upper if upper else str
    house, street = split_street(p.street)
    name = E("name", None,
             E("family", {"qualifier": "BR"}, up(p.birth_family)),
             E("given", None, up(p.given_all)),
             E("given", {"qualifier": "BR"}, up(p.given)))
    if p.family != p.birth_family:
        name.add(E("family", {"qualifier": "SP"}, up(p.family)))
    name.add(E("family", {"qualifier": "CL"}, up(p.family)),
             E("given", {"qualifier": "CL"}, up(p.given)))
    town = BIRTH_TOWNS.get(p.insee)
    birthplace = E("birthplace", None, E("place", None, E(
        "addr", None, E("county", None, p.insee), E("city", None, town) if town else None)))
    phone = f"06{rng.randrange(10**8):08d}"
    return E("recordTarget", None, E(
        "patientRole", None,
        [E("id", {"extension": ext, "root": root}) for root, ext in ids],
        addr(house, street, p.postcode, up(p.town), "H", "FRANCE"),
        E("telecom", {"value": f"tel:{phone}", "use": "MC"}) if telecom else None,
        E("patient", {"classCode": "PSN"}, name,
          CD("administrativeGenderCode", p.sex, GENDER,
             "Féminin" if p.sex == "F" else "Masculin"),
          E("birthTime", {"value": day(p.birth_date)}),
          E("sdtc:deceasedInd", {"value": "false"}) if deceased_ind else None, birthplace)))


def person_name(pro: Pro) -> E:
    return E("name", None, E("prefix", None, pro.prefix), E("given", None, pro.given),
             E("family", None, pro.family), E("suffix", None, pro.suffix))


def org_element(tag: str, org: Org, *, setting: bool = False) -> E:
    return E(tag, None, II(STRUCT, org.struct_id), E("name", None, org.name),
             E("telecom", {"value": f"tel:{org.tel}", "use": "WP"}), org_addr(org),
             CD("standardIndustryClassCode", org.setting[0], PRACTICE_SETTING, org.setting[1],
                "practiceSettingCode") if setting else None)


def assigned(tag: str, pro: Pro, *, org_tag: str = "representedOrganization",
             setting: bool = False) -> E:
    return E(tag, None, II(RPPS, pro.id),
             CD("code", pro.profession[0], PROFESSION, pro.profession[1]),
             org_addr(pro.org), E("telecom", {"value": f"tel:{pro.org.tel}", "use": "WP"}),
             E("assignedPerson", None, person_name(pro)),
             org_element(org_tag, pro.org, setting=setting))


def author(pro: Pro, when: datetime, function: tuple[str, str] | None = None) -> E:
    return E("author", None,
             CD("functionCode", function[0], FUNCTION_CODE, function[1]) if function else None,
             E("time", {"value": ts(when)}), assigned("assignedAuthor", pro))


def custodian(org: Org) -> E:
    return E("custodian", None, E("assignedCustodian", None, E(
        "representedCustodianOrganization", None, II(STRUCT, org.struct_id),
        E("name", None, org.name), E("telecom", {"value": f"tel:{org.tel}", "use": "WP"}),
        org_addr(org))))


def legal_authenticator(pro: Pro, when: datetime) -> E:
    return E("legalAuthenticator", None, E("time", {"value": ts(when)}),
             E("signatureCode", {"code": "S"}), assigned("assignedEntity", pro, setting=True))


def participant_pcp(pro: Pro) -> E:
    """The patient's médecin traitant (participant INF, functionCode PCP)."""
    return E("participant", {"typeCode": "INF"},
             CD("functionCode", "PCP", FUNCTION_CODE, "Médecin traitant"),
             E("time", {"nullFlavor": "NA"}),
             E("associatedEntity", {"classCode": "PROV"}, II(RPPS, pro.id),
               CD("code", pro.profession[0], PROFESSION, pro.profession[1]), org_addr(pro.org),
               E("telecom", {"value": f"tel:{pro.org.tel}", "use": "WP"}),
               E("associatedPerson", None, person_name(pro)),
               E("scopingOrganization", None, II(STRUCT, pro.org.struct_id),
                 E("name", None, pro.org.name), org_addr(pro.org))))


def participant_ref(pro: Pro, ordered: datetime) -> E:
    """The prescriber of the lab tests (participant REF, IHE PALM template)."""
    return E("participant", {"typeCode": "REF"}, T("1.3.6.1.4.1.19376.1.3.3.1.6"),
             E("time", {"xsi:type": "IVL_TS"}, E("high", {"value": ts(ordered, False)})),
             E("associatedEntity", {"classCode": "PROV"}, II(RPPS, pro.id),
               CD("code", pro.profession[0], PROFESSION, pro.profession[1]), org_addr(pro.org),
               E("associatedPerson", None, person_name(pro))))


def encounter(org: Org, start: datetime, end: datetime | None, code: tuple[str, str] | None,
              responsible: Pro | None = None, visit: str | None = None) -> E:
    return E("componentOf", None, E(
        "encompassingEncounter", None,
        II(org.oid + ".20", visit) if visit else None,
        CD("code", code[0], ACT_CODE, code[1]) if code else None,
        E("effectiveTime", None, E("low", {"value": ts(start)}),
          E("high", {"value": ts(end)}) if end else None),
        E("responsibleParty", None, assigned("assignedEntity", responsible))
        if responsible else None,
        E("location", None, E("healthCareFacility", None,
                              CD("code", org.facility[0], FACILITY_TYPE, org.facility[1]),
                              E("location", None, E("name", None, org.name), org_addr(org))))))


@dataclass
class Header:
    kind: DocType
    doc_id: tuple[str, str]
    set_id: tuple[str, str]
    version: int
    title: str
    effective: datetime
    confidentiality: str
    record_target: E | None
    authors: list[E]
    custodian: E
    legal: E | None
    participants: list[E] = field(default_factory=list)
    in_fulfillment: E | None = None
    documentation: list[E] = field(default_factory=list)
    replaces: tuple[str, str] | None = None
    encounter: E | None = None


def clinical_document(h: Header, body: E, *, root_tag: str = "ClinicalDocument") -> E:
    attrs = {"xmlns": V3, "xmlns:xsi": XSI, "xmlns:sdtc": SDTC}
    if h.kind.lab_ns:
        attrs["xmlns:lab"] = LAB_NS
    root = E(root_tag, attrs)
    root.add(
        Comment("En-tête du document"),
        E("realmCode", {"code": "FR"}),
        E("typeId", {"root": "2.16.840.1.113883.1.3", "extension": "POCD_HD000040"}),
        T(HL7_FRANCE), T(CI_SIS), [T(r, x) for r, x in h.kind.templates],
        II(*h.doc_id),
        CD("code", h.kind.code, h.kind.system, h.kind.display,
           "LOINC" if h.kind.system == LOINC else None),
        E("title", None, h.title),
        E("effectiveTime", {"value": ts(h.effective)}),
        CD("confidentialityCode", h.confidentiality, CONFIDENTIALITY,
           CONF_DISPLAY[h.confidentiality]),
        E("languageCode", {"code": "fr-FR"}),
        E("setId", {"root": h.set_id[0], "extension": h.set_id[1] or None}),
        E("versionNumber", {"value": str(h.version)}),
        h.record_target, h.authors, h.custodian, h.legal, h.participants, h.in_fulfillment,
        h.documentation,
        E("relatedDocument", {"typeCode": "RPLC"}, E("parentDocument", None, II(*h.replaces)))
        if h.replaces else None,
        h.encounter,
        Comment("Corps du document"),
        body)
    return root


# --------------------------------------------------------------------------------------------
# Lab results (CR-BIO)
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    loinc: str
    label: str
    value: str  # as printed ('1.84'); for '<' results the limit
    unit: str  # UCUM
    low: str | None
    high: str | None
    flag: str  # H / L / N
    time: str  # HL7 TS of the specimen collection
    comparator: str = ""  # '<' for a result under the detection limit


@dataclass
class Battery:
    code: str
    label: str
    chapter: tuple[str, str]  # (LOINC, title) of the CR-BIO chapter section
    collected: datetime
    validated: datetime
    results: list[Result]
    specimen: tuple[str, str] = ("BLD", "Sang")


HEMATO = ("18723-7", "Hématologie")
BIOCHIMIE = ("18719-5", "Biochimie")
HEMOSTASE = ("18720-3", "Hémostase")
GAZ = ("18767-4", "Gaz du sang")
CHAPTER_OF = {"NFS": HEMATO}

# Analytes beyond those of generate.py, for long (cumulative) reports:
# (loinc, label, UCUM unit, low, high, decimals)
EXTRA_ANALYTES = {
    "5894-1": ("Taux de prothrombine (TP)", "%", 70.0, 120.0, 0),
    "6301-6": ("INR", "{INR}", 0.8, 1.2, 2),
    "14979-9": ("Temps de céphaline activée (TCA), patient", "s", 25.0, 38.0, 1),
    "3255-7": ("Fibrinogène", "g/L", 2.0, 4.0, 2),
    "2744-1": ("pH artériel", "[pH]", 7.35, 7.45, 2),
    "2019-8": ("pCO2 artérielle", "mm[Hg]", 35.0, 45.0, 0),
    "2703-7": ("pO2 artérielle", "mm[Hg]", 80.0, 100.0, 0),
    "1960-4": ("Bicarbonates artériels", "mmol/L", 22.0, 26.0, 1),
    "2524-7": ("Lactates", "mmol/L", 0.5, 2.2, 1),
    "14798-3": ("Fer sérique", "umol/L", 10.0, 30.0, 1),
    "3034-6": ("Transferrine", "g/L", 2.0, 3.6, 2),
    "2502-3": ("Coefficient de saturation de la transferrine", "%", 20.0, 40.0, 0),
    "2000-8": ("Calcium", "mmol/L", 2.20, 2.60, 2),
    "2601-3": ("Magnésium", "mmol/L", 0.70, 1.05, 2),
    "14879-1": ("Phosphore", "mmol/L", 0.80, 1.45, 2),
    "14933-6": ("Acide urique", "umol/L", 150.0, 420.0, 0),
    "2157-6": ("Créatine kinase (CK)", "[IU]/L", None, 190.0, 0),
    "2532-0": ("Lactate déshydrogénase (LDH)", "[IU]/L", 125.0, 250.0, 0),
    "3040-3": ("Lipase", "[IU]/L", None, 60.0, 0),
    "33762-6": ("NT-proBNP", "ng/L", None, 125.0, 0),
    "33959-8": ("Procalcitonine", "ug/L", None, 0.5, 2),
}
# Batteries without a panel code of their own carry their chapter's generic code, as the ANS
# example does ("code générique de biochimie, faute de code spécialisé").
EXTRA_PANELS = {
    "COAG": ("18720-3", "Bilan d'hémostase", HEMOSTASE,
             ("5894-1", "6301-6", "14979-9", "3255-7")),
    "GAZ": ("18767-4", "Gaz du sang artériel", GAZ,
            ("2744-1", "2019-8", "2703-7", "1960-4", "2524-7")),
    "MARTIAL": ("14798-3", "Bilan martial", BIOCHIMIE, ("14798-3", "3034-6", "2502-3")),
    "PHOSPHOCALCIQUE": ("18719-5", "Bilan phosphocalcique", BIOCHIMIE,
                        ("2000-8", "2601-3", "14879-1")),
    "URATE": ("14933-6", "Acide urique", BIOCHIMIE, ("14933-6",)),
    "ENZYMES": ("18719-5", "Enzymes musculaires et pancréatiques", BIOCHIMIE,
                ("2157-6", "2532-0", "3040-3")),
    "CARDIO": ("33762-6", "NT-proBNP", BIOCHIMIE, ("33762-6",)),
    "PCT": ("33959-8", "Procalcitonine", BIOCHIMIE, ("33959-8",)),
}


def fmt(v: float, dec: int) -> str:
    return f"{v:.{dec}f}"


def flag_of(v: float, lo: float | None, hi: float | None) -> str:
    return "L" if lo is not None and v < lo else "H" if hi is not None and v > hi else "N"


def results_from_obs(obs: Iterable[hl7gen.Obs], sex: str, when: str) -> list[Result]:
    """generate.py's results (lab units, text values) as CDA results (UCUM, bounds)."""
    out = []
    for o in obs:
        if o.meta or o.loinc not in hl7gen.ANALYTES or o.vtype not in ("NM", "SN"):
            continue
        a = hl7gen.ANALYTES[o.loinc]
        lo, hi = a.bounds(sex)
        comparator, value = "", o.value
        if o.vtype == "SN":
            comparator, value = o.value.split("^", 1)
        out.append(Result(o.loinc, a.label, value, ucum(a.unit),
                          fmt(lo, a.dec) if lo is not None else None,
                          fmt(hi, a.dec) if hi is not None else None, o.flag or "N", when,
                          comparator))
    return out


def extra_results(rng: Random, codes: Sequence[str], when: str, p_abn: float) -> list[Result]:
    out = []
    for code in codes:
        label, unit, lo, hi, dec = EXTRA_ANALYTES[code]
        lo_e = lo if lo is not None else hi * 0.2
        hi_e = hi if hi is not None else lo * 1.5
        if rng.random() < p_abn:
            span = hi_e - lo_e
            v = hi_e + span * rng.uniform(0.05, 0.8) if rng.random() < 0.7 or lo is None \
                else max(lo_e - span * rng.uniform(0.05, 0.4), lo_e * 0.3)
        else:
            v = rng.uniform(lo_e, hi_e)
        text = fmt(v, dec)
        out.append(Result(code, label, text, unit, fmt(lo, dec) if lo is not None else None,
                          fmt(hi, dec) if hi is not None else None,
                          flag_of(float(text), lo, hi), when))
    return out


def range_text(r: Result) -> str:
    if r.low and r.high:
        return f"{r.low} - {r.high}"
    if r.high:
        return f"< {r.high}"
    if r.low:
        return f"> {r.low}"
    return ""


def observation(r: Result) -> E:
    if r.comparator == "<":
        value = E("value", {"xsi:type": "IVL_PQ"},
                  E("high", {"value": r.value, "unit": r.unit, "inclusive": "false"}))
    else:
        value = E("value", {"xsi:type": "PQ", "value": r.value, "unit": r.unit})
    rng_value = None
    if r.low or r.high:
        rng_value = E("value", {"xsi:type": "IVL_PQ"},
                      E("low", {"value": r.low, "unit": r.unit}) if r.low else None,
                      E("high", {"value": r.high, "unit": r.unit}) if r.high else None)
    return E("component", None, E(
        "observation", {"classCode": "OBS", "moodCode": "EVN"},
        T("1.3.6.1.4.1.19376.1.3.1.6"), T("1.2.250.1.213.1.1.3.80"),
        loinc("code", r.loinc, r.label),
        E("statusCode", {"code": "completed"}),
        E("effectiveTime", {"value": r.time}),
        value,
        CD("interpretationCode", r.flag, INTERPRETATION, INTERP_DISPLAY[r.flag]),
        E("referenceRange", {"typeCode": "REFV"}, E(
            "observationRange", None, rng_value,
            CD("interpretationCode", "N", INTERPRETATION))) if rng_value else None))


def battery_narrative(b: Battery, anchor: str) -> E:
    rows = []
    for r in b.results:
        value = (r.comparator + " " if r.comparator else "") + r.value
        cell = E("td", {"align": "right"}, E("content", {"styleCode": "Bold"}, value)) \
            if r.flag != "N" else E("td", {"align": "right"}, value)
        rows.append(E("tr", None, E("td", None, r.label), cell, E("td", None, r.unit),
                      E("td", None, range_text(r)), E("td", None, "" if r.flag == "N" else r.flag)))
    return E("text", None,
             E("paragraph", None, f"Prélèvement du {fr_datetime(b.collected)}"),
             E("table", {"border": "0"},
               E("thead", None, E("tr", None, E("th", None, b.label.upper()),
                                  E("th", None, "Résultat"), E("th", None, "Unité"),
                                  E("th", None, "Valeurs de référence"), E("th", None, ""))),
               E("tbody", None, rows)),
             E("paragraph", None, E("content", {"ID": anchor},
                                    f"Résultats validés le {fr_datetime(b.validated)}")))


def battery_section(b: Battery, anchor: str, performer: Pro, lean: bool = False) -> E:
    """One PALM Laboratory Report Item section: narrative table, then the act with (unless
    ``lean``) the validating biologist, the specimen collection and the battery."""
    return E("component", None, E(
        "section", None,
        T("1.3.6.1.4.1.19376.1.3.3.2.2"), T("1.2.250.1.213.1.1.2.71"),
        loinc("code", b.code, b.label),
        E("title", None, b.label),
        battery_narrative(b, anchor),
        E("entry", {"typeCode": "DRIV"},
          T("1.3.6.1.4.1.19376.1.3.1"), T("1.2.250.1.213.1.1.3.21"),
          E("act", {"classCode": "ACT", "moodCode": "EVN"},
            loinc("code", b.code, b.label),
            E("statusCode", {"code": "completed"}),
            None if lean else E(
                "participant", {"typeCode": "AUTHEN"},
                T("1.3.6.1.4.1.19376.1.3.3.1.5"), T("1.2.250.1.213.1.1.3.109"),
                E("time", None, E("high", {"value": ts(b.validated, False)})),
                E("participantRole", None, II(RPPS, performer.id),
                  E("playingEntity", None, person_name(performer)))),
            E("entryRelationship", {"typeCode": "COMP"}, E(
                "procedure", {"classCode": "PROC", "moodCode": "EVN"},
                T("1.3.6.1.4.1.19376.1.3.1.2"), T("1.2.250.1.213.1.1.3.77"),
                CD("code", "9050", NABM, "Ponction veineuse", "NABM"),
                E("effectiveTime", None, E("high", {"value": ts(b.collected, False)})),
                E("participant", {"typeCode": "PRD"}, E(
                    "participantRole", {"classCode": "SPEC"},
                    E("playingEntity", None,
                      CD("code", b.specimen[0], SPECIMEN_TYPE, b.specimen[1])))))),
            E("entryRelationship", {"typeCode": "COMP"}, E(
                "organizer", {"classCode": "BATTERY", "moodCode": "EVN"},
                T("1.3.6.1.4.1.19376.1.3.1.4"), T("1.2.250.1.213.1.1.3.78"),
                loinc("code", b.code, b.label),
                E("statusCode", {"code": "completed"}),
                E("effectiveTime", {"value": ts(b.collected, False)}),
                [observation(r) for r in b.results]))))))


def cr_bio_body(batteries: Sequence[Battery], performer: Pro, comment: str | None = None,
                lean: bool = False) -> E:
    chapters: dict[tuple[str, str], list[Battery]] = {}
    for b in batteries:
        chapters.setdefault(b.chapter, []).append(b)
    body = E("structuredBody")
    if comment:
        body.add(E("component", None, E(
            "section", None, T("2.16.840.1.113883.10.12.201"),
            T("1.3.6.1.4.1.19376.1.4.1.2.16"), T("1.2.250.1.213.1.1.2.73"),
            loinc("code", "55112-7", "Commentaire"), E("title", None, "Commentaire"),
            E("text", None, comment))))
    n = 0
    for (code, title), items in chapters.items():
        section = E("section", None, T("1.3.6.1.4.1.19376.1.3.3.2.1"),
                    T("1.2.250.1.213.1.1.2.70"), loinc("code", code, title),
                    E("title", None, title.upper()))
        for b in items:
            n += 1
            section.add(battery_section(b, f"valid-{n}", performer, lean))
        body.add(E("component", None, section))
    return E("component", None, body)


def lab_service_event(lab: Org, filler: str, received: datetime, released: datetime,
                      director: Pro, chapters: Iterable[tuple[str, str]]) -> list[E]:
    chapters = list(dict.fromkeys(chapters))
    main = E("documentationOf", None, E(
        "serviceEvent", None, II(lab.oid + ".12", filler),
        loinc("code", *chapters[0]),
        E("lab:statusCode", {"code": "completed"}),
        E("effectiveTime", None, E("low", {"value": ts(received)}),
          E("high", {"value": ts(released)})),
        E("performer", {"typeCode": "PRF"}, T("1.3.6.1.4.1.19376.1.3.3.1.7"),
          E("time", None, E("high", {"value": ts(released)})),
          assigned("assignedEntity", director, setting=True))))
    more = [E("documentationOf", None, E("serviceEvent", None, loinc("code", *c)))
            for c in chapters[1:]]
    return [main, *more]


def cr_bio_document(*, lab: Org, patient: hl7gen.Patient, ins_root: str | None, ipp: str | None,
                    batteries: Sequence[Battery], doc_ext: str, set_ext: str, version: int,
                    released: datetime, received: datetime, ordered: datetime,
                    prescriber_pro: Pro | None, validator: Pro, order_ext: str, filler: str,
                    rng: Random, confidentiality: str = "N", replaces: str | None = None,
                    comment: str | None = None, upper: bool = False,
                    title: str = "Compte rendu d'examens biologiques",
                    encounter_el: E | None = None, lean: bool = False) -> E:
    ids = []
    if ins_root:
        ids.append((ins_root, patient.nir))
    if ipp:
        ids.append((lab.oid, ipp))
    h = Header(
        kind=CR_BIO, doc_id=(lab.doc_root, doc_ext), set_id=(lab.set_root, set_ext),
        version=version, title=title, effective=released, confidentiality=confidentiality,
        record_target=record_target(patient, ids, upper=upper, rng=rng),
        authors=[author(validator, released)], custodian=custodian(lab),
        legal=legal_authenticator(validator, released),
        participants=[participant_ref(prescriber_pro, ordered)] if prescriber_pro else [],
        in_fulfillment=E("inFulfillmentOf", None, E("order", None,
                                                    II(lab.oid + ".13", order_ext))),
        documentation=lab_service_event(lab, filler, received, released, validator,
                                        [b.chapter for b in batteries]),
        replaces=(lab.doc_root, replaces) if replaces else None,
        encounter=encounter_el or encounter(lab, min(b.collected for b in batteries), None,
                                            ("AMB", "Ambulatoire (hors établissement)"),
                                            validator))
    return clinical_document(h, cr_bio_body(batteries, validator, comment, lean))


class LabDraw:
    """Values for generate.py's panels, drawn with its own generator (its ranges, its habits)."""

    def __init__(self, seed: int, stream: str) -> None:
        self.g = hl7gen.Generator(seed, stream=stream)
        self.lab = hl7gen.LAB_BY_KEY["labm"]

    def panel(self, key: str, p: hl7gen.Patient, when: datetime) -> list[Result]:
        obs = self.g.panel_results(key, self.lab, p, when)
        return results_from_obs(obs, p.sex, ts(when, False))


def battery(key: str, results: list[Result], collected: datetime, validated: datetime) -> Battery:
    if key in EXTRA_PANELS:
        code, label, chapter, _ = EXTRA_PANELS[key]
    else:
        panel = hl7gen.PANELS[key]
        code, label, chapter = panel.code, panel.label, CHAPTER_OF.get(key, BIOCHIMIE)
    return Battery(code, label, chapter, collected, validated, results)


# Cumulative report: day 1 has the admission panels, the next days the daily follow-up; the
# last battery ("Bilan complémentaire") takes just as many results as are left to reach n.
_DAY1 = ["NFS", "IONO", "RENAL", "HEPATIQUE", "LIPIDES", "HBA1C", "COAG", "GAZ", "MARTIAL",
         "PHOSPHOCALCIQUE", "ENZYMES"]
_DAILY = ["NFS", "IONO", "RENAL", "CRP", "COAG", "GAZ"]
_COMPLEMENT = ("33959-8", "33762-6", "14933-6", "2532-0", "3040-3", "2157-6", "2000-8",
               "2601-3", "14879-1", "14798-3", "3034-6", "2502-3", "2524-7", "5894-1",
               "6301-6", "14979-9", "3255-7", "2744-1", "2019-8", "2703-7", "1960-4")


def cr_bio(n_results: int = 100, seed: int = DEFAULT_SEED, *,
           patient: hl7gen.Patient | None = None, lab_key: str = "chu",
           ipp: str | None = None) -> bytes:
    """A cumulative inpatient CR-BIO with exactly ``n_results`` result observations,
    deterministic for ``seed``. Without ``patient`` a new person is made from the seed (see
    ``big_patient``), so different seeds give different patients and ids.

    Written as a laboratory system exports it for volume: one element per line without
    indentation, each battery with its specimen collection but without a per-battery
    validator (the legal authenticator validated the whole report): about 1 KB per result
    (100 results: about 110 KB)."""
    if n_results < 1:
        raise ValueError("n_results must be at least 1")
    rng = Random(f"dmp-cda:big:{seed}")
    draw = LabDraw(seed, f"cda-big-{seed}")
    if patient is None:
        patient = big_patient(seed)
    lab = LAB_ORGS[lab_key]
    if ipp is None:
        ipp = patient.ipps.get(lab_key) or f"{rng.randrange(10**8, 10**9)}"
    start = hl7gen.paris(2025, 3, 24, 6, 30) + timedelta(days=rng.randrange(200))
    p_abn = 0.05 + 0.3 * patient.frailty
    batteries: list[Battery] = []
    count = 0
    d = 0
    while count < n_results:
        collected = start + timedelta(days=d, minutes=rng.randrange(60))
        validated = collected + timedelta(hours=3, minutes=rng.randrange(90))
        for key in (_DAY1 if d == 0 else _DAILY):
            remaining = n_results - count
            if remaining <= 0:
                break
            res = results_for(key, draw, rng, patient, collected, p_abn)
            if len(res) > remaining:
                codes = [_COMPLEMENT[(d + i) % len(_COMPLEMENT)]
                         for i in range(min(remaining, len(_COMPLEMENT)))]
                res = extra_results(rng, codes, ts(collected, False), p_abn)
                b = Battery(BIOCHIMIE[0], "Bilan complémentaire", BIOCHIMIE, collected,
                            validated, res)
            else:
                b = battery(key, res, collected, validated)
            batteries.append(b)
            count += len(res)
        d += 1
    released = batteries[-1].validated + timedelta(minutes=20)
    validator = biologist(lab_key, rng.randrange(2))
    stay = f"{rng.randrange(10**7):07d}"
    doc = cr_bio_document(
        lab=lab, patient=patient, ins_root=INS_NIR_TEST, ipp=ipp, batteries=batteries,
        doc_ext=f"CRB{seed:06d}{stay}", set_ext=f"DEM{seed:06d}{stay}", version=1,
        released=released, received=start + timedelta(minutes=40),
        ordered=start - timedelta(hours=2), prescriber_pro=None, validator=validator,
        order_ext=f"ORD{stay}", filler=f"{stay}", rng=rng,
        title="Compte rendu d'examens biologiques (cumulatif de séjour)", upper=True,
        encounter_el=encounter(lab, start - timedelta(hours=3), None,
                               ("IMP", "Hospitalisation"), validator,
                               visit=f"{start.year % 100:02d}{stay}"), lean=True)
    return serialize(doc, indent="")


def big_patient(seed: int) -> hl7gen.Patient:
    g = hl7gen.Generator(seed, stream="cda-big-patients")
    p = g.new_patient(f"B{seed:06d}")
    p.status = "VALI"
    return p


def results_for(key: str, draw: LabDraw, rng: Random, p: hl7gen.Patient, when: datetime,
                p_abn: float) -> list[Result]:
    if key in EXTRA_PANELS:
        return extra_results(rng, EXTRA_PANELS[key][3], ts(when, False), p_abn)
    return draw.panel(key, p, when)


# --------------------------------------------------------------------------------------------
# Reading back an HL7v2 sample message (for the cross-channel CR-BIO)
# --------------------------------------------------------------------------------------------


@dataclass
class Hl7Order:
    placer: str
    filler: str
    panel: str  # OBR-4 as sent
    collected: str  # OBR-7
    received: str  # OBR-14
    reported: str  # OBR-22
    obx: list[list[str]]


def parse_er7(data: bytes) -> tuple[list[str], list[Hl7Order]]:
    """MSH fields and the orders of one ORU message of the sample set (enough for our needs:
    the sample messages carry no escapes in the fields read here)."""
    text = data.decode("utf-8")
    segs = [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s]
    msh = segs[0].split("|")
    orders: list[Hl7Order] = []
    for s in segs[1:]:
        f = s.split("|")
        if f[0] == "OBR":
            orders.append(Hl7Order(f[2].split("^")[0], f[3].split("^")[0], f[4], f[7], f[14],
                                   f[22], []))
        elif f[0] == "OBX" and orders:
            orders[-1].obx.append(f)
    return msh, orders


def loinc_of(cx3: str) -> tuple[str, str]:
    """(LOINC, label) of an OBX-3 / OBR-4 value, local codes resolved as the lab's mapping
    table does (samples/mappings)."""
    parts = cx3.split("^")
    if len(parts) > 5 and parts[5] == "LN":
        return parts[3], parts[4]
    if len(parts) > 2 and parts[2] == "LN":
        return parts[0], parts[1]
    for a in hl7gen.ANALYTES.values():
        if a.abbr == parts[0]:
            return a.code, a.label
    for p in hl7gen.PANELS.values():
        if p.abbr == parts[0]:
            return p.code, p.label
    raise KeyError(cx3)


def hl7_results(data: bytes) -> list[tuple[str, str, str, str, str]]:
    """(LOINC, value, unit as sent, flag, OBX-14) of every result OBX of a sample message."""
    _, orders = parse_er7(data)
    out = []
    for o in orders:
        for f in o.obx:
            if f[3].endswith("^MetaDMPMSS") or f[2] not in ("NM", "SN"):
                continue
            out.append((loinc_of(f[3])[0], f[5], f[6], f[8], f[14]))
    return out


def parse_hl7_ts(text: str) -> datetime:
    """An HL7 DTM with its offset ('202502031007+0100') as naive UTC."""
    body, sign, off = text[:-5], text[-5], text[-4:]
    fmtx = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}[len(body)]
    local = datetime.strptime(body, fmtx)
    delta = timedelta(hours=int(off[:2]), minutes=int(off[2:]))
    return local - delta if sign == "+" else local + delta


# --------------------------------------------------------------------------------------------
# Clinical documents: problems, allergies, treatments, vital signs
# --------------------------------------------------------------------------------------------


@dataclass
class Problem:
    code: str  # CIM-10
    display: str
    start: date
    end: date | None = None
    # The id of its problem observation once problem_entries wrote it: a treatment's reason
    # (IHE PCC internal reference) names this id, so the reference points at the problem.
    entry_id: str | None = None


@dataclass
class Allergy:
    agent_code: str
    agent_display: str
    agent_system: str
    agent_system_name: str
    kind: tuple[str, str]  # SNOMED type of reaction
    since: date


@dataclass
class Medication:
    code: str
    display: str
    system: str
    system_name: str
    name: str
    dose: tuple[str, str]  # value, UCUM unit
    period: tuple[str, str]  # PIVL period value, unit
    route: tuple[str, str]  # EDQM
    start: date
    end: date | None
    posology: str
    atc: tuple[str, str] | None = None  # translation when the code is CIS
    reason: Problem | None = None


ORAL = ("20053000", "Voie orale")
SUBCUT = ("20066000", "Voie sous-cutanée")


def section(templates: Sequence[str], code: str, display: str, title: str, text: E | str,
            entries: Sequence[E] = (), rng: Random | None = None, *subsections: E) -> E:
    return E("component", None, E(
        "section", None, [T(t) for t in templates],
        II(det_uuid(rng)) if rng else None,
        loinc("code", code, display), E("title", None, title),
        text if isinstance(text, E) else E("text", None, text),
        [E("entry", None, e) for e in entries],
        list(subsections)))


def table(headers: Sequence[str], rows: Sequence[Sequence[E | str]]) -> E:
    return E("table", {"border": "0"},
             E("thead", None, E("tr", None, [E("th", None, h) for h in headers])),
             E("tbody", None, [E("tr", None, [E("td", None, c) for c in row]) for row in rows]))


def problem_entries(problems: Sequence[Problem], prefix: str, rng: Random,
                    status: str = "active") -> list[E]:
    out = []
    for i, pb in enumerate(problems, start=1):
        anchor = f"{prefix}-{i}"
        concern_id = det_uuid(rng)
        pb.entry_id = obs_id = det_uuid(rng)
        eff = E("effectiveTime", None, E("low", {"value": day(pb.start)}),
                E("high", {"value": day(pb.end)}) if pb.end else None)
        out.append(E(
            "act", {"classCode": "ACT", "moodCode": "EVN"},
            T("2.16.840.1.113883.10.20.1.27"), T("1.3.6.1.4.1.19376.1.5.3.1.4.5.1"),
            T("1.3.6.1.4.1.19376.1.5.3.1.4.5.2"), T("1.2.250.1.213.1.1.3.39"),
            II(concern_id), E("code", {"nullFlavor": "NA"}),
            E("statusCode", {"code": "completed" if pb.end else status}), eff,
            E("entryRelationship", {"typeCode": "SUBJ", "inversionInd": "false"}, E(
                "observation", {"classCode": "OBS", "moodCode": "EVN", "negationInd": "false"},
                T("2.16.840.1.113883.10.20.1.28"), T("1.3.6.1.4.1.19376.1.5.3.1.4.5"),
                T("1.2.250.1.213.1.1.3.37"), II(obs_id),
                CD("code", "282291009", SNOMED, "interprétation diagnostique", "SNOMED CT"),
                text_ref(anchor), E("statusCode", {"code": "completed"}),
                E("effectiveTime", None, E("low", {"value": day(pb.start)}),
                  E("high", {"value": day(pb.end)}) if pb.end else None),
                CD("value", pb.code, CIM10, pb.display, "CIM10",
                   E("originalText", None, ref(anchor)), xsi_type="CD")))))
    return out


def problem_text(problems: Sequence[Problem], prefix: str, what: str) -> E:
    return E("text", None, table(("Date", what), [
        (fr_date(pb.start), E("content", {"ID": f"{prefix}-{i}"}, f"{pb.display} ({pb.code})"))
        for i, pb in enumerate(problems, start=1)]))


def allergy_entry(a: Allergy, anchor: str, rng: Random) -> E:
    return E(
        "act", {"classCode": "ACT", "moodCode": "EVN"},
        T("2.16.840.1.113883.10.20.1.27"), T("1.3.6.1.4.1.19376.1.5.3.1.4.5.1"),
        T("1.3.6.1.4.1.19376.1.5.3.1.4.5.3"), T("1.2.250.1.213.1.1.3.40"),
        II(det_uuid(rng)), E("code", {"nullFlavor": "NA"}), E("statusCode", {"code": "active"}),
        E("effectiveTime", None, E("low", {"value": day(a.since)})),
        E("entryRelationship", {"typeCode": "SUBJ", "inversionInd": "false"}, E(
            "observation", {"classCode": "OBS", "moodCode": "EVN", "negationInd": "false"},
            T("2.16.840.1.113883.10.20.1.18"), T("2.16.840.1.113883.10.20.1.28"),
            T("1.3.6.1.4.1.19376.1.5.3.1.4.5"), T("1.3.6.1.4.1.19376.1.5.3.1.4.6"),
            T("1.2.250.1.213.1.1.3.41"), II(det_uuid(rng)),
            CD("code", a.kind[0], SNOMED, a.kind[1], "SNOMED CT"),
            text_ref(anchor + "-type"), E("statusCode", {"code": "completed"}),
            E("effectiveTime", {"xsi:type": "IVL_TS"}, E("low", {"value": day(a.since)})),
            E("value", {"xsi:type": "CD"}, E("originalText", None, ref(anchor + "-type"))),
            E("participant", {"typeCode": "CSM"}, E(
                "participantRole", {"classCode": "MANU"}, E(
                    "playingEntity", {"classCode": "MMAT"},
                    CD("code", a.agent_code, a.agent_system, a.agent_display,
                       a.agent_system_name, E("originalText", None, ref(anchor + "-agent"))),
                    E("name", None, a.agent_display)))))))


def allergy_section(allergies: Sequence[Allergy], rng: Random, title: str) -> E:
    rows = []
    for i, a in enumerate(allergies, start=1):
        rows.append((fr_date(a.since), E("content", {"ID": f"allergie-{i}-type"}, a.kind[1]),
                     E("content", {"ID": f"allergie-{i}-agent"}, a.agent_display)))
    return section(("2.16.840.1.113883.10.20.1.2", "1.3.6.1.4.1.19376.1.5.3.1.3.13",
                    "1.2.250.1.213.1.1.2.137"), "48765-2", "Allergies et hypersensibilités",
                   title, E("text", None, table(("Date", "Type", "Agent responsable"), rows)),
                   [allergy_entry(a, f"allergie-{i}", rng)
                    for i, a in enumerate(allergies, start=1)], rng)


def medication_entry(m: Medication, anchor: str, rng: Random) -> E:
    code = CD("code", m.code, m.system, m.display, m.system_name,
              E("originalText", None, ref(anchor)),
              CD("translation", m.atc[0], ATC, m.atc[1], "ATC") if m.atc else None)
    return E(
        "substanceAdministration", {"classCode": "SBADM", "moodCode": "EVN"},
        T("2.16.840.1.113883.10.20.1.24"), T("1.3.6.1.4.1.19376.1.5.3.1.4.7"),
        T("1.2.250.1.213.1.1.3.42"), T("1.3.6.1.4.1.19376.1.5.3.1.4.7.1"),
        II(det_uuid(rng)),
        CD("code", "DRUG", ACT_CODE, "Médicament", "HL7:ActCode"),
        text_ref(anchor), E("statusCode", {"code": "completed"}),
        E("effectiveTime", {"xsi:type": "IVL_TS"}, E("low", {"value": day(m.start)}),
          E("high", {"value": day(m.end)}) if m.end else E("high", {"nullFlavor": "UNK"})),
        E("effectiveTime", {"xsi:type": "PIVL_TS", "operator": "A"},
          E("period", {"value": m.period[0], "unit": m.period[1]})),
        CD("routeCode", m.route[0], EDQM, m.route[1], "EDQM"),
        E("doseQuantity", None, E("low", {"value": m.dose[0], "unit": m.dose[1]}),
          E("high", {"value": m.dose[0], "unit": m.dose[1]})),
        E("consumable", None, E(
            "manufacturedProduct", None, T("2.16.840.1.113883.10.20.1.53"),
            T("1.3.6.1.4.1.19376.1.5.3.1.4.7.2"), T("1.2.250.1.213.1.1.3.43"),
            E("manufacturedMaterial", None, code, E("name", None, m.name)))),
        E("entryRelationship", {"typeCode": "RSON"}, E(
            "act", {"classCode": "ACT", "moodCode": "EVN"},
            T("1.3.6.1.4.1.19376.1.5.3.1.4.4.1"), T("1.2.250.1.213.1.1.3.36"),
            II(_written_id(m.reason)),
            CD("code", m.reason.code, CIM10, m.reason.display, "CIM10"))) if m.reason else None)


def _written_id(pb: Problem) -> str:
    """The id of ``pb``'s problem observation: an IHE PCC internal reference (CI-SIS
    FR-Reference-interne) names an entry of the same document by its id, so a treatment's
    reason must be written after its problem (a fresh id would point at nothing)."""
    if pb.entry_id is None:
        raise ValueError(f"problem {pb.code} referenced before problem_entries wrote it")
    return pb.entry_id


def medication_text(meds: Sequence[Medication], prefix: str) -> E:
    return E("text", None, table(
        ("Date de début", "Date de fin", "Médicament", "Posologie", "Voie d'administration"),
        [(fr_date(m.start), fr_date(m.end) if m.end else "-",
          E("content", {"ID": f"{prefix}-{i}"}, m.name), m.posology, m.route[1])
         for i, m in enumerate(meds, start=1)]))


VITALS = {  # LOINC -> (label, UCUM)
    "8480-6": ("Pression artérielle systolique", "mm[Hg]"),
    "8462-4": ("Pression artérielle diastolique", "mm[Hg]"),
    "8867-4": ("Fréquence cardiaque", "/min"),
    "8310-5": ("Température corporelle", "Cel"),
    "59408-5": ("Saturation en oxygène (oxymétrie de pouls)", "%"),
    "29463-7": ("Poids", "kg"),
    "8302-2": ("Taille", "cm"),
    "39156-5": ("Indice de masse corporelle (IMC)", "kg/m2"),
}


def vital_signs_section(values: Sequence[tuple[str, str]], when: datetime, rng: Random) -> E:
    comps = []
    rows = []
    for i, (code, value) in enumerate(values, start=1):
        label, unit = VITALS[code]
        rows.append((E("content", {"ID": f"sv-{i}"}, label), value, unit))
        comps.append(E("component", {"typeCode": "COMP"}, E(
            "observation", {"classCode": "OBS", "moodCode": "EVN"},
            T("2.16.840.1.113883.10.20.1.31"), T("1.3.6.1.4.1.19376.1.5.3.1.4.13"),
            T("1.3.6.1.4.1.19376.1.5.3.1.4.13.2"), T("1.2.250.1.213.1.1.3.50"),
            II(det_uuid(rng)), loinc("code", code, label), text_ref(f"sv-{i}"),
            E("statusCode", {"code": "completed"}), E("effectiveTime", {"value": ts(when)}),
            E("value", {"xsi:type": "PQ", "value": value, "unit": unit}))))
    organizer = E("organizer", {"classCode": "CLUSTER", "moodCode": "EVN"},
                  T("2.16.840.1.113883.10.20.1.32"), T("2.16.840.1.113883.10.20.1.35"),
                  T("1.3.6.1.4.1.19376.1.5.3.1.4.13.1"), T("1.2.250.1.213.1.1.3.49"),
                  II(det_uuid(rng)), loinc("code", "85353-1", "Signes vitaux"),
                  E("statusCode", {"code": "completed"}), E("effectiveTime", {"value": ts(when)}),
                  comps)
    return section(("2.16.840.1.113883.10.20.1.16", "1.3.6.1.4.1.19376.1.5.3.1.3.25",
                    "1.3.6.1.4.1.19376.1.5.3.1.1.5.3.2", "1.2.250.1.213.1.1.2.75"),
                   "8716-3", "Signes vitaux", "Signes vitaux à la sortie",
                   E("text", None, E("paragraph", None, f"Mesures du {fr_datetime(when)}"),
                     table(("Mesure", "Valeur", "Unité"), rows)), [organizer], rng)


def hospital_header(kind: DocType, *, org: Org, patient: hl7gen.Patient,
                    ids: Sequence[tuple[str, str]], doc_ext: str, title: str, effective: datetime,
                    confidentiality: str, author_pro: Pro, legal_pro: Pro, pcp: Pro | None,
                    admitted: datetime, discharged: datetime, rng: Random,
                    service: str) -> Header:
    return Header(
        kind=kind, doc_id=(org.doc_root, doc_ext), set_id=(org.set_root, doc_ext), version=1,
        title=title, effective=effective, confidentiality=confidentiality,
        record_target=record_target(patient, ids, upper=True, rng=rng),
        authors=[author(author_pro, effective)], custodian=custodian(org),
        legal=legal_authenticator(legal_pro, effective),
        participants=[participant_pcp(pcp)] if pcp else [],
        documentation=[E("documentationOf", None, E(
            "serviceEvent", {"classCode": "ACT", "moodCode": "EVN"},
            CD("code", "IMP", ACT_CODE, "Hospitalisation (établissement, y compris HAD)",
               "HL7:ActCode"),
            E("effectiveTime", None, E("low", {"value": ts(admitted)}),
              E("high", {"value": ts(discharged)})),
            E("performer", {"typeCode": "PRF"}, E("time", None,
                                                  E("high", {"value": ts(admitted)})),
              E("assignedEntity", None, II(RPPS, legal_pro.id),
                E("assignedPerson", None, person_name(legal_pro)),
                E("representedOrganization", None, E("name", None, service),
                  CD("standardIndustryClassCode", ETABLISSEMENT[0], PRACTICE_SETTING,
                     ETABLISSEMENT[1], "practiceSettingCode"))))))],
        encounter=encounter(org, admitted, discharged, ("IMP", "Hospitalisation"), legal_pro,
                            visit=f"{admitted.year % 100:02d}{rng.randrange(10**7):07d}"))


def ldl_ses_body(*, reason: str, synthesis: str, problems: Sequence[Problem],
                 meds: Sequence[Medication], allergies: Sequence[Allergy],
                 vitals: Sequence[tuple[str, str]], vitals_time: datetime, follow_up: str,
                 discharged: datetime, rng: Random) -> E:
    body = E("structuredBody")
    body.add(
        section(("1.2.250.1.213.1.1.2.35", "1.2.250.1.213.1.1.2.35.1"), "33557-0",
                "Etat d'achèvement", "Statut du document",
                E("text", None, table(("Statut du document",),
                                      [(E("content", {"ID": "statutDoc"}, "Validé"),)])),
                [E("observation", {"classCode": "OBS", "moodCode": "EVN"},
                   T("1.3.6.1.4.1.19376.1.5.3.1.4.13"), T("1.2.250.1.213.1.1.3.48"),
                   T("1.2.250.1.213.1.1.3.48.16"), T("1.2.250.1.213.1.1.3.48.16.1"),
                   II(det_uuid(rng)),
                   CD("code", "GEN-065", TA_ASIP, "Statut du document", "TA_ASIP"),
                   text_ref("statutDoc"), E("statusCode", {"code": "completed"}),
                   E("effectiveTime", {"value": day(discharged.date())}),
                   CD("value", "255594003", SNOMED, "complet", "SNOMED CT", xsi_type="CD"))],
                rng),
        section(("1.3.6.1.4.1.19376.1.5.3.1.3.1", "1.2.250.1.213.1.1.2.127"), "42349-1",
                "Raison de la recommandation", "Motif de l'hospitalisation", reason, (), rng),
        section(("1.3.6.1.4.1.19376.1.5.3.1.1.21.2.9", "1.3.6.1.4.1.19376.1.7.3.1.1.13.7",
                 "1.2.250.1.213.1.1.2.163", "1.2.250.1.213.1.1.2.163.1"), "42545-4",
                "Evènements observés", "Synthèse médicale du séjour", synthesis, (), rng),
        section(("2.16.840.1.113883.10.20.1.11", "1.3.6.1.4.1.19376.1.5.3.1.3.6",
                 "1.2.250.1.213.1.1.2.132"), "11450-4", "Liste des problèmes actifs",
                "Diagnostics du séjour", problem_text(problems, "pb", "Diagnostic"),
                problem_entries(problems, "pb", rng), rng),
        section(("1.3.6.1.4.1.19376.1.5.3.1.3.22", "1.2.250.1.213.1.1.2.146"), "10183-2",
                "Traitements à la sortie", "Traitements à la sortie",
                medication_text(meds, "med"),
                [medication_entry(m, f"med-{i}", rng) for i, m in enumerate(meds, start=1)],
                rng) if meds else None,
        allergy_section(allergies, rng, "Allergies identifiées") if allergies else None,
        vital_signs_section(vitals, vitals_time, rng) if vitals else None,
        section(("2.16.840.1.113883.10.20.1.10", "1.3.6.1.4.1.19376.1.5.3.1.3.36",
                 "1.2.250.1.213.1.1.2.158"), "18776-5", "Plan de soins", "Suites à donner",
                follow_up, (), rng))
    return E("component", None, body)


# --------------------------------------------------------------------------------------------
# A tiny, valid PDF written by hand (one page, Helvetica, WinAnsi text)
# --------------------------------------------------------------------------------------------


def _pdf_text(s: str) -> bytes:
    raw = s.encode("cp1252")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def tiny_pdf(lines: Sequence[str], *, title: str, created: str) -> bytes:
    """A one-page A4 PDF whose text layer holds ``lines`` (accents included: WinAnsiEncoding).
    Offsets in the xref table are computed, so readers (pdfplumber, poppler) accept it."""
    content = b"BT\n/F1 16 Tf\n56 780 Td\n22 TL\n(" + _pdf_text(lines[0]) + b") Tj\n/F1 11 Tf\n" \
        + b"16 TL\n" + b"".join(b"T* (" + _pdf_text(line) + b") Tj\n" for line in lines[1:]) \
        + b"ET\n"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Lang (fr-FR) >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content
        + b"endstream",
        b"<< /Title (" + _pdf_text(title) + b") /Producer (dmp-samples generate_cda.py) "
        b"/CreationDate (D:" + created.encode() + b") >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def b64_lines(data: bytes, width: int = 76) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))


# --------------------------------------------------------------------------------------------
# The committed set
# --------------------------------------------------------------------------------------------


@dataclass
class CdaFile:
    name: str
    data: bytes
    kind: str  # CR-BIO, LDL-SES, VSM, CR-IMG, CR-BIO-N1, broken
    patient: str  # K1.. / U1 / U2 / '' (none)
    outcome: str  # deposited | duplicate | quarantined | failed
    code: str  # error / quarantine code, '' when deposited
    entries: str  # what should be filed, by type ('document=1 lab_result=5')
    masking: str  # none | masked (R) | masked (V)
    replaces: str  # file it replaces (RPLC), or ''
    detail: str


@dataclass
class _Ctx:
    """What every document builder needs: the seed, the HL7v2 sample set's patients (K1..K8,
    U1) and messages, and one random stream per document (editing one document never shifts
    another)."""

    seed: int
    patients: dict[str, hl7gen.Patient]
    hl7: dict[str, bytes]

    def rng(self, name: str) -> Random:
        return Random(f"dmp-cda:{self.seed}:{name}")


def _doc_cross_channel(c: _Ctx) -> list[CdaFile]:
    """01: the CR-BIO of hl7v2/02 (K2, Cerballiance Lyon): same results, other channel"""
    K2 = c.patients["K2"]  # noqa: N806
    labm = LAB_ORGS["labm"]
    validator = biologist("labm", 0)
    out: list[CdaFile] = []
    data02 = c.hl7["02_labm_lipides_glycemie.hl7"]
    msh, orders = parse_er7(data02)
    bats = []
    for o in orders:
        res = []
        for f in o.obx:
            if f[3].endswith("^MetaDMPMSS"):
                continue
            code, label = loinc_of(f[3])
            lo, _, hi = f[7].partition("-")
            low, high = (lo, hi) if hi else ((f[7][1:], None) if f[7].startswith(">")
                                             else (None, f[7][1:]))
            res.append(Result(code, label, f[5], ucum(f[6]), low, high, f[8], f[14]))
        pcode, plabel = loinc_of(o.panel)
        bats.append(Battery(pcode, plabel, BIOCHIMIE, parse_hl7_ts(o.collected),
                            parse_hl7_ts(o.reported), res))
    sent = parse_hl7_ts(msh[6])
    rng = c.rng("01")
    doc = cr_bio_document(
        lab=labm, patient=K2, ins_root=INS_NIR_TEST, ipp=K2.ipps["labm"], batteries=bats,
        doc_ext=msh[9], set_ext=orders[0].filler.rsplit("-", 1)[0], version=1, released=sent,
        received=parse_hl7_ts(orders[0].received),
        ordered=bats[0].collected - timedelta(days=2), prescriber_pro=prescriber(1),
        validator=validator,
        order_ext=orders[0].placer.rsplit("-", 1)[0], filler=orders[0].filler.rsplit("-", 1)[0],
        rng=rng)
    results01 = [r for b in bats for r in b.results]
    out.append(CdaFile(
        "01_crbio_labm_lipides_glycemie.xml", serialize(doc), "CR-BIO", "K2", "deposited", "",
        f"document=1 lab_result={len(results01)}", "none", "",
        "CR-BIO of hl7v2/02_labm_lipides_glycemie.hl7 sent again as CDA: same patient (INS and "
        "CERBA-LYON IPP), same LOINC codes (glycémie as 1558-6, not the local GLY), values, "
        "UCUM units and collection times. Once 02 is in, its 5 results are level-4 duplicates: "
        "one entry each, a second provenance link to this document"))
    return out


def _doc_replacement_pair(c: _Ctx) -> list[CdaFile]:
    """02/03: a CR-BIO and its replacement (RPLC), K5 at Synlab Bordeaux"""
    K5 = c.patients["K5"]  # noqa: N806
    seed = c.seed
    out: list[CdaFile] = []
    synlab = LAB_ORGS["synlab"]
    bio = biologist("synlab", 1)
    rng = c.rng("02")
    draw = LabDraw(seed, "cda-renal")
    collected = hl7gen.paris(2025, 6, 10, 8, 20)
    validated = collected + timedelta(hours=5, minutes=12)
    iono = draw.panel("IONO", K5, collected)
    renal = draw.panel("RENAL", K5, collected)
    k = next(r for r in iono if r.loinc == "2823-3")
    k.value, k.flag = "6.4", "H"
    crp = [Result("1988-5", "Protéine C réactive (CRP)", "0.5", "mg/L", None, "5.0", "N",
                  ts(collected, False), comparator="<")]  # under the detection limit
    v1 = [battery("IONO", iono, collected, validated),
          battery("RENAL", renal, collected, validated),
          battery("CRP", crp, collected, validated)]
    doc_base = f"SB{collected.strftime('%y%m%d')}{rng.randrange(10**5):05d}"
    common = dict(lab=synlab, patient=K5, ins_root=INS_NIR_TEST, ipp=K5.ipps["synlab"],
                  set_ext=doc_base, received=collected + timedelta(minutes=75),
                  ordered=collected - timedelta(days=1), prescriber_pro=prescriber(4),
                  validator=bio, order_ext=f"{rng.randrange(10**6, 10**7)}", filler=doc_base,
                  upper=True)
    doc1 = cr_bio_document(**common, batteries=v1, doc_ext=doc_base + "-1", version=1,
                           released=validated + timedelta(minutes=10), rng=c.rng("02-doc"),
                           comment="Prélèvement hémolysé : kaliémie à contrôler.")
    out.append(CdaFile(
        "02_crbio_synlab_bilan_renal_v1.xml", serialize(doc1), "CR-BIO", "K5", "deposited", "",
        f"document=1 lab_result={sum(len(b.results) for b in v1)}", "none", "",
        "version 1 (versionNumber 1) of a CR-BIO: ionogramme + créatinine/DFG/urée + CRP; "
        "potassium 6.4 mmol/L flagged H (haemolysed sample); CRP under the detection limit "
        "as IVL_PQ <high value=0.5 inclusive=false> (the HL7v2 SN '<^0.5'); names in upper "
        "case, INS born in 2A"))
    recheck = collected + timedelta(days=1, minutes=-35)
    validated2 = recheck + timedelta(hours=4)
    iono2 = [replace(r) for r in iono]
    k2 = next(r for r in iono2 if r.loinc == "2823-3")
    k2.value, k2.flag, k2.time = "4.7", "N", ts(recheck, False)
    v2 = [battery("IONO", iono2, collected, validated2),
          battery("RENAL", renal, collected, validated),
          battery("CRP", crp, collected, validated)]
    doc2 = cr_bio_document(**common, batteries=v2, doc_ext=doc_base + "-2", version=2,
                           released=validated2 + timedelta(minutes=6), rng=c.rng("02-doc"),
                           replaces=doc_base + "-1",
                           comment="Compte rendu remplaçant le précédent : kaliémie contrôlée "
                                   "sur un second prélèvement non hémolysé (4.7 mmol/L).")
    out.append(CdaFile(
        "03_crbio_synlab_bilan_renal_v2_rplc.xml", serialize(doc2), "CR-BIO", "K5",
        "deposited", "", f"document=1 lab_result={sum(len(b.results) for b in v2)}", "none",
        "02_crbio_synlab_bilan_renal_v1.xml",
        "version 2 of 02: same setId, versionNumber 2, new id, relatedDocument RPLC -> 02's id. "
        "Supersedes 02 (02 kept as history, status replaced/deprecated); potassium now 4.7 N "
        "(collected the next day); the other results are unchanged"))
    return out


def _doc_big_report(c: _Ctx) -> list[CdaFile]:
    """04: the big cumulative CR-BIO (100 results), K2 at the CHU de Rennes"""
    K2 = c.patients["K2"]  # noqa: N806
    seed = c.seed
    out: list[CdaFile] = []
    big = cr_bio(100, seed, patient=K2, lab_key="chu", ipp=K2.ipps["chu"])
    out.append(CdaFile(
        "04_crbio_chu_cumulatif_100.xml", big, "CR-BIO", "K2", "deposited", "",
        "document=1 lab_result=100", "none", "",
        "cumulative inpatient CR-BIO with 100 result observations over several days (written "
        "by cr_bio(100, seed); --big makes more for benchmarks): CHU de Rennes, IPP of hl7v2/05, "
        "inpatient encounter, one element per line without indentation (a lab system's "
        "export); about 1.3 KB per result"))
    return out


def _doc_discharge_letter(c: _Ctx) -> list[CdaFile]:
    """05: LDL-SES discharge letter, K6, production INS OID"""
    K6 = c.patients["K6"]  # noqa: N806
    out: list[CdaFile] = []
    rng = c.rng("05")
    admitted = hl7gen.paris(2025, 9, 22, 17, 40)
    discharged = hl7gen.paris(2025, 9, 29, 11, 15)
    problems = [Problem("J18.9", "Pneumopathie, sans précision", date(2025, 9, 22)),
                Problem("E03.9", "Hypothyroïdie, sans précision", date(2016, 5, 3)),
                Problem("I10", "Hypertension essentielle (primitive)", date(2019, 11, 14))]
    meds = [
        Medication("J01CR02", "Amoxicilline et inhibiteur d'enzyme", ATC, "ATC",
                   "AMOXICILLINE/ACIDE CLAVULANIQUE 1 g/125 mg", ("1", "{sachet}"), ("8", "h"),
                   ORAL, date(2025, 9, 29), date(2025, 10, 4),
                   "1 sachet 3 fois par jour pendant 5 jours", reason=problems[0]),
        Medication("H03AA01", "Lévothyroxine sodique", ATC, "ATC", "LÉVOTHYROX 75 µg",
                   ("1", "{tablet}"), ("1", "d"), ORAL, date(2016, 5, 3), None,
                   "1 comprimé le matin à jeun", reason=problems[1]),
        Medication("60234100", "PARACETAMOL", CIS, "CIS", "PARACÉTAMOL 1 g", ("1", "{tablet}"),
                   ("6", "h"), ORAL, date(2025, 9, 29), date(2025, 10, 2),
                   "1 comprimé toutes les 6 heures si douleur ou fièvre",
                   atc=("N02BE01", "Paracétamol")),
        Medication("C09AA05", "Ramipril", ATC, "ATC", "RAMIPRIL 5 mg", ("1", "{tablet}"),
                   ("1", "d"), ORAL, date(2019, 11, 14), None, "1 comprimé le matin",
                   reason=problems[2]),
        Medication("B01AB05", "Énoxaparine", ATC, "ATC", "ENOXAPARINE 4000 UI anti-Xa/0,4 mL",
                   ("1", "{injection}"), ("1", "d"), SUBCUT, date(2025, 9, 29),
                   date(2025, 10, 6), "1 injection sous-cutanée le soir pendant 7 jours"),
    ]
    allergies = [Allergy("J01EE01", "Sulfaméthoxazole et triméthoprime", ATC, "ATC",
                         ("416098002", "allergie médicamenteuse"), date(2004, 7, 1))]
    vitals = [("8480-6", "128"), ("8462-4", "76"), ("8867-4", "72"), ("8310-5", "36.8"),
              ("59408-5", "97"), ("29463-7", "64.5")]
    h = hospital_header(
        LDL_SES, org=CHU_BX, patient=K6,
        ids=[(INS_NIR, K6.nir), (CHU_BX.oid, f"{rng.randrange(10**9):09d}")],
        doc_ext=f"LDL{rng.randrange(10**8):08d}",
        title="Lettre de liaison à la sortie de l'établissement de santé", effective=discharged,
        confidentiality="N", author_pro=DR_CAZENAVE, legal_pro=PR_LABORDE,
        pcp=prescriber(4), admitted=admitted, discharged=discharged, rng=rng,
        service="Service de médecine interne et maladies infectieuses")
    body = ldl_ses_body(
        reason="Fièvre à 39,5 °C, toux productive et dyspnée depuis 4 jours.",
        synthesis="Pneumopathie franche lobaire inférieure droite, traitée par "
                  "amoxicilline–acide clavulanique (allergie au cotrimoxazole connue depuis "
                  "2004 : éruption cutanée). "
                  "Apyrexie à J3. Sortie au domicile le 29/09/2025.",
        problems=problems, meds=meds, allergies=allergies, vitals=vitals,
        vitals_time=discharged - timedelta(hours=3), discharged=discharged,
        follow_up="Radiographie thoracique de contrôle à 6 semaines ; consultation chez le "
                  "médecin traitant sous 8 jours.", rng=rng)
    doc = clinical_document(h, body)
    out.append(CdaFile(
        "05_ldl_ses_chu_bordeaux.xml", serialize(doc, prolog=[
            '<?xml-stylesheet type="text/xsl" href="CDA-FO.xsl"?>']), "LDL-SES", "K6",
        "deposited", "",
        f"document=1 problem={len(problems)} medication={len(meds)} allergy={len(allergies)} "
        f"vital_sign={len(vitals)}", "none", "",
        "discharge letter (LDL-SES 11490-0): INS under the production OID 1.2.250.1.213.1.4.8 "
        "(NIR born in 2B) + hospital IPP; married woman (family BR Casanova, SP and CL Giraud); "
        "problems in CIM-10 (J18.9, E03.9, I10) in problem concern acts; 5 treatments "
        "(substanceAdministration, ATC or CIS code, dose, EDQM route, PIVL period); one "
        "allergy (allergen sulfaméthoxazole-triméthoprime, ATC J01EE01); vital signs (LOINC "
        "8480-6, 8462-4, 8867-4, 8310-5, 59408-5, 29463-7 as PQ); the document-status entry "
        "(TA_ASIP GEN-065) every LDL-SES carries is read into the document "
        "(details.document_status), not filed as an observation; an xml-stylesheet PI before "
        "the root"))
    return out


def _doc_medical_summary(c: _Ctx) -> list[CdaFile]:
    """06/07: VSM by K2's médecin traitant, and the same document sent again"""
    K2 = c.patients["K2"]  # noqa: N806
    out: list[CdaFile] = []
    rng = c.rng("06")
    written = hl7gen.paris(2025, 10, 14, 18, 5)
    vsm_problems = [Problem("E11.9", "Diabète sucré de type 2, sans complication",
                            date(2012, 3, 20)),
                    Problem("E78.0", "Hypercholestérolémie essentielle", date(2014, 9, 2)),
                    Problem("I10", "Hypertension essentielle (primitive)", date(2010, 6, 15))]
    history = [Problem("K35.8", "Appendicite aiguë, autre et sans précision", date(1971, 8, 1),
                       date(1971, 8, 15)),
               Problem("S82.6", "Fracture de la malléole externe", date(1998, 1, 12),
                       date(1998, 3, 1))]
    vsm_meds = [
        Medication("A10BA02", "Metformine", ATC, "ATC", "METFORMINE 1000 mg",
                   ("1", "{tablet}"), ("12", "h"), ORAL, date(2012, 3, 20), None,
                   "1 comprimé matin et soir", reason=vsm_problems[0]),
        Medication("C10AA05", "Atorvastatine", ATC, "ATC", "ATORVASTATINE 20 mg",
                   ("1", "{tablet}"), ("1", "d"), ORAL, date(2014, 9, 2), None,
                   "1 comprimé le soir", reason=vsm_problems[1]),
        Medication("C09AA05", "Ramipril", ATC, "ATC", "RAMIPRIL 10 mg", ("1", "{tablet}"),
                   ("1", "d"), ORAL, date(2010, 6, 15), None, "1 comprimé le matin",
                   reason=vsm_problems[2]),
        Medication("63564053", "PLAVIX 75 mg, comprimé pelliculé", CIS, "CIS", "PLAVIX 75 mg",
                   ("1", "{tablet}"), ("1", "d"), ORAL, date(2021, 2, 8), None,
                   "1 comprimé par jour", atc=("B01AC04", "Clopidogrel")),
    ]
    vsm_allergies = [Allergy("N02BE01", "Paracétamol", ATC, "ATC",
                             ("416098002", "allergie médicamenteuse"), date(2018, 6, 3))]
    h = Header(
        kind=VSM, doc_id=(CABINET.doc_root, f"VSM-{rng.randrange(10**6):06d}"),
        set_id=(CABINET.set_root, f"VSM-{K2.key}-{rng.randrange(10**4):04d}"), version=1,
        title="Synthèse médicale", effective=written, confidentiality="N",
        record_target=record_target(K2, [(INS_NIR_TEST, K2.nir)], upper=False, rng=rng,
                                    deceased_ind=True),
        authors=[author(RIVIERE, written, ("PCP", "Médecin traitant"))],
        custodian=custodian(CABINET), legal=legal_authenticator(RIVIERE, written),
        documentation=[E("documentationOf", None, E(
            "serviceEvent", None, loinc("code", "34117-2", "Historique et clinique"),
            E("effectiveTime", None, E("low", {"value": ts(written)})),
            E("performer", {"typeCode": "PRF"}, assigned("assignedEntity", RIVIERE,
                                                        setting=True))))],
        encounter=encounter(CABINET, written - timedelta(minutes=25), written,
                            ("AMB", "Ambulatoire (hors établissement)"), RIVIERE))
    patho = section(("2.16.840.1.113883.10.20.1.11", "1.3.6.1.4.1.19376.1.5.3.1.3.6",
                     "1.2.250.1.213.1.1.2.132"), "11450-4", "Liste des problèmes actifs",
                    "Pathologies en cours", problem_text(vsm_problems, "pb-actif", "Pathologie"),
                    problem_entries(vsm_problems, "pb-actif", rng), rng)
    antecedents = section(("1.3.6.1.4.1.19376.1.5.3.1.3.8", "1.2.250.1.213.1.1.2.134"),
                          "11348-0", "Antécédents médicaux", "Antécédents médicaux",
                          problem_text(history, "atcd", "Antécédent"),
                          problem_entries(history, "atcd", rng), rng)
    allerg = allergy_section(vsm_allergies, rng, "Allergies et hypersensibilités")
    inner = E("component", None, E(
        "section", None, T("1.2.250.1.213.1.1.2.30"), II(det_uuid(rng)),
        loinc("code", "34117-2", "Historique et physique"),
        E("title", None, "Pathologies en cours, antécédents et allergies"),
        patho, antecedents, allerg))
    outer = E("component", None, E(
        "section", None, T("1.2.250.1.213.1.1.2.29"), II(det_uuid(rng)),
        loinc("code", "46612-8", "Conclusions de synthèse"),
        E("title", None, "Pathologie en cours, antécédents, allergies et facteurs de risques"),
        inner))
    treatments = E("component", None, E(
        "section", None, T("1.2.250.1.213.1.1.2.32"), II(det_uuid(rng)),
        loinc("code", "18776-5", "Plan de traitement"),
        E("title", None, "Traitement au long cours"),
        section(("2.16.840.1.113883.10.20.1.8", "1.3.6.1.4.1.19376.1.5.3.1.3.19",
                 "1.2.250.1.213.1.1.2.143"), "10160-0", "Traitements", "Traitements",
                medication_text(vsm_meds, "med"),
                [medication_entry(m, f"med-{i}", rng) for i, m in enumerate(vsm_meds, start=1)],
                rng)))
    vigilance = section(("1.3.6.1.4.1.19376.1.5.3.1.3.27", "1.2.250.1.213.1.1.2.150"),
                        "30954-2", "Résultats d'examens", "Points de vigilance",
                        "HbA1c à surveiller tous les 3 mois (dernière : voir CR du laboratoire). "
                        "Fonction rénale sous metformine : DFG à contrôler 2 fois par an.",
                        (), rng)
    vsm = clinical_document(h, E("component", None, E("structuredBody", None, outer, treatments,
                                                      vigilance)))
    vsm_bytes = serialize(vsm)
    vsm_detail = (f"document=1 problem={len(vsm_problems) + len(history)} "
                  f"medication={len(vsm_meds)} allergy={len(vsm_allergies)}")
    out.append(CdaFile(
        "06_vsm_medecin_traitant.xml", vsm_bytes, "VSM", "K2", "deposited", "", vsm_detail,
        "none", "",
        "medical summary (VSM, code SYNTH, 1.2.250.1.213.1.1.4.12) by K2's médecin traitant "
        "(author functionCode PCP; the prescriber of his HL7v2 orders): INS only, no local id "
        "(a GP has no IPP), sdtc:deceasedInd=false after birthTime; active problems E11.9, "
        "E78.0, I10 and closed history K35.8, S82.6 (with high dates); 4 long-term "
        "treatments (3 ATC, 1 CIS with ATC translation, each with its CIM-10 reason); allergy "
        "to paracétamol (ATC N02BE01)"))
    renvoi = vsm_bytes.replace(b"\n", b"\r\n")
    out.append(CdaFile(
        "07_vsm_medecin_traitant_renvoi.xml", renvoi, "VSM", "K2", "duplicate", "",
        "none (duplicate of 06)", "none", "",
        "06 sent again: same document id, setId and versionNumber, same content, but CRLF line "
        "ends, so other bytes (not a level-1 repeat): level-2 duplicate, nothing filed twice"))
    return out


def _doc_imaging_report(c: _Ctx) -> list[CdaFile]:
    """08: imaging report (CR-IMG), K3, Nice"""
    K3 = c.patients["K3"]  # noqa: N806
    out: list[CdaFile] = []
    rng = c.rng("08")
    done = hl7gen.paris(2025, 11, 6, 14, 20)
    signed = done + timedelta(hours=2, minutes=40)
    study_uid = f"2.999.250.3.1.5.{rng.randrange(10**9)}"
    ipp3 = f"RIV{rng.randrange(10**6):06d}"
    h = Header(
        kind=CR_IMG, doc_id=(IMG_NICE.doc_root, f"IMG{rng.randrange(10**7):07d}"),
        set_id=(IMG_NICE.set_root, f"IMG-S{rng.randrange(10**7):07d}"), version=1,
        title="CR d'imagerie médicale - Scanner thoracique sans injection", effective=signed,
        confidentiality="N",
        record_target=record_target(K3, [(INS_NIR_TEST, K3.nir), (IMG_NICE.oid, ipp3)],
                                    upper=True, rng=rng),
        authors=[author(DR_ORSINI, signed)], custodian=custodian(IMG_NICE),
        legal=legal_authenticator(DR_ORSINI, signed),
        participants=[participant_pcp(prescriber(3))],
        documentation=[E("documentationOf", None, E(
            "serviceEvent", {"classCode": "ACT"}, II(study_uid),
            loinc("code", "24627-2", "CT Thorax",
                  CD("translation", "CT", DCM, "Tomodensitométrie", "DCM",
                     E("qualifier", None, CD("name", "121139", DCM, "Modalité d'imagerie",
                                             "DCM")))),
            E("effectiveTime", None, E("low", {"value": ts(done)}),
              E("high", {"value": ts(done + timedelta(minutes=12))})),
            E("performer", {"typeCode": "PRF"}, assigned("assignedEntity", DR_ORSINI,
                                                        setting=True))))],
        encounter=encounter(IMG_NICE, done - timedelta(minutes=20), done + timedelta(minutes=30),
                            ("AMB", "Ambulatoire (hors établissement)")))
    dlp = E("observation", {"classCode": "OBS", "moodCode": "EVN"},
            T("2.16.840.1.113883.10.20.6.2.14"), T("1.2.250.1.213.1.1.3.154"), II(det_uuid(rng)),
            CD("code", "113813", DCM, "PDL Total : Produit Dose Longueur Total", "DCM"),
            text_ref("dose-1"), E("statusCode", {"code": "completed"}),
            E("effectiveTime", {"value": ts(done)}),
            E("value", {"xsi:type": "PQ", "value": "212.4", "unit": "mGy.cm"}))
    img_body = E("structuredBody", None,
                 E("component", None, E(
                     "section", None, T("1.2.840.10008.9.2"), T("1.2.250.1.213.1.1.2.205"),
                     II(det_uuid(rng)), loinc("code", "55752-0", "Informations cliniques"),
                     E("title", None, "Informations cliniques"), E("text"),
                     section(("1.2.840.10008.9.7", "1.2.250.1.213.1.1.2.211"), "55115-0",
                             "Demande", "Justification de la demande d'examen",
                             "Toux persistante depuis 6 semaines chez une non-fumeuse ; "
                             "radiographie thoracique douteuse (opacité lobaire moyenne ?).",
                             (), rng))),
                 E("component", None, E(
                     "section", None, T("1.2.840.10008.9.3"), T("1.2.250.1.213.1.1.2.206"),
                     II(det_uuid(rng)),
                     loinc("code", "55111-9", "Description de l'acte d'imagerie"),
                     E("title", None, "Technique d'imagerie"),
                     E("text", None, "Acquisition hélicoïdale du thorax sans injection de "
                                     "produit de contraste, coupes de 1 mm, reconstructions "
                                     "en fenêtres parenchymateuse et médiastinale."),
                     section(("1.2.840.10008.9.8", "1.2.250.1.213.1.1.2.215"), "73569-6",
                             "Exposition aux rayonnements et informations de radioprotection",
                             "Exposition aux rayonnements",
                             E("text", None, E("paragraph", None, "PDL total : ",
                                               E("content", {"ID": "dose-1"}, "212,4 mGy.cm"))),
                             [dlp], rng))),
                 section(("2.16.840.1.113883.10.20.6.1.2", "1.2.250.1.213.1.1.2.208"), "59776-5",
                         "Résultats de l'acte", "Résultats",
                         E("text", None, E("list", None,
                                           E("item", None, "Pas de nodule ni de masse "
                                                           "pulmonaire."),
                                           E("item", None, "Discrètes bronchectasies "
                                                           "cylindriques du lobe moyen, sans "
                                                           "condensation."),
                                           E("item", None, "Pas d'épanchement pleural ni "
                                                           "péricardique."),
                                           E("item", None, "Pas d'adénomégalie médiastinale."))),
                         (), rng),
                 section(("1.2.840.10008.9.5", "1.2.250.1.213.1.1.2.209"), "19005-8",
                         "Conclusions", "Conclusion",
                         "Bronchectasies cylindriques minimes du lobe moyen. Pas de lésion "
                         "suspecte. Avis pneumologique conseillé.", (), rng))
    doc = clinical_document(h, E("component", None, img_body))
    doc.attrs["xmlns:ps3-20"] = "urn:dicom-org:ps3-20"
    out.append(CdaFile(
        "08_crimg_scanner_thorax.xml", serialize(doc), "CR-IMG", "K3", "deposited", "",
        "document=1 observation=1 (the DLP, 212.4 mGy.cm)", "none", "",
        "imaging report (CR-IMG 18748-4, DICOM Part 20 + CI-SIS IMG templates): CT chest "
        "(serviceEvent LOINC 24627-2, modality CT, DICOM study UID as id); narrative sections "
        "(clinical information, technique, findings, conclusion) and one coded radiation dose "
        "observation (DCM 113813, PQ mGy.cm); K3 born abroad (99341), IPP of the imaging centre"))
    return out


def _doc_level1_pdf(c: _Ctx) -> list[CdaFile]:
    """09: level 1: nonXMLBody with a PDF, K4, Cerballiance"""
    K4 = c.patients["K4"]  # noqa: N806
    labm = LAB_ORGS["labm"]
    validator = biologist("labm", 0)
    out: list[CdaFile] = []
    rng = c.rng("09")
    when = hl7gen.paris(2025, 12, 9, 16, 45)
    pdf = tiny_pdf([
        "Laboratoire Cerballiance Lyon - Compte rendu d'examens biologiques",
        f"Patiente : Zoé MÜLLER, née le {fr_date(K4.birth_date)}",
        f"Prélèvement du {fr_datetime(when - timedelta(hours=7))}",
        "Ferritine : 18 µg/L   (valeurs de référence : 13 - 150)",
        "25-OH vitamine D (D2+D3) : 21,4 ng/mL   (30 - 100)   Bas",
        "Commentaire : insuffisance en vitamine D ; supplémentation à discuter.",
        "Résultats validés par Dr Bénédicte CHAUVET, biologiste.",
    ], title="CR d'examens biologiques", created=ts(when)[:14] + "+01'00'")
    h = Header(
        kind=CR_BIO_N1, doc_id=(labm.doc_root, f"N1-{rng.randrange(10**8):08d}"),
        set_id=(labm.set_root, f"N1S-{rng.randrange(10**8):08d}"), version=1,
        title="Compte rendu d'examens biologiques", effective=when, confidentiality="N",
        record_target=record_target(K4, [(INS_NIR_TEST, K4.nir), (labm.oid, K4.ipps["labm"])],
                                    upper=False, rng=rng, telecom=False),
        authors=[author(validator, when)], custodian=custodian(labm),
        legal=legal_authenticator(validator, when),
        documentation=[E("documentationOf", None, E(
            "serviceEvent", None, loinc("code", "18719-5", "Biochimie"),
            E("effectiveTime", None, E("low", {"value": ts(when - timedelta(hours=7))}),
              E("high", {"value": ts(when)}))))],
        encounter=encounter(labm, when - timedelta(hours=7), None,
                            ("AMB", "Ambulatoire (hors établissement)")))
    body = E("component", None, E("nonXMLBody", None, E(
        "text", {"mediaType": "application/pdf", "representation": "B64"},
        "\n" + b64_lines(pdf) + "\n")))
    doc = clinical_document(h, body)
    out.append(CdaFile(
        "09_crbio_niveau1_pdf.xml", serialize(doc), "CR-BIO-N1", "K4", "deposited", "",
        "document=1 report=1 (level 1: the PDF inside; its text layer read into a report "
        "entry under the document)",
        "none", "",
        "level-1 CDA (XDS-SD template 1.3.6.1.4.1.19376.1.2.20): nonXMLBody/text "
        "mediaType=application/pdf representation=B64, base64 in 76-character lines; the PDF "
        f"({len(pdf)} bytes, one page, hand-written, WinAnsi Helvetica) says 'Ferritine : 18 "
        "µg/L' and '25-OH vitamine D ... 21,4 ng/mL'; K4 is a child (born 2012)"))
    return out


def _doc_restricted_report(c: _Ctx) -> list[CdaFile]:
    """10: restricted (R) CR-BIO: hCG, K8"""
    K8 = c.patients["K8"]  # noqa: N806
    labm = LAB_ORGS["labm"]
    validator = biologist("labm", 0)
    out: list[CdaFile] = []
    rng = c.rng("10")
    coll = hl7gen.paris(2025, 8, 19, 7, 50)
    valid = coll + timedelta(hours=6)
    hcg = Battery("21198-7", "Hormone chorionique gonadotrope (β-hCG)", BIOCHIMIE, coll, valid,
                  [Result("21198-7", "β-hCG sérique", "1245", "[IU]/L", None, "5", "H",
                          ts(coll, False))])
    doc = cr_bio_document(
        lab=labm, patient=K8, ins_root=INS_NIR_TEST, ipp=K8.ipps["labm"], batteries=[hcg],
        doc_ext=f"RB{coll.strftime('%y%m%d')}{rng.randrange(10**6):06d}",
        set_ext=f"RBS{rng.randrange(10**8):08d}", version=1, released=valid + timedelta(minutes=3),
        received=coll + timedelta(minutes=50), ordered=coll - timedelta(days=1),
        prescriber_pro=prescriber(5), validator=validator,
        order_ext=f"{rng.randrange(10**6, 10**7)}", filler=f"{rng.randrange(10**6, 10**7)}",
        rng=rng, confidentiality="R",
        comment="Résultat compatible avec une grossesse débutante (environ 4 à 5 SA).")
    out.append(CdaFile(
        "10_crbio_hcg_restreint.xml", serialize(doc), "CR-BIO", "K8", "deposited", "",
        "document=1 lab_result=1", "masked (R)", "",
        "CR-BIO with confidentialityCode R (Restreint): one quantitative β-hCG result "
        "(LOINC 21198-7, 1245 [IU]/L, H). Expected: deposited masked from professionals "
        "(still visible to the patient, the médecin traitant and the author)"))
    return out


def _doc_very_restricted_letter(c: _Ctx) -> list[CdaFile]:
    """11: very restricted (V) discharge letter, K1"""
    K1 = c.patients["K1"]  # noqa: N806
    out: list[CdaFile] = []
    rng = c.rng("11")
    admitted = hl7gen.paris(2025, 4, 2, 10, 5)
    discharged = hl7gen.paris(2025, 4, 5, 15, 30)
    v_problems = [Problem("B24", "Immunodéficience humaine virale [VIH], sans précision",
                          date(2025, 4, 3)),
                  Problem("A51.3", "Syphilis secondaire de la peau et des muqueuses",
                          date(2025, 4, 2))]
    h = hospital_header(
        LDL_SES, org=CH_LYON, patient=K1,
        ids=[(INS_NIR, K1.nir), (CH_LYON.oid, f"{rng.randrange(10**9):09d}")],
        doc_ext=f"LDL{rng.randrange(10**8):08d}",
        title="Lettre de liaison à la sortie - Maladies infectieuses", effective=discharged,
        confidentiality="V", author_pro=DR_BENSAID, legal_pro=DR_BENSAID, pcp=prescriber(0),
        admitted=admitted, discharged=discharged, rng=rng,
        service="Service des maladies infectieuses et tropicales")
    body = ldl_ses_body(
        reason="Éruption cutanée fébrile.",
        synthesis="Découverte d'une infection par le VIH-1 au stade de primo-infection "
                  "et d'une syphilis secondaire. Traitement débuté pendant le séjour ; "
                  "annonce faite à la patiente, qui souhaite que ce document reste "
                  "très restreint.",
        problems=v_problems, meds=[], allergies=[], vitals=[], vitals_time=discharged,
        follow_up="Consultation en maladies infectieuses dans 15 jours ; bilan biologique "
                  "de suivi à J15.", discharged=discharged, rng=rng)
    out.append(CdaFile(
        "11_ldl_ses_tres_restreint.xml", serialize(clinical_document(h, body)), "LDL-SES", "K1",
        "deposited", "", f"document=1 problem={len(v_problems)}", "masked (V)",
        "",
        "discharge letter with confidentialityCode V (Très restreint), INS under the "
        "production OID; CIM-10 B24 and A51.3. Expected: deposited masked from professionals "
        "(médecin traitant and author only), like R, with V kept on the document"))
    return out


def _doc_unknown_patient(c: _Ctx) -> list[CdaFile]:
    """12: patient without a dossier (U1, valid INS)"""
    U1 = c.patients["U1"]  # noqa: N806
    labm = LAB_ORGS["labm"]
    validator = biologist("labm", 0)
    out: list[CdaFile] = []
    rng = c.rng("12")
    coll = hl7gen.paris(2025, 12, 1, 8, 30)
    valid = coll + timedelta(hours=5)
    crp = Battery("1988-5", "Protéine C réactive (CRP)", BIOCHIMIE, coll, valid,
                  [Result("1988-5", "Protéine C réactive (CRP)", "12.6", "mg/L", None, "5.0",
                          "H", ts(coll, False))])
    doc = cr_bio_document(
        lab=labm, patient=U1, ins_root=INS_NIR_TEST, ipp=U1.ipps["labm"], batteries=[crp],
        doc_ext=f"RB{coll.strftime('%y%m%d')}{rng.randrange(10**6):06d}",
        set_ext=f"RBS{rng.randrange(10**8):08d}", version=1, released=valid,
        received=coll + timedelta(minutes=40), ordered=coll - timedelta(days=1),
        prescriber_pro=prescriber(2), validator=validator,
        order_ext=f"{rng.randrange(10**6, 10**7)}", filler=f"{rng.randrange(10**6, 10**7)}",
        rng=rng)
    out.append(CdaFile(
        "12_crbio_patient_inconnu.xml", serialize(doc), "CR-BIO", "U1", "quarantined",
        "IDENTITY_UNKNOWN_PATIENT", "document=1 lab_result=1 (once a dossier exists)", "none",
        "",
        "U1 (Gaëlle Le Bihan, valid test INS, not in patients.csv): quarantined 'unknown "
        "patient'; with auto-creation on, a dossier is created and it is deposited (if "
        "hl7v2/11 was already deposited that way, U1 exists and this is deposited)"))
    return out


def _doc_unknown_identifier(c: _Ctx) -> list[CdaFile]:
    """13: the only patient id is under an OID nobody knows (no INS), unknown person"""
    seed = c.seed
    out: list[CdaFile] = []
    rng = c.rng("13")
    U2 = extra_patient(seed)  # noqa: N806
    when = hl7gen.paris(2025, 10, 2, 9, 10)
    h = hospital_header(
        LDL_SES, org=CLINIQUE_X, patient=U2,
        ids=[(CLINIQUE_X.oid, f"PO{rng.randrange(10**6):06d}")],
        doc_ext=f"CPO-{rng.randrange(10**6):06d}", title="Lettre de liaison à la sortie",
        effective=when, confidentiality="N", author_pro=DR_LAPORTE, legal_pro=DR_LAPORTE,
        pcp=None, admitted=when - timedelta(days=2), discharged=when, rng=rng,
        service="Service de chirurgie ambulatoire")
    body = ldl_ses_body(
        reason="Cure de hernie inguinale droite programmée.",
        synthesis="Intervention sans complication, sortie à J2.",
        problems=[Problem("K40.9", "Hernie inguinale unilatérale ou sans précision, sans "
                                   "occlusion ni gangrène", date(2025, 9, 30))],
        meds=[], allergies=[], vitals=[], vitals_time=when,
        follow_up="Consultation de contrôle à 1 mois.", discharged=when, rng=rng)
    out.append(CdaFile(
        "13_casse_oid_inconnu.xml", serialize(clinical_document(h, body)), "LDL-SES", "U2",
        "quarantined", "IDENTITY_UNKNOWN_PATIENT",
        "document=1 problem=1 (once an admin assigns a dossier)", "none", "",
        "no INS: the only patientRole/id is a local id under 2.999.250.9.1, an assigning "
        "authority the store has never seen, and the demographics (Mathéo Rousseau, M, "
        "1983-04-09) match no dossier: quarantined 'unknown patient', also with auto-creation "
        "on (there is no INS to create a dossier from)"))
    return out


def _doc_broken(c: _Ctx) -> list[CdaFile]:
    """14-18: broken documents (built from a small sound CR-BIO)"""
    K3, K4, K5, K6, K8 = (c.patients[k] for k in ("K3", "K4", "K5", "K6", "K8"))  # noqa: N806
    seed = c.seed
    out: list[CdaFile] = []
    rng = c.rng("broken")
    coll = hl7gen.paris(2025, 5, 13, 8, 0)
    valid = coll + timedelta(hours=4)

    def small(p: hl7gen.Patient, lab_key: str, n: int) -> bytes:
        lab = LAB_ORGS[lab_key]
        res = LabDraw(seed, f"cda-broken-{n}").panel("LIPIDES", p, coll)
        b = battery("LIPIDES", res, coll, valid)
        return serialize(cr_bio_document(
            lab=lab, patient=p, ins_root=INS_NIR_TEST, ipp=p.ipps.get(lab_key), batteries=[b],
            doc_ext=f"BRK{n:02d}{rng.randrange(10**6):06d}", set_ext=f"BRKS{n:02d}", version=1,
            released=valid, received=coll + timedelta(minutes=30),
            ordered=coll - timedelta(days=1), prescriber_pro=prescriber(n % 12),
            validator=biologist(lab_key), order_ext=f"{n}", filler=f"F{n}", rng=rng))

    data = small(K4, "labm", 14)
    cut = data.rindex(b"<observation ") + 40
    out.append(CdaFile(
        "14_casse_xml_tronque.xml", data[:cut], "broken", "K4", "failed", "CDA_NOT_XML",
        "none", "none", "",
        "a sound CR-BIO cut in the middle of an observation (transfer stopped): not "
        "well-formed XML. The head is a CDA (format detection says cda), the parse fails: "
        "CDA_NOT_XML with the line/column, nothing filed"))

    data = small(K5, "synlab", 15)
    data = data.replace(b"<ClinicalDocument ", b"<Document ", 1)
    data = data.replace(b"</ClinicalDocument>", b"</Document>", 1)
    out.append(CdaFile(
        "15_casse_racine.xml", data, "broken", "K5", "failed", "CDA_NOT_CDA", "none", "none", "",
        "well-formed XML in the urn:hl7-org:v3 namespace, CDA content, but the root element is "
        "'Document', not ClinicalDocument: CDA_NOT_CDA (XML that is not a ClinicalDocument "
        "goes to the CDA parser for that precise code, whatever the channel)"))

    data = small(K6, "synlab", 16)
    start = data.index(b"  <recordTarget>")
    end = data.index(b"</recordTarget>\n") + len(b"</recordTarget>\n")
    out.append(CdaFile(
        "16_casse_sans_record_target.xml", data[:start] + data[end:], "broken", "", "failed",
        "CDA_NO_RECORD_TARGET", "none", "none", "",
        "a CR-BIO without recordTarget (no patient at all): CDA_NO_RECORD_TARGET (failed, not "
        "quarantined: there is nothing an admin could match)"))

    data = small(K3, "bioazur", 17)
    doctype = (b'<!DOCTYPE ClinicalDocument [\n  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n')
    data = data.replace(b"<ClinicalDocument", doctype + b"<ClinicalDocument", 1)
    data = data.replace(b"<title>Compte rendu d'examens biologiques</title>",
                        b"<title>Compte rendu d'examens biologiques &xxe;</title>", 1)
    out.append(CdaFile(
        "17_casse_xxe.xml", data, "broken", "K3", "failed", "CDA_DTD_FORBIDDEN", "none", "none",
        "",
        "DOCTYPE declaring an external entity (SYSTEM file:///etc/passwd) used in <title> "
        "(XXE): refused before anything is resolved: CDA_DTD_FORBIDDEN; /etc/passwd must never "
        "appear anywhere (title, ledger message, logs)"))

    data = small(K8, "labm", 18)
    lol = [b'  <!ENTITY lol "lol">']
    for i in range(1, 5):
        prev = b"lol" if i == 1 else f"lol{i - 1}".encode()
        lol.append(f'  <!ENTITY lol{i} "'.encode() + (b"&" + prev + b";") * 10 + b'">')
    doctype = b"<!DOCTYPE ClinicalDocument [\n" + b"\n".join(lol) + b"\n]>\n"
    data = data.replace(b"<ClinicalDocument", doctype + b"<ClinicalDocument", 1)
    data = data.replace(b"<title>Compte rendu d'examens biologiques</title>",
                        b"<title>&lol4;</title>", 1)
    out.append(CdaFile(
        "18_casse_billion_laughs.xml", data, "broken", "K8", "failed", "CDA_DTD_FORBIDDEN",
        "none", "none", "",
        "'billion laughs' entity expansion, kept small (4 levels x 10 = 10,000 'lol', 30 KB if "
        "ever expanded) in <title>: refused as CDA_DTD_FORBIDDEN, nothing expanded"))
    return out


def build_cda_set(seed: int = SAMPLE_SEED) -> list[CdaFile]:
    """The committed set, in file-name order."""
    files, _ = sample_set(seed)
    c = _Ctx(seed, sample_patients(seed), {f.name: f.data for f in files})
    out: list[CdaFile] = []
    for build in (_doc_cross_channel, _doc_replacement_pair, _doc_big_report,
                  _doc_discharge_letter, _doc_medical_summary, _doc_imaging_report,
                  _doc_level1_pdf, _doc_restricted_report, _doc_very_restricted_letter,
                  _doc_unknown_patient, _doc_unknown_identifier, _doc_broken):
        out += build(c)
    return out


EXPECTED_FIELDS = ["file", "kind", "patient", "outcome", "code", "entries", "masking",
                   "replaces", "detail"]


def write_cda_set(directory: Path | str, seed: int = SAMPLE_SEED) -> list[Path]:
    """(Re)write the committed set: the documents and expected.csv (README.md is kept)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = build_cda_set(seed)
    names = {f.name for f in files}
    for old in directory.glob("*.xml"):
        if old.name not in names:
            old.unlink()
    written = []
    for f in files:
        path = directory / f.name
        path.write_bytes(f.data)
        written.append(path)
    with (directory / "expected.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(EXPECTED_FIELDS)
        for f in files:
            w.writerow([f.name, f.kind, f.patient, f.outcome, f.code, f.entries, f.masking,
                        f.replaces, f.detail])
    written.append(directory / "expected.csv")
    return written


def write_big(directory: Path | str, n: int, seed: int = DEFAULT_SEED,
              results: int = 100) -> list[Path]:
    """``n`` large CR-BIO files (``cr-bio-big-SEED.xml`` for seeds seed..seed+n-1), one
    patient each (drawn from one generator, so no two share a NIR), and the patients.csv of
    those people (so a set-up step can create their dossiers)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    people = []
    g = hl7gen.Generator(seed, stream="cda-big-set")  # one generator: NIRs never collide
    for s in range(seed, seed + n):
        p = g.new_patient(f"B{s:06d}")
        p.status = "VALI"
        path = directory / f"cr-bio-big-{s:06d}.xml"
        path.write_bytes(cr_bio(results, s, patient=p))
        written.append(path)
        people.append(p)
    hl7gen.write_patients_csv(directory / "patients.csv", people)
    written.append(directory / "patients.csv")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Synthetic French CI-SIS CDA R2 documents, deterministic.")
    ap.add_argument("--out", type=Path, required=True,
                    help="folder to write (samples/cda rebuilds the committed set)")
    ap.add_argument("--big", type=int, metavar="N",
                    help="write N large CR-BIO files (and their patients.csv) instead of the "
                         "sample set")
    ap.add_argument("--results", type=int, default=100,
                    help="result observations per large CR-BIO (default 100, about 50 KB)")
    ap.add_argument("--seed", type=int, help=f"default {SAMPLE_SEED} for the sample set, "
                                             f"{DEFAULT_SEED} for --big")
    args = ap.parse_args(argv)
    if args.big is not None:
        if args.big < 1 or args.results < 1:
            ap.error("--big and --results must be positive")
        paths = write_big(args.out, args.big, DEFAULT_SEED if args.seed is None else args.seed,
                          args.results)
    else:
        paths = write_cda_set(args.out, SAMPLE_SEED if args.seed is None else args.seed)
    total = sum(p.stat().st_size for p in paths)
    print(f"{len(paths)} files, {total} bytes under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
