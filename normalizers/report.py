"""A parsed PDF report (parsers/pdf) -> one report entry and the patient's identity as printed.

Imaging centres and hospitals send reports as PDFs: born-digital (text layer) or scanned (OCR,
with its errors). Nothing is coded in them; what the dossier needs is read from the words:
the patient (names, birth date, sex, NIR), the examination (date, DICOM modality and body
region from ``tables/imaging_modalities.csv`` and ``tables/body_regions.csv``, title line),
the prescriber, the signing radiologist and the conclusion. Matching is case- and
accent-insensitive and forgives the usual OCR confusions (O for 0, l / I / | for 1 in numbers,
spaces broken or added inside the NIR's groups).

Every field says where it was read: ``{"value", "page", "source" ('text' or 'ocr'),
"confidence"}`` (mean confidence of the words it is made of; 100 for the text layer), in
``entry.details["fields"]``. Names: family, given, birth_family, birth_date, sex, nir (with
key_valid), exam_date, report_date ('Lyon, le ...', the entry's ``issued``), modality,
exam_type (the title line), body_region ('genou droit', 'abdomen et pelvis', 'seins'; what
dedupe level 4 reads: named by the title, else implied by the modality with ``implied_by``,
else named by the 'Technique' or 'Indication' section with ``found_in``), laterality,
prescriber, radiologist (the signer), conclusion (under its heading at a line's start, or
heading a column right of other text: a lab's conclusion beside its result table; words cut
at a line's end joined again, a compound's own hyphen kept: tables/hyphen_prefixes.csv),
birads (a breast report's ACR BI-RADS category, overall and ``by_side``: report_birads.py),
addendum ('Compte rendu complémentaire', with its ``date``: it follows the conclusion in the
entry's value, and so in its key), dose_dlp / dose_ctdivol / dose_dap / dose_effective (the
radiation dose printed, with its UCUM ``unit``: report_dose.py), ccam (the acts' CCAM codes
printed on a 'Cotation' / 'CCAM' line: report_ccam.py), exam_number (the exam's own number,
'N° d'examen', report_reissue.py). A report saying it reissues an earlier one (an addendum, a
'Rectificatif', 'Annule et remplace') has ``details['reissue']`` ({'kind', 'page'}): the
deposit supersedes the report of that exam it reissues (dossiers/report_reissue.py).

Identity: a NIR printed on a report is the social security number, not a qualified INS (no
identity status vouches for it). It goes into ``identity.ins`` as kind 'NIR' (OID
1.2.250.1.213.1.4.13, "NIR used as a social security number"), which identity resolution
does not trust for matching; the report is filed on strict demographics. A NIR whose key is
wrong, or whose sex / birth year / month disagree with the printed demographics (a child
reported under a parent's number), is not put in the identity at all (warning). The pipeline
quarantines the report instead of filing it on a guess when the family name or the birth date
is found nowhere (IDENTITY_NOT_FOUND: no patient block), or when an identity field was read by
OCR below ``min_identity_confidence`` or a name's family and given parts cannot be told apart
('Monsieur Antoine Bousicot': both in Title case) (IDENTITY_UNCERTAIN: look at the scan);
each reason starts with its page(s) ('page 2: ...'), the ledger's error location. Names are
read after their labels ('Nom d'usage', 'Nom de naissance', 'Nom / Prénom', 'Prénom(s)'),
after a 'Patient(e)' label or a civility ('Mme DURAND Claire, née MARTIN', 'Claire DURAND épouse
MARTIN': the name after 'épouse' / 'veuve' is the one used), or, with no label at all, from a
line starting with the name right before 'né(e) le <date>' (a page footer; marked
``unlabelled``). The sex, when no civility or 'Sexe' says it, is F when the patient is said
'née' ('Née le 31 Mai 1976', 'née MARTIN'; ``from`` 'nee'; 'Né le' is also the generic form
of many templates and says nothing), else taken from a NIR consistent with the birth date.
Warnings and reasons name fields, pages and confidences, never their values.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from normalizers.lab_pdf import collection_days, ends_a_table, lab_results
from normalizers.model import (
    Attachment,
    Entry,
    InsIdentifier,
    NormalizationError,
    NormalizedMessage,
    PatientIdentity,
    PatientPart,
)
from normalizers.nir import nir_key_valid
from normalizers.report_birads import birads
from normalizers.report_ccam import ccam_codes
from normalizers.report_dose import doses
from normalizers.report_reissue import exam_number, reissue
from normalizers.tabledata import table
from parsers.pdf.model import OCR, TEXT_LAYER, PdfDocument

IMAGING_REPORT = "imaging_report"
REPORT = "report"
MODALITY_SYSTEM = "DICOM-MODALITY"
NIR_OID = "1.2.250.1.213.1.4.13"  # NIR used as a social security number (not an INS)
NIR_KIND = "NIR"
MEDIA_PDF = "application/pdf"
TEXT_CAP = 100_000  # bytes of full text kept in details
IDENTITY_FIELDS = (("family", "family name"), ("given", "given name"),
                   ("birth_date", "birth date"))
_MAX_CONCLUSION_LINES = 80


# -- folding: one character in, one character out, so that offsets stay valid ------------------
_SPECIAL = {"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'", "–": "-", "—": "-", "‐": "-",
            "‑": "-", "œ": "o", "Œ": "o", "æ": "a", "Æ": "a", "ß": "s"}


@cache
def _fold_char(c: str) -> str:
    if c in _SPECIAL:
        return _SPECIAL[c]
    if c.isspace():
        return " "
    base = "".join(ch for ch in unicodedata.normalize("NFKD", c) if not unicodedata.combining(ch))
    return (base.lower()[:1] or c) if base else c


def fold(s: str) -> str:
    """Lower case, no accents, typographic quotes and dashes made plain; same length as ``s``."""
    return "".join(_fold_char(c) for c in s)


_OCR_IN_WORD = re.compile(r"(?<=[a-z])[01](?=[a-z])")


def _fold_line(s: str) -> str:
    """``fold`` plus the OCR's digits inside words read as letters ('C0NCLUSI0N', 'Examen
    d1u'): only for finding labels, never for values."""
    return _OCR_IN_WORD.sub(lambda m: "o" if m.group(0) == "0" else "l", fold(s))


def _normalised(s: str) -> str:
    """What digests are computed on: folded, blanks collapsed."""
    return " ".join(fold(s).split())


def _sha(s: str) -> str:
    return hashlib.sha256(_normalised(s).encode("utf-8")).hexdigest()


# -- the text, as lines of words with their confidence ------------------------------------------
@dataclass(slots=True)
class _Line:
    page: int
    source: str
    text: str
    folded: str
    spans: list[tuple[int, int, float]]  # (start, end, confidence) of each word in ``text``
    # (x0, x1) of each word of ``spans`` in points, when the page has word boxes: where a
    # column starts on a page printed in two ('Conclusion' right of the result table)
    xs: list[tuple[float, float]] = field(default_factory=list)
    top: float | None = None  # the line's top in points, when its words have boxes
    number: int = -1  # the line's number on its page (Word.line; in the page's text, else)


def _lines(doc: PdfDocument) -> list[_Line]:
    out: list[_Line] = []
    for page in doc.pages:
        source = page.source if page.source in (TEXT_LAYER, OCR) else OCR
        default = 100.0 if source == TEXT_LAYER else _num(page.confidence, 0.0)
        words = [w for w in page.words if isinstance(w.text, str) and w.text.strip()]
        if words:
            by_line: dict[int, list] = {}
            for w in words:
                by_line.setdefault(w.line if isinstance(w.line, int) else 0, []).append(w)
            for n in sorted(by_line):
                parts, spans, xs, pos = [], [], [], 0
                for w in by_line[n]:
                    t = unicodedata.normalize("NFC", " ".join(w.text.split()))
                    conf = 100.0 if source == TEXT_LAYER else _num(w.confidence, default)
                    spans.append((pos, pos + len(t), conf))
                    xs.append(_x_of(w))
                    parts.append(t)
                    pos += len(t) + 1
                text = " ".join(parts)
                tops = [_top_of(w) for w in by_line[n]]
                out.append(_Line(page.number, source, text, _fold_line(text), spans,
                                 xs if all(x is not None for x in xs) else [],
                                 min(tops) if all(t is not None for t in tops) else None, n))
        else:
            for n, raw in enumerate(unicodedata.normalize("NFC", page.text or "").splitlines()):
                text = raw.replace("\f", " ").rstrip()
                if not text.strip():
                    continue
                spans = [(m.start(), m.end(), default) for m in re.finditer(r"\S+", text)]
                out.append(_Line(page.number, source, text, _fold_line(text), spans, number=n))
    return out


