#!/usr/bin/env python3
r"""Synthetic, deterministic French laboratory HL7v2 traffic (ORU^R01 v2.5) for the DMP intake.

Standard library only; every random choice comes from ``random.Random`` seeded with a string
derived from ``--seed``, and no clock is read, so one seed always gives the same bytes.

Bulk traffic (benchmarks, load tests)::

    python samples/generate.py --out DIR --messages 10000 --seed 7
    python samples/generate.py --out DIR --bytes 1G --batch          # one FHS/BHS file, streamed
    python samples/generate.py --out DIR --messages 500 --charset 8859/15 --eol lf

writes ``DIR/hl7v2/`` (one ``NNNNNNN.hl7`` file per message, or ``batch-SEED.hl7`` with
``--batch``), ``DIR/patients.csv`` (every patient the messages name, all known) and
``DIR/mappings/`` (local code -> LOINC tables). Without ``--charset`` / ``--eol`` each lab uses
its own habits (see LABS); a batch file is always one charset and one segment terminator
(UTF-8 and CR unless told otherwise). ``--corrections`` and ``--duplicates`` set the share of
corrected results (OBX-11 = C) and of re-sent messages (half byte-identical, half the same
MSH-10 rebuilt later, so only MSH-7 differs).

The committed sample set (``samples/hl7v2``, ``samples/patients.csv``, ``samples/mappings``,
``samples/expected.csv``; described in ``samples/README.md``) is rebuilt byte for byte by::

    python samples/generate.py --sample-set samples/

From Python: ``generate_messages(n, seed)`` -> list of message bytes, ``iter_messages`` (lazy),
``write_stream(fh, n, seed, batch=True)`` (streams to a binary file handle),
``write_bulk(out_dir, n, seed)`` and ``write_sample_set(samples_dir)``.

Identities: every NIR has a valid key and is sent as an INS under the *test* OID
1.2.250.1.213.1.4.10 (never the production OID .4.8), except the one sample built to carry an
invalid key. Lab OIDs are under 2.999 (the ITU-T example arc); practitioner ids are test-style
(leading 8). None of these people exist.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from random import Random
from typing import BinaryIO

DEFAULT_SEED = 1
SAMPLE_SEED = 2025

INS_TEST_OID = "1.2.250.1.213.1.4.10"  # test INS-NIR: the only OID synthetic people may use
INS_NAMESPACE = "ASIP-SANTE-INS-NIR"
RPPS_AUTHORITY = "ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO"
RECEIVING_APP = "DMP-INTAKE"
RECEIVING_FACILITY = "DMP"

# --charset value -> (MSH-18, Python codec)
CHARSETS = {
    "utf-8": ("UNICODE UTF-8", "utf-8"),
    "8859/1": ("8859/1", "iso-8859-1"),
    "8859/15": ("8859/15", "iso-8859-15"),
}
EOLS = {"cr": "\r", "lf": "\n", "crlf": "\r\n"}

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

_ESCAPES = str.maketrans({"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"})


def esc(text: str) -> str:
    """Escape free text for an ER7 field (HL7 v2.5 section 2.7)."""
    return text.translate(_ESCAPES)


def nir_key(first13: str) -> str:
    """NIR key: 97 - (13 digits mod 97), Corsica's 2A/2B counted as 19/18."""
    dept = first13[5:7].replace("2A", "19").replace("2B", "18")
    return f"{97 - int(first13[:5] + dept + first13[7:13]) % 97:02d}"


def nir_is_valid(nir: str) -> bool:
    return len(nir) == 15 and nir_key(nir[:13]) == nir[13:]


def luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _last_sunday(year: int, month: int) -> date:
    d = date(year, month, 31)  # March and October both have 31 days
    return d - timedelta(days=(d.weekday() + 1) % 7)


_DST_CACHE: dict[int, tuple[datetime, datetime]] = {}


def paris_offset(utc: datetime) -> int:
    """Hours ahead of UTC in Europe/Paris (EU rule: last Sunday of March/October, 01:00 UTC)."""
    bounds = _DST_CACHE.get(utc.year)
    if bounds is None:
        one = timedelta(hours=1)
        start = datetime.combine(_last_sunday(utc.year, 3), datetime.min.time()) + one
        end = datetime.combine(_last_sunday(utc.year, 10), datetime.min.time()) + one
        bounds = _DST_CACHE[utc.year] = (start, end)
    return 2 if bounds[0] <= utc < bounds[1] else 1


def hl7_ts(utc: datetime, seconds: bool = True) -> str:
    """HL7 DTM in Paris local time with its offset, e.g. 20250412083500+0200."""
    off = paris_offset(utc)
    local = utc + timedelta(hours=off)
    return local.strftime("%Y%m%d%H%M%S" if seconds else "%Y%m%d%H%M") + f"+0{off}00"


def paris(y: int, mo: int, d: int, h: int = 8, mi: int = 0, s: int = 0) -> datetime:
    """A Paris wall-clock time, returned as naive UTC."""
    local = datetime(y, mo, d, h, mi, s)
    guess = local - timedelta(hours=1)
    return local - timedelta(hours=paris_offset(guess))


# --------------------------------------------------------------------------------------------
# Reference tables
# --------------------------------------------------------------------------------------------

GIVEN_F = [
    "Hélène", "Françoise", "Zoé", "Chloé", "Léa", "Maëlys", "Anaïs", "Cécile", "Agnès",
    "Bénédicte", "Marie-Noëlle", "Anne-Sophie", "Élise", "Inès", "Gaëlle", "Océane", "Noémie",
    "Thérèse", "Geneviève", "Joséphine", "Aurélie", "Sophie", "Camille", "Manon", "Jeanne",
    "Louise", "Emma", "Nathalie", "Isabelle", "Valérie", "Mélanie", "Aïssatou", "Naïma",
    "Marie", "Claire", "Lucie", "Solène", "Maïwenn", "Clémence", "Héloïse",
]
GIVEN_M = [
    "Jérôme", "Noël", "François", "Jean-François", "Jean-Luc", "Pierre-Yves", "Stéphane",
    "Frédéric", "Sébastien", "Théo", "Raphaël", "Loïc", "Gaël", "Hervé", "André", "René",
    "Benoît", "Jérémie", "Mathéo", "Étienne", "Joël", "Cédric", "Grégoire", "Lucas", "Hugo",
    "Louis", "Nicolas", "Thomas", "Mamadou", "Karim", "Mehdi", "Paul", "Antoine", "Yann",
    "Anthony", "Maël", "Côme", "Timothée", "Jean", "Michel",
]
FAMILY = [
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert",
    "Bonnet", "François", "Martinez", "Béranger", "Le Goff", "Le Gall", "Le Bihan", "Müller",
    "N'Diaye", "Saint-Étienne", "Da Silva", "Dos Santos", "Nguyen", "Gauthier", "Rousseau",
    "Chevalier", "Faure", "Gérard", "Barbier", "Brun", "Blanc", "Guérin", "Boyer", "Rivière",
    "Lemaître", "Ménard", "Hébert", "Lévêque", "Clément", "Benhamou", "Santoni", "Casanova",
    "Piétri", "Albertini", "Dupré", "Desprès", "de La Tour", "Le Dantec", "Kerouédan",
    "Thibault", "Chaumié", "Nicolaï", "Brémond", "Giraud", "Lefèvre-Martin",
]
STREETS = [
    "rue de la République", "avenue Jean-Jaurès", "place de l'Église", "boulevard Gambetta",
    "rue Émile-Zola", "chemin des Vignes", "impasse des Tilleuls", "allée des Châtaigniers",
    "rue du Général-de-Gaulle", "quai des Célestins", "rue Pasteur", "avenue de la Libération",
    "rue Victor-Hugo", "cours Lafayette", "rue des Écoles", "route de Saint-Étienne",
]
# Birth places as INSEE codes (department + commune): mainland, Corsica (2A/2B), overseas
# (3-digit department), abroad (99 + country).
BIRTH_MAINLAND = [
    "69123", "75112", "75118", "75115", "13055", "33063", "35238", "06088", "67482", "59350",
    "31555", "44109", "42218", "29232", "56260", "34172", "38185", "63113", "25056", "87085",
    "21231", "51454", "76540", "14118", "37261", "64445", "66136", "83137", "57463", "54395",
]
BIRTH_CORSICA = ["2A004", "2A247", "2B033", "2B096", "2B050"]
BIRTH_OVERSEAS = ["97120", "97209", "97411", "97302"]
BIRTH_ABROAD = ["99350", "99352", "99351", "99341", "99109", "99139", "99134", "99127",
                "99131", "99243"]

PRESCRIBERS = [
    ("MOREAU", "Anne"), ("RIVIÈRE", "Philippe"), ("LE GALL", "Yann"), ("BENHAMOU", "Sarah"),
    ("FAURE", "Jean-Marc"), ("DUBOIS-LÉGER", "Claire"), ("NGUYEN", "Minh"),
    ("GARNIER", "Élodie"), ("ROUSSEL", "Thierry"), ("LAMBERT", "Cécile"),
    ("SANTONI", "Paul-Antoine"), ("BOUCHER", "Amélie"),
]
_pr = Random("dmp-samples:practitioners")
PRESCRIBER_IDS = [f"80{_pr.randrange(10**9, 10**10)}" for _ in PRESCRIBERS]


@dataclass(frozen=True)
class Lab:
    key: str
    app: str  # MSH-3.1
    facility: str  # MSH-4.1
    finess: str  # MSH-4.2 (FINESS-like, Luhn key)
    name: str
    id_ns: str  # CX.4.1 of the local patient id (IPP)
    id_oid: str  # CX.4.2
    charset: str  # key of CHARSETS
    eol: str
    weight: int
    towns: tuple[tuple[str, str], ...]
    biologists: tuple[tuple[str, str], ...]
    local_system: str = ""  # coding system of local codes
    local_codes: frozenset[str] = frozenset()  # LOINC codes this lab sends as local codes
    dual_coding: bool = False  # local code + LOINC alternate (CE.4-6) on every code
    upper_names: bool = False
    decimal_comma_ranges: bool = False
    inpatient: bool = False
    dmp_flags: bool = False  # MetaDMPMSS OBX at the end of the message
    ipp: Callable[[int], str] = str

    @property
    def source(self) -> str:
        return f"{self.app}|{self.facility}"

    @property
    def msh4(self) -> str:
        return f"{self.facility}^{self.finess}^M"


def _finess(base8: str) -> str:
    return base8 + luhn_digit(base8)


LABS = [
    Lab("labm", "LABM", "CERBALLIANCE_LYON", _finess("69004123"), "Laboratoire Cerballiance Lyon",
        "CERBA-LYON", "2.999.250.1.1", "utf-8", "\r", 40,
        (("Lyon", "69003"), ("Lyon", "69007"), ("Villeurbanne", "69100"),
         ("Vénissieux", "69200"), ("Saint-Étienne", "42000"), ("Caluire-et-Cuire", "69300")),
        (("CHAUVET", "Bénédicte"), ("MARCHAND", "Luc")),
        local_system="L", local_codes=frozenset({"1558-6"}), dmp_flags=True,
        ipp=lambda n: f"{4100000000 + n * 7:010d}"),
    Lab("synlab", "SYNLAB", "SYNLAB_BORDEAUX", _finess("33005678"), "Synlab Bordeaux",
        "SYNLAB-BDX", "2.999.250.1.2", "utf-8", "\n", 30,
        (("Bordeaux", "33000"), ("Mérignac", "33700"), ("Pessac", "33600"), ("Talence", "33400"),
         ("Bègles", "33130"), ("Libourne", "33500")),
        (("DELORME", "Agnès"), ("PEYRE", "Julien")),
        upper_names=True, dmp_flags=True, ipp=lambda n: f"SB{20000000 + n * 3:08d}"),
    Lab("chu", "GLIMS", "CHU_RENNES", _finess("35000053"), "Laboratoire de biologie, CHU de Rennes",
        "CHU-RENNES", "2.999.250.1.3", "8859/1", "\r", 15,
        (("Rennes", "35000"), ("Saint-Malo", "35400"), ("Vitré", "35500"), ("Fougères", "35300"),
         ("Cesson-Sévigné", "35510")),
        (("LE ROUX", "Gwénaëlle"), ("TANGUY", "Erwan")),
        dual_coding=True, inpatient=True, ipp=lambda n: f"{300100000 + n * 11:09d}"),
    Lab("bioazur", "HEXALIS", "BIOAZUR_NICE", _finess("06001234"), "Laboratoire Bio-Azur Nice",
        "BIOAZUR", "2.999.250.1.4", "8859/15", "\r", 15,
        (("Nice", "06000"), ("Nice", "06300"), ("Antibes", "06600"), ("Cagnes-sur-Mer", "06800"),
         ("Menton", "06500"), ("Grasse", "06130")),
        (("GIORDANO", "Chiara"), ("BRÉMOND", "Hugues")),
        local_system="99BAZ",
        local_codes=frozenset({"24326-1", "2951-2", "2823-3", "2075-0", "1963-8", "2885-2",
                               "62292-8"}),
        decimal_comma_ranges=True, ipp=lambda n: f"BAZ{1000000 + n * 13:07d}"),
]
LAB_BY_KEY = {lab.key: lab for lab in LABS}
# Hospitals' patient administration (GAM) sending IHE PAM France ADT with the ZFA segment (the
# patient's DMP). Not in LABS: they send no results, and bulk traffic does not draw them.
HOSPITALS = [
    Lab("annecy", "GAM", "CH_ANNECY_GENEVOIS", _finess("74078001"),
        "Centre hospitalier Annecy Genevois", "CHANGE", "2.999.250.2.1", "8859/15", "\r", 0,
        (("Annecy", "74000"), ("Épagny Metz-Tessy", "74330")), (),
        ipp=lambda n: f"{7400000 + n * 17:08d}"),
    Lab("nice", "GAM", "CHU_NICE", _finess("06078801"), "CHU de Nice", "CHU-NICE",
        "2.999.250.2.2", "utf-8", "\n", 0, (("Nice", "06000"),), (),
        ipp=lambda n: f"N{6000000 + n * 19:08d}"),
]
HOSPITAL_BY_KEY = {h.key: h for h in HOSPITALS}
BIOLOGIST_IDS = {b: f"80{_pr.randrange(10**9, 10**10)}" for lab in LABS for b in lab.biologists}
# Local codes deliberately absent from the mapping tables (they must come out 'unmapped').
UNMAPPED = {("bioazur", "62292-8")}


@dataclass(frozen=True)
class Analyte:
    code: str  # LOINC
    label: str  # French display as labs print it
    abbr: str  # the lab's local code when it uses one
    unit: str
    range_f: tuple[float | None, float | None]
    range_m: tuple[float | None, float | None] | None
    dec: int

    def bounds(self, sex: str) -> tuple[float | None, float | None]:
        return self.range_m if sex == "M" and self.range_m else self.range_f


_A = [
    ("789-8", "Hématies", "GR", "T/L", (3.80, 5.20), (4.20, 5.70), 2),
    ("718-7", "Hémoglobine", "HB", "g/dL", (12.0, 16.0), (13.0, 17.0), 1),
    ("4544-3", "Hématocrite", "HT", "%", (36.0, 46.0), (40.0, 52.0), 1),
    ("787-2", "VGM", "VGM", "fL", (80.0, 100.0), None, 1),
    ("785-6", "TCMH", "TCMH", "pg", (27.0, 32.0), None, 1),
    ("786-4", "CCMH", "CCMH", "g/dL", (32.0, 36.0), None, 1),
    ("788-0", "IDR", "IDR", "%", (11.5, 14.5), None, 1),
    ("6690-2", "Leucocytes", "GB", "G/L", (4.0, 10.0), None, 2),
    ("751-8", "Polynucléaires neutrophiles", "PNN", "G/L", (1.5, 7.0), None, 2),
    ("711-2", "Polynucléaires éosinophiles", "PNE", "G/L", (0.0, 0.5), None, 2),
    ("704-7", "Polynucléaires basophiles", "PNB", "G/L", (0.0, 0.1), None, 2),
    ("731-0", "Lymphocytes", "LYM", "G/L", (1.0, 4.0), None, 2),
    ("742-7", "Monocytes", "MONO", "G/L", (0.2, 1.0), None, 2),
    ("777-3", "Plaquettes", "PLAQ", "G/L", (150.0, 400.0), None, 0),
    ("2093-3", "Cholestérol total", "CT", "g/L", (1.50, 2.00), None, 2),
    ("2571-8", "Triglycérides", "TG", "g/L", (0.35, 1.50), None, 2),
    ("2085-9", "Cholestérol HDL", "HDL", "g/L", (0.40, None), None, 2),
    ("18262-6", "Cholestérol LDL", "LDL", "g/L", (None, 1.60), None, 2),
    ("2951-2", "Sodium", "NA", "mmol/L", (136.0, 145.0), None, 0),
    ("2823-3", "Potassium", "K", "mmol/L", (3.5, 5.1), None, 1),
    ("2075-0", "Chlorures", "CL", "mmol/L", (98.0, 107.0), None, 0),
    ("1963-8", "Bicarbonates (réserve alcaline)", "CO2", "mmol/L", (22.0, 29.0), None, 0),
    ("2885-2", "Protéines totales", "PROT", "g/L", (64.0, 83.0), None, 0),
    ("14682-9", "Créatinine", "CREA", "µmol/L", (45.0, 84.0), (59.0, 104.0), 0),
    ("62238-1", "DFG estimé (CKD-EPI)", "DFG", "mL/min/1,73m²", (90.0, None), None, 0),
    ("22664-7", "Urée", "UREE", "mmol/L", (2.5, 7.5), None, 1),
    ("4548-4", "Hémoglobine glyquée (HbA1c)", "HBA1C", "%", (4.0, 6.0), None, 1),
    ("59261-8", "HbA1c (IFCC)", "HBA1CI", "mmol/mol", (20.0, 42.0), None, 0),
    ("1558-6", "Glycémie à jeun", "GLY", "g/L", (0.70, 1.10), None, 2),
    ("3016-3", "TSH", "TSH", "mUI/L", (0.27, 4.20), None, 2),
    ("14920-3", "T4 libre", "T4L", "pmol/L", (12.0, 22.0), None, 1),
    ("1920-8", "ASAT (TGO)", "ASAT", "UI/L", (None, 35.0), (None, 50.0), 0),
    ("1742-6", "ALAT (TGP)", "ALAT", "UI/L", (None, 35.0), (None, 50.0), 0),
    ("2324-2", "Gamma-GT", "GGT", "UI/L", (None, 38.0), (None, 55.0), 0),
    ("6768-6", "Phosphatases alcalines", "PAL", "UI/L", (35.0, 105.0), (40.0, 130.0), 0),
    ("14631-6", "Bilirubine totale", "BILT", "µmol/L", (None, 21.0), None, 0),
    ("14629-0", "Bilirubine conjuguée", "BILC", "µmol/L", (None, 5.0), None, 1),
    ("1751-7", "Albumine", "ALB", "g/L", (35.0, 52.0), None, 1),
    ("1988-5", "Protéine C réactive (CRP)", "CRP", "mg/L", (None, 5.0), None, 1),
    ("2276-4", "Ferritine", "FERRI", "µg/L", (13.0, 150.0), (30.0, 400.0), 0),
    ("62292-8", "25-OH vitamine D (D2+D3)", "VITD25", "ng/mL", (30.0, 100.0), None, 1),
    # coded and text results
    ("883-9", "Groupe sanguin ABO", "ABO", "", (None, None), None, 0),
    ("10331-7", "Rhésus D", "RHD", "", (None, None), None, 0),
    ("890-4", "Recherche d'agglutinines irrégulières (RAI)", "RAI", "", (None, None), None, 0),
    ("48767-8", "Commentaire", "COM", "", (None, None), None, 0),
]
ANALYTES = {a[0]: Analyte(*a) for a in _A}


@dataclass(frozen=True)
class Panel:
    key: str
    code: str
    label: str
    abbr: str
    section: str  # OBR-24 diagnostic service section