def _top_of(word: object) -> float | None:
    box = getattr(word, "bbox", None)
    try:
        return float(box[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None


def _x_of(word: object) -> tuple[float, float] | None:
    """A word's (x0, x1) in points, None when its box is not one."""
    box = getattr(word, "bbox", None)
    try:
        return float(box[0]), float(box[2])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None


def _num(x: object, default: float) -> float:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return min(100.0, max(0.0, v)) if v == v else default  # NaN; clamped to 0-100


def _conf(line: _Line, start: int, end: int) -> float:
    confs = [c for s, e, c in line.spans if s < end and e > start]
    if not confs:
        return 100.0 if line.source == TEXT_LAYER else 0.0
    return round(sum(confs) / len(confs), 1)


def _field(value: Any, line: _Line, start: int, end: int) -> dict[str, Any]:
    return {"value": value, "page": line.page, "source": line.source,
            "confidence": _conf(line, start, end)}


def _multi_field(value: Any, parts: list[tuple[_Line, int, int]]) -> dict[str, Any]:
    """A field made of several lines: confidence is the mean over all its words."""
    confs: list[float] = []
    for line, start, end in parts:
        confs.extend(c for s, e, c in line.spans if s < end and e > start)
    first = parts[0][0]
    conf = round(sum(confs) / len(confs), 1) if confs else _conf(first, 0, 0)
    sources = {p[0].source for p in parts}
    return {"value": value, "page": first.page,
            "source": OCR if OCR in sources else TEXT_LAYER, "confidence": conf}


# -- dates --------------------------------------------------------------------------------------
_D = r"[0-9oli|]"
_MONTHS = {r["word"]: int(r["month"]) for r in table("french_months")}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
# 'le 03/03/2026', '03/03/26', '3 mars 2026', '1er mars 2026', and ISO 8601 '2026-03-03'
# (what RIS software prints from its database)
_DATE = re.compile(
    r"(?<![0-9a-z])(?:(?P<y3>[0-9]{4})-(?P<m3>[0-9]{2})-(?P<d3>[0-9]{2})(?![0-9])"
    rf"|(?P<d>{_D}{{1,2}}) ?[/.\-] ?(?P<m>{_D}{{1,2}}) ?[/.\-] ?"
    rf"(?P<y>{_D}{{4}}|[0-9]{{2}})(?![0-9])"
    rf"|(?P<d2>1er|{_D}{{1,2}}) +(?P<mon>{_MONTH_RE})\.? +(?P<y2>{_D}{{4}})(?![0-9]))")
_OCR_DIGITS = str.maketrans("oli|", "0111")


def _digits(s: str) -> str | None:
    """OCR-tolerant digits of a date part: None unless it holds at least one real digit."""
    if not any(c.isdigit() for c in s):
        return None
    return s.translate(_OCR_DIGITS)


def _date_from(m: re.Match[str]) -> str | None:
    if m.group("y3"):
        d, mo, y = m.group("d3"), m.group("m3"), m.group("y3")
    elif m.group("mon"):
        d = "1" if m.group("d2") == "1er" else _digits(m.group("d2"))
        mo: str | None = str(_MONTHS[m.group("mon")])
        y = _digits(m.group("y2"))
    else:
        d, mo, y = _digits(m.group("d")), _digits(m.group("m")), _digits(m.group("y"))
    if d is None or mo is None or y is None:
        return None
    year = int(y)
    if len(y) == 2:
        year += 2000 if 2000 + year <= date.today().year else 1900
    try:
        value = date(year, int(mo), int(d))
    except ValueError:
        return None
    if not 1880 <= value.year <= date.today().year + 1:
        return None
    return value.isoformat()


def _date_after(line: _Line, pos: int, limit: int = 12) -> tuple[str, int, int] | None:
    """The first valid date starting within ``limit`` characters after ``pos``."""
    for m in _DATE.finditer(line.folded, pos):
        if m.start() - pos > limit:
            return None
        iso = _date_from(m)
        if iso:
            return iso, m.start(), m.end()
    return None


# -- names --------------------------------------------------------------------------------------
_NAME_STOP = {
    "le", "ie", "la", "les", "du", "de", "des", "et", "ne", "nee", "ne(e)", "nee(e)", "date",
    "sexe", "age", "ans", "ddn", "prenom", "prenoms", "prenom(s)", "nom", "naissance", "patient",
    "patiente", "dr", "docteur", "pr", "professeur", "medecin", "radiologue", "prescripteur",
    "ipp", "nir", "ins", "n", "no", "tel", "adresse", "sexe:", "examen", "service", "chambre",
    "dossier", "a", "au", "en", "pour", "par", "sur", "avec", "usage", "d'usage", "utilise",
    "compte", "rendu", "centre", "cabinet", "madame", "monsieur", "mme", "mlle", "m.", "mr",
    "enfant",
}
_NAME_TOKEN = re.compile(r"[^\W\d_]+(?:['\-][^\W\d_]+)*\.?")


def _name_tokens(line: _Line, pos: int, max_tokens: int = 4,
                 same_case: bool = False) -> list[tuple[int, int]]:
    """Spans of the name-like words starting at ``pos``, up to a label, a digit, punctuation,
    a lower-case word ('Register at www...'), or (``same_case``) a change between UPPER and
    Title case ('Prénom : DOMINIQUE Register')."""
    out: list[tuple[int, int]] = []
    tokens = [(pos + m.start(), pos + m.end()) for m in re.finditer(r"\S+", line.text[pos:])]
    for n, (start, end) in enumerate(tokens):
        raw = line.text[start:end]
        closing = raw.endswith(")") and "(" not in raw  # '(née MARTIN)'
        trailing = raw[-1] in ",;:" or closing
        word = raw.rstrip(",;:")[:-1] if closing else raw.rstrip(",;:")
        folded = fold(word)
        stop = folded in _NAME_STOP
        if stop and folded in _PARTICLES and _is_upper(word) and not trailing \
                and n + 1 < len(tokens) and _is_upper(line.text[slice(*tokens[n + 1])]) \
                and fold(line.text[slice(*tokens[n + 1])]).rstrip(",;:") not in _NAME_STOP:
            stop = False  # 'DE SOUSA', 'LE GALL': a particle in capitals inside the name
        if not word or stop or not _NAME_TOKEN.fullmatch(word) \
                or (word.endswith(".") and len(word) <= 3) \
                or (out and word[0].islower()) \
                or (same_case and out and _is_upper(word) != _is_upper(line.text[slice(*out[0])])):
            break
        out.append((start, start + len(word)))
        if trailing or len(out) >= max_tokens:
            break
    return out


def _is_upper(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters) and len(letters) > 1


def _split_name(line: _Line, spans: list[tuple[int, int]]) \
        -> tuple[list[tuple[int, int]], list[tuple[int, int]], bool]:
    """(family spans, given spans, guessed): 'DUPONT Marie' / 'Marie DUPONT' by case; all in
    capitals: 'NOM PRÉNOM' (the French convention); all in Title case ('Antoine Bousicot')
    cannot be told apart: 'Prénom Nom' is assumed and the order is flagged as guessed."""
    words = [line.text[s:e] for s, e in spans]
    upper = [_is_upper(w) for w in words]
    if any(upper) and not all(upper):
        return ([sp for sp, u in zip(spans, upper, strict=True) if u],
                [sp for sp, u in zip(spans, upper, strict=True) if not u], False)
    if all(upper) or len(spans) == 1:
        return spans[:1], spans[1:], False
    return spans[-1:], spans[:-1], True


def _join(line: _Line, spans: list[tuple[int, int]]) -> str:
    return " ".join(line.text[s:e].rstrip(".") for s, e in spans)


# -- patterns (on folded text) ------------------------------------------------------------------
_L_USED = re.compile(r"\bnom (?:d'usage|marital|usuel|utilise)\s*:?\s*")
_L_BIRTH_NAME = re.compile(r"\bnom de (?:naissance|jeune fille)\s*:?\s*")
_L_FAMILY = re.compile(r"\bnom(?: de famille| du patient| patient| de la patiente)?\s*:\s*")
# 'Nom / Prénom : DURAND Claire', 'Nom et prénom : ...': both parts on one line, told apart by case
_L_FULL_NAME = re.compile(r"\bnom ?(?:/|et) ?prenoms?(?:\(s\))?(?: utilises?)?\s*:?\s*")
_L_GIVEN = re.compile(r"(?<!nom et )(?<!nom / )(?<!nom/ )(?<!nom /)(?<!nom/)"
                      r"\bprenoms?(?:\(s\))?(?: de naissance| usuels?| utilises?)?"
                      r"(?![a-z])\s*:?\s*")
_L_NEE = re.compile(r"\bnee\s+")  # 'née le ...': 'le' is no name (_NAME_STOP)
_NEE_WORD = re.compile(r"\bnee\b(?!\s*\()")  # 'née', not 'né(e)' nor 'née(e)'

# 'Claire DURAND épouse MARTIN': the name after 'épouse' / 'veuve' is the one used, the one
# before it the birth name
_SPOUSE = re.compile(r"\s*,?\s*(?:epouse|ep\.|epse|veuve|vve\.?)\s+")
# 'DURAND Claire - née le 03/07/1961 - Page 1/2' (the patient in a page footer or header, no
# label): a name starting its line, right before a 'né(e) le' and a date
_NAME_BEFORE_BIRTH = re.compile(r"^\W{0,3}(?=\S)(?P<name>[^0-9:;()]{3,60}?)\s*[,\-]?\s*"
                                r"(?=\bnee?(?: ?\(e\))?\s+[li1|]e\b)")
_L_BIRTH_DATE = re.compile(r"(?:\bnee?(?: ?\(e\))?\s+[li1|]e\b|\bdate de naissance|\bddn|"
                           r"\bne\(e\) [li1|]e\b|\bnaissance)\s*:?\s*")
_L_SEX = re.compile(r"\bsexe\s*:?\s*(feminin|masculin|femme|homme|f|m)\b")
_L_PATIENT = re.compile(r"^\W{0,3}(?:nom (?:du |de la )?)?patient(?:e|\(e\))?\s*(?::\s*|$)")
_NOT_PATIENT = re.compile(r"\b(?:preleveur|prescripteur|contact|confiance|tuteur|representant"
                          r"|auteur|approbateur|signataire|destinataire|copie|adresse a"
                          r"|traitant|correspondant|referent)\b")
_CIVILITY = re.compile(r"(?<![a-z.])(madame|mademoiselle|monsieur|mme|mlle|mr|m\.|enfant)(?= )\s*")
_CIVILITY_SEX = {"madame": "F", "mademoiselle": "F", "mme": "F", "mlle": "F",
                 "monsieur": "M", "mr": "M", "m.": "M", "enfant": ""}
_SEX_WORDS = {"feminin": "F", "femme": "F", "f": "F", "masculin": "M", "homme": "M", "m": "M"}
_NIR_LABEL = re.compile(r"\b(?:nir|ins|securite sociale|n ?° ?ss|no ?ss|matricule|immatriculation)"
                        r"\b")
_SP = "[ .]{0,2}"
_NIR = re.compile(
    rf"(?<![0-9a-z])({_D}(?:{_SP}{_D}){{4}}{_SP}(?:2{_SP}[ab]|{_D}{_SP}{_D})"
    rf"(?:{_SP}{_D}){{6}}{_SP}{_D}{_SP}{_D})(?![0-9a-z])")
# the exam's date; for a laboratory's report printed to PDF, the specimen's collection
# ('Prélevé le 03/03/26 à 08:15', 'Date de prélèvement :', 'Prélèvement du ...',
# 'Date/heure de prélèvement :', 'Prélèvement effectué le', 'Prélèvement : 12.03.2025')
_EXAM_DATE = re.compile(
    r"(?:\bdate (?:de l'|d')?(?:examen|exam|acte|realisation)|\bexamen (?:realise |effectue )?"
    r"(?:du|[li1|]e)\b|\b(?:realis|effectu|pratiqu)ee? [li1|]e\b|\bexamen :"
    r"|\bdate (?:du |de )?prelevement|\bprelevee?s? [li1|]e\b|\bprelevement (?:du|[li1|]e)\b"
    r"|\bdate ?(?:et|/) ?heure (?:du |de )?prelevement"
    r"|\bprelevement (?:effectu|realis)ee? [li1|]e\b|\bprelevement :)"
    r"\s*:?\s*")
# the report's own date ('Lyon, le 17/03/2025', 'Compte rendu du ...'); letters often put the
# day of the week before it ('Paris, le lundi 17 mars 2025'): skipped, the date follows it
_WEEKDAY = r"(?:(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)\s+)?"
_REPORT_DATE = re.compile(r"(?:\b[a-z][a-z\- ]{1,30}, [li1|]e\b|\bcompte[ -]rendu du"
                          r"|\bdate du compte[ -]rendu\s*:?|\b(?:fait|edite) [li1|]e\b)\s*:?\s*"
                          + _WEEKDAY)
_PRESCRIBER = re.compile(r"(?:\bmedecin prescripteur|\bprescripteur|\bdemande par|\bdemandeur"
                         r"|\badresse par|\bprescrite?s? (?:le [0-9/.\-]{6,10} )?par)"
                         r"\s*:?\s*(?:(?:par )?(?:le|la|du) )?")
# 'Dr Paul X', 'Dr. Paul X', and 'Dr.Paul X' as OCR often reads it (the space after the
# full stop lost)
_DOCTOR = re.compile(r"(?<![a-z])(?:dr|docteur|pr|professeur)(?:\.\s*|\s+)")
_PRESCRIBER_AFTER = re.compile(r"^[^()]{0,60}\(\s*medecin prescripteur|^[ ,\-]*prescripteur")
_SIGNED = r"(?:valide|signe|dicte)e?s?(?: electroniquement| numeriquement)?"
_SIGNED_BY = re.compile(rf"(?:compte[ -]rendu {_SIGNED}(?: par)?|\b{_SIGNED} par|\bradiologue)"
                        r"\s*:?\s*(?:(?:le|la) (?=dr|docteur|pr|professeur))?")
# 'Conclusion :', 'EN CONCLUSION', and the biologist's other headings of
# tables/pdf_lab_conclusion_titles.csv ('Synthèse', 'Au total', 'Avis biologique', 'En résumé')
# when they are a heading (alone or followed by ':' or '-'; 'Synthèse du profil médical' is a
# title, not a conclusion): the same headings that end a lab's result table (lab_pdf.py) give
# the conclusion, which was lost under 'Avis du biologiste'
_OTHER_TITLES = "|".join(re.escape(t) for t in sorted(
    (fold(r["title"]) for r in table("pdf_lab_conclusion_titles")), key=len, reverse=True))
_CONCLUSION = re.compile(r"^\W{0,3}(?:(?:en )?conclusions?\b\s*(?:de l'examen|generale)?\s*"
                         rf"[:\-.,]?|(?:{_OTHER_TITLES})(?=\s*(?:[:\-]|$))\s*[:\-]?)\s*")
# An addendum to the report, under the signature or on a page of its own ('Compte rendu
# complémentaire du 02/04/2025', 'ADDENDUM', 'Complément au compte rendu', 'Additif')
# complémentaire du 02/04/2025', 'ADDENDUM', 'Complément au compte rendu :', 'Additif'), a
# heading: alone, or followed by ':', '-' or its date ('Complément d'examen par échographie'
# in a conclusion is none)
_ADDENDUM_HEAD = (r"(?:compte[ -]rendu (?:complementaire|additionnel|rectificatif)|addendum"
                  r"|additif|complement au compte[ -]rendu)(?=\s*(?:$|[:\-(]|du\b|[li1|]e\b"
                  r"|[0-9]))")
_ADDENDUM = re.compile(rf"^\W{{0,3}}{_ADDENDUM_HEAD}\s*(?:du\s*)?:?\s*")
_CONCLUSION_END = re.compile(
    rf"^\W{{0,3}}(?:{_ADDENDUM_HEAD}|(?:dr|pr)(?:\.|\s)|docteur\s|professeur\s|signature"
    r"|signee?s?(?:\s*$|\s*:|\s+(?:electroniquement|numeriquement|par|le|dr|docteur|pr)\b)"
    r"|compte[ -]rendu valide|(?:resultats? |examen )?valides? (?:electroniquement )?par"
    r"|ce compte[ -]rendu|cordialement"
    r"|bien confraternellement|confraternellement|copies? (?:a|:)|destinataires?\b"
    r"|avec mes (?:sinceres |meilleures )?salutations|veuillez agreer|information au patient"
    r"|lien vers les images|page \d+\s*/\s*\d+\s*$|\(e\)\s*radiologue"
    r"|(?:le |la )?medecin radiologue"
    rf"|[a-z][a-z\-' ]{{1,30}}, le {_WEEKDAY}\d)")
_EDGE_PUNCT = re.compile(r"^[\s.,;:|_\-]+(?=\w)|(?<=[\w.)!?])(?:\s+[,;:|_\-]+)+\s*$")
# A page's footer within the text: 'Page 1/2', '1 sur 2', 'p. 1/2', '- 1 -', and the marks
# that the text goes on over the page ('Suite page suivante', '.../...', 'T.S.V.P.'): read
# into a conclusion going over a page, they were a line of it
_PAGE_NUMBER = re.compile(r"(?:(?:page|p\.) ?)?\d{1,3} ?(?:/|sur) ?\d{1,3}|- ?\d{1,3} ?-"
                          r"|\(?suite (?:page suivante|au verso|en page \d{1,3})\)?\.?"
                          r"|\.{2,3} ?/ ?\.{2,3}|t\.? ?s\.? ?v\.? ?p\.?")
_TITLE_SKIP = re.compile(r"^\W*(?:antecedent|comparaison|indication|histoire|motif|renseignement"
                         r"|par rapport|prescripteur|demande par|medecin|centre|service|cabinet"
                         r"|technique|resultat|conclusion)")
_TITLE_LABEL = re.compile(r"^\W*(?:type d'|nature de l'|intitule de l')?(?:examen|acte)s?"
                          r"(?: realises?| pratiques?)?\s*:\s*")
_SIDE = re.compile(r"(?<![a-z])(droite?|gauche|bilaterale?s?|bilat|des deux cotes)(?![a-z])")
# Section headings, alone on their line (give or take a speck read as 1-3 characters) or
# followed by ':' ('Technique :', 'INDICATION', 'Renseignements cliniques :'); _SECTION_KIND
# says which ones _region_in_body reads.
_SECTION_HEAD = re.compile(
    r"^\W{0,3}(?P<name>techniques?|protocoles?|indications?|motifs?|renseignements? cliniques?"
    r"|resultats?|descriptions?|commentaires?|comparaisons?|antecedents?|histoire clinique"
    r"|conclusions?|examens? compares?|demandes? d'examens?)(?: de l'examen| d'examen"
    r"| d'acquisition)?"
    r"(?:\s*[:\-.]\s*|\s*$|\s+\S{1,3}$)")  # 'Technique he': a speck read after the heading
_SECTION_KIND = {"technique": "technique", "protocole": "technique",
                 "indication": "indication", "motif": "indication",
                 "renseignement": "indication", "demande": "indication"}
_MAX_SECTION_LINES = 15
_BREAST = re.compile(r"(?<![a-z])(?:seins?|mammo|mammaire|bi-? ?rads)")  # where ACR is BI-RADS
_SENTENCE_END = re.compile(r"[.;](?:\s|$)")
_SIDE_REACH = 30  # characters around a region named in running text where its side may be
_DOCTOR_NAME_STOP = (_NAME_STOP - {"de", "du", "la"}) | {"radiologue", "(medecin"}
_PARTICLES = {"de", "du", "la", "le", "des", "d'"}


# -- tables -------------------------------------------------------------------------------------
@cache
def _term_regex(name: str) -> tuple[re.Pattern[str], dict[str, dict[str, str]]]:
    rows = {" ".join(fold(r["term"]).split()): r for r in table(name) if r["term"]}
    terms = sorted(rows, key=len, reverse=True)
    alternation = "|".join(re.escape(t).replace(r"\ ", " +") for t in terms)
    return re.compile(rf"(?<![a-z0-9])(?:{alternation})(?![a-z0-9])"), rows


def _terms(name: str, folded: str) -> list[tuple[dict[str, str], int, int]]:
    pattern, rows = _term_regex(name)
    return [(rows[" ".join(m.group(0).split())], m.start(), m.end())
            for m in pattern.finditer(folded)]


# -- the normalizer -----------------------------------------------------------------------------
def normalize_report(doc: PdfDocument, data: bytes, source: str, *,
                     min_identity_confidence: float = 80.0) -> NormalizedMessage:
    """The NormalizedMessage of one PDF report (``data``: the PDF's bytes, attached to the
    entry; ``source``: the sender, recorded in the details). Raises NormalizationError
    REPORT_EMPTY when no page has any text.

    A PDF may hold several reports (a centre's batch print: two exams, or two patients one
    after the other): each becomes its own entry (``details.report_pages``), and when they
    name different patients the message has one part per patient (``patients``), each filed
    in its own dossier, never all in the first one's (see _report_segments)."""
    lines = _lines(doc)
    full_text = doc.text if any((p.text or "").strip() for p in doc.pages) \
        else "\n".join(ln.text for ln in lines)
    if not lines or not full_text.strip():
        n = doc.page_count
        where = "pdf" if not n else "page 1" if n == 1 else f"pages 1-{n}"
        raise NormalizationError("REPORT_EMPTY", f"the PDF has no text on any of its {n} "
                                 f"page(s): no text layer, and OCR read nothing (a blank page, "
                                 f"or a scan too faint, small or blurred to read?)", where)
    logical_id = f"pdf|{_sha(full_text)}"
    segments = _report_segments(lines)
    if len(segments) == 1:
        pages = [p.number for p in doc.pages] or [1]
        entry, identity, warnings, quarantine = _read_report(
            lines, pages, doc, data, source, full_text, min_identity_confidence)
        return NormalizedMessage(logical_id=logical_id, identity=identity,
                                 entries=[entry, *_results(entry, doc, pages, warnings)],
                                 warnings=warnings, quarantine_reasons=quarantine)
    reports = []
    shared = _shared_pages(segments)
    for segment in segments:
        pages = sorted({ln.page for ln in segment})
        only = {(ln.page, ln.number) for ln in segment} if shared & set(pages) else None
        text = "\n\f\n".join(p.text for p in doc.pages if p.number in pages) \
            if only is None and any((p.text or "").strip() for p in doc.pages
                                    if p.number in pages) \
            else "\n".join(ln.text for ln in segment)
        entry, identity, warnings, quarantine = _read_report(
            segment, pages, doc, data, source, text, min_identity_confidence)
        entry.details["report_pages"] = pages
        where = _where(pages)
        if only is not None:  # two reports on one page: which lines are this one's
            where += f" lines {segment[0].number + 1}-{segment[-1].number + 1}"
            entry.details["report_lines"] = [segment[0].number + 1, segment[-1].number + 1]
        results = _results(entry, doc, pages, warnings, only)
        reports.append((where, entry, identity, warnings, quarantine, results))
    warnings = [f"REPORT_SEVERAL: the PDF holds {len(reports)} reports ("
                + "; ".join(where for where, *_ in reports) + "): one entry each"]
    quarantine = []
    for where, _, _, more, reasons, _ in reports:
        warnings.extend(f"{where}: {w}" for w in more)
        quarantine.extend(reasons)
    entries = [e for _, entry, _, _, _, results in reports for e in (entry, *results)]
    identities = [identity for _, _, identity, *_ in reports]
    if len({_person_key(i) for i in identities}) == 1:  # one patient, several exams
        return NormalizedMessage(logical_id=logical_id, identity=identities[0], entries=entries,
                                 warnings=warnings, quarantine_reasons=quarantine)
    warnings[0] += f", of {len({_person_key(i) for i in identities})} patients filed apart"
    parts = [PatientPart(where, identity, 1 + len(results))
             for where, _, identity, _, _, results in reports]
    return NormalizedMessage(logical_id=logical_id, identity=PatientIdentity(),
                             entries=entries, warnings=warnings, quarantine_reasons=quarantine,
                             patients=parts)


def _results(report: Entry, doc: PdfDocument, pages: list[int],
             warnings: list[str], only: set[tuple[int, int]] | None = None) -> list[Entry]:
    """The coded results of a laboratory's report (normalizers/lab_pdf.py), under the
    report, on its ``pages`` (on its lines ``only``, (page, line), when it shares a page
    with another); none for an imaging report (its measurements are no lab results). The
    report says how many it gave (``details.lab_results``)."""
    if report.type != REPORT:
        return []
    found = lab_results(doc, pages, report.key, effective=report.effective,
                        issued=report.issued, only=only)
    warnings.extend(found.warnings)
    if found.entries:
        report.details["lab_results"] = len(found.entries)
    return found.entries


def _shared_pages(segments: list[list[_Line]]) -> set[int]:
    """The pages on which more than one report is printed."""
    seen: dict[int, int] = {}
    for segment in segments:
        for page in {ln.page for ln in segment}:
            seen[page] = seen.get(page, 0) + 1
    return {page for page, n in seen.items() if n > 1}


def _where(pages: list[int]) -> str:
    """'page 2', 'pages 1-3' (consecutive), 'pages 1, 3'."""
    if len(pages) == 1:
        return f"page {pages[0]}"
    if pages == list(range(pages[0], pages[-1] + 1)):
        return f"pages {pages[0]}-{pages[-1]}"
    return "pages " + ", ".join(str(p) for p in pages)


def _person_key(identity: PatientIdentity) -> tuple[str, str]:
    return _normalised(identity.family), identity.birth_date


def _read_report(lines: list[_Line], pages: list[int], doc: PdfDocument, data: bytes,
                 source: str, full_text: str, min_identity_confidence: float) \
        -> tuple[Entry, PatientIdentity, list[str], list[str]]:
    """One report's entry, the patient it names, its warnings and quarantine reasons, from
    its ``lines`` (on ``pages``)."""
    warnings: list[str] = []  # the parser's own (doc.warnings) are the pipeline's to add
    fields: dict[str, dict[str, Any]] = {}

    _identity_fields(lines, fields)
    nir_field, nir_warnings = _nir(lines)
    warnings.extend(nir_warnings)
    if nir_field:
        fields["nir"] = nir_field
    _exam_fields(lines, fields)
    title = _title(lines, fields)
    if "exam_date" not in fields:
        warnings.extend(_header_exam_date(lines, fields))
    if "body_region" not in fields:
        _region_in_body(lines, fields)
    _people(lines, fields)
    concluded = _conclusion(lines, fields)
    _addendum(lines, fields)
    number, number_warnings = exam_number(lines, min_identity_confidence)
    warnings.extend(number_warnings)
    if number:
        fields["exam_number"] = number
    again = reissue(lines, fields.get("addendum"))
    dose_fields, dose_warnings = doses(lines, min_identity_confidence)
    fields.update(dose_fields)
    warnings.extend(dose_warnings)
    ccam, ccam_warnings = ccam_codes(lines, min_identity_confidence)
    warnings.extend(ccam_warnings)
    if ccam:
        fields["ccam"] = ccam
    if _BREAST.search(" ".join(ln.folded for ln in lines)):
        found, more = birads(concluded, min_identity_confidence)
        if found is None and not more:
            found, more = birads([(ln, 0, len(ln.folded)) for ln in lines],
                                 min_identity_confidence)
        warnings.extend(more)
        if found:
            fields["birads"] = found

    identity = PatientIdentity(
        family=_value(fields, "family"), given=_first_given(_value(fields, "given")),
        birth_family=_value(fields, "birth_family"), birth_date=_value(fields, "birth_date"),
        sex=_value(fields, "sex"))
    if nir_field and nir_field["key_valid"]:
        mismatch = _nir_mismatch(nir_field["value"], identity)
        if mismatch:
            warnings.append(f"REPORT_NIR_MISMATCH: the NIR on page {nir_field['page']} "
                            f"disagrees with the printed {mismatch}; not used as an identifier")
        else:
            identity.ins.append(InsIdentifier(nir_field["value"], NIR_OID, NIR_KIND, True))
            if not identity.sex and nir_field["value"][0] in "12":  # 'Enfant X': the NIR says
                identity.sex = "M" if nir_field["value"][0] == "1" else "F"
                fields["sex"] = {**nir_field, "value": identity.sex, "from": "nir"}
                fields["sex"].pop("key_valid", None)
    quarantine = _identity_reasons(fields, min_identity_confidence, pages)

    conclusion = _value(fields, "conclusion")
    if "addendum" in fields:  # what the dossier shows: the conclusion as the addendum left it
        added = fields["addendum"]
        day = ("/".join(reversed(added["date"].split("-"))) if added.get("date") else "")
        conclusion = "\n\n".join(filter(None, [conclusion, "Compte rendu complémentaire"
                                                + (f" du {day}" if day else "") + " :\n"
                                                + added["value"]]))
    modality = _value(fields, "modality")
    region = _value(fields, "body_region")
    exam_date = _value(fields, "exam_date")
    digest = _sha(conclusion or full_text)[:16]
    key = f"report|{exam_date or 'nodate'}|{modality}|{region}|{digest}"

    text_bytes = full_text.encode("utf-8")
    confs = [c for ln in lines for _, _, c in ln.spans]
    details: dict[str, Any] = {
        "fields": fields,
        "text": text_bytes[:TEXT_CAP].decode("utf-8", errors="ignore"),
        "pages": doc.page_count,
        "ocr_pages": [p.number for p in doc.pages if p.source == OCR and p.number in pages],
        "mean_confidence": round(sum(confs) / len(confs), 1) if confs else 0.0,
        "source": source,
        "media_type": MEDIA_PDF,
    }
    if again:  # an addendum or a rectification: the deposit supersedes the report reissued
        details["reissue"] = again
    if len(text_bytes) > TEXT_CAP:
        details["text_truncated"] = True
        warnings.append(f"REPORT_TEXT_TRUNCATED: the text ({len(text_bytes)} bytes) is kept "
                        f"up to {TEXT_CAP} bytes in the details; the PDF is attached whole")
    pdf_title = doc.metadata.get("Title") if isinstance(doc.metadata, dict) else None
    if pdf_title and str(pdf_title).strip():
        details["pdf_title"] = " ".join(str(pdf_title).split())[:300]

    entry = Entry(
        type=IMAGING_REPORT if modality else REPORT, key=key, source_ref="pdf",
        code=modality or None, system=MODALITY_SYSTEM if modality else None,
        display=title or details.get("pdf_title"), mapped=True,
        value=conclusion or None, value_type="TX" if conclusion else None, status="final",
        effective=exam_date or None, issued=_value(fields, "report_date") or None,
        performer=_value(fields, "radiologist") or None,
        attachment=Attachment(data, MEDIA_PDF), details=details)
    return entry, identity, warnings, quarantine


# -- several reports in one PDF ----------------------------------------------------------------
_MAX_TITLE_LINE = 25  # a report's title is among the first lines of its first page


def _report_segments(lines: list[_Line]) -> list[list[_Line]]:
    """The reports of a PDF, as runs of whole pages. A page starts another report when it
    names another patient than the report before it (another family name, other than its
    birth name, or another birth date), or when it starts another exam: its own title line (a
    modality) among its first lines, before its own conclusion heading, with the patient
    block or an exam date printed on it, while the report before it has its conclusion
    already; or, for a laboratory's reports, when it prints the patient block and a specimen
    collected another day than the report before it (one patient's reports of January and
    March printed together: March's results were dated January). A header or footer
    repeating the patient (and the same collection) on every page, a conclusion carried
    over to page 2, an annex page: one report.

    A page is read as blocks (_page_blocks): where a report ends on a page and another starts
    under it (two short exams printed on one page), the same rules tell them apart (another
    patient only by a name and a birth date: a block under the biologist's validation
    repeating 'Patient' over the INS is no other patient)."""
    by_page: dict[int, list[_Line]] = {}
    for line in lines:
        by_page.setdefault(line.page, []).append(line)
    segments: list[list[_Line]] = []
    person: dict[str, str] = {}  # what the current report says of its patient
    concluded = False
    collected = ""  # the day the current report's specimen was collected, once printed
    blocks = [(n == 0, block) for on_page in by_page.values()
              for n, block in enumerate(_page_blocks(on_page))]
    for page_top, page_lines in blocks:
        fields: dict[str, dict[str, Any]] = {}
        _identity_fields(page_lines, fields)
        here = {name: _normalised(_value(fields, name))
                for name in ("family", "birth_family", "birth_date")}
        if not any(_L_PATIENT.match(ln.folded) or _NAME_LABEL.search(ln.folded)
                   for ln in page_lines):
            here["family"] = here["birth_family"] = ""  # no patient label: only a date tells
        named = bool(here["family"] and here["birth_date"])
        conclusion_at = next((n for n, ln in enumerate(page_lines)
                              if _CONCLUSION.match(ln.folded)), None)
        days = collection_days([ln.text for ln in page_lines])
        new = False
        if segments and _other_patient(person, here) and (page_top or named):
            new = True  # under another report on its page: only a whole patient block tells
        elif segments and named and collected and days and days[0] != collected:
            new = True  # the same patient's report of a specimen of another day
        elif segments and concluded and conclusion_at is not None:
            title_at = _title_line(page_lines[:min(conclusion_at, _MAX_TITLE_LINE)])
            exam: dict[str, dict[str, Any]] = {}
            _exam_fields(page_lines, exam)
            new = title_at is not None and (named or "exam_date" in exam)
        if new or not segments:
            segments.append([])
            person, concluded, collected = {}, False, ""
        segments[-1].extend(page_lines)
        collected = collected or (days[0] if days else "")
        for name, value in here.items():
            person[name] = person.get(name) or value
        concluded = concluded or conclusion_at is not None
    return segments


_NAME_LABEL = re.compile("|".join(p.pattern for p in (_L_USED, _L_BIRTH_NAME, _L_FAMILY,
                                                      _L_FULL_NAME)))


def _identity_line(line: _Line) -> bool:
    """A line of the patient block: 'Patient : ...', 'Nom : ...', 'Née le ...'."""
    return bool(_L_PATIENT.match(line.folded) or _NAME_LABEL.search(line.folded)
                or _L_BIRTH_DATE.search(line.folded))


def _page_blocks(lines: list[_Line]) -> list[list[_Line]]:
    """A page's lines cut where a report ended on it and another may start under it: at an
    exam's title line (a modality) under a conclusion heading, or at a patient block under
    the biologist's validation; a patient block just above such a title goes with it. One
    block (the page) when nothing ended on it: what _report_segments decides for a page
    is unchanged."""
    starts: list[int] = []
    ended = False  # a conclusion or a validation seen on the page, since the last start
    for n, line in enumerate(lines):
        if ended and n > 0 and _title_line([line]) is not None:
            # every such line is a cut ('Échographie de contrôle dans 6 mois' in the
            # conclusion too): a block with no conclusion of its own goes on the report above
            at = n
            while at - 1 > (starts[-1] if starts else 0) and _identity_line(lines[at - 1]):
                at -= 1  # the patient block printed above the title
            starts.append(at)
        elif ended and n > 0 and (_L_PATIENT.match(line.folded)
                                  or _NAME_LABEL.search(line.folded)) \
                and not _identity_line(lines[n - 1]) and starts[-1:] != [n - 1]:
            starts.append(n)  # (not the patient block right under a title cut: its own)
            ended = False
        if _CONCLUSION.match(line.folded) or ends_a_table(line.text):
            ended = True
    bounds = [0, *starts, len(lines)]
    return [lines[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _other_patient(person: dict[str, str], here: dict[str, str]) -> bool:
    """Whether a page names another patient than the report so far: another birth date, or
    (under a 'Patient' or 'Nom' label: a name met elsewhere, 'Médecin traitant : Mme X' on
    page 2, is no patient) another family name that is not the birth name either report
    gives (a page printing 'LEFÈVRE' and another 'BÉRANGER épouse LEFÈVRE' is one woman)."""
    if person.get("birth_date") and here["birth_date"] \
            and person["birth_date"] != here["birth_date"]:
        return True
    family, known = here["family"], {person.get("family"), person.get("birth_family")} - {""}
    return bool(family and known and family not in known
                and not (here["birth_family"] and here["birth_family"] in known))


def _title_line(lines: list[_Line]) -> int | None:
    """The index of the line _title would take as the exam title, or None."""
    for i, line in enumerate(lines):
        if len(line.folded) > 140 or _TITLE_SKIP.match(line.folded):
            continue
        found = _modalities(line)
        if found and found[0][1] <= 40:
            return i
    return None


def _value(fields: dict[str, dict[str, Any]], name: str) -> str:
    f = fields.get(name)
    return str(f["value"]) if f and f.get("value") else ""


def _first_given(given: str) -> str:
    return given.split(" ")[0] if given else ""


# -- identity -----------------------------------------------------------------------------------
def _labelled_name(lines: list[_Line], pattern: re.Pattern[str], same_case: bool = True) \
        -> tuple[_Line, list[tuple[int, int]]] | None:
    for line, pos in _after_labels(lines, pattern):
        spans = _name_tokens(line, pos, same_case=same_case)
        if spans:
            return line, spans
    return None


def _after_labels(lines: list[_Line], pattern: re.Pattern[str]) -> Iterator[tuple[_Line, int]]:
    """Where the value of each ``pattern`` label starts: after it on its line, or at the start
    of the next line when the label ends its line (a two-column table read row by row)."""
    for i, line in enumerate(lines):
        for m in pattern.finditer(line.folded):
            yield line, m.end()
            if not line.folded[m.end():].strip() and i + 1 < len(lines) \
                    and lines[i + 1].page == line.page:
                yield lines[i + 1], 0


def _set(fields: dict, name: str, line: _Line, spans: list[tuple[int, int]],
         guessed: bool = False) -> None:
    if name not in fields and spans:
        fields[name] = _field(_join(line, spans), line, spans[0][0], spans[-1][1])
        if guessed:
            fields[name]["order_guessed"] = True


def _person_line(lines: list[_Line]) -> tuple[_Line, re.Match[str] | None, list] | None:
    """The patient's name line: after a 'Patient(e) :' label (on it or on the next line),
    else the first 'Mme / M. / Monsieur ...' that is not a doctor."""
    for i, line in enumerate(lines):
        m = _L_PATIENT.match(line.folded)
        if not m:
            continue
        for cand, pos in ((line, m.end()), *(((lines[i + 1], 0),) if i + 1 < len(lines)
                                             and not line.folded[m.end():].strip() else ())):
            c = _CIVILITY.match(cand.folded, pos)
            spans = _name_tokens(cand, c.end() if c else pos)
            if spans:
                return cand, c, spans
    for line in lines:
        for c in _CIVILITY.finditer(line.folded):
            if _DOCTOR.search(line.folded[max(0, c.start() - 12):c.start()]) \
                    or _NOT_PATIENT.search(line.folded[:c.start()]):
                continue
            spans = _name_tokens(line, c.end())
            if spans:
                return line, c, spans
    return None


def _identity_fields(lines: list[_Line], fields: dict[str, dict[str, Any]]) -> None:
    used = _labelled_name(lines, _L_USED)
    if used:
        _set(fields, "family", *used)
    birth = _labelled_name(lines, _L_BIRTH_NAME)
    if birth:
        _set(fields, "birth_family", *birth)
    plain = _labelled_name(lines, _L_FAMILY, same_case=False)
    given = _labelled_name(lines, _L_GIVEN)
    if plain:
        line, spans = plain
        if given is None and len(spans) > 1:  # 'Nom : DUPONT Marie' with no 'Prénom' label
            fam, giv, guessed = _split_name(line, spans)
            _set(fields, "family", line, fam, guessed)
            _set(fields, "given", line, giv, guessed)
        else:
            spouse = _spouse_name(line, spans[-1][1])
            if spouse:  # 'Nom : DURAND épouse MARTIN'
                _set(fields, "birth_family", line, spans)
            _set(fields, "family", line, spouse or spans)
    if given:
        _set(fields, "given", *given)
    full = _labelled_name(lines, _L_FULL_NAME, same_case=False)
    if full and "family" not in fields:
        line, spans = full
        fam, giv, guessed = _split_name(line, spans)
        _set(fields, "family", line, fam, guessed)
        _set(fields, "given", line, giv, guessed)
    if "family" not in fields and "birth_family" in fields:
        fields["family"] = dict(fields["birth_family"])
    for line in lines:  # an explicit 'Sexe' wins over the civility
        m = _L_SEX.search(line.folded)
        if m:
            fields["sex"] = _field(_SEX_WORDS[m.group(1)], line, m.start(1), m.end(1))
            break

    person = _person_line(lines)  # 'Patient : Mme DUPONT Marie, née MARTIN le 14/03/1968'
    if person:
        line, civility, spans = person
        if civility and _CIVILITY_SEX[civility.group(1)] and "sex" not in fields:
            fields["sex"] = _field(_CIVILITY_SEX[civility.group(1)], line, civility.start(),
                                   civility.end())
        if "family" not in fields:
            fam, giv, guessed = _split_name(line, spans)
            spouse = _spouse_name(line, spans[-1][1])
            if spouse and not guessed:  # 'Claire DURAND épouse MARTIN'
                _set(fields, "birth_family", line, fam)
                fam = spouse
            _set(fields, "family", line, fam, guessed)
            _set(fields, "given", line, giv, guessed)
    if "family" not in fields:  # 'DURAND Claire - née le 03/07/1961' in a footer
        unlabelled = _name_before_birth(lines)
        if unlabelled:
            line, spans = unlabelled
            fam, giv, guessed = _split_name(line, spans)
            _set(fields, "family", line, fam, guessed)
            _set(fields, "given", line, giv, guessed)
            for name in ("family", "given"):
                if name in fields:
                    fields[name]["unlabelled"] = True

    nee: tuple[_Line, int, int] | None = None  # 'née' (feminine) said of the patient
    for line in lines:
        m = _L_NEE.search(line.folded)
        if m and "birth_family" not in fields:
            _set(fields, "birth_family", line, _name_tokens(line, m.end(), 2))
            if "birth_family" in fields:
                nee = (line, m.start(), m.end())
    for line, pos in _after_labels(lines, _L_BIRTH_DATE):
        found = _date_after(line, pos)
        if found:
            fields["birth_date"] = _field(found[0], line, found[1], found[2])
            label = _NEE_WORD.search(line.folded, max(0, found[1] - 16), found[1])
            nee = nee or ((line, label.start(), label.end()) if label else None)
            break
    if "sex" not in fields and nee:  # 'Née le 31 Mai 1976': no civility, no 'Sexe'
        fields["sex"] = {**_field("F", *nee), "from": "nee"}


def _spouse_name(line: _Line, end: int) -> list[tuple[int, int]]:
    """The name after 'épouse' / 'veuve' right after ``end`` (the family name used)."""
    m = _SPOUSE.match(line.folded, end)
    return _name_tokens(line, m.end(), 3, same_case=True) if m else []


def _name_before_birth(lines: list[_Line]) -> tuple[_Line, list[tuple[int, int]]] | None:
    """A name alone before 'né(e) le <date>' at the start of a line, with no label: only when
    the words before the label are all the name (2 to 4 words) and a date follows."""
    for line in lines:
        m = _NAME_BEFORE_BIRTH.match(line.folded)
        if not m or _DOCTOR.search(m.group("name")) or _NOT_PATIENT.search(m.group("name")):
            continue
        label = _L_BIRTH_DATE.match(line.folded, m.end())
        if not label or not _date_after(line, label.end()):
            continue
        spans = _name_tokens(line, m.start("name"), same_case=False)
        if 2 <= len(spans) and spans[-1][1] >= m.end("name") - 1 \
                and not line.text[spans[-1][1]:m.end("name")].strip(" ,-"):
            return line, spans
    return None


def _nir(lines: list[_Line]) -> tuple[dict[str, Any] | None, list[str]]:
    """The NIR printed on the report: a labelled one first, a valid key first."""
    candidates: list[tuple[int, int, dict[str, Any]]] = []
    for line in lines:
        labelled = bool(_NIR_LABEL.search(line.folded))
        for m in _NIR.finditer(line.folded):
            raw = re.sub(r"[ .]", "", m.group(1))
            if sum(c.isdigit() for c in raw) < 9:  # the rest read as O / l / I
                continue
            dept = raw[5:7]
            nir = (raw[:5].translate(_OCR_DIGITS) + dept.upper() + raw[7:].translate(_OCR_DIGITS)
                   if dept in ("2a", "2b") else raw.translate(_OCR_DIGITS))
            if nir[0] not in "12378":
                continue
            valid = nir_key_valid(nir)
            f = _field(nir, line, m.start(1), m.end(1))
            f["key_valid"] = valid
            candidates.append((0 if valid else 1, 0 if labelled else 1, f))
    if not candidates:
        return None, []
    candidates.sort(key=lambda c: (c[0], c[1]))
    best = candidates[0][2]
    if not best["key_valid"]:
        return best, [f"REPORT_NIR_INVALID_KEY: the NIR read on page {best['page']} "
                      f"({best['source']}) has an invalid key; not used as an identifier"]
    return best, []


def _nir_mismatch(nir: str, identity: PatientIdentity) -> str:
    wrong = []
    if identity.sex in ("F", "M") and nir[0] in "12" and {"1": "M", "2": "F"}[nir[0]] \
            != identity.sex:
        wrong.append("sex")
    if identity.birth_date:
        if nir[1:3] != identity.birth_date[2:4]:
            wrong.append("birth year")
        elif nir[3:5].isdigit() and 1 <= int(nir[3:5]) <= 12 \
                and nir[3:5] != identity.birth_date[5:7]:
            wrong.append("birth month")
    return " and ".join(wrong)


def _identity_reasons(fields: dict[str, dict[str, Any]], minimum: float,
                      pages: list[int]) -> list[str]:
    """The quarantine reasons of the identity read, each starting with its page(s).

    IDENTITY_NOT_FOUND: the family name or the birth date is printed nowhere the normalizer
    reads (no patient block: ask the sender for the right document). IDENTITY_UNCERTAIN:
    found, but read by OCR below ``minimum`` (look at the scan, have it rescanned), or a name
    whose family and given parts cannot be told apart. Both when both apply, the missing
    identity first (the ledger shows the first)."""
    reasons = []
    missing = [label for name, label in IDENTITY_FIELDS if name != "given" and name not in fields]
    if missing:
        where = _where(pages)
        reasons.append(f"IDENTITY_NOT_FOUND {where}: "
                       + "; ".join(f"{label} not found" for label in missing)
                       + " (no patient block printed on the report, or its labels not read): "
                       "a person must identify the patient before the report is filed")
    problems: list[tuple[int, str]] = []
    family = fields.get("family")
    if any(fields.get(n, {}).get("order_guessed") for n in ("family", "given")):
        page = (family or fields.get("given") or {}).get("page", 1)
        problems.append((page, f"family and given names on page {page} not told apart "
                               "(both in Title case)"))
    for name, label in IDENTITY_FIELDS:
        f = fields.get(name)
        if f is not None and f["source"] == OCR and f["confidence"] < minimum:
            problems.append((f["page"], f"{label} read by OCR on page {f['page']} with "
                                        f"confidence {f['confidence']:g} < {minimum:g}"))
    if problems:
        pages = sorted({page for page, _ in problems})
        where = f"page {pages[0]}" if len(pages) == 1 \
            else "pages " + ", ".join(str(p) for p in pages)
        reasons.append(f"IDENTITY_UNCERTAIN {where}: " + "; ".join(t for _, t in problems)
                       + ": a person must check the patient on the document (a rescan?) "
                       "before the report is filed")
    return reasons


# -- the examination ----------------------------------------------------------------------------
def _exam_fields(lines: list[_Line], fields: dict[str, dict[str, Any]]) -> None:
    for name, pattern, limit in (("exam_date", _EXAM_DATE, 12), ("report_date", _REPORT_DATE, 4)):
        for line, pos in _after_labels(lines, pattern):
            found = _date_after(line, pos, limit)
            if found:
                fields[name] = _field(found[0], line, found[1], found[2])
                break


# a letterhead's own date line: 'Lyon, le 3 mars 2025' (a report date label) or 'Le 03/03/2025'
_HEADER_DATE = re.compile(r"^\W{0,3}[li1|]e\s+" + _WEEKDAY)


def _header_exam_date(lines: list[_Line], fields: dict[str, dict[str, Any]]) -> list[str]:
    """The exam date of a report dated only in its letterhead ('Lyon, le 3 mars 2025' above
    the title, no date in the body: many imaging centres date the letter, not the exam):
    the letterhead's date, marked ``from: header``, with a warning saying where it was
    read. Never when the body carries a report date of its own ('Lyon, le ...' under the
    conclusion): the letterhead's may then be the day the letter was printed again. The
    letterhead is what stands above the title on its page (the page's first _MARGIN_LINES
    lines when no title is found)."""
    title = _title_line(lines)
    first = [ln for ln in lines if ln.page == lines[0].page] if lines else []
    end = title if title is not None and title < len(first) else _MARGIN_LINES
    header = first[:end]
    body = lines[len(header):]
    if any(_dated(line, _REPORT_DATE) for line in body):
        return []
    for line in header:
        found = _dated(line, _REPORT_DATE) or _dated(line, _HEADER_DATE)
        if found:
            fields["exam_date"] = {**_field(found[0], line, found[1], found[2]), "from": "header"}
            return [f"REPORT_EXAM_DATE_FROM_HEADER: no exam date in the report's body; the "
                    f"date of its letterhead (page {line.page}, line {line.number + 1}) is "
                    "taken as the exam date"]
    return []


def _dated(line: _Line, label: re.Pattern[str]) -> tuple[str, int, int] | None:
    """The date after a ``label`` on ``line`` (as _exam_fields reads it), or None."""
    for m in label.finditer(line.folded):
        found = _date_after(line, m.end(), 4)
        if found:
            return found
    return None


def _title(lines: list[_Line], fields: dict[str, dict[str, Any]]) -> str:
    """The exam title line: the first short line naming a modality near its start."""
    i = _title_line(lines)
    if i is not None:
        line = lines[i]
        row, start, end = _modalities(line)[0]
        fields["modality"] = _field(row["code"], line, start, end)
        label = _TITLE_LABEL.match(line.folded)  # 'Examen : IRM DU GENOU GAUCHE'
        at = label.end() if label and label.end() <= start else 0
        title = " ".join(line.text[at:].split())
        fields["exam_type"] = _field(title, line, at, len(line.text))
        if "exam_date" not in fields:  # 'IRM DU GENOU DROIT DU 12/03/2024'
            found_date = _date_after(line, end, 60)
            if found_date:
                fields["exam_date"] = _field(found_date[0], line, found_date[1], found_date[2])
        _region(lines, i, end, row.get("default_region", ""), fields)
        return title
    return ""


def _modalities(line: _Line) -> list[tuple[dict[str, str], int, int]]:
    return [t for t in _terms("imaging_modalities", line.folded) if t[0]["code"]]


def _region(lines: list[_Line], i: int, after: int, default: str,
            fields: dict[str, dict[str, Any]]) -> None:
    """The region named after the modality on the title line (or on the short line below it),
    else the one the modality implies (mammographie -> sein)."""
    candidates = [(lines[i], after)]
    if i + 1 < len(lines) and lines[i + 1].page == lines[i].page \
            and len(lines[i + 1].folded) <= 80 and not _TITLE_SKIP.match(lines[i + 1].folded):
        candidates.append((lines[i + 1], 0))
    for line, pos in candidates:
        found = [t for t in _terms("body_regions", line.folded) if t[1] >= pos]
        if not found:
            continue
        named, first_side = _named_regions(line.folded, pos, found)
        f = _field(" et ".join(named), line, found[0][1], found[-1][2])
        fields["body_region"] = f
        if first_side:
            fields["laterality"] = {**f, "value": first_side}
        return
    if default:
        line = lines[i]
        row = next((r for r in table("body_regions") if r["region"] == default), {})
        side = _side(line.folded) if row.get("lateral") == "1" else ""
        f = {"value": _region_label(default, side, row.get("bilateral", "")), "page": line.page,
             "source": line.source, "confidence": _conf(line, 0, len(line.text)),
             "implied_by": "modality"}
        fields["body_region"] = f
        if side:
            fields["laterality"] = {**f, "value": side}


def _named_regions(folded: str, pos: int, found: list[tuple[dict[str, str], int, int]],
                   sentence: bool = False) -> tuple[list[str], str]:
    """The labels of the regions ``found`` in ``folded`` (several joined by the caller with
    'et') and the first one's side. Each region keeps the side written after it, before the
    next region named ('genou droit et hanche gauche'), else the one just before it
    ('bilatérale ... mammaire'). ``sentence``: in running text, a side is looked for only in
    the region's own sentence and within _SIDE_REACH characters ('... du genou. Pas de lésion
    à droite' is no right knee)."""
    named: list[str] = []
    first_side = ""
    for n, (row, start, end) in enumerate(found):
        stop = found[n + 1][1] if n + 1 < len(found) else len(folded)
        before = found[n - 1][2] if n else pos
        if sentence:
            stop = min(stop, end + _SIDE_REACH, *(m.start() for m in
                                                  _SENTENCE_END.finditer(folded, end, stop)))
            before = max(before, start - _SIDE_REACH, *(m.end() for m in
                                                       _SENTENCE_END.finditer(folded, before,
                                                                              start)))
        side = (_side(folded[end:stop]) or _side(folded[before:start])) \
            if row["lateral"] == "1" else ""
        label = _region_label(row["region"], side, row.get("bilateral", ""))
        if label not in named:
            named.append(label)
            first_side = first_side or side
    return named, first_side


def _region_in_body(lines: list[_Line], fields: dict[str, dict[str, Any]]) -> None:
    """When neither the title nor the modality names the region: the one the 'Technique'
    section names ('Radiographies du genou gauche de face et de profil'), else the
    'Indication' section. Results and conclusion are not read: they name every organ seen
    on the way. The section's lines are read as one text (a term or its side may be wrapped
    onto the next line); the field says ``found_in`` which section."""
    for kind in ("technique", "indication"):
        for section in _sections(lines, kind):
            text, parts = _section_text(section)
            found = _terms("body_regions", text)
            if not found:
                continue
            named, first_side = _named_regions(text, 0, found, sentence=True)
            start, end = found[0][1], found[-1][2]
            covered = [(line, max(s, start - off), min(e, end - off))
                       for line, off, s, e in parts if off + s < end and off + e > start]
            f = _multi_field(" et ".join(named), covered)
            f["found_in"] = kind
            fields["body_region"] = f
            if first_side:
                fields["laterality"] = {**f, "value": first_side}
            return


def _sections(lines: list[_Line], kind: str) -> Iterator[list[tuple[_Line, int]]]:
    """Each section of ``kind`` ('technique' or 'indication'): its lines with where its text
    starts on them (after the heading on the heading's own line), up to the next heading."""
    for i, line in enumerate(lines):
        m = _SECTION_HEAD.match(line.folded)
        if not m or _SECTION_KIND.get(m.group("name").split()[0].rstrip("s")) != kind:
            continue
        section = [(line, m.end())] if line.folded[m.end():].strip() else []
        for nxt in lines[i + 1:i + 1 + _MAX_SECTION_LINES]:
            if _SECTION_HEAD.match(nxt.folded) or _CONCLUSION.match(nxt.folded):
                break
            section.append((nxt, 0))
        if section:
            yield section


def _section_text(section: list[tuple[_Line, int]]) \
        -> tuple[str, list[tuple[_Line, int, int, int]]]:
    """The section as one folded text, and per line (line, offset to add to a position on
    the line to get its position in the text, start and end of what the text took from it)."""
    pieces: list[str] = []
    parts: list[tuple[_Line, int, int, int]] = []
    offset = 0
    for line, start in section:
        parts.append((line, offset - start, start, len(line.folded)))
        pieces.append(line.folded[start:])
        offset += len(line.folded) - start + 1
    return " ".join(pieces), parts


def _side(folded: str) -> str:
    sides = {_side_word(m.group(1)) for m in _SIDE.finditer(folded)}
    if "bilatéral" in sides or {"droit", "gauche"} <= sides:
        return "bilatéral"
    return next(iter(sides), "")


def _region_label(region: str, side: str, bilateral: str) -> str:
    if side == "bilatéral" and bilateral:
        return bilateral
    return f"{region} {side}" if side else region


def _side_word(w: str) -> str:
    return "droit" if w.startswith("droit") else "gauche" if w == "gauche" else "bilatéral"


# -- people -------------------------------------------------------------------------------------
# a given name printed as its initials: 'J.', 'J.-P.', 'M.-C.'
_INITIALS = re.compile(r"[^\W\d_]\.(?:-?[^\W\d_]\.)*")


def _doctor_at(line: _Line, pos: int) -> tuple[str, int, int] | None:
    """'Dr Paul MARTIN' starting at ``pos`` (the title kept, as printed). A given name in
    initials is part of it ('Dr J.-P. MARTIN'), 'M.' too when a name follows it: after a
    doctor's title it is Michel's or Marc's initial, not 'Monsieur' ('Dr M. DUPONT')."""
    m = _DOCTOR.match(line.folded, pos)
    start = pos
    name_at = m.end() if m else pos
    spans = []
    tokens = list(re.finditer(r"\S+", line.text[name_at:]))
    for n, t in enumerate(tokens):
        s, e = name_at + t.start(), name_at + t.end()
        word = line.text[s:e].rstrip(",;:")
        stop = fold(word) in _DOCTOR_NAME_STOP
        if stop and fold(word) in _PARTICLES and _is_upper(word) and n + 1 < len(tokens) \
                and _is_upper(tokens[n + 1].group(0)):
            stop = False  # 'Dr Yann LE GALL'
        initials = bool(m) and n == 0 and bool(_INITIALS.fullmatch(word)) \
            and n + 1 < len(tokens) and _is_upper(tokens[n + 1].group(0).rstrip(",;:"))
        if initials:
            stop = False  # 'Dr M. DUPONT', 'Dr J.-P. MARTIN'
        if not word or stop or not (initials or _NAME_TOKEN.fullmatch(word)) \
                or len(spans) >= 4 or (word[0].islower() and fold(word) not in _PARTICLES):
            break
        spans.append((s, s + len(word)))
        if line.text[s:e] != word:
            break
    while spans and fold(line.text[spans[-1][0]:spans[-1][1]]) in _PARTICLES:
        spans.pop()
    if not spans:
        return None
    end = spans[-1][1]
    return " ".join(line.text[start:end].split()), start, end


def _people(lines: list[_Line], fields: dict[str, dict[str, Any]]) -> None:
    prescriber: tuple[_Line, tuple[str, int, int]] | None = None
    for line in lines:
        m = _PRESCRIBER.search(line.folded)
        if m:
            found = _doctor_at(line, m.end())
            if found:
                prescriber = (line, found)
                break
        for d in _DOCTOR.finditer(line.folded):
            found = _doctor_at(line, d.start())
            if found and _PRESCRIBER_AFTER.match(line.folded[found[2]:]):
                prescriber = (line, found)
                break
        if prescriber:
            break
    if prescriber:
        line, (value, s, e) = prescriber
        fields["prescriber"] = _field(value, line, s, e)

    def take(line: _Line, found: tuple[str, int, int]) -> bool:
        if prescriber and _normalised(found[0]) == _normalised(prescriber[1][0]):
            return False
        fields["radiologist"] = _field(found[0], line, found[1], found[2])
        return True

    for line in lines:  # 'Compte rendu validé par : Dr X', 'Radiologue : Dr X'
        m = _SIGNED_BY.search(line.folded)
        if m:
            found = _doctor_at(line, m.end())
            if found and take(line, found):
                return
    start = next((i for i, ln in enumerate(lines) if _CONCLUSION.match(ln.folded)), None)
    if start is not None:  # a signature line after the conclusion: 'Dr X' starting a line
        for line in lines[start + 1:]:
            d = _DOCTOR.match(line.folded, len(line.folded) - len(line.folded.lstrip(" -*")))
            if d and not _NOT_PATIENT.search(line.folded):
                found = _doctor_at(line, d.start())
                if found and take(line, found):
                    return
            found = _signer_after_article(line, 0)
            if found and take(line, found):
                return
    for i, line in enumerate(lines):  # 'Dr X, radiologue' or 'Dr X' next to 'radiologue'
        if "radiolog" not in line.folded or "centre" in line.folded:
            continue
        for j in (i, i - 1, i + 1):
            if 0 <= j < len(lines) and lines[j].page == line.page:
                for d in _DOCTOR.finditer(lines[j].folded):
                    found = _doctor_at(lines[j], d.start())
                    if found and take(lines[j], found):
                        return


# 'Le Docteur Jean MARTIN', 'Le Pr J. ROUX': a signature written with its article
_SIGNER_ARTICLE = re.compile(r"^\W{0,3}(?:le|la) (?=(?:dr|docteur|pr|professeur)(?:\.|\s))")
_SIGNER_REST = re.compile(r"^[\s,.;()\-]*(?:(?:medecin )?radiologue[\s.)]*)?$")


def _signer_after_article(line: _Line, start: int) -> tuple[str, int, int] | None:
    """The signer of a line from ``start`` that is nothing but an article, a doctor's title
    and a name ('Le Docteur Jean MARTIN', 'Le Dr M. DUPONT, radiologue'), as _doctor_at reads
    it without the article; None for a sentence naming a doctor ('Le Dr MARTIN a été
    prévenu', part of a conclusion)."""
    m = _SIGNER_ARTICLE.match(line.folded, start)
    found = _doctor_at(line, m.end()) if m else None
    if found and _SIGNER_REST.match(line.folded[found[2]:]):
        return found
    return None


# -- conclusion ---------------------------------------------------------------------------------
_MARGIN_LINES = 3  # lines at the top and at the bottom of a page where headers and footers are


def _page_margins(lines: list[_Line], fields: dict[str, dict[str, Any]]) -> set[int]:
    """The ids of the lines that are a page's running header or footer, not the report's
    text: among the first or last _MARGIN_LINES of their page, either printed on several
    pages (digits aside: 'page 1/3', a date) or naming the patient (the family name read, a
    'né(e) le' with a date: 'DURAND Claire - née le 03/07/1961 - Examen du 12/03/2025'). A
    conclusion going over a page skips them (they were read into it, the patient's name
    with them)."""
    by_page: dict[int, list[_Line]] = {}
    for line in lines:
        by_page.setdefault(line.page, []).append(line)
    zone = [ln for page in by_page.values()
            for ln in page[:_MARGIN_LINES] + page[_MARGIN_LINES:][-_MARGIN_LINES:]]
    seen: dict[str, set[int]] = {}
    for line in zone:
        seen.setdefault(_masked(line), set()).add(line.page)
    family = fold(_value(fields, "family"))
    named = re.compile(rf"(?<![a-z]){re.escape(family)}(?![a-z])") if family else None
    out = set()
    for line in zone:
        birth = _L_BIRTH_DATE.search(line.folded)
        if (len(seen[_masked(line)]) > 1 and len(_masked(line)) >= 8) \
                or (named and named.search(line.folded)) \
                or (birth and _date_after(line, birth.end())):
            out.add(id(line))
    return out


_HEADER_SCAN = 12  # lines at a page's top where a letterhead's running header may be


def _running_headers(lines: list[_Line]) -> set[int]:
    """The ids of the lines of a letterhead printed again at the top of every page: from a
    page's first line, each line printed (digits aside) among the first _HEADER_SCAN lines
    of another page too, up to the first that is not. A letterhead of five or six lines
    (the centre, its address, phone, FINESS, its radiologists, the patient's banner) went
    past _page_margins' three: a conclusion going over the page took its fourth line in and
    ended at its fifth ('Dr Jean MARTIN - Dr Claire DUBOIS'), the rest of it lost."""
    by_page: dict[int, list[_Line]] = {}
    for line in lines:
        by_page.setdefault(line.page, []).append(line)
    pages_of: dict[str, set[int]] = {}
    for page, on_page in by_page.items():
        for line in on_page[:_HEADER_SCAN]:
            pages_of.setdefault(_masked(line), set()).add(page)
    out: set[int] = set()
    for on_page in by_page.values():
        for line in on_page[:_HEADER_SCAN]:
            if len(pages_of[_masked(line)]) < 2 or len(_masked(line)) < 8:
                break
            out.add(id(line))
    return out


def _masked(line: _Line) -> str:
    return " ".join(re.sub(r"[0-9]+", "#", line.folded).split())


_COLUMN_GAP = 12.0  # points between two words of one line printed in two columns


def _heading_at(line: _Line) -> tuple[re.Match[str], int, float | None] | None:
    """The conclusion's heading on a line, where it starts and the x of its column: at the
    line's start (no column), or starting a column right of other text, apart from it by
    _COLUMN_GAP ('Glycémie 7,2 mmol/L      Conclusion : ...': a page printed in two columns,
    the results left and the conclusion right, whose heading was never read)."""
    if m := _CONCLUSION.match(line.folded):
        return m, 0, None
    if len(line.xs) != len(line.spans):
        return None
    for k in range(1, len(line.spans)):
        if line.xs[k][0] - line.xs[k - 1][1] < _COLUMN_GAP:
            continue
        start = line.spans[k][0]
        if m := _CONCLUSION.match(line.folded[start:]):
            return m, start, line.xs[k][0]
    return None


def _column_start(line: _Line, x: float) -> int | None:
    """Where a line's words in the column starting at ``x`` begin; None when it has none."""
    if len(line.xs) != len(line.spans):
        return None
    return next((s for (s, _, _), (x0, _) in zip(line.spans, line.xs, strict=True)
                 if x0 >= x - 4), None)


def _conclusion(lines: list[_Line], fields: dict[str, dict[str, Any]]) \
        -> list[tuple[_Line, int, int]]:
    """Reads the 'conclusion' field; returns its (line, start, end) parts ([] when none)."""
    for i, line in enumerate(lines):
        found = _heading_at(line)
        if found is None:
            continue
        m, at, column = found
        parts: list[tuple[_Line, int, int]] = []
        texts: list[str] = []
        end = at + m.end()
        rest = line.text[end:].strip()
        if rest:
            parts.append((line, end, len(line.text)))
            texts.append(rest)
        margins = _page_margins(lines, fields)
        headers = _running_headers(lines)
        empty = 0  # lines in a row with nothing in the conclusion's column
        above = line
        for nxt in lines[i + 1:i + 1 + _MAX_CONCLUSION_LINES]:
            if nxt.page == above.page and nxt.top is not None and above.top is not None \
                    and nxt.top < above.top - 1:
                break  # read after it but printed higher: another block (OCR's columns)
            above = nxt
            start = 0
            if column is not None:  # the right column only, on the heading's page
                start = _column_start(nxt, column) if nxt.page == line.page else None
                if start is None:
                    empty += 1
                    if empty >= 2 or nxt.page != line.page:
                        break
                    continue
                empty = 0
            folded = nxt.folded[start:]
            if nxt.page != line.page and id(nxt) in headers:
                continue  # the letterhead again, where the conclusion goes over a page
            if _goes_on_next_page(folded):
                continue  # 'Page 1/2' under a conclusion going on over the page
            if _CONCLUSION_END.match(folded) or _signer_after_article(nxt, start):
                break
            if not texts and _CONCLUSION.fullmatch(folded.strip()):
                continue  # the heading printed twice
            if _PAGE_NUMBER.fullmatch(folded.strip()):
                continue  # a page footer inside the conclusion
            if id(nxt) in margins:
                continue  # a page's footer or banner, where the conclusion goes over a page
            parts.append((nxt, start, len(nxt.text)))
            texts.append(nxt.text[start:].strip())
        texts = _dehyphenated(texts, " ".join(ln.folded for ln in lines))
        value = _EDGE_PUNCT.sub("", "\n".join(texts))
        if value:
            fields["conclusion"] = _multi_field(value, parts)
            return parts
    return []


_PAGE_OF = re.compile(r"^\W{0,3}page (\d{1,3})\s*/\s*(\d{1,3})\s*$")


def _goes_on_next_page(folded: str) -> bool:
    """A bare page footer 'Page 1/2' that is not the last page's: the conclusion cut there by
    the page break goes on after the next page's running header (which _page_margins skips);
    'Page 2/2' still ends it."""
    m = _PAGE_OF.match(folded.strip())
    return bool(m) and int(m.group(1)) < int(m.group(2))


def _addendum(lines: list[_Line], fields: dict[str, dict[str, Any]]) -> None:
    """An addendum printed with the report ('Compte rendu complémentaire du 02/04/2025'
    after the signature): its text up to its own signature ('addendum', with its ``date``
    when printed on its heading line or the line under it). The conclusion alone was what
    the dossier showed, the radiologist's second reading lost."""
    for i, line in enumerate(lines):
        m = _ADDENDUM.match(line.folded)
        if m is None:
            continue
        found = _date_after(line, m.end(), 4)
        parts: list[tuple[_Line, int, int]] = []
        texts: list[str] = []
        rest = line.text[found[2] if found else m.end():].strip(" :-")
        if rest:
            parts.append((line, len(line.text) - len(rest), len(line.text)))
            texts.append(rest)
        margins = _page_margins(lines, fields)
        for nxt in lines[i + 1:i + 1 + _MAX_CONCLUSION_LINES]:
            if found is None and not texts and (lead := _ADDENDUM_DATE.match(nxt.folded)):
                found = _date_after(nxt, lead.end(), 4)
                if found and not nxt.text[found[2]:].strip(" :-,."):
                    continue  # 'Le 02/04/2025' alone under the heading
            if _goes_on_next_page(nxt.folded):
                continue
            if _CONCLUSION_END.match(nxt.folded):
                break
            if id(nxt) in margins or _PAGE_NUMBER.fullmatch(nxt.folded.strip()):
                continue
            parts.append((nxt, 0, len(nxt.text)))
            texts.append(nxt.text.strip())
        texts = _dehyphenated(texts, " ".join(ln.folded for ln in lines))
        value = _EDGE_PUNCT.sub("", "\n".join(texts))
        if value:
            fields["addendum"] = _multi_field(value, parts)
            if found:
                fields["addendum"]["date"] = found[0]
            return


_ADDENDUM_DATE = re.compile(r"^\W{0,3}(?:(?:[a-z][a-z\- ]{1,30}, )?[li1|]e |date\s*:\s*|du )?")


# A word cut at a line's end ('pré-' over 'lèvement'): a letter, the hyphen (or a soft
# hyphen), and the next line going on in lower case
_CUT = re.compile(r"(?P<word>\S*[^\W\d_])(?P<mark>[-\u00ad])$")
_GOES_ON = re.compile(r"^(?P<word>[^\W\d_][^\s,.;:!?)]*)")


@cache
def _hyphen_prefixes() -> frozenset[str]:
    return frozenset(fold(r["word"]) for r in table("hyphen_prefixes"))


def _dehyphenated(texts: list[str], document: str) -> list[str]:
    """Lines with the words their ends cut joined again ('contrôler sur un nouveau pré-' /
    'lèvement.': 'prélèvement', the conclusion read and searched as printed, not as laid
    out). A soft hyphen is always the layout's; a hyphen is the word's own, and kept, when
    the word is a compound: its first part one of tables/hyphen_prefixes.csv ('anti-' /
    'inflammatoire'), already hyphenated ('c'est-à-' / 'dire'), capitalised ('Saint-' /
    'Étienne'), or the hyphenated word printed elsewhere in the document."""
    out: list[str] = []
    for text in texts:
        cut = _CUT.search(out[-1]) if out else None
        goes_on = _GOES_ON.match(text)
        if cut is None or goes_on is None or not goes_on.group("word")[0].islower():
            out.append(text)
            continue
        head, tail = cut.group("word"), goes_on.group("word")
        last = head.split("-")[-1]
        own = cut.group("mark") == "-" and (
            "-" in head or last[0].isupper() or fold(last).split("'")[-1] in _hyphen_prefixes()
            or fold(f"{head}-{tail}") in document)
        out[-1] = out[-1][:cut.start("mark")] + ("-" if own else "") + text
    return out