PANELS = {p.key: p for p in [
    Panel("NFS", "58410-2", "Hémogramme (NFS)", "NFS", "HM"),
    Panel("LIPIDES", "57698-3", "Bilan lipidique", "EAL", "CH"),
    Panel("IONO", "24326-1", "Ionogramme sanguin", "IONO", "CH"),
    Panel("HBA1C", "4548-4", "Hémoglobine glyquée (HbA1c)", "HBA1C", "CH"),
    Panel("GLY", "1558-6", "Glycémie à jeun", "GLY", "CH"),
    Panel("TSH", "3016-3", "TSH", "TSH", "CH"),
    Panel("HEPATIQUE", "24325-3", "Bilan hépatique", "BH", "CH"),
    Panel("CRP", "1988-5", "Protéine C réactive (CRP)", "CRP", "CH"),
    Panel("FERRITINE", "2276-4", "Ferritine", "FERRI", "CH"),
    Panel("RENAL", "24362-6", "Créatinine et DFG", "CREA", "CH"),
    Panel("GROUPE", "882-1", "Groupe sanguin ABO-RhD et RAI", "GRP", "BLB"),
    Panel("VITD", "62292-8", "Vitamine D", "VITD", "CH"),
]}

COMBOS: list[tuple[tuple[str, ...], int]] = [
    (("NFS",), 10), (("NFS", "CRP"), 8), (("LIPIDES", "GLY"), 9), (("IONO", "RENAL"), 8),
    (("HBA1C", "GLY", "LIPIDES"), 5), (("HBA1C", "GLY", "RENAL"), 4), (("TSH", "NFS"), 4),
    (("TSH", "FERRITINE", "IONO"), 3), (("HEPATIQUE",), 5), (("HEPATIQUE", "LIPIDES", "GLY"), 4),
    (("NFS", "IONO", "RENAL", "CRP"), 5), (("NFS", "FERRITINE", "CRP"), 4),
    (("VITD", "IONO", "RENAL"), 3), (("GROUPE", "NFS"), 2),
    (("NFS", "HEPATIQUE", "LIPIDES", "GLY"), 3), (("NFS", "IONO", "RENAL", "HEPATIQUE"), 2),
]
_COMBO_LIST = [c for c, _ in COMBOS]
_COMBO_WEIGHTS = [w for _, w in COMBOS]

COMMENTS = [
    "Prélèvement légèrement hémolysé : interpréter la kaliémie avec prudence.",
    "Résultats à confronter à la clinique & au traitement en cours.",
    "DFG estimé selon CKD-EPI | non validé chez l'enfant ni chez la femme enceinte.",
    "Présence d'agrégats plaquettaires : numération à contrôler sur tube citraté.",
    "Bilan réalisé à jeun depuis 12 h. Échantillon reçu à 4 °C.",
    "Rapport CT^HDL donné à titre indicatif ; objectif LDL à adapter au risque.",
    "Patient(e) sous AVK : cible INR ~ 2-3, contrôle à prévoir.",
    "Œdème des membres inférieurs signalé par le prescripteur.",
    "Valeurs de référence établies pour l'adulte ; interprétation délicate chez l'enfant.",
    "Résultat contrôlé sur un second prélèvement (même résultat).",
]
NOTES = [
    "Prélèvement réalisé à jeun.",
    "Prélèvement à domicile par IDE.",
    "Renseignements cliniques : bilan de suivi annuel.",
    "Traitement en cours : metformine 1000 mg x 2/j.",
]
DMP_FLAGS = [
    ("MASQUE_PS", "Masqué aux professionnels de Santé"),
    ("INVISIBLE_PATIENT", "Document Non Visible par le patient"),
    ("INVISIBLE_REP_LEGAUX", "Non visible par les représentants Légaux du patient"),
    ("DESTDMP", "Destinataire DMP"),
]
ABO = [("112144000", "Groupe A", 45), ("58460004", "Groupe O", 42), ("112149005", "Groupe B", 9),
       ("165743006", "Groupe AB", 4)]


# --------------------------------------------------------------------------------------------
# Model of what is generated
# --------------------------------------------------------------------------------------------


@dataclass
class Patient:
    key: str
    sex: str
    given: str
    given_all: str
    birth_family: str
    family: str  # used name ('D'); equals birth_family when there is none
    birth_date: date
    insee: str
    nir: str
    status: str  # PID-32
    street: str
    town: str
    postcode: str
    home_lab: str
    frailty: float
    known: bool = True
    ipps: dict[str, str] = field(default_factory=dict)


@dataclass
class Obs:
    vtype: str
    code: str  # rendered OBX-3
    value: str  # rendered OBX-5
    unit: str = ""
    range: str = ""
    flag: str = ""
    status: str = "F"
    loinc: str = ""
    num: float | None = None
    notes: list[str] = field(default_factory=list)
    meta: bool = False  # a MetaDMPMSS flag, not a result


@dataclass
class Order:
    panel: Panel
    placer: str
    filler: str
    collected: datetime
    received: datetime
    reported: datetime
    prescriber: int
    biologist: tuple[str, str]
    results: list[Obs]
    status: str = "F"
    notes: list[str] = field(default_factory=list)
    obr7_raw: str | None = None  # to inject an invalid date


@dataclass
class LabMessage:
    lab: Lab
    patient: Patient
    control_id: str
    sent: datetime
    orders: list[Order]
    visit: str = ""
    ins_override: str | None = None  # to inject an invalid NIR

    @property
    def results(self) -> int:
        return sum(1 for o in self.orders for r in o.results if not r.meta)


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


class Generator:
    """Builds patients and lab messages from one seeded random stream."""

    def __init__(self, seed: int = DEFAULT_SEED, *, stream: str = "bulk") -> None:
        self.seed = seed
        self.rng = Random(f"dmp-samples:{stream}:{seed}")
        tag_rng = Random(f"dmp-samples:tag:{stream}:{seed}")
        self.tag = "".join(tag_rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(2))
        self.seq: dict[str, int] = {lab.key: 0 for lab in LABS + HOSPITALS}
        self.ipp_seq: dict[str, int] = {lab.key: 0 for lab in LABS + HOSPITALS}
        self.nirs: set[str] = set()

    # -- patients -------------------------------------------------------------------------
    def make_nir(self, sex: str, birth: date, insee: str) -> str:
        while True:
            first13 = f"{1 if sex == 'M' else 2}{birth.year % 100:02d}{birth.month:02d}{insee}" \
                      f"{self.rng.randint(1, 999):03d}"
            nir = first13 + nir_key(first13)
            if nir not in self.nirs:
                self.nirs.add(nir)
                return nir

    def new_patient(self, key: str = "") -> Patient:
        r = self.rng
        sex = "F" if r.random() < 0.53 else "M"
        age = min(99, int(r.triangular(0, 98, 55)))
        birth = date(2025 - age, 1, 1) + timedelta(days=r.randrange(365))
        pool = GIVEN_F if sex == "F" else GIVEN_M
        given = r.choice(pool)
        given_all = " ".join([given] + [r.choice(pool) for _ in range(r.choice((0, 1, 1, 2)))])
        birth_family = r.choice(FAMILY)
        family = birth_family
        if sex == "F" and age >= 22 and r.random() < 0.45:
            spouse = r.choice(FAMILY)
            family = f"{spouse}-{birth_family}" if r.random() < 0.1 else spouse
        x = r.random()
        if x < 0.05:
            insee = r.choice(BIRTH_CORSICA)
        elif x < 0.08:
            insee = r.choice(BIRTH_OVERSEAS)
        elif x < 0.16:
            insee = r.choice(BIRTH_ABROAD)
        else:
            insee = r.choice(BIRTH_MAINLAND)
        lab = r.choices(LABS, weights=[lab.weight for lab in LABS])[0]
        town, postcode = r.choice(lab.towns)
        return Patient(
            key=key, sex=sex, given=given, given_all=given_all, birth_family=birth_family,
            family=family, birth_date=birth, insee=insee, nir=self.make_nir(sex, birth, insee),
            status="PROV" if r.random() < 0.08 else "VALI",
            street=f"{r.randint(1, 120)} {r.choice(STREETS)}", town=town, postcode=postcode,
            home_lab=lab.key, frailty=r.random() ** 2)

    def fixed_patient(self, key: str, sex: str, given_all: str, birth_family: str, family: str,
                      birth: date, insee: str, status: str, street: str, town: str,
                      postcode: str, home_lab: str, frailty: float, known: bool = True) -> Patient:
        return Patient(key, sex, given_all.split()[0], given_all, birth_family, family, birth,
                       insee, self.make_nir(sex, birth, insee), status, street, town, postcode,
                       home_lab, frailty, known)

    def ipp(self, patient: Patient, lab: Lab) -> str:
        if lab.key not in patient.ipps:
            self.ipp_seq[lab.key] += 1
            patient.ipps[lab.key] = lab.ipp(self.ipp_seq[lab.key] * 97 + self.rng.randrange(97))
        return patient.ipps[lab.key]

    # -- values ---------------------------------------------------------------------------
    def draw(self, lo: float | None, hi: float | None, p_abn: float) -> float:
        r = self.rng
        lo_e = lo if lo is not None else (hi or 1.0) * 0.25
        hi_e = hi if hi is not None else (lo or 1.0) * 1.5
        span = hi_e - lo_e
        x = r.random()
        if x < p_abn:
            low = hi is None or (lo is not None and lo > 0 and r.random() < 0.35)
            if low:
                return max(lo_e - span * r.uniform(0.02, 0.6), lo_e * 0.2)
            return hi_e + span * r.uniform(0.02, 1.2)
        return r.triangular(lo_e, hi_e)

    def p_abn(self, patient: Patient) -> float:
        return 0.03 + 0.3 * patient.frailty

    def code(self, lab: Lab, loinc: str, label: str, abbr: str) -> str:
        if lab.dual_coding:
            return f"{abbr}^{esc(label)}^L^{loinc}^{esc(label)}^LN"
        if loinc in lab.local_codes:
            return f"{abbr}^{esc(label)}^{lab.local_system}"
        return f"{loinc}^{esc(label)}^LN"

    def nm(self, lab: Lab, patient: Patient, loinc: str, value: float) -> Obs:
        a = ANALYTES[loinc]
        lo, hi = a.bounds(patient.sex)
        text = f"{max(value, 0.0):.{a.dec}f}"
        v = float(text)
        flag = "L" if lo is not None and v < lo else "H" if hi is not None and v > hi else "N"
        return Obs("NM", self.code(lab, loinc, a.label, a.abbr), text, a.unit,
                   fmt_range(lo, hi, a.dec, lab.decimal_comma_ranges), flag, loinc=loinc, num=v)

    def gen(self, lab: Lab, patient: Patient, loinc: str) -> Obs:
        a = ANALYTES[loinc]
        lo, hi = a.bounds(patient.sex)
        return self.nm(lab, patient, loinc, self.draw(lo, hi, self.p_abn(patient)))

    def coded(self, lab: Lab, loinc: str, value: str, flag: str = "") -> Obs:
        a = ANALYTES[loinc]
        return Obs("CE", self.code(lab, loinc, a.label, a.abbr), value, flag=flag, loinc=loinc)

    def comment(self, lab: Lab, text: str, vtype: str = "TX") -> Obs:
        a = ANALYTES["48767-8"]
        return Obs(vtype, self.code(lab, a.code, a.label, a.abbr), esc(text), loinc=a.code)

    # -- panels ---------------------------------------------------------------------------
    def panel_results(self, key: str, lab: Lab, p: Patient, when: datetime) -> list[Obs]:
        r = self.rng
        pa = self.p_abn(p)
        g = self.gen
        if key == "NFS":
            lo, hi = ANALYTES["789-8"].bounds(p.sex)
            rbc = self.draw(lo, hi, pa)
            mcv = self.draw(80.0, 100.0, pa * 0.6)
            mchc = r.uniform(32.2, 35.6)
            hct = rbc * mcv / 10
            hb = hct * mchc / 100
            wbc = self.draw(4.0, 10.0, pa)
            fr = [r.uniform(0.45, 0.70), r.uniform(0.005, 0.04), r.uniform(0.002, 0.01),
                  r.uniform(0.18, 0.38), r.uniform(0.04, 0.10)]
            total = sum(fr)
            diff = [wbc * f / total for f in fr]
            out = [self.nm(lab, p, "789-8", rbc), self.nm(lab, p, "718-7", hb),
                   self.nm(lab, p, "4544-3", hct), self.nm(lab, p, "787-2", mcv),
                   self.nm(lab, p, "785-6", mcv * mchc / 100), self.nm(lab, p, "786-4", mchc),
                   g(lab, p, "788-0"), self.nm(lab, p, "6690-2", wbc)]
            for code, v in zip(("751-8", "711-2", "704-7", "731-0", "742-7"), diff, strict=True):
                out.append(self.nm(lab, p, code, v))
            out.append(g(lab, p, "777-3"))
            return out
        if key == "LIPIDES":
            tc = self.draw(1.50, 2.00, pa + 0.25)
            tg = self.draw(0.35, 1.50, pa)
            hdl = min(self.draw(0.40, None, pa), tc * 0.6)
            ldl = max(tc - hdl - tg / 5, 0.3)
            return [self.nm(lab, p, "2093-3", tc), self.nm(lab, p, "2571-8", tg),
                    self.nm(lab, p, "2085-9", hdl), self.nm(lab, p, "18262-6", ldl)]
        if key == "IONO":
            return [g(lab, p, c) for c in ("2951-2", "2823-3", "2075-0", "1963-8", "2885-2")]
        if key == "RENAL":
            crea = g(lab, p, "14682-9")
            out = [crea]
            age = years(p.birth_date, when)
            if age >= 18:
                out.append(self.nm(lab, p, "62238-1", ckd_epi(crea.num or 70.0, age, p.sex)))
            out.append(g(lab, p, "22664-7"))
            return out
        if key == "HBA1C":
            pct = self.draw(4.0, 6.0, pa + 0.15)
            return [self.nm(lab, p, "4548-4", pct),
                    self.nm(lab, p, "59261-8", (round(pct, 1) - 2.15) * 10.929)]
        if key == "GLY":
            return [g(lab, p, "1558-6")]
        if key == "TSH":
            tsh = g(lab, p, "3016-3")
            out = [tsh]
            if tsh.flag != "N" or r.random() < 0.4:
                out.append(g(lab, p, "14920-3"))
            return out
        if key == "HEPATIQUE":
            return [g(lab, p, c) for c in ("1920-8", "1742-6", "2324-2", "6768-6", "14631-6",
                                           "14629-0", "1751-7")]
        if key == "CRP":
            v = r.lognormvariate(0.3, 1.3) if r.random() < 0.75 else r.uniform(5, 180)
            if v < 0.5:
                return [self.crp_below(lab)]
            return [self.nm(lab, p, "1988-5", v)]
        if key == "FERRITINE":
            return [g(lab, p, "2276-4")]
        if key == "VITD":
            return [self.nm(lab, p, "62292-8", self.draw(30.0, 100.0, 0.45))]
        if key == "GROUPE":
            abo = r.choices(ABO, weights=[w for _, _, w in ABO])[0]
            rh = ("165747007", "RhD positif") if r.random() < 0.85 else ("165746003",
                                                                          "RhD négatif")
            rai = ("260385009", "Négatif", "N") if r.random() < 0.98 else ("10828004", "Positif",
                                                                         "A")
            return [self.coded(lab, "883-9", f"{abo[0]}^{esc(abo[1])}^SCT"),
                    self.coded(lab, "10331-7", f"{rh[0]}^{esc(rh[1])}^SCT"),
                    self.coded(lab, "890-4", f"{rai[0]}^{esc(rai[1])}^SCT", rai[2])]
        raise KeyError(key)

    def crp_below(self, lab: Lab) -> Obs:
        """CRP under the detection limit, as labs send it: SN '<^0.5'."""
        a = ANALYTES["1988-5"]
        return Obs("SN", self.code(lab, a.code, a.label, a.abbr), "<^0.5", a.unit,
                   fmt_range(None, 5.0, 1, lab.decimal_comma_ranges), "N", loinc=a.code)

    # -- messages -------------------------------------------------------------------------
    def collection_time(self, sent: datetime) -> datetime:
        """A morning collection (07:00-11:30 Paris time) at least 4 hours before ``sent``."""
        r = self.rng
        local_day = (sent + timedelta(hours=paris_offset(sent))).date()
        for back in (r.choice((0, 1, 1, 2)), 1, 2, 3):
            day = local_day - timedelta(days=back)
            minutes = r.randint(7 * 60, 11 * 60 + 30)
            t = paris(day.year, day.month, day.day, minutes // 60, minutes % 60)
            if t <= sent - timedelta(hours=4):
                return t
        return sent - timedelta(hours=r.randint(20, 30))

    def next_ids(self, lab: Lab, when: datetime) -> tuple[str, int]:
        self.seq[lab.key] += 1
        n = self.seq[lab.key]
        return f"{self.tag}{hl7_ts(when)[2:8]}{n:07d}", n

    def make_message(self, lab: Lab, patient: Patient, panels: Iterable[str], sent: datetime,
                     *, collected: datetime | None = None, comment: str | None = None,
                     comment_prob: float = 0.12, note_prob: float = 0.08) -> LabMessage:
        r = self.rng
        if collected is None:
            collected = self.collection_time(sent)
        control_id, n = self.next_ids(lab, sent)
        self.ipp(patient, lab)
        prescriber = r.randrange(len(PRESCRIBERS))
        biologist = r.choice(lab.biologists)
        placer_base = r.randrange(10**6, 10**7)
        orders = []
        for i, key in enumerate(panels, start=1):
            panel = PANELS[key]
            orders.append(Order(
                panel=panel, placer=f"{placer_base}-{i}^{lab.app}-PRE",
                filler=f"{control_id}-{i}^{lab.app}", collected=collected,
                received=collected + timedelta(minutes=r.randint(30, 120)),
                reported=sent - timedelta(minutes=r.randint(1, 30)), prescriber=prescriber,
                biologist=biologist, results=self.panel_results(key, lab, patient, collected)))
        if comment is None and r.random() < comment_prob:
            comment = r.choice(COMMENTS)
        if comment:
            orders[-1].results.append(self.comment(lab, comment, r.choice(("TX", "TX", "ST"))))
        if r.random() < note_prob:
            orders[0].notes.append(r.choice(NOTES))
        visit = f"{collected.year % 100:02d}{n:07d}" if lab.inpatient else ""
        msg = LabMessage(lab, patient, control_id, sent, orders, visit)
        if lab.dmp_flags:
            self.set_flags(msg, {})
        return msg

    def set_flags(self, msg: LabMessage, values: dict[str, str]) -> None:
        last = msg.orders[-1].results
        last[:] = [o for o in last if not o.meta]
        for code, label in DMP_FLAGS:
            v = values.get(code, "Y" if code == "DESTDMP" else "N")
            last.append(Obs("CE", f"{code}^{esc(label)}^MetaDMPMSS", f"{v}^^HL70136", meta=True))

    def correction(self, msg: LabMessage, sent: datetime, *, loinc: str | None = None,
                   value: float | None = None, note: str | None = None) -> LabMessage:
        """The same order(s) sent again with a new MSH-10: one NM result changed, OBX-11 = C."""
        control_id, _ = self.next_ids(msg.lab, sent)
        new = replace(msg, control_id=control_id, sent=sent, orders=copy.deepcopy(msg.orders))
        candidates = [(o, i) for o in new.orders for i, r in enumerate(o.results)
                      if r.vtype == "NM" and (loinc is None or r.loinc == loinc)]
        order, i = candidates[0] if loinc else self.rng.choice(candidates)
        old = order.results[i]
        if value is None:
            value = (old.num or 1.0) * self.rng.choice((0.6, 0.75, 0.85, 1.15, 1.3, 1.6))
        fixed = self.nm(new.lab, new.patient, old.loinc, value)
        if fixed.value == old.value:
            fixed = self.nm(new.lab, new.patient, old.loinc, value * 1.25 + 1)
        fixed.status = "C"
        fixed.notes = [note or f"Résultat corrigé le {hl7_ts(sent)[6:8]}/{hl7_ts(sent)[4:6]}/"
                               f"{hl7_ts(sent)[:4]} (remplace {old.value} {old.unit})."]
        order.results[i] = fixed
        order.status = "C"
        order.reported = sent - timedelta(minutes=2)
        return new

    # -- rendering ------------------------------------------------------------------------
    def render(self, m: LabMessage, charset: str | None = None) -> str:
        """The message as text, segments joined with CR (eol is applied by ``encode``)."""
        lab = m.lab
        cs = CHARSETS[charset or lab.charset][0]
        segs = ["MSH|^~\\&|" + "|".join((
            lab.app, lab.msh4, RECEIVING_APP, RECEIVING_FACILITY, hl7_ts(m.sent), "",
            "ORU^R01^ORU_R01", m.control_id, "P", "2.5", "", "", "AL", "NE", "FRA", cs))]
        segs.append(self.pid(m))
        if lab.inpatient:
            pv1 = [""] * 20
            pv1[1], pv1[2] = "1", "I"
            pv1[3] = f"MED{int(m.visit[-2:]) % 4 + 1}^^^{lab.facility}"
            pv1[19] = f"{m.visit}^^^{lab.id_ns}&{lab.id_oid}&ISO^VN"
            segs.append("PV1|" + "|".join(pv1[1:]))
        else:
            segs.append("PV1|1|O")
        for i, o in enumerate(m.orders, start=1):
            pr = PRESCRIBERS[o.prescriber]
            xcn = (f"{PRESCRIBER_IDS[o.prescriber]}^{esc(pr[0])}^{esc(pr[1])}^^^DR^^^"
                   f"{RPPS_AUTHORITY}^D^^^RPPS")
            orc = ["RE", o.placer, o.filler, "", "CM", "", "", "", hl7_ts(o.reported), "", "",
                   xcn]
            segs.append("ORC|" + "|".join(orc))
            obr = [""] * 33
            obr[1], obr[2], obr[3] = str(i), o.placer, o.filler
            obr[4] = self.code(lab, o.panel.code, o.panel.label, o.panel.abbr)
            obr[7] = o.obr7_raw if o.obr7_raw is not None else hl7_ts(o.collected, False)
            obr[14] = hl7_ts(o.received, False)
            obr[16] = xcn
            obr[22] = hl7_ts(o.reported)
            obr[24], obr[25] = o.panel.section, o.status
            bio_id = BIOLOGIST_IDS[o.biologist]
            obr[32] = f"{bio_id}&{esc(o.biologist[0])}&{esc(o.biologist[1])}"
            segs.append("OBR|" + "|".join(obr[1:]))
            for k, note in enumerate(o.notes, start=1):
                segs.append(f"NTE|{k}|L|{esc(note)}")
            coll = o.obr7_raw if o.obr7_raw is not None else hl7_ts(o.collected, False)
            analysed = hl7_ts(o.received + timedelta(minutes=25), False)
            for j, r in enumerate(o.results, start=1):
                if r.meta:
                    segs.append(f"OBX|{j}|CE|{r.code}||{r.value}||||||{r.status}")
                    continue
                obx = [str(j), r.vtype, r.code, "", r.value, r.unit, r.range, r.flag, "", "",
                       r.status, "", "", coll, "", "", "", "", analysed]
                segs.append(("OBX|" + "|".join(obx)).rstrip("|"))
                for k, note in enumerate(r.notes, start=1):
                    segs.append(f"NTE|{k}|L|{esc(note)}")
        return "\r".join(segs) + "\r"

    def pid(self, m: LabMessage) -> str:
        lab, p = m.lab, m.patient
        up = str.upper if lab.upper_names else str
        nir = m.ins_override or p.nir
        f = [""] * 33
        f[1] = "1"
        f[3] = (f"{nir}^^^{INS_NAMESPACE}&{INS_TEST_OID}&ISO^INS~"
                f"{p.ipps[lab.key]}^^^{lab.id_ns}&{lab.id_oid}&ISO^PI")
        names = f"{esc(up(p.birth_family))}^{esc(up(p.given))}^{esc(up(p.given_all))}^^^^L"
        if p.family != p.birth_family:
            names += f"~{esc(up(p.family))}^{esc(up(p.given))}^^^^^D"
        f[5] = names
        f[7] = p.birth_date.strftime("%Y%m%d")
        f[8] = p.sex
        f[11] = (f"{esc(p.street)}^^{esc(up(p.town))}^^{p.postcode}^FRA^H"
                 f"~^^^^^^BDL^^{p.insee}")
        f[31] = "N"
        f[32] = p.status
        return "PID|" + "|".join(f[1:])

    def adt_a01(self, lab: Lab, p: Patient, sent: datetime) -> str:
        control_id, n = self.next_ids(lab, sent)
        self.ipp(p, lab)
        m = LabMessage(lab, p, control_id, sent, [])
        pv1 = [""] * 45
        pv1[1], pv1[2], pv1[3] = "1", "I", f"MED2^^^{lab.facility}"
        pv1[19] = f"{sent.year % 100:02d}{n:07d}^^^{lab.id_ns}&{lab.id_oid}&ISO^VN"
        pv1[44] = hl7_ts(sent, False)
        segs = ["MSH|^~\\&|" + "|".join((
            lab.app, lab.msh4, RECEIVING_APP, RECEIVING_FACILITY, hl7_ts(sent), "",
            "ADT^A01^ADT_A01", control_id, "P", "2.5", "", "", "AL", "NE", "FRA",
            CHARSETS[lab.charset][0])),
            f"EVN||{hl7_ts(sent)}", self.pid(m), "PV1|" + "|".join(pv1[1:])]
        return "\r".join(segs) + "\r"


    def pam_adt(self, hosp: Lab, p: Patient, trigger: str, sent: datetime, *,
                zfa: str | None = None) -> str:
        """An IHE PAM France 2.11 ADT (as the ANS SGL examples): MSH-12 '2.5^FRA^2.11',
        MSH-21 the PAM profile, EVN-2 and EVN-6, PID, PV1 (class N for the person-level
        A28/A31), then the ZFA segment when given (its fields 1 to 12, 4 to 8 obsolete)."""
        control_id, n = self.next_ids(hosp, sent)
        self.ipp(p, hosp)
        m = LabMessage(hosp, p, control_id, sent, [])
        structure = {"A28": "ADT_A05", "A31": "ADT_A05"}.get(trigger, "ADT_A01")
        if trigger in ("A28", "A31"):
            pv1 = "PV1|1|N"
        else:
            pv1 = (f"PV1|1|I|MED2^^^{hosp.facility}" + "|" * 16
                   + f"{sent.year % 100:02d}{n:07d}^^^{hosp.id_ns}&{hosp.id_oid}&ISO^VN")
        segs = ["MSH|^~\\&|" + "|".join((
            hosp.app, hosp.msh4, RECEIVING_APP, RECEIVING_FACILITY, hl7_ts(sent), "",
            f"ADT^{trigger}^{structure}", control_id, "P", "2.5^FRA^2.11", "", "", "AL", "NE",
            "FRA", CHARSETS[hosp.charset][0], "FR", "", "2.11^IHE_FRANCE-2.11-PAM")),
            f"EVN||{hl7_ts(sent)}||||{hl7_ts(sent)}", self.pid(m), pv1]
        if zfa is not None:
            segs.append(f"ZFA|{zfa}")
        return "\r".join(segs) + "\r"


def zfa_segment(status: str, when: datetime, opposition: str = "", opposition_at: datetime |
                None = None, consultation: str = "", consultation_at: datetime | None = None
                ) -> str:
    """ZFA-1 .. ZFA-12: DMP status and its date, 4 to 8 (obsolete) empty, opposition to
    feeding (NA, IO, INO) and its date, consent to consultation (NA, INC, IC) and its date."""
    def ts(at: datetime | None) -> str:
        return hl7_ts(at) if at is not None else ""
    return (f"{status}|{ts(when)}|||||||{opposition}|{ts(opposition_at)}|{consultation}|"
            f"{ts(consultation_at)}")


def fmt_range(lo: float | None, hi: float | None, dec: int, comma: bool) -> str:
    def f(v: float) -> str:
        s = f"{v:.{dec}f}"
        return s.replace(".", ",") if comma else s
    if lo is not None and hi is not None:
        return f"{f(lo)}-{f(hi)}"
    if hi is not None:
        return f"<{f(hi)}"
    if lo is not None:
        return f">{f(lo)}"
    return ""


def years(birth: date, when: datetime) -> int:
    return when.year - birth.year - ((when.month, when.day) < (birth.month, birth.day))


def ckd_epi(creat_umol: float, age: int, sex: str) -> float:
    """CKD-EPI 2009 eGFR (mL/min/1.73 m²) from serum creatinine in µmol/L."""
    scr = creat_umol / 88.4
    k, a = (0.7, -0.329) if sex == "F" else (0.9, -0.411)
    egfr = 141 * min(scr / k, 1) ** a * max(scr / k, 1) ** -1.209 * 0.993 ** age
    return egfr * (1.018 if sex == "F" else 1.0)


def encode(text: str, charset: str, eol: str = "\r") -> bytes:
    """Bytes as the lab sends them: its charset, its segment terminator."""
    codec = CHARSETS[charset][1]
    if codec == "iso-8859-1":  # no œ in Latin-1: senders write 'oe'
        text = text.replace("œ", "oe").replace("Œ", "OE")
    if eol != "\r":
        text = text.replace("\r", eol)
    return text.encode(codec)


# --------------------------------------------------------------------------------------------
# Bulk traffic
# --------------------------------------------------------------------------------------------


class Traffic:
    """An endless, deterministic stream of lab messages over a pool of patients."""

    def __init__(self, seed: int = DEFAULT_SEED, *, patients: int = 1000,
                 charset: str | None = None, eol: str | None = None, corrections: float = 0.02,
                 duplicates: float = 0.01,
                 start: datetime | None = None) -> None:
        if charset is not None and charset not in CHARSETS:
            raise ValueError(f"unknown charset {charset!r} (one of {', '.join(CHARSETS)})")
        self.g = Generator(seed)
        self.patients = [self.g.new_patient(f"P{i + 1:06d}") for i in range(max(1, patients))]
        self.used = [False] * len(self.patients)
        self.charset = charset
        self.eol = EOLS.get(eol, eol) if eol else None
        self.corrections = corrections
        self.duplicates = duplicates
        # Late March: a 10,000-message run crosses the switch to summer time (+0100 -> +0200).
        self.clock = start or paris(2025, 3, 27, 7, 30)
        self.recent: deque[tuple[LabMessage, bytes]] = deque(maxlen=256)

    def encode(self, msg: LabMessage, eol: str | None = None) -> bytes:
        charset = self.charset or msg.lab.charset
        return encode(self.g.render(msg, charset), charset, eol or self.eol or msg.lab.eol)

    def __iter__(self) -> Iterator[bytes]:
        g, r = self.g, self.g.rng
        while True:
            self.clock += timedelta(seconds=r.randint(5, 75))
            x = r.random()
            if self.recent and x < self.duplicates:
                old, data = r.choice(self.recent)
                if r.random() < 0.5:
                    yield data  # the same bytes again
                else:  # the same message (same MSH-10) rebuilt later: only MSH-7 differs
                    yield self.encode(replace(old, sent=self.clock))
                continue
            if self.recent and x < self.duplicates + self.corrections:
                old, _ = r.choice(self.recent)
                msg = g.correction(old, self.clock)
            else:
                idx = r.randrange(len(self.patients))
                self.used[idx] = True
                p = self.patients[idx]
                lab = LAB_BY_KEY[p.home_lab] if r.random() < 0.85 else r.choice(LABS)
                combo = r.choices(_COMBO_LIST, weights=_COMBO_WEIGHTS)[0]
                msg = g.make_message(lab, p, combo, self.clock)
            data = self.encode(msg)
            self.recent.append((msg, data))
            yield data

    def used_patients(self) -> list[Patient]:
        return [p for p, u in zip(self.patients, self.used, strict=True) if u]


def _pool_size(n: int) -> int:
    return max(10, min(n // 3, 200_000))


def iter_messages(n: int, seed: int = DEFAULT_SEED, **options) -> Iterator[bytes]:
    """``n`` messages, lazily. Options: charset, eol, corrections, duplicates, patients."""
    options.setdefault("patients", _pool_size(n))
    traffic = Traffic(seed, **options)
    for i, data in enumerate(traffic):
        if i >= n:
            return
        yield data


def generate_messages(n: int, seed: int = DEFAULT_SEED, **options) -> list[bytes]:
    """``n`` messages (bytes, one HL7v2 message each) for tests; see ``iter_messages``."""
    return list(iter_messages(n, seed, **options))


def write_batch(fh: BinaryIO, messages: Iterable[bytes], *, app: str = "CONCENTRATEUR",
                facility: str = "ESANTE-HUB", created: datetime | None = None,
                batch_id: str = "1", eol: str = "\r", bts_count: int | None = None) -> int:
    """Stream an FHS/BHS ... BTS/FTS batch; returns how many messages were written.

    ``bts_count`` overrides the count written in BTS-1 (to build a truncated batch)."""
    created = created or paris(2025, 3, 27, 7, 0)
    e = eol.encode("ascii")
    head = "|".join((app, facility, RECEIVING_APP, RECEIVING_FACILITY, hl7_ts(created)))
    fh.write(f"FHS|^~\\&|{head}||F{batch_id}||F{batch_id}".encode("ascii") + e)
    fh.write(f"BHS|^~\\&|{head}||B{batch_id}||B{batch_id}".encode("ascii") + e)
    n = 0
    for data in messages:
        fh.write(data)
        n += 1
    fh.write(f"BTS|{n if bts_count is None else bts_count}".encode("ascii") + e)
    fh.write(b"FTS|1" + e)
    return n


def write_stream(fh: BinaryIO, n: int | None, seed: int = DEFAULT_SEED, *, batch: bool = False,
                 max_bytes: int | None = None, traffic: Traffic | None = None,
                 **options) -> int:
    """Write ``n`` messages (or until ``max_bytes``) to a binary handle, one after the other
    or inside one FHS/BHS batch. Memory stays flat whatever the size. Returns the count."""
    if batch:
        options["charset"] = options.get("charset") or "utf-8"
        options["eol"] = options.get("eol") or "\r"
    if traffic is None:
        options.setdefault("patients", _pool_size(n or (max_bytes or 0) // 2600))
        traffic = Traffic(seed, **options)

    def messages() -> Iterator[bytes]:
        size = 0
        for i, data in enumerate(traffic):
            if (n is not None and i >= n) or (max_bytes is not None and size >= max_bytes):
                return
            size += len(data)
            yield data

    if not batch:
        count = 0
        for data in messages():
            fh.write(data)
            count += 1
        return count
    return write_batch(fh, messages(), batch_id=str(seed), eol=traffic.eol or "\r")


def write_patients_csv(path: Path, patients: Iterable[Patient]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["ins", "family", "given", "birth_date", "sex", "birth_family", "given_all",
                    "identity_status", "key"])
        for p in patients:
            w.writerow([p.nir, p.family, p.given, p.birth_date.isoformat(), p.sex,
                        p.birth_family, p.given_all, p.status, p.key])


def write_mappings(directory: Path) -> list[Path]:
    """One CSV per source (MSH-3.1|MSH-4.1) for the local codes that source sends."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for lab in LABS:
        if not lab.local_codes:
            continue
        rows = []
        for loinc in sorted(lab.local_codes):
            if (lab.key, loinc) in UNMAPPED:
                continue
            item = ANALYTES.get(loinc) or next(p for p in PANELS.values() if p.code == loinc)
            rows.append([lab.source, lab.local_system, item.abbr, loinc, item.label])
        path = directory / f"{lab.app}__{lab.facility}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["source", "coding_system", "local_code", "loinc", "display"])
            w.writerows(sorted(rows, key=lambda row: row[2]))
        written.append(path)
    return written


def write_bulk(out_dir: Path, n: int | None, seed: int = DEFAULT_SEED, *, batch: bool = False,
               max_bytes: int | None = None, **options) -> tuple[int, Path]:
    """DIR/hl7v2/ (files or one batch), DIR/patients.csv, DIR/mappings/. Returns (count, dir)."""
    out_dir = Path(out_dir)
    hl7_dir = out_dir / "hl7v2"
    hl7_dir.mkdir(parents=True, exist_ok=True)
    if batch:
        options["charset"] = options.get("charset") or "utf-8"
        options["eol"] = options.get("eol") or "\r"
    options.setdefault("patients", _pool_size(n or (max_bytes or 0) // 2600))
    traffic = Traffic(seed, **options)
    if batch:
        with (hl7_dir / f"batch-{seed}.hl7").open("wb") as fh:
            count = write_stream(fh, n, seed, batch=True, max_bytes=max_bytes, traffic=traffic)
    else:
        count = 0
        size = 0
        width = max(7, len(str(n or 0)))
        for data in traffic:
            if (n is not None and count >= n) or (max_bytes is not None and size >= max_bytes):
                break
            count += 1
            size += len(data)
            (hl7_dir / f"{count:0{width}d}.hl7").write_bytes(data)
    write_patients_csv(out_dir / "patients.csv", traffic.used_patients())
    write_mappings(out_dir / "mappings")
    return count, hl7_dir


# --------------------------------------------------------------------------------------------
# The committed sample set
# --------------------------------------------------------------------------------------------


@dataclass
class SampleFile:
    name: str
    data: bytes
    outcome: str  # deposited | duplicate | failed | quarantined
    expect: str  # finer: new, corrected, duplicate-bytes, duplicate-msh10, batch, why it fails
    patient: str
    messages: int
    results: int
    detail: str


def build_sample_set(seed: int = SAMPLE_SEED) -> tuple[list[SampleFile], list[Patient]]:
    g = Generator(seed, stream="sample-set")
    fp = g.fixed_patient
    K1 = fp("K1", "F", "Hélène Marie Jeanne", "Béranger", "Lefèvre", date(1968, 3, 14), "69123",
            "VALI", "12 rue Émile-Zola", "Lyon", "69003", "labm", 0.3)
    K2 = fp("K2", "M", "Jérôme Yves", "Le Goff", "Le Goff", date(1955, 11, 2), "29232", "VALI",
            "4 place de l'Église", "Villeurbanne", "69100", "labm", 0.7)
    K3 = fp("K3", "F", "Aïssatou", "N'Diaye", "N'Diaye", date(1987, 6, 21), "99341", "VALI",
            "27 boulevard Gambetta", "Nice", "06300", "bioazur", 0.2)
    K4 = fp("K4", "F", "Zoé Louise", "Müller", "Müller", date(2012, 9, 30), "67482", "VALI",
            "8 cours Lafayette", "Lyon", "69007", "labm", 0.1)
    K5 = fp("K5", "M", "Noël Ange", "Santoni", "Santoni", date(1949, 12, 25), "2A004", "VALI",
            "3 allée des Châtaigniers", "Talence", "33400", "synlab", 0.6)
    K6 = fp("K6", "F", "Françoise Marie", "Casanova", "Giraud", date(1976, 1, 8), "2B033",
            "VALI", "51 route de Saint-Étienne", "Mérignac", "33700", "synlab", 0.4)
    K7 = fp("K7", "M", "Jean-François Pierre", "Béranger", "Béranger", date(1971, 5, 17), "33063",
            "PROV", "19 quai des Célestins", "Caluire-et-Cuire", "69300", "labm", 0.3)
    K8 = fp("K8", "F", "Maëlys Océane", "Da Silva", "Da Silva", date(1995, 2, 11), "97120",
            "VALI", "6 impasse des Tilleuls", "Vénissieux", "69200", "labm", 0.2)
    U1 = fp("U1", "F", "Gaëlle Anne", "Le Bihan", "Le Bihan", date(1990, 7, 4), "56260", "VALI",
            "33 rue Pasteur", "Lyon", "69003", "labm", 0.2, known=False)
    patients = [K1, K2, K3, K4, K5, K6, K7, K8, U1]
    labm, synlab, chu, bioazur = (LAB_BY_KEY[k] for k in ("labm", "synlab", "chu", "bioazur"))
    files: list[SampleFile] = []

    def add(name, data, outcome, expect, patient, messages, results, detail):
        files.append(SampleFile(name, data, outcome, expect, patient, messages, results, detail))

    def msg(lab, p, panels, when, **kw):
        return g.make_message(lab, p, panels, when, comment_prob=0, note_prob=0, **kw)

    def enc(m, eol=None, text=None, charset=None):
        cs = charset or m.lab.charset
        return encode(text if text is not None else g.render(m, cs), cs, eol or m.lab.eol)

    # 01 NFS, platelets low because of clumping (corrected by 12)
    m01 = msg(labm, K1, ["NFS"], paris(2025, 1, 14, 11, 42))
    plt = next(o for o in m01.orders[0].results if o.loinc == "777-3")
    plt_i = m01.orders[0].results.index(plt)
    m01.orders[0].results[plt_i] = g.nm(labm, K1, "777-3", 96)
    m01.orders[0].results.insert(plt_i + 1, g.comment(labm, COMMENTS[3], "TX"))
    g.set_flags(m01, {})
    add("01_labm_nfs.hl7", enc(m01), "deposited", "new", "K1", 1, m01.results,
        "NFS (hémogramme) 58410-2, 15 results incl. a TX comment; platelets 96 G/L flagged L "
        "(clumping, corrected by 12); UTF-8, CR; MetaDMPMSS flags (DESTDMP=Y, none masked)")
    # 02 lipids + fasting glucose sent with the local code GLY
    m02 = msg(labm, K2, ["LIPIDES", "GLY"], paris(2025, 2, 4, 10, 5))
    add("02_labm_lipides_glycemie.hl7", enc(m02), "deposited", "new", "K2", 1, m02.results,
        "two OBR: bilan lipidique 57698-3 + glycémie à jeun as local code GLY^Glycémie à jeun^L "
        "(OBR-4 and OBX-3), mapped to 1558-6 by mappings/LABM__CERBALLIANCE_LYON.csv")
    # 03 ionogramme + renal at Synlab: LF segment ends, names in upper case
    m03 = msg(synlab, K5, ["IONO", "RENAL"], paris(2025, 4, 8, 9, 30))
    add("03_synlab_iono_creatinine.hl7", enc(m03), "deposited", "new", "K5", 1, m03.results,
        "ionogramme 24326-1 + créatinine/DFG (CKD-EPI, mL/min/1,73m²) + urée; LF segment ends, "
        "names upper case with accents; INS born in Corse-du-Sud (2A); +0200 times")
    # 04 hepatic panel with a TX comment holding escaped delimiters
    m04 = msg(synlab, K6, ["HEPATIQUE"], paris(2025, 5, 20, 16, 10),
              comment="Cytolyse modérée : ASAT & ALAT > 2N | contrôle à 15 jours conseillé "
                      "| réf. interne CYTO^2.")
    add("04_synlab_bilan_hepatique.hl7", enc(m04), "deposited", "new", "K6", 1, m04.results,
        "bilan hépatique 24325-3 (µmol/L, UI/L) + TX comment 48767-8 with \\T\\, \\F\\ and \\S\\ "
        "escapes; married woman (PID-5 L Casanova, D Giraud); INS born in Haute-Corse (2B)")
    # 05 CHU Rennes, ISO-8859-1, inpatient, local codes with LOINC alternates
    m05 = msg(chu, K2, ["HBA1C", "GLY"], paris(2025, 6, 17, 7, 55))
    add("05_chu_hba1c.hl7", enc(m05), "deposited", "new", "K2", 1, m05.results,
        "ISO-8859-1 (MSH-18 8859/1), inpatient PV1 with visit number; every code sent as local "
        "code + LOINC alternate (CE.4-6 ^LN): use the alternate, no mapping needed")
    # 06 Bio-Azur, ISO-8859-15, local codes, one deliberately unmapped
    m06 = msg(bioazur, K3, ["IONO", "VITD"], paris(2025, 7, 1, 8, 20), comment=COMMENTS[7])
    add("06_bioazur_iono_vitd.hl7", enc(m06), "deposited", "new", "K3", 1, m06.results,
        "ISO-8859-15 (œ in the comment); ionogramme as local codes 99BAZ (IONO, NA, K, CL, CO2, "
        "PROT: mapped) + vitamine D as local codes VITD (OBR-4) and VITD25 (OBX-3), deliberately "
        "absent from the mapping: kept and flagged 'unmapped'; reference ranges with decimal "
        "commas; patient born abroad (99341)")
    # 07 CRP below the detection limit (SN) + ferritin, masked from professionals
    m07 = msg(labm, K8, ["CRP", "FERRITINE"], paris(2025, 8, 12, 9, 0))
    m07.orders[0].results = [g.crp_below(labm)]
    m07.orders[1].results.append(g.comment(labm, COMMENTS[9], "ST"))
    g.set_flags(m07, {"MASQUE_PS": "Y"})
    add("07_labm_crp_ferritine_masque.hl7", enc(m07), "deposited", "new", "K8", 1, m07.results,
        "CRP as SN '<^0.5' (comparator <, value 0.5) + ferritine + ST comment; MetaDMPMSS "
        "MASQUE_PS=Y: the entries are masked from professionals; INS born in Guadeloupe (971)")
    # 08 PROV identity: INS must be ignored, match on demographics
    m08 = msg(labm, K7, ["RENAL"], paris(2025, 9, 9, 10, 45))
    add("08_labm_creatinine_prov.hl7", enc(m08), "deposited", "new", "K7", 1, m08.results,
        "PID-32 = PROV: the INS is not trusted (ignore it); the lab id is unknown to the store, "
        "so the patient is found by strict demographics (family, given, birth date, sex)")
    # 09 three OBR in one message, coded results
    m09 = msg(synlab, K1, ["NFS", "CRP", "GROUPE"], paris(2025, 10, 7, 8, 15))
    add("09_synlab_nfs_crp_groupe.hl7", enc(m09), "deposited", "new", "K1", 1, m09.results,
        "three OBR in one ORU: NFS + CRP + groupe sanguin ABO/RhD/RAI as CE results (SNOMED CT "
        "codes, system SCT); K1 seen by another lab (other local id, same INS)")
    # 10 TSH, CRLF
    m10 = msg(labm, K4, ["TSH"], paris(2025, 11, 18, 8, 5))
    if m10.results < 2:
        m10.orders[0].results.append(g.gen(labm, K4, "14920-3"))
    g.set_flags(m10, {})
    add("10_labm_tsh_crlf.hl7", enc(m10, eol="\r\n"), "deposited", "new", "K4", 1, m10.results,
        "TSH + T4 libre for a child; CRLF segment ends (one file only); +0100 times")
    # 11 unknown patient
    m11 = msg(labm, U1, ["NFS", "CRP"], paris(2025, 11, 25, 14, 30))
    add("11_labm_patient_inconnu.hl7", enc(m11), "quarantined", "unknown patient", "U1", 1,
        m11.results, "U1 is not in patients.csv (valid INS, VALI): quarantined 'unknown patient'; "
        "deposited into a new dossier when auto-creation is on")
    # 12 correction of 01
    m12 = g.correction(m01, paris(2025, 1, 15, 9, 12), loinc="777-3", value=212,
                       note="Résultat corrigé : numération contrôlée sur tube citraté "
                            "(remplace 96 G/L).")
    add("12_labm_nfs_correction.hl7", enc(m12), "deposited", "corrected", "K1", 1, m12.results,
        "correction of 01: new MSH-10, same filler order (OBR-3), OBR-25 = C; platelets OBX-11 = C "
        "212 G/L (was 96 L) supersedes the old value, history kept; the other results are "
        "unchanged (duplicates of 01)")
    # 13 exact duplicate of 02
    add("13_labm_lipides_glycemie_copie.hl7", files[1].data, "duplicate", "duplicate-bytes", "K2",
        1, 0, "byte-for-byte copy of 02 (dedupe level 1: same bytes again, nothing reprocessed)")
    # 14 the same message as 03 (same MSH-10) with other segment ends
    add("14_synlab_iono_creatinine_renvoi.hl7", enc(m03, eol="\r"), "duplicate",
        "duplicate-msh10", "K5", 1, 0, "03 sent again: same sender and MSH-10, same content, but "
        "CR instead of LF so the bytes differ (dedupe level 2)")
    # 15 a correct batch from the CHU
    b_msgs = [msg(chu, K4, ["NFS"], paris(2025, 12, 2, 6, 10)),
              msg(chu, K8, ["IONO", "RENAL"], paris(2025, 12, 2, 6, 11)),
              msg(chu, K2, ["FERRITINE", "CRP", "TSH"], paris(2025, 12, 2, 6, 12))]
    buf = io.BytesIO()
    write_batch(buf, (enc(m) for m in b_msgs), app=chu.app, facility=chu.facility,
                created=paris(2025, 12, 2, 6, 15), batch_id=f"{g.tag}0001")
    add("15_chu_batch.hl7", buf.getvalue(), "deposited", "batch", "K4 K8 K2", 3,
        sum(m.results for m in b_msgs), "FHS/BHS batch of 3 ORU (ISO-8859-1, CR), BTS-1 = 3, "
        "FTS-1 = 1: three messages, each deposited")
    # 16 a truncated batch
    t_msgs = [msg(chu, K5, ["HEPATIQUE"], paris(2025, 12, 3, 6, 10)),
              msg(chu, K6, ["LIPIDES", "GLY"], paris(2025, 12, 3, 6, 11))]
    buf = io.BytesIO()
    write_batch(buf, (enc(m) for m in t_msgs), app=chu.app, facility=chu.facility,
                created=paris(2025, 12, 3, 6, 15), batch_id=f"{g.tag}0002", bts_count=3)
    add("16_chu_batch_tronque.hl7", buf.getvalue(), "failed", "batch count mismatch", "K5 K6", 2,
        0, "batch whose BTS-1 says 3 messages but holds 2 (transfer cut): the batch's own ledger "
        "row fails (HL7_BATCH_COUNT_MISMATCH) and is reported; the 2 complete messages it holds "
        "are still processed (deposited), so nothing received is lost")
    # 17-24 broken messages, one fault each
    m = msg(labm, K1, ["LIPIDES"], paris(2025, 3, 11, 9, 0))
    text = g.render(m)
    add("17_casse_sans_msh.hl7", enc(m, text=text.split("\r", 1)[1]), "failed", "no MSH", "K1",
        1, 0, "the MSH segment is missing (file starts with PID): not recognisable as HL7v2 / "
        "HL7_NO_MSH")
    m = msg(labm, K2, ["CRP", "FERRITINE"], paris(2025, 3, 12, 9, 0))
    text = g.render(m).replace("MSH|^~\\&|", "MSH|^^\\&|", 1)
    add("18_casse_delimiteurs.hl7", enc(m, text=text), "failed", "bad encoding characters",
        "K2", 1, 0, "MSH-2 is '^^\\&' (component separator twice, no repetition separator): "
        "HL7_BAD_ENCODING_CHARS")
    m = msg(synlab, K3, ["IONO"], paris(2025, 3, 13, 9, 0))
    m.orders[-1].results = [o for o in m.orders[-1].results if not o.meta]
    text = g.render(m)
    cut = text.rindex("\rOBX|") + 1
    cut = text.index("^", cut) + 4  # inside OBX-3 of the last OBX
    add("19_casse_tronque.hl7", enc(m, text=text[:cut]), "failed", "truncated message", "K3", 1,
        0, "the transfer stopped inside the last OBX (mid OBX-3, no terminator): the last OBX "
        "has no value and no OBX-11; the message fails, nothing is deposited")
    m = msg(labm, K4, ["NFS"], paris(2025, 3, 14, 9, 0))
    bad = next(o for o in m.orders[0].results if o.loinc == "718-7")
    bad.value, bad.flag = "abc", ""
    add("20_casse_nm_non_numerique.hl7", enc(m), "failed", "non-numeric NM value", "K4", 1, 0,
        "OBX-2 = NM but OBX-5 = 'abc' (hémoglobine, OBX 2 of OBR 1): the message fails naming "
        "OBX-5 of that segment")
    m = msg(labm, K2, ["HBA1C", "GLY"], paris(2025, 3, 17, 9, 0))
    good = int(K2.nir[13:])
    m.ins_override = K2.nir[:13] + f"{good % 97 + 1:02d}"
    add("21_casse_cle_nir.hl7", enc(m), "quarantined", "invalid INS key", "K2", 1, m.results,
        "K2's NIR with a wrong key (PID-32 VALI, test INS OID): quarantined 'invalid INS key', "
        "never matched by guessing, although the demographics would match K2")
    m = msg(synlab, K6, ["TSH"], paris(2025, 3, 18, 9, 0))
    m.orders[0].obr7_raw = "20241345"
    add("22_casse_date.hl7", enc(m), "failed", "invalid date", "K6", 1, 0,
        "OBR-7 (and OBX-14) = 20241345 (month 13, day 45): the message fails naming OBR-7")
    text = g.adt_a01(chu, K5, paris(2025, 3, 19, 9, 0))
    add("23_casse_adt_a01.hl7", encode(text, chu.charset, chu.eol), "deposited",
        "adt without ZFA", "K5", 1, 0, "ADT^A01 (admission) without ZFA segment: no result, no "
        "consent statement, and an admission does not update identity; the patient is found by "
        "INS and the message recorded ('deposited', no entries, stage 'consent', 'nothing to "
        "apply')")
    m = msg(bioazur, K8, ["IONO"], paris(2025, 3, 20, 9, 0))
    text = g.render(m, "utf-8")
    add("24_casse_charset.hl7", text.encode("iso-8859-1"), "failed", "charset mismatch",
        "K8", 1, 0, "MSH-18 says UNICODE UTF-8 but the bytes are ISO-8859-1 (Maëlys, "
        "Créatinine...): not valid UTF-8, HL7_BAD_CHARSET naming MSH-18 and the byte offset. "
        "The fix is a per-source fallback (DMP_SOURCE_CHARSETS='samples=iso-8859-1'), then a "
        "rerun: deposited with a warning")
    # 25-28 hospitals' ADT (IHE PAM France 2.11, ZFA). Made after every other file, with a
    # patient of their own (K9), so that the files above keep their bytes and K1..K8 their
    # dossiers: K9 objects to the feeding of her DMP, and nothing of hers may be filed.
    K9 = fp("K9", "F", "Léa Céleste", "Rousseau", "Rousseau", date(1983, 4, 9), "74010", "VALI",
            "14 avenue d'Albigny", "Annecy", "74000", "labm", 0.2)
    patients.append(K9)
    annecy, nice = HOSPITAL_BY_KEY["annecy"], HOSPITAL_BY_KEY["nice"]
    sent = paris(2025, 3, 21, 10, 12)
    text = g.pam_adt(nice, K3, "A28", sent, zfa=zfa_segment("ACTIF", sent, "INO", sent, "IC",
                                                              sent))
    add("25_gam_nice_a28_consentement.hl7", encode(text, nice.charset, nice.eol), "deposited",
        "consent", "K3", 1, 0, "ADT^A28 (add person) from the CHU de Nice, UTF-8, LF: ZFA "
        "DMP ACTIF, does not object to feeding (INO), consents to consultation (IC), each dated: "
        "the dossier's consent history starts, current values set, audit 'consent.update'")
    sent = paris(2025, 3, 24, 15, 40)
    text = g.pam_adt(annecy, K9, "A31", sent, zfa=zfa_segment(
        "ACTIF", sent, "IO", paris(2025, 3, 24, 15, 30), "NA"))
    add("26_gam_annecy_a31_opposition.hl7", encode(text, annecy.charset, annecy.eol),
        "deposited", "opposition", "K9", 1, 0, "ADT^A31 (update person) from the CH Annecy "
        "Genevois, ISO-8859-15: ZFA-9 = IO, the patient objects to the feeding of her DMP "
        "(ZFA-10 its date), consultation not asked (NA): recorded, the dossier is now closed "
        "to feeding")
    m27 = msg(labm, K9, ["TSH"], paris(2025, 3, 26, 9, 5))
    add("27_labm_tsh_opposition.hl7", enc(m27), "quarantined", "opposition", "K9", 1,
        m27.results, "results for K9 after her opposition (26): quarantined OPPOSITION ('the "
        "patient has opposed the feeding of their dossier'), never deposited; deposited on "
        "rerun only once an ADT with a later INO lifts it")
    married = replace(K9, family="Fontaine")
    sent = paris(2025, 4, 2, 11, 0)
    text = g.pam_adt(annecy, married, "A08", sent)
    add("28_gam_annecy_a08_identite.hl7", encode(text, annecy.charset, annecy.eol),
        "deposited", "identity update", "K9", 1, 0, "ADT^A08 (update patient information), no "
        "ZFA: K9 now uses her married name (PID-5 L Rousseau, D Fontaine); matched by her "
        "qualified INS (VALI), so the dossier's family name is updated (audit 'identity.update' "
        "names the field, never the value); her opposition stays")
    return files, patients


def write_sample_set(directory: Path | str | None = None, seed: int = SAMPLE_SEED) -> list[Path]:
    """(Re)write hl7v2/, patients.csv, mappings/ and expected.csv under ``directory``
    (default: the folder of this script, i.e. samples/)."""
    directory = Path(directory) if directory is not None else Path(__file__).resolve().parent
    files, patients = build_sample_set(seed)
    hl7_dir = directory / "hl7v2"
    hl7_dir.mkdir(parents=True, exist_ok=True)
    names = {f.name for f in files}
    for old in hl7_dir.iterdir():
        if old.is_file() and old.name not in names:
            old.unlink()
    written = []
    for f in files:
        path = hl7_dir / f.name
        path.write_bytes(f.data)
        written.append(path)
    write_patients_csv(directory / "patients.csv", [p for p in patients if p.known])
    written.append(directory / "patients.csv")
    written += write_mappings(directory / "mappings")
    with (directory / "expected.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["file", "outcome", "expect", "patient", "messages", "results", "detail"])
        for f in files:
            w.writerow([f"hl7v2/{f.name}", f.outcome, f.expect, f.patient, f.messages,
                        f.results, f.detail])
    written.append(directory / "expected.csv")
    return written


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)B?", text.strip().upper())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 1G)")
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Synthetic French laboratory HL7v2 traffic (ORU^R01 v2.5), deterministic.")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", type=Path, help="write DIR/hl7v2/, DIR/patients.csv, "
                                               "DIR/mappings/")
    what.add_argument("--sample-set", type=Path, metavar="DIR",
                      help="rewrite the committed sample set under DIR (normally samples/)")
    ap.add_argument("--messages", type=int, help="how many messages (with --out)")
    ap.add_argument("--bytes", type=parse_size, help="or stop once this size is reached "
                                                     "(e.g. 1G)")
    ap.add_argument("--seed", type=int, help=f"default {DEFAULT_SEED} (bulk), "
                                             f"{SAMPLE_SEED} (sample set)")
    ap.add_argument("--batch", action="store_true",
                    help="one FHS/BHS batch file instead of one file per message")
    ap.add_argument("--charset", choices=sorted(CHARSETS),
                    help="force one charset (default: each lab's own; utf-8 in a batch)")
    ap.add_argument("--eol", choices=sorted(EOLS),
                    help="force one segment terminator (default: each lab's own; cr in a batch)")
    ap.add_argument("--corrections", type=float, default=0.02,
                    help="share of corrected re-sends (OBX-11 = C), default 0.02")
    ap.add_argument("--duplicates", type=float, default=0.01,
                    help="share of duplicate re-sends, default 0.01")
    args = ap.parse_args(argv)
    if args.sample_set is not None:
        paths = write_sample_set(args.sample_set,
                                 SAMPLE_SEED if args.seed is None else args.seed)
        total = sum(p.stat().st_size for p in paths)
        print(f"sample set: {len(paths)} files, {total} bytes under {args.sample_set}")
        return 0
    if args.messages is None and args.bytes is None:
        ap.error("--out needs --messages N or --bytes SIZE")
    count, hl7_dir = write_bulk(
        args.out, args.messages, DEFAULT_SEED if args.seed is None else args.seed,
        batch=args.batch, max_bytes=args.bytes, charset=args.charset,
        eol=EOLS[args.eol] if args.eol else None, corrections=args.corrections,
        duplicates=args.duplicates)
    print(f"{count} messages in {hl7_dir}; patients in {args.out / 'patients.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
