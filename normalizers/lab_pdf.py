"""Coded results out of the result table of a laboratory's report printed to PDF.

Why: a lab's PDF (Cerba, Biogroup, Biomnis, Synlab, a CHU's LIS...) is the only form some
results reach the dossier in; kept as text only, nobody can chart a creatinine or see a
potassium out of range. Each line of the table becomes a LAB_RESULT (analyte -> LOINC from
``tables/pdf_lab_analytes.csv``, value, UCUM unit, reference range, printed abnormal flag,
the specimen's collection time), under the report entry (``parent_key``).

What is read, and what is not (nothing is invented):
- The table's columns come from its heading row ('Résultat | Unité | Valeurs de référence |
  Antériorité(s)', in any order, on one line or two, repeated on each page or not:
  ``tables/pdf_lab_columns.csv``; two tables side by side under one heading row are
  read one after the other; the specimen's date heading the result column and former
  dates the antériorités' ('12/01/2026', 'Le 12/01/2026', 'Du 12/01/26'; beside a column
  headed 'Résultat' alone every dated one, 'Résultat du 12/01/2026' too, is an
  antériorité; a column dated before the specimen's collection is one whatever its words:
  the only one left, today's heading unread, the lines are read as outside a table, that
  column's values their antériorités, PDF_LAB_COLUMN_BEFORE_COLLECTION); an 'Interprétation'
  column's words as flags; a heading cell holding 'Résultat' and the next heading run
  together ('Résultat Unité') is the result's column; headings naming no column of ours are
  said once per table (PDF_LAB_COLUMN_UNKNOWN), what is under them unread). Cells are placed
  under a heading by the words' boxes. The antériorité column (a former result and its
  date, the date heading its column when it prints none: 'Antériorité du 12/01/2025') is
  kept in ``details.previous``, never read as a result nor as the range; a block of
  former results under its own title ('ANTÉRIORITÉS', 'Résultats antérieurs du ...') is not
  read at all, to the next section (PDF_LAB_PREVIOUS_BLOCK). With no
  heading, a date on the line starts the antériorité, and a number after the range, or a
  second number in the same unit, is no result either. A table ends at the biologist's
  validation ('Résultats validés par'), or after a few lines without a result.
- A line may hold two results of one analysis in two units ('Polynucléaires neutrophiles
  62,1 % 4,12 G/L (1,80-7,50)', 'Glycémie 5,20 mmol/L 0,94 g/L', '68 µmol/L (7,7 mg/L)'), or
  give the second on the line below ('Soit : 4,67 mmol/l', a method line with its value):
  one entry each; a single range goes to the one whose value it fits (within a factor of 3
  of its limits and twice nearer them than the other), to none when that is not clear
  (warning); an 'Interprétation' word is the analysis's, in each of its units.
- Values: comma or point decimals, thousands by blank ('1 250', '4 700 000' in spaced
  cells) or, in a report whose decimals are commas, by point ('1.250'); comparators ('<
  0,5', 'Inf. à 0,5'), '1.234,5'; ranges in brackets ('(3,5-5,0)', '[3,5 ; 5,0]', '[< 5]');
  an uncertainty after the value ('± 0,2': details.uncertainty); a
  'checked' mark after it ('5,80 H (contrôlé)', tables/pdf_lab_checked_marks.csv:
  details.checked) or on the line under it ('Résultat contrôlé sur un second
  prélèvement', kept as its comment too); a
  minus sign ('-2,1', and '- 2,1' under 'Résultat'; apart from the
  number with no heading, a sign or a separator: not filed, PDF_LAB_SIGN_DOUBTFUL), signed
  range limits ('-2,0 - +3,0'); a value in parentheses; words (``tables/pdf_lab_value_words.csv``):
  qualitative results coded, 'Non réalisé' (filed cancelled, no value, the reason printed
  after it kept: 'Non fait : tube manquant'), the specimen's fault under 'Résultat'
  ('Prélèvement hémolysé', 'Absence de prélèvement': the same, never a finding 'Absent';
  elsewhere the lab's remark), 'Voir commentaire' (the comment is the value); anything
  else under 'Résultat' is no value, and says so
  (PDF_LAB_VALUE_NOT_READ); a qualitative word goes on as a phrase ('Présence d'oxalate de
  calcium': the value, coded by its word). Flags printed after the value ('5,9 H', '5,9H',
  '5,9 (H)', '5,9 H*') or before it ('* 4,10', 'H 5,9', '(L) 131', '↑ 7,2';
  ``tables/pdf_lab_flags.csv``); a value printed in bold alone, where the others are not,
  is flagged abnormal ('A', details.flag_printed 'bold'). Where bold cannot be seen (OCR, a
  searchable scan's layer) a value out of its printed range with no flag read is marked
  details.flag_not_seen, with a warning (PDF_LAB_FLAG_NOT_SEEN), never flagged by us: the
  interpretation is the lab's (OBX-8); a value out of its one printed range with no flag,
  scanned or not, has our comparison apart, said as ours (details.flag_computed). A
  number of more than 7 digits or with a leading zero is an identifier or a phone number,
  never a value. A unit printed after the name ('Leucocytes (10*9/L)') is the value's;
  OCR's misread units ('g/1', 'Imm3') are read on scanned pages
  (``tables/pdf_lab_ocr_units.csv``), an OCR'd table's column blocks side by side are its
  rows again, and a value OCR read unsure is not filed (warning).
- A line with a range only, under a result ('F : 12,0 - 16,0' under 'H : 13,0 - 17,0'),
  adds to its range; a method line ('Méthode : ...', 'Formule CKD-EPI 2009', a formula's
  name alone: 'CKD-EPI 2021', its year no value) and comment lines go to the result above
  (``details.method``, ``details.comment``); a formula named there or in the name picks
  the computed analysis's code (``tables/pdf_lab_formulas.csv``: 'DFG estimé' by CKD-EPI,
  CKD-EPI 2021 or MDRD, the LDL by Friedewald); an eGFR with no formula named is the eGFR
  of no method, said so (PDF_LAB_FORMULA_UNNAMED, tables/pdf_lab_formula_unnamed.csv); an
  eGFR from cystatin C, alone or with creatinine ('DFG (cystatine C)', 'DFG créatinine +
  cystatine C (CKD-EPI)'), takes its own code (tables/pdf_lab_egfr_markers.csv,
  pdf_lab_egfr_by_marker.csv) or none, said (PDF_LAB_EGFR_UNCODED), never the creatinine
  eGFR's; a line naming the analysis alone, above its values, is the start of its name
  ('Hémoglobine glyquée' over '(HbA1c)  6,5 %'), and a line in lower case under it
  ('erythrocytaire (%)') its end. A name left alone at a page's foot goes with the first
  values printed without a name on the next page (the page break cut the table between
  them), when the two make an analysis we know; values under a heading with no name are
  said (PDF_LAB_NAME_NOT_READ), never filed under a guess. A column headed '%' holds
  percentages printed bare, one headed with its unit ('Résultat (G/L)') or under a section
  printing it ('IONOGRAMME (mmol/L)') values in that unit.
- An analysis whose name is not in the table is filed unmapped under its printed name
  (system PDF-LABEL), inside a result table only, under 'Résultat' or with a unit we know;
  outside a table a name and a unit of the table make a result, and so does a line laid
  out as one (the name, a value in a unit we know and its range, each apart: filed unmapped,
  warning PDF_LAB_UNKNOWN_ANALYSIS); a footer's address ('12 rue ...'), a page number, a
  comment quoting a value are never results, and a value with a unit we did not file says
  so (PDF_LAB_NOT_FILED): nothing that may be a result is dropped without a word. Under a
  section of another specimen than blood ('BIOCHIMIE URINAIRE', 'ECBU':
  tables/pdf_lab_specimens.csv) nothing is coded with the table's blood and serum codes,
  only with that specimen's (``tables/pdf_lab_specimen_analytes.csv``: the urine's
  leucocytes, nitrites, culture...); counts per mm3 or µL, which urine and CSF are counted
  in too, take the blood's codes only under a section saying blood ('HÉMOGRAMME', 'NUMÉRATION
  FORMULE SANGUINE'), else stay unmapped (PDF_LAB_SPECIMEN_UNSAID). An analysis whose
  name and unit do not say which code it is (a troponin not said T or I, D-dimers not said
  FEU or DDU: ``tables/pdf_lab_ambiguous.csv``) is filed unmapped and says why
  (PDF_LAB_ANALYSIS_AMBIGUOUS). The table ends at the biologist's validation ('validé
  biologiquement par', 'Validation biologique :') or conclusion ('Conclusion', 'Synthèse',
  'Avis biologique': tables/pdf_lab_conclusion_titles.csv); 'Biologiste responsable : ...' is no
  comment.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from normalizers.dates import hl7_ts_to_iso
from normalizers.model import LAB_RESULT, Entry
from normalizers.tabledata import table
from normalizers.units import to_ucum
from parsers.pdf.model import TEXT_LAYER, PdfDocument

LABEL_SYSTEM = "PDF-LABEL"  # an analysis filed under its printed name (unmapped)
CELL_GAP = 6.0  # points: words further apart than this are in two cells
# A value read by OCR below this confidence is not filed (a warning says where): a misread
# digit would be a wrong result in the dossier, coded and charted as if the lab had sent it;
# the report entry keeps the page's text and the scan itself.
MIN_OCR_CONFIDENCE = 80.0
_RANGE_FIT = 3.0  # a value fits a range within this factor of its limits


def _fold(s: str) -> str:
    """Lower case, no accents, blanks collapsed (for looking names and words up)."""
    base = unicodedata.normalize("NFKD", s)
    base = "".join(c for c in base if not unicodedata.combining(c))
    return " ".join(base.lower().replace("’", "'").split())


# -- tables -------------------------------------------------------------------------------------
@cache
def _columns() -> dict[str, str]:
    return {_fold(r["heading"]): r["column"] for r in table("pdf_lab_columns")}


@cache
def _flags() -> dict[str, str]:
    return {r["sign"]: r["interpretation"] for r in table("pdf_lab_flags")}


@cache
def _checked_marks() -> frozenset[str]:
    return frozenset(" ".join(_fold(r["mark"]).split()) for r in table("pdf_lab_checked_marks"))


def _checked_mark(text: str) -> bool:
    """Whether a word after a value is a 'checked' mark ('contrôlé', '(Contrôlé)', '[vérifié]')."""
    return " ".join(_fold(text).strip("()[]*. ").split()) in _checked_marks()


@cache
def _checked_openings() -> re.Pattern[str]:
    """The marks of tables/pdf_lab_checked_marks.csv that may open a longer line."""
    marks = [" ".join(_fold(r["mark"]).split()) for r in table("pdf_lab_checked_marks")
             if r.get("opens_line") == "yes"]
    return re.compile(rf"^(?:{'|'.join(re.escape(m) for m in marks)})(?![\w])")


def _checked_below(line: _Line) -> bool:
    """Whether a line printed under the result says it was checked: a mark alone
    ('Contrôlé', '(Résultat vérifié)') or a line opening with one ('Résultat contrôlé sur
    un second prélèvement'), kept as the comment or method it is as well."""
    below = [*line.extra.get("comment", []), str(line.extra.get("method", ""))]
    return any(_checked_mark(text) or _checked_openings().match(_fold(text).strip("()[]*. "))
               for text in below if text)


@cache
def _words() -> dict[str, dict[str, str]]:
    return {_fold(r["word"]): r for r in table("pdf_lab_value_words")}


@cache
def _analytes() -> dict[str, dict[str, dict[str, str]]]:
    """{folded name: {ucum unit or '': row}}."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for r in table("pdf_lab_analytes"):
        out.setdefault(_fold(r["name"]), {})[r["unit"]] = r
    return out


BLOOD = "blood"  # the specimen of tables/pdf_lab_analytes.csv's codes


@cache
def _specimen_pattern() -> re.Pattern[str]:
    words = sorted((_fold(r["word"]) for r in table("pdf_lab_specimens")), key=len, reverse=True)
    return re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in words) + ")")


def _other_specimen(section: str) -> bool:
    """Whether a section's heading names a specimen other than blood ('URINES DE 24H')."""
    return _specimen(section) not in (None, BLOOD)


def _specimen(section: str) -> str | None:
    """The specimen a section's heading names ('urine'; 'blood' for 'HÉMOGRAMME'), if any.
    A heading naming blood and another specimen ('BIOCHIMIE SANGUINE ET URINAIRE') is the
    other's: its results are not surely blood's."""
    if not section:
        return None
    by_word = {_fold(r["word"]): r["specimen"] for r in table("pdf_lab_specimens")}
    named = {by_word[m.group(0)] for m in _specimen_pattern().finditer(_fold(section))}
    others = sorted(named - {BLOOD})
    return others[0] if others else BLOOD if named else None


@cache
def _specimen_analytes() -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """{(specimen, folded name): {ucum unit or '': row}} of tables/
    pdf_lab_specimen_analytes.csv (the urine's leucocytes, nitrites...)."""
    out: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for r in table("pdf_lab_specimen_analytes"):
        out.setdefault((r["specimen"], _fold(r["name"])), {})[r["unit"]] = r
    return out


def _specimen_analyte(specimen: str, name: str) -> dict[str, dict[str, str]] | None:
    """An analysis of another specimen than blood, by its name (whole, then without what
    is in parentheses), as _analyte."""
    key = _fold(name).replace("*", "").strip(" :.")
    bare = " ".join(re.sub(r"\([^)]*\)", " ", key).split())
    table_ = _specimen_analytes()
    return table_.get((specimen, key)) or table_.get((specimen, bare))


@cache
def _ambiguous_names() -> dict[str, str]:
    """{folded name: why} of tables/pdf_lab_ambiguous.csv: analyses whose name and unit,
    coded by no row, do not say which LOINC they are (a troponin not said T or I)."""
    return {_fold(r["name"]): r["why"] for r in table("pdf_lab_ambiguous")}


def _ambiguous(name: str) -> str | None:
    """Why an analysis printed under ``name`` is not coded, when its name is ambiguous."""
    key = _fold(name).replace("*", "").strip(" :.")
    bare = " ".join(re.sub(r"\([^)]*\)", " ", key).split())
    return _ambiguous_names().get(key) or _ambiguous_names().get(bare)


@cache
def _ocr_units() -> dict[str, str]:
    """Units as OCR misreads them ('g/1', 'Ul/|'), read on OCR'd pages only."""
    return {r["read"]: r["unit"] for r in table("pdf_lab_ocr_units")}


@cache
def _unit_pattern() -> re.Pattern[str]:
    """The units of tables/ucum_units.csv as printed (case kept: G/L is not g/L)."""
    spellings = {r["sent"] for r in table("ucum_units")} | {"%", "G/L", "T/L", "sec", "s"} \
        | set(_ocr_units())
    alternation = "|".join(re.escape(s) for s in sorted(spellings, key=len, reverse=True))
    return re.compile(rf"(?:{alternation})(?![\w/²³])")


@cache
def _word_pattern() -> re.Pattern[str]:
    alternation = "|".join(re.escape(w) for w in sorted(_words(), key=len, reverse=True))
    return re.compile(rf"(?:{alternation})(?![a-z])")


@cache
def _flag_pattern() -> re.Pattern[str]:
    alternation = "|".join(re.escape(s) for s in sorted(_flags(), key=len, reverse=True))
    return re.compile(rf"(?:{alternation})(?=\s|$|\))(?!\s*:)")


@cache
def _pre_flag_pattern() -> re.Pattern[str]:
    """A flag printed before its value ('H 5,9', '(L) 131', '↑ 7,2'): a sign of the table
    alone or in brackets, then the number. '+' and '-' are left out (a sign of the number),
    and so is '*', read by _PRE_FLAG."""
    signs = [s for s in _flags() if s not in ("+", "-") and "*" not in s]
    alternation = "|".join(re.escape(s) for s in sorted(signs, key=len, reverse=True))
    return re.compile(rf"(?:[(\[]\s*(?P<b>{alternation})\s*[)\]]|(?P<f>{alternation}))"
                      r"\s*(?=\d)")


def _pre_flag_at(text: str, i: int) -> re.Match[str] | None:
    """The flag printed before a value at ``i``: a mark standing apart (a letter glued to
    the word before is none), followed by one number that is not a range ('H 13,0 - 17,0'
    is the men's range) nor a date."""
    if i and not (text[i - 1].isspace() or text[i - 1] in "*:"):
        return None
    m = _pre_flag_pattern().match(text, i)
    if m is None or (m.group("f") and m.group("f").isalpha() and m.end() == m.end("f")):
        return None  # 'H5' glued: no mark of ours
    if _RANGE.match(text, m.end()) or _DATE.match(text, m.end()) \
            or not _NUM_AT.match(text, m.end()):
        return None
    return m


@cache
def _bracket_flag_pattern() -> re.Pattern[str]:
    alternation = "|".join(re.escape(s) for s in sorted(_flags(), key=len, reverse=True))
    return re.compile(rf"[(\[]\s*(?P<f>{alternation})\s*[)\]](?=\s|$)")


# -- cells and rows -----------------------------------------------------------------------------
@dataclass(slots=True)
class _Cell:
    x0: float
    x1: float
    text: str
    conf: float
    words: list[tuple[float, float, str, bool]] = field(default_factory=list)  # x0, x1, bold

    def bold_at(self, pos: int) -> bool:
        """Whether the word at ``pos`` of the cell's text is printed in bold."""
        at = 0
        for _, _, t, bold in self.words:
            if at <= pos < at + len(t):
                return bold
            at += len(t) + 1
        return False


@dataclass(slots=True)
class _Row:
    page: int
    line: int
    source: str
    cells: list[_Cell]
    styles_seen: bool = True  # bold type can be seen (not on a scan)

    @property
    def text(self) -> str:
        return "   ".join(c.text for c in self.cells)


def _rows(doc: PdfDocument) -> list[_Row]:
    """Each printed line as cells: words closer than CELL_GAP are one cell."""
    out: list[_Row] = []
    for page in doc.pages:
        by_line: dict[int, list] = {}
        for w in page.words:
            if isinstance(w.text, str) and w.text.strip():
                by_line.setdefault(w.line if isinstance(w.line, int) else 0, []).append(w)
        if not by_line:  # no word boxes: each line one cell
            for n, raw in enumerate((page.text or "").splitlines()):
                if raw.strip():
                    out.append(_Row(page.number, n, page.source,
                                    [_Cell(0.0, 0.0, " ".join(raw.split()), page.confidence)],
                                    page.styles_seen))
            continue
        if page.source != TEXT_LAYER:
            by_line = _abreast_joined(by_line)
        for n in sorted(by_line) if page.source == TEXT_LAYER else by_line:  # OCR: as read
            words = sorted(by_line[n], key=lambda w: w.bbox[0])
            cells: list[_Cell] = []
            confs: list[list[float]] = []
            for w in words:
                t = unicodedata.normalize("NFC", " ".join(w.text.split()))
                if cells and w.bbox[0] - cells[-1].x1 <= CELL_GAP:
                    cells[-1].text += " " + t
                    cells[-1].x1 = w.bbox[2]
                    cells[-1].words.append((w.bbox[0], w.bbox[2], t, w.bold))
                    confs[-1].append(float(w.confidence))
                else:
                    cells.append(_Cell(w.bbox[0], w.bbox[2], t, 0.0,
                                       [(w.bbox[0], w.bbox[2], t, w.bold)]))
                    confs.append([float(w.confidence)])
            for c, cs in zip(cells, confs, strict=True):
                c.conf = round(sum(cs) / len(cs), 1)
            out.append(_Row(page.number, n, page.source, cells, page.styles_seen))
    return out


def _abreast_joined(by_line: dict[int, list]) -> dict[int, list]:
    """An OCR'd page's lines as printed rows: tesseract reads a table as column blocks, each
    cell a line of its own (the names, then the results and units, then the ranges), never
    one row; lines side by side (apart, each one's middle within the other's height) are
    one row again, numbered as its first line, in the order of the page."""
    boxes = {n: (min(w.bbox[1] for w in ws), max(w.bbox[3] for w in ws),
                 min(w.bbox[0] for w in ws), max(w.bbox[2] for w in ws))
             for n, ws in by_line.items()}
    rows: list[list[int]] = []
    for n in sorted(boxes, key=lambda k: (boxes[k][0], k)):
        top, bottom, x0, x1 = boxes[n]
        mid = (top + bottom) / 2
        row = next((r for r in rows if all(
            (boxes[m][2] >= x1 or boxes[m][3] <= x0)
            and boxes[m][0] <= mid <= boxes[m][1]
            and top <= (boxes[m][0] + boxes[m][1]) / 2 <= bottom for m in r)), None)
        if row is None:
            rows.append([n])
        else:
            row.append(n)
    return {min(r): [w for m in r for w in by_line[m]]
            for r in sorted(rows, key=lambda r: min(boxes[m][0] for m in r))}


def _side_by_side(rows: list[_Row]) -> list[_Row]:
    """Two result tables printed side by side under one heading row ('Analyse | Résultat |
    Unité | Réf. | Analyse | Résultat | Unité | Réf.'), each line holding a result of each:
    read, on that page, the left table and then the right one, as if printed one under the
    other. Read across, the right table's name went to no result and its value to the left
    one's analysis ('Sodium 7,2 G/L': a leucocyte count filed as a sodium)."""
    out: list[_Row] = []
    pages: dict[int, list[_Row]] = {}
    for row in rows:
        pages.setdefault(row.page, []).append(row)
    for page_rows in pages.values():
        found = next(((n, x) for n, row in enumerate(page_rows)
                      if (x := _second_table_at(row)) is not None), None)
        if found is None:
            out.extend(page_rows)
            continue
        at, split = found
        left: list[_Row] = []
        right: list[_Row] = []
        for row in page_rows[at:]:
            for side, cells in ((left, [c for c in row.cells if c.x0 < split]),
                                (right, [c for c in row.cells if c.x0 >= split])):
                if cells:
                    side.append(_Row(row.page, row.line, row.source, cells, row.styles_seen))
        out.extend(page_rows[:at] + left + right)
    return out


def _previous_block(row: _Row) -> bool:
    """A line heading a block of former results: one cell, at the line's start, naming the
    antériorités as a column heading would ('ANTÉRIORITÉS', 'Résultats antérieurs du
    12/01/2026 :', 'Historique des résultats'), a date aside; spelt out: a column's short
    form ('Ant.', 'Antér.') alone on a line is no block's title (its results would be lost)."""
    return len(row.cells) == 1 and _block_title(row.cells[0].text)


def _block_title(text: str) -> bool:
    """Whether a line's text titles a block of former results (see _previous_block)."""
    key = re.sub(r"\s+(?:du|le|au)$", "", _fold(_DATED.sub(" ", text)).strip(" :()-"))
    key = key.replace("(s)", "s")
    return _columns().get(key) == "previous" and len(key) > 3 and not key.endswith(".")


def _second_table_at(row: _Row) -> float | None:
    """Where a second table starts on a heading row naming two: the x of its name's
    heading, between the first table's result heading and its own."""
    kinds = [_columns().get(_fold(c.text).rstrip(" :").replace("(s)", "s"), "")
             for c in row.cells]
    results = [n for n, k in enumerate(kinds) if k == "result"]
    if len(results) < 2:
        return None
    names = [n for n in range(results[0] + 1, results[1]) if kinds[n] == "name"]
    return row.cells[names[-1]].x0 - 2 if names else None


# -- the table's heading ------------------------------------------------------------------------
@dataclass(slots=True)
class _Heading:
    """The heading cells (x0, x1, column), left to right, and the dates heading the
    antériorité columns ('Antériorité du 12/01/2025', '12/01/2025'), by the cell's x0."""

    cells: list[tuple[float, float, str]]
    dates: dict[float, str] = field(default_factory=dict)
    percent: set[float] = field(default_factory=set)  # x0 of result columns headed '%'
    # x0 of result columns whose heading prints their unit ('Résultat (G/L)', 'Résultat en
    # mmol/L'): the unit of the numbers printed bare under them
    units: dict[float, str] = field(default_factory=dict)

    def column(self, cell: _Cell, first: bool = False) -> str:
        """The column a cell is under. The line's first cell, starting left of every data
        heading, is the analysis's name; any other cell is under the heading its centre
        falls in, else the one whose centre is nearest its own (values are printed
        left-aligned, right-aligned or centred under their heading, some beside it; a
        one-digit value far beside its heading may be taken for its neighbour's). A text
        much wider than its heading ('Présence d'oxalate de calcium') starting where a
        heading starts is under that one: its centre is under the next column's."""
        return self._under(cell, first)[2]

    def in_percent(self, cell: _Cell) -> bool:
        """Whether a cell is under a result column headed by '%' (its numbers printed bare)."""
        return self._under(cell)[0] in self.percent

    def unit_of(self, cell: _Cell) -> str | None:
        """The unit a cell's result column prints in its heading, if any."""
        return self.units.get(self._under(cell)[0])

    def date_of(self, cell: _Cell) -> str | None:
        """The date heading the column a cell is under, if any."""
        return self.dates.get(self._under(cell)[0])

    def _under(self, cell: _Cell, first: bool = False) -> tuple[float, float, str]:
        data = [c for c in self.cells if c[2] != "name"]
        if first and cell.x0 < data[0][0] - 2:
            return (0.0, 0.0, "name")
        aligned = [c for c in data if abs(c[0] - cell.x0) <= 2]
        if aligned and cell.x1 - cell.x0 > aligned[0][1] - aligned[0][0] + 20:
            return aligned[0]  # a text wider than its column, left-aligned under its heading
        centre = (cell.x0 + cell.x1) / 2
        inside = [c for c in data if c[0] - 2 <= centre <= c[1] + 2]
        return min(inside or data, key=lambda c: abs((c[0] + c[1]) / 2 - centre))


_DATED = re.compile(r"\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})(?:\s+(?:à\s+)?\d{1,2}\s*[h:]\s*\d{2})?")


@dataclass(slots=True)
class _HeadingRead:
    """What a heading row says beyond its columns: the texts of its cells naming no column
    of ours (their values are not read), and the columns headed by a date before the
    specimen's collection (x0, x1, the date) when one of them would have been taken for
    today's result and no other column is today's."""

    unknown: list[str] = field(default_factory=list)
    stale: list[tuple[float, float, str]] = field(default_factory=list)


def _heading(row: _Row, collected: str | None = None,
             read: _HeadingRead | None = None) -> tuple[_Heading, str] | None:
    """The columns a heading row names, and the section its first cell names when it is
    no heading ('BILAN LIPIDIQUE | 04/01/2021 | Valeurs de référence'). The specimen's
    date heading a column ('04/01/2023 11:30') is the result's column, later dates the
    antériorités'; a date before ``collected`` (the specimen's collection day, YYYY-MM-DD)
    is an antériorité's, whatever its words ('Résultat du 12/01/2026' beside a heading
    the text layer merged: today's column unread, never that one). ``read`` gets what
    the row says besides."""
    read = read if read is not None else _HeadingRead()
    kinds = []
    dates: dict[float, str] = {}
    units: dict[float, str] = {}
    for c in row.cells:
        key = _fold(c.text).rstrip(" :").replace("(s)", "s")
        kind = _columns().get(key, "") or _merged_result(key)
        if not kind and _DATED.fullmatch(c.text.strip()):
            kind = "date"
            dates[c.x0] = c.text.strip()
        elif not kind and (m := _DATED.search(c.text)):
            # 'Antériorité du 12/01/2025', 'Antérieur (12/01/25)', 'Résultat du 12/03/2025',
            # 'Le 12/01/2025', 'Du 12/01/25'
            rest = _fold(c.text[:m.start()] + " " + c.text[m.end():]).strip(" :()-")
            rest = re.sub(r"(?:^|\s+)(?:du|le|au)$", "", rest).replace("(s)", "s")
            kind = "date" if not rest else _columns().get(rest, "")
            if kind == "result":
                kind = "dated result"  # today's, unless another column is (_dated_columns)
            if kind in ("previous", "date", "dated result"):
                dates[c.x0] = m.group(0)
        elif not kind and (unit := _unit_headed(c.text)) is not None:
            kind = "result"  # 'Résultat (G/L)'
            units[c.x0] = unit
        kinds.append((c.x0, c.x1, kind))
    percent = {x0 for x0, _, k in kinds if k == "percent"}
    kinds = [(x0, x1, "result" if k == "percent" else k) for x0, x1, k in kinds]
    dated, stale = _before_collection(kinds, dates, collected)
    if stale and _columns_named(_dated_columns(kinds)):
        read.stale = stale  # a heading, but for the column taken as today's
    kinds = _dated_columns(dated)
    if kinds is None or not _columns_named(kinds):
        return None
    section = ""
    if not kinds[0][2]:  # 'BILAN LIPIDIQUE', 'Autres examens de biochimie :' over the names
        section = row.cells[0].text if _is_section(row.cells[0].text) else ""
        kinds[0] = (*kinds[0][:2], "name")
    read.unknown = [c.text for c, (*_, k) in zip(row.cells, kinds, strict=True)
                    if not k and re.search(r"[^\W\d_]{2}", c.text)]  # no rule nor stray '|'
    cells = [(x0, x1, k or "ignore") for x0, x1, k in kinds]
    if cells[0][2] != "name":
        cells.insert(0, (0.0, 0.0, "name"))
    return _Heading(cells, {x: d for x, d in dates.items()
                            if any(c[0] == x and c[2] == "previous" for c in cells)},
                    percent, units), section


@cache
def _merged_result(key: str) -> str:
    """'result' for a heading cell holding the result's heading and the next one's run
    together ('Résultat Unité', 'RésultatUnité', 'Résultat Valeurs de référence'), as a
    text layer or OCR merges cells set close: read as the result's column (values and
    units are told apart by their tokens, not their column), else ''."""
    for heading, column in sorted(_columns().items(), key=lambda hc: -len(hc[0])):
        rest = key[len(heading):].strip(" :") if column == "result" \
            and key.startswith(heading) else ""
        if rest and _columns().get(rest) in ("unit", "reference"):
            return "result"
    return ""


def _column_day(text: str) -> str | None:
    """The day (YYYY-MM-DD) of a column heading's date ('12/01/2026', '12/01/26 08:15'),
    None when it is no date."""
    m = re.match(r"(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})", text)
    if m is None:
        return None
    year = int(m.group(3))
    if len(m.group(3)) == 2:  # '12/01/26': this century unless that is in the future
        year += 2000 if 2000 + year <= date.today().year else 1900
    try:
        return date(year, int(m.group(2)), int(m.group(1))).isoformat()
    except ValueError:
        return None


def _columns_named(kinds: list[tuple[float, float, str]] | None) -> bool:
    """Whether heading cells make a result table's heading: a result column and a unit,
    reference or antériorité column."""
    named = {k for *_, k in kinds or [] if k}
    return "result" in named and bool(named & {"unit", "reference", "previous"})


def _before_collection(kinds: list[tuple[float, float, str]], dates: dict[float, str],
                       collected: str | None
                       ) -> tuple[list[tuple[float, float, str]], list[tuple[float, float, str]]]:
    """Columns headed by a date before the specimen's collection made antériorités: such a
    column is never today's result, even headed 'Résultat du ...' or alone dated (today's
    heading unread: merged by the text layer into the next cell). Also those columns
    (x0, x1, date) when one would have been taken for today's and no column is left to be
    today's."""
    if collected is None:
        return kinds, []
    older = {x0 for x0, _, kind in kinds if kind in ("date", "dated result")
             and (day := _column_day(dates[x0])) is not None and day < collected}
    picked = next((x0 for wanted in ("dated result", "date") for x0, _, kind in kinds
                   if kind == wanted), None)  # as _dated_columns picks today's
    kinds = [(x0, x1, "previous" if x0 in older else kind) for x0, x1, kind in kinds]
    if picked not in older or any(k in ("result", "date", "dated result") for *_, k in kinds):
        return kinds, []
    return kinds, [(x0, x1, dates[x0]) for x0, x1, _ in kinds if x0 in older]


def _dated_columns(kinds: list[tuple[float, float, str]]
                   ) -> list[tuple[float, float, str]] | None:
    """Which of the columns headed by a date is today's result: a column headed 'Résultat'
    with no date makes every dated one an antériorité ('Résultat | Résultat du 12/01/2026');
    else the first headed 'Résultat du <date>', else the first headed by a date alone ('Le
    04/02/2026 | Le 12/01/2026'); the others hold former results, never today's. None: a
    row of dates alone (under a heading), no heading."""
    found = {k for *_, k in kinds}
    if "result" not in found:
        dated = ([n for n, (*_, k) in enumerate(kinds) if k == "dated result"]
                 or [n for n, (*_, k) in enumerate(kinds) if k == "date"])
        if not dated or ("dated result" not in found and not found & {"unit", "reference"}):
            return None
        kinds = [*kinds[:dated[0]], (*kinds[dated[0]][:2], "result"), *kinds[dated[0] + 1:]]
    return [(x0, x1, "previous" if k in ("date", "dated result") else k)
            for x0, x1, k in kinds]


# A unit printed after a heading or a section's name: 'Résultat (G/L)', 'Résultat en mmol/L',
# 'IONOGRAMME (mmol/L)'
_UNIT_AFTER = re.compile(r"^(?P<rest>.*?)\s*(?:\((?P<p>[^()]+)\)|\ben\s+(?P<en>\S+))\s*:?\s*$")


def _unit_after(text: str) -> tuple[str, str] | None:
    """(what precedes, the unit) of a text ending with a unit we know, if it does."""
    m = _UNIT_AFTER.match(text.strip())
    unit = m and (m.group("p") or m.group("en"))
    if not m or not unit or not m.group("rest") or not to_ucum(unit.strip()).mapped:
        return None
    return m.group("rest"), unit.strip()


def _unit_headed(text: str) -> str | None:
    """The unit of a result column's heading printing it ('Résultat (G/L)')."""
    found = _unit_after(text)
    if found is None:
        return None
    key = _fold(found[0]).rstrip(" :").replace("(s)", "s")
    return found[1] if _columns().get(key) == "result" else None


# -- tokens -------------------------------------------------------------------------------------
# '1.234,5': thousands by point and decimals by comma together, as some LIS print counts
_NUM = (r"(?:\d{1,3}(?:\.\d{3})+,\d+(?![\d.,])"
        r"|\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:,\d+)?(?![\d.,])|\d+(?:[.,]\d+)?)")
# A number, not a part of a word or code; a flag may be glued to it ('5,9H'), and a number
# cut before its decimals ('5' of '5,9X') is none
_NUM_AT = re.compile(rf"(?<![\w.,/]){_NUM}(?!(?!(?:HH|LL|H|L)\b)[\w/^]|[.,]\d|-[^\W\d_])")
# A minus sign before a value ('-2,1', '− 2,1': a base excess, a delta): glued to the number,
# or apart by one blank
_SIGNED = re.compile(rf"[-\u2212](?P<gap>\s?)(?={_NUM})")
# The measure's uncertainty printed after the value ('5,2 ± 0,2 mmol/L'): no second value
_UNCERTAINTY = re.compile(rf"(?:±|\+/-)\s?{_NUM}(?:\s?%)?")
_DATE = re.compile(r"\(?(?<![\d/])\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})(?![\d/])\)?")
_DATE_WORDS = re.compile(r"(?i)\d{1,2}(?:er)?\s+(?:janv|f[ée]v|mars|avr|mai|juin|juil|ao[uû]|sept"
                         r"|oct|nov|d[ée]c)[a-zéû]*\.?(?:\s+\d{4})?")
# What ends a result table: the biologist's validation, a signature
# ('Compte rendu validé biologiquement par', 'Validation biologique : Dr ...', 'Document
# validé électroniquement')
_TABLE_END = re.compile(r"(?i)\br[ée]sultats?\s+valid|\bvalid[ée]s?\s+(?:le|par"
                        r"|biologiquement|[ée]lectroniquement|techniquement|m[ée]dicalement)\b"
                        r"|\bvalidation\s+(?:biologique|m[ée]dicale)\b"
                        r"|\bsignature\b|\bfin du compte[ -]rendu"
                        # the biologist's conclusion under the table: its lines are no
                        # comment of the last result, nor the end of its name
                        r"|^\W{0,3}(?:en\s+)?conclusions?\b(?:\s*[:.\-]|\s*$|\s{3}"
                        r"|\s+(?-i:[A-ZÀ-Ý]))")
# 'N : 0,11-0,44', 'VR: 3,5-5,0': a label before a range, read as nothing
_REF_LABEL = re.compile(r"(?i)(?:n|vn|vr|vu|normales?|r[ée]f\.?)\s*:\s*(?=[<>(\d]|inf|sup)")
_PRE_FLAG = re.compile(r"\*+(?=\s*\d|\s*$)")  # '* 4,10': the abnormal mark printed before a value
_MAX_GAP_ROWS = 4  # rows without a result after which a table's heading no longer holds
_FRACTION = re.compile(r"(?<![\d/])\d+\s?/\s?\d+(?![\d/])")  # 'page 1/2'
_TIME = re.compile(r"(?<!\d)\d{1,2} ?[h:] ?\d{2}(?!\d)")
_COMPARATOR = (r"(?P<cmp><=|>=|[<>\u2264\u2265]"
               r"|(?i:inf(?:\.|erieure?|érieure?)?\s*(?:à|a)?|sup(?:\.|erieure?|érieure?)?"
               r"\s*(?:à|a)?))")
_BOUND = re.compile(rf"[(\[]?\s*{_COMPARATOR}\s*(?P<n>{_NUM})(?![\w/])\s*[)\]]?")
# a limit may be signed ('-2,0 - +3,0': a base excess's range); a range in square brackets
# may part its limits by ';' ('[3,5 ; 5,0]'), and then ends with its bracket
_RANGE = re.compile(rf"(?:\(|(?P<br>\[))?\s*(?P<lo>[-\u2212+]?{_NUM})\s*(?:-|–|à|a|(?(br);|(?!)))"
                    rf"\s*(?P<hi>[-\u2212+]?{_NUM})(?![\w/])\s*(?(br)\]|\)?)")
_PAREN = re.compile(rf"\(\s*(?P<n>{_NUM})\s*\)")
# A range's label naming an age ('Enfant < 15 ans :', 'Homme > 50 ans :', '1 - 3 mois :'):
# its figures are no range, the cell is kept whole
_AGE_LABEL = re.compile(r"(?i)\d\s*(?:ans?|mois|jours?|j|semaines?|sem)\.?\s*:")
_SEX_LABEL = re.compile(r"(?i)(?:h|f|hommes?|femmes?|enfants?|adultes?)\s*:\s*$")
_METHOD = re.compile(r"(?i)^\(?\s*(?:(?:m[ée]thode|technique|automate|r[ée]actif|formule"
                     r"|[ée]quation)s?\b|selon\b|calcul[ée]e?\s+(?:selon|par)\b)")
_WORD = re.compile(r"\S+")
# What a qualitative word goes on with ('Présence d'oxalate de calcium', 'Absence de
# sang'): the rest of the cell is the value's, never a unit ('d' of 'd'')
# why no result was obtained, printed after the words saying so to the cell's end ('Non fait :
# tube manquant', 'Ininterprétable (hémolyse)', 'Non effectué - prélèvement coagulé')
_REASON = re.compile(r"\s*[:(\-–,]\s*[^\W\d_][^\d<>]*$")
_QUALIFIED = re.compile(r"\s+(?:de|du|des|d['’]|en)(?=[\s\w]).*$", re.IGNORECASE)
# Lines that are the page's or the report's, never a comment on a result
_NOT_COMMENT = re.compile(r"(?i)\b(?:[ée]dit[ée]|imprim[ée]|valid[ée]|sign[ée])s?\s+le\b"
                          r"|^\s*biologistes?\b[^:]{0,30}:"  # 'Biologiste responsable : Dr ...'

                          r"|\bpage\s*\d+\s*(?:/|sur)\s*\d+|^\s*\d+\s*/\s*\d+\s*$")
_SECTION_WORDS = re.compile(r"^[^\W\d_][^\W\d_ '\-/&]*(?:[ '\-/&(]+[^\W\d_]+\)?)*$")


@dataclass(slots=True)
class _Tok:
    kind: str  # num, bound, range, unit, flag, preflag, word, date, skip, text
    start: int
    end: int
    column: str
    match: re.Match[str] | None = None
    text: str = ""
    doubtful: bool = False  # a value whose sign may not be its own ('- 2,1' with no heading)


def _tokens(text: str, column: str, last: _Tok | None = None) -> list[_Tok]:
    """The tokens of one cell's text (``column``: the heading it is under, '' without;
    ``last``: the line's token before the cell, if any)."""
    out: list[_Tok] = [last] if last is not None else []
    folded = _fold_same_length(text)
    i = 0
    n = len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        tok = _token_at(text, folded, i, column, out)
        out.append(tok)
        i = max(tok.end, i + 1)
    return out[1:] if last is not None else out


def _fold_same_length(s: str) -> str:
    out = []
    for c in s:
        base = "".join(ch for ch in unicodedata.normalize("NFKD", c)
                       if not unicodedata.combining(ch)).lower()
        if c == "’":
            base = "'"  # 'absence d’échantillon' as the tables spell it
        out.append(base[:1] if len(base) >= 1 and base[:1].isascii() else c.lower()[:1] or c)
    return "".join(out)


def _token_at(text: str, folded: str, i: int, column: str, before: list[_Tok]) -> _Tok:
    after_value = bool(before) and before[-1].kind in ("num", "unit", "bound", "flag")
    if after_value and (m := _flag_pattern().match(text, i)):
        return _Tok("flag", i, m.end(), column, m, m.group(0))
    if after_value and (m := _bracket_flag_pattern().match(text, i)):  # '5,9 (H)', '[L]'
        return _Tok("flag", i, m.end(), column, m, m.group("f"))
    if not after_value and (m := _pre_flag_at(text, i)):
        sign = m.group("b") or m.group("f")
        return _Tok("preflag", i, m.end(), column, m, sign)
    for kind, pattern in (("date", _DATE), ("date", _DATE_WORDS), ("skip", _TIME),
                          ("skip", _FRACTION), ("skip", _REF_LABEL), ("preflag", _PRE_FLAG)):
        if (m := pattern.match(text, i)) and (kind != "skip" or not _is_unit_at(text, i)):
            return _Tok(kind, i, m.end(), column, m, m.group(0))
    if (m := _unit_pattern().match(text, i)) and (before or column == "unit") \
            and (i == 0 or not text[i - 1].isalnum()):
        return _Tok("unit", i, m.end(), column, m, m.group(0))
    if (m := _word_pattern().match(folded, i)) and (i == 0 or not folded[i - 1].isalpha()) \
            and (_words()[m.group(0)]["kind"] != "specimen_problem" or column in ("result", "")):
        # a specimen's fault ('Prélèvement hémolysé') is a value under the result's heading
        # (or outside a table) only: elsewhere the lab's remark
        end = m.end()
        if _words()[m.group(0)]["kind"] == "qualitative" \
                and (rest := _QUALIFIED.match(text, end)):
            end = rest.end()  # 'Présence d'oxalate de calcium': the phrase is the value
        elif _words()[m.group(0)]["kind"] in ("no_result", "specimen_problem") \
                and (rest := _REASON.match(text, end)):
            end = rest.end()  # 'Non fait : tube manquant': why, kept with it
        return _Tok("word", i, end, column, m, text[i:end])
    if (m := _RANGE.match(text, i)) and _NUM_AT.match(text, m.start("lo") + (
            text[m.start("lo")] in "-\u2212+")):
        return _Tok("range", i, m.end(), column, m, m.group(0))
    if m := _BOUND.match(text, i):
        return _Tok("bound", i, m.end(), column, m, m.group(0))
    if m := _PAREN.match(text, i):
        return _Tok("num", i, m.end(), column, m, m.group("n"))
    if after_value and (m := _UNCERTAINTY.match(text, i)):
        return _Tok("uncertainty", i, m.end(), column, m, " ".join(m.group(0).split()))
    if not after_value and (m := _SIGNED.match(text, i)) \
            and (num := _NUM_AT.match(text, m.end())):
        # a negative value: apart from its sign ('- 2,1') only under the result's heading
        # is it surely one (without, the dash may be a separator: the value is not filed)
        return _Tok("num", i, num.end(), column, None, "-" + num.group(0),
                    doubtful=bool(m.group("gap")) and column != "result")
    if text[i] == "(" and _NUM_AT.match(text, i + 1):
        return _Tok("skip", i, i + 1, column)  # '(0,60 g/L)': the value in another unit
    if text[i] == "(" and (before or column == "unit") \
            and (m := _unit_pattern().match(text, i + 1)) and text[m.end():m.end() + 1] == ")":
        return _Tok("unit", i, m.end() + 1, column, m, m.group(0))  # '(mmol/L)'
    if m := _NUM_AT.match(text, i):
        digits = re.sub(r"\D", "", m.group(0).split(",")[0].split(".")[0])
        if len(digits) > 7 or re.match(r"0\d", m.group(0)):
            return _Tok("text", i, m.end(), column, m, m.group(0))  # an id, a phone number
        return _Tok("num", i, m.end(), column, m, m.group(0))
    m = _WORD.match(text, i)
    assert m is not None
    if (before or column == "unit") and (spaced := _spaced_unit_at(text, m)) is not None:
        return _Tok("unit", i, spaced.end(), column, spaced, spaced.group(0))
    if (before or column == "unit") and re.search(r"[/%^*²³\d]", m.group(0)) \
            and not m.group(0).isdigit() and to_ucum(m.group(0)).mapped:
        # a spelling the unit table knows once folded ('mL/min/1,73m²'); a letter alone
        # ('H', the men's range) is none
        return _Tok("unit", i, m.end(), column, m, m.group(0))
    return _Tok("text", i, m.end(), column, m, m.group(0))


_SPACED_UNIT = re.compile(r"\S*/\S*\d \S+")


def _spaced_unit_at(text: str, word: re.Match[str]) -> re.Match[str] | None:
    """A unit printed with a blank inside that the unit table knows only folded ('ml/min/1,73
    m²', 'mL/min/1.73 m2'): read whole. Word by word, 'ml/min/1,73' was no unit and 'm²' was
    read as the value's unit (an eGFR filed in square metres) or dropped with it."""
    m = _SPACED_UNIT.match(text, word.start())
    if m is None or to_ucum(word.group(0)).mapped or not to_ucum(m.group(0)).mapped:
        return None
    return m


def _word_of(tok: _Tok) -> dict[str, str]:
    """The row of tables/pdf_lab_value_words.csv a word token was read as (its first word
    when it is a phrase: 'Présence de cristaux')."""
    assert tok.match is not None
    return _words()[tok.match.group(0)]


def _is_unit_at(text: str, i: int) -> bool:
    return bool(_unit_pattern().match(text, i))


# -- numbers ------------------------------------------------------------------------------------
def _number(raw: str, comma_decimals: bool) -> tuple[float, str] | None:
    """(value, how it was read) of a number as printed; None when it cannot be one."""
    s = re.sub(r"[ \u00a0\u202f]", "", raw).replace("\u2212", "-").lstrip("+")
    if re.fullmatch(r"-?\d{1,3}(?:\.\d{3})+,\d+", s):
        s = s.replace(".", "")  # '1.234,5': thousands by point, decimals by comma
    if "," in s and "." not in s:
        s = s.replace(",", ".")
    elif re.fullmatch(r"\d{1,3}\.\d{3}", s) and comma_decimals:
        s = s.replace(".", "")  # '1.250' in a report whose decimals are commas: thousands
    try:
        return float(s), s
    except ValueError:
        return None


def _comma_decimals(rows: list[_Row]) -> bool:
    """Whether the report writes its decimals with a comma (the French way): more numbers
    with a comma then one or two digits than with a point then one or two digits."""
    commas = points = 0
    for row in rows:
        commas += len(re.findall(r"(?<![\d,])\d+,\d{1,2}(?![\d,])", row.text))
        points += len(re.findall(r"(?<![\d.])\d+\.\d{1,2}(?![\d.])", row.text))
    return commas > points


# -- one line of the table ----------------------------------------------------------------------
@dataclass(slots=True)
class _Value:
    text: str
    num: float | None = None
    comparator: str | None = None
    word: dict[str, str] | None = None
    unit: str | None = None
    flag: str | None = None
    reference: str | None = None
    conf: float = 100.0
    column: str = ""  # the heading it was under ('' without)
    below: bool = False  # read on the line under its analysis's (another unit)
    bold: bool = False  # the value printed in bold type
    doubtful: bool = False  # a minus sign apart before it, outside a result column
    uncertainty: str | None = None  # '± 0,2' printed after it
    checked: bool = False  # 'contrôlé' printed after it (tables/pdf_lab_checked_marks.csv)
    raw: list[str] = field(default_factory=list)  # as printed: value, flag, unit, words after


@dataclass(slots=True)
class _Line:
    row: _Row
    name: str
    values: list[_Value] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    previous: list[str] = field(default_factory=list)
    leftover: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # method, comments from lines below
    apart: bool = True  # the name in cells of its own (not the words before a value in one)
    unread: bool = False  # printed under 'Résultat', read as no value


def _comparator(sign: str) -> str:
    s = _fold(sign)
    if s.startswith("inf"):
        return "<"
    if s.startswith("sup"):
        return ">"
    return {"\u2264": "<=", "\u2265": ">="}.get(sign, sign)


def _read_line(row: _Row, heading: _Heading | None, comma: bool) -> _Line:
    """The name, values, references and antériorité of one row."""
    name_parts: list[str] = []
    toks: list[tuple[_Tok, _Cell]] = []
    previous: list[str] = []
    flag_words: list[str] = []
    apart = True
    unread = False  # a cell under 'Résultat' with no value we can read
    whole: list[str] = []  # ranges read whole (an age in their label)
    for n, cell in enumerate(_split(_joined_groups(row.cells), heading)):
        column = heading.column(cell, first=n == 0) if heading else ""
        if column == "name" and heading:
            name_parts.append(cell.text)
            continue
        if column == "previous":
            when = heading.date_of(cell) if heading else None
            dated = when is None or _DATE.search(cell.text) or _DATE_WORDS.search(cell.text)
            previous.append(cell.text if dated else f"{cell.text} ({when})")
            continue
        if column == "ignore":
            continue
        if column == "reference" and _AGE_LABEL.search(cell.text):
            whole.append(_ref_text(cell.text))  # 'Enfant < 15 ans : 150 - 420', as printed
            continue
        if column == "flag":
            flag = _flag_word(cell.text)
            if flag:
                flag_words.append(flag)
            continue
        if column == "result" and heading and heading.in_percent(cell) \
                and "%" not in cell.text and (m := _NUM_AT.search(cell.text)):
            cell = _Cell(cell.x0, cell.x1, f"{cell.text[:m.end()]} %{cell.text[m.end():]}",
                         cell.conf, cell.words)  # '55,2' under '%': 55,2 %
        if column == "result" and heading and (unit := heading.unit_of(cell)) \
                and not _unit_pattern().search(cell.text) and (m := _NUM_AT.search(cell.text)):
            cell = _Cell(cell.x0, cell.x1, f"{cell.text[:m.end()]} {unit}{cell.text[m.end():]}",
                         cell.conf, cell.words)  # '7,2' under 'Résultat (G/L)': 7,2 G/L
        cell_toks = _tokens(cell.text, column, toks[-1][0] if toks else None)
        if column == "result" and not any(t.kind in ("num", "bound", "word", "range")
                                          for t in cell_toks):
            unread = True
        if not heading and not toks:  # no heading: the name is what comes before a value
            first = next((k for k, t in enumerate(cell_toks)
                          if t.kind in ("num", "bound", "word", "range", "date", "preflag")),
                         None)
            if first is None:
                name_parts.append(cell.text)
                continue
            if first:
                name_parts.append(cell.text[:cell_toks[first].start].strip())
            cell_toks = cell_toks[first:]
            apart = not first
        toks.extend((t, cell) for t in cell_toks)
    line = _Line(row, " ".join(p for p in name_parts if p).strip(" :.*"), previous=previous,
                 apart=apart, unread=unread)
    _interpret(line, toks, comma)
    line.references.extend(whole)
    if flag_words:  # the 'Interprétation' column: the analysis's, in any of its units
        for value in line.values:
            value.flag = value.flag or flag_words[0]
    return line


def _split(cells: list[_Cell], heading: _Heading | None) -> list[_Cell]:
    """Cells as the heading's columns cut them: a value printed a few points after a long
    name ('Polynucléaires éosinophiles (%) 2') is in the result column, not the name."""
    if heading is None:
        return cells
    out: list[_Cell] = []
    for n, cell in enumerate(cells):
        if len(cell.words) < 2 or n:
            out.append(cell)
            continue
        parts: list[list[tuple[float, float, str, bool]]] = [[cell.words[0]]]
        column = heading.column(_Cell(*cell.words[0][:2], "", 0.0), first=True)
        for k, w in enumerate(cell.words[1:], start=1):
            here = heading.column(_Cell(w[0], w[1], "", 0.0))
            if here != column and column == "name" \
                    and re.fullmatch(r"[<>\u2264\u2265]?[-\u2212]?\d[\d,.]*(?:HH|LL|H|L|\*+)?",
                                     w[2]) \
                    and all(re.match(r"[<>\u2264\u2265]?[-\u2212]?[\d,.]", x[2])
                            or to_ucum(x[2]).mapped
                            for x in cell.words[k:]):  # only a value ending the name's cell
                parts.append([w])
                column = here
            else:
                parts[-1].append(w)
        out.extend(_Cell(p[0][0], p[-1][1], " ".join(w[2] for w in p), cell.conf, p)
                   for p in parts)
    return out


def _joined_groups(cells: list[_Cell]) -> list[_Cell]:
    """'4 700 000' printed in a spaced typewriter font (gaps over CELL_GAP): a number and
    the groups of three digits right after it are one number."""
    out: list[_Cell] = []
    for cell in cells:
        prev = out[-1] if out else None
        if prev is not None and cell.x0 - prev.x1 <= 2.5 * CELL_GAP \
                and re.fullmatch(r"\d{3}(?:\s.*)?", cell.text) \
                and re.search(r"(?:^|[\s:*])\d{1,3}(?: \d{3})*$", prev.text):
            out[-1] = _Cell(prev.x0, cell.x1, f"{prev.text} {cell.text}", prev.conf,
                            prev.words + cell.words)
        else:
            out.append(cell)
    return out


def _flag_word(text: str) -> str | None:
    """'Haut', 'Anormalement bas', 'Haut, croissant' in an 'Interprétation' column."""
    return _flags().get(_fold(text).split(",")[0].strip())


def _interpret(line: _Line, toks: list[tuple[_Tok, _Cell]], comma: bool) -> None:
    current: _Value | None = None
    done = False  # a range was read: what follows is no result (an antériorité)
    label = ""  # 'H :' before a range
    tail: list[str] = []  # what follows the range (no heading): an antériorité's words
    preflag: str | None = None
    unit_first = ""  # the unit column printed before the result's
    for n, (tok, cell) in enumerate(toks):
        if tok.kind == "date":  # an antériorité's date: it and its value are no result
            if current is not None and not done and len(line.values) > 1 \
                    and current is line.values[-1]:
                tail[:0] = line.values.pop().raw
            line.previous.append(" ".join([*tail, tok.text]))
            tail = []
            done = True
            continue
        in_ref = tok.column == "reference"
        if tok.kind == "range" or (tok.kind == "bound" and (in_ref or line.values)) \
                or (tok.kind == "word" and in_ref) \
                or (tok.kind == "word" and _word_of(tok)["kind"] == "see_comment"
                    and (in_ref or line.values) and not _see_comment_is_value(line, tok)):
            if done and not in_ref:
                tail.append(tok.text)
                continue
            line.references.append((label + " " + _ref_text(tok.text)).strip())
            label = ""
            current = None
            if not in_ref:
                done = True
            continue
        if tok.kind in ("text", "flag") and _sex_label(toks, n):
            label = tok.text.rstrip(" :") + " :"
            continue
        if tok.kind == "text" and tok.text == ":" and label:
            continue
        if tok.kind == "unit" and tok.column == "unit" and n and toks[n - 1][1] is cell \
                and toks[n - 1][0].kind == "text":
            continue  # the end of a unit we cannot read ('UI/100 mL'), never the unit ('mL')
        if tok.kind == "unit" and tok.column == "unit" and not line.values:
            unit_first = _as_printed(tok.text, line)  # 'Analyse | Unité | Résultat'
            continue
        if tok.kind == "unit" and line.values and line.values[-1].unit is None \
                and line.values[-1].num is not None and (tok.column == "unit" or current is None):
            line.values[-1].unit = _as_printed(tok.text, line)  # after the range's column
            continue
        if done and not in_ref:
            tail.append(tok.text)
            continue
        if in_ref:
            continue
        if tok.kind == "preflag":
            preflag = _flags().get(tok.text)
            continue
        if tok.kind == "num":
            parsed = _number(tok.text, comma)
            if parsed is None:
                continue
            if current is not None and current.unit is None and current.num is not None:
                line.leftover = True  # two numbers without a unit between: not read
                done = True
                continue
            current = _Value(tok.text, parsed[0], conf=cell.conf, column=tok.column,
                             raw=[tok.match.group(0) if tok.match else tok.text],
                             flag=preflag, bold=cell.bold_at(tok.start),
                             doubtful=tok.doubtful)
            preflag = None
            line.values.append(current)
        elif tok.kind == "bound":
            m = tok.match
            assert m is not None
            parsed = _number(m.group("n"), comma)
            if parsed is None:
                continue
            current = _Value(" ".join(tok.text.strip("() ").split()), parsed[0],
                             comparator=_comparator(m.group("cmp")), conf=cell.conf,
                             column=tok.column, raw=[tok.text], flag=preflag,
                             bold=cell.bold_at(m.start("n")))
            preflag = None
            line.values.append(current)
        elif tok.kind == "word":
            current = _Value(tok.text, word=_word_of(tok), conf=cell.conf,
                             column=tok.column, raw=[tok.text])
            line.values.append(current)
        elif tok.kind == "unit" and current is not None and current.unit is None:
            current.unit = _as_printed(tok.text, line)
            current.raw.append(tok.text)
        elif tok.kind == "unit" and line.references:
            pass  # the range's unit
        elif tok.kind == "uncertainty" and current is not None and current.num is not None:
            current.uncertainty = tok.text
            current.raw.append(tok.text)
        elif tok.kind == "flag" and current is not None and current.flag is None:
            current.flag = _flags()[tok.text]
            current.raw.append(tok.text)
        elif tok.kind == "text" and current is not None and _checked_mark(tok.text):
            current.checked = True  # '5,80 H (contrôlé)': measured again before validation
            current.raw.append(tok.text)
        elif current is not None:
            current.raw.append(tok.text)  # 'le' of '4,61 le 12/01/26', kept if it is one
    unitless = [v for v in line.values if v.unit is None and v.num is not None]
    if unit_first and len(unitless) == 1 and len(line.values) == 1:
        unitless[0].unit = unit_first
        unitless[0].raw.append(unit_first)
    if tail and line.previous:
        line.previous.append(" ".join(tail))  # '15/02/17 4,23': the antériorité's value
    elif any(_NUM_AT.search(t) for t in tail):
        line.leftover = True  # numbers after the range, with no date: not read
    _keep_results(line)


def _as_printed(unit: str, line: _Line) -> str:
    """A unit as printed: on an OCR'd page, what OCR misreads ('g/1', 'Imm3') as the unit
    (tables/pdf_lab_ocr_units.csv), wherever on the line the unit column is."""
    return _ocr_units().get(unit, unit) if line.row.source != TEXT_LAYER else unit


def _sex_label(toks: list[tuple[_Tok, _Cell]], n: int) -> bool:
    """'H :', 'Femmes :' right before a range: the range's label, not a flag."""
    text = toks[n][0].text
    k = n + 1
    if not text.endswith(":"):
        if k >= len(toks) or toks[k][0].text != ":":
            return False  # '7,2 H 4,0 - 6,0': a flag, then the range
        k += 1
    return bool(_SEX_LABEL.fullmatch(text.rstrip(":").strip() + " :")) and k < len(toks) \
        and toks[k][0].kind in ("range", "bound")


def _see_comment_is_value(line: _Line, tok: _Tok) -> bool:
    """'Voir commentaire' as the result (nothing read yet on a line with no heading) is the
    value, not the reference."""
    return not line.values and tok.column != "reference"


def _ref_text(raw: str) -> str:
    """A range as printed, without its brackets ('(3,5-5,0)', '[3,5-5,0]'). Limits parted by
    ';' ('[3,5 ; 5,0]') are parted by ' - ': ' ; ' is what joins a result's several ranges
    (by sex), and would read as two."""
    t = " ".join(raw.split())
    if t[:1] + t[-1:] in ("()", "[]"):
        t = t[1:-1].strip()
    if (m := _RANGE.fullmatch(f"[{t}]")) is not None and ";" in t:
        t = f"{m.group('lo')} - {m.group('hi')}"
    return t


def _keep_results(line: _Line) -> None:
    """A second value is a result only with a unit of its own, other than the first's (one
    analysis in two units); otherwise it is an antériorité or noise, and not read."""
    if len(line.values) < 2:
        return
    first = line.values[0]
    kept = [first]
    for v in line.values[1:]:
        if v.unit and v.num is not None and first.num is not None \
                and all(v.unit != k.unit for k in kept):
            kept.append(v)
        else:
            line.leftover = True
    line.values = kept


def _distance(value: float, ref: str) -> float | None:
    """How far ``value`` is from the limits of ``ref``, as a ratio (1 inside them); None
    when the range has no positive limit or the value is not positive."""
    # '1 800 - 7 500': numbers with their thousands (read digit group by digit group, the
    # range was 1 - 800 and a count fitted the percentage beside it)
    # a point alone is a decimal point here ('0.150 - 1.250'); '1.234,5' is thousands
    nums = [n[0] for x in re.findall(_NUM, ref) if (n := _number(x, False)) is not None]
    nums = [x for x in nums if x > 0]
    if not nums or value <= 0:
        return None
    low, high = min(nums), max(nums)
    return low / value if value < low else value / high if value > high else 1.0


def _assign_references(line: _Line, warnings: list[str], where: str) -> None:
    if not line.values or not line.references:
        return
    values = [v for v in line.values if not v.below]
    if len(values) == 1:
        values[0].reference = " ; ".join(line.references)
        return
    if len(line.references) == len(values):
        for v, r in zip(values, line.references, strict=True):
            v.reference = r
        return
    ref = " ; ".join(line.references)
    # the value the range fits: within _RANGE_FIT of its limits, and clearly nearer them
    # than any other ('7,2 mmol/L (1,30 g/L)' with '3,9 à 6,1': the mmol/L)
    near = sorted((d, n) for n, v in enumerate(values) if v.num is not None
                  and (d := _distance(v.num, ref)) is not None and d <= _RANGE_FIT)
    others = [d for d, _ in near[1:]]
    if near and all(d >= 2 * near[0][0] for d in others):
        values[near[0][1]].reference = ref
    else:
        warnings.append(f"PDF_LAB_RANGE_UNASSIGNED: {where}: one reference range for "
                        f"{len(line.values)} results in different units, fitting "
                        f"{'several' if near else 'none'}: given to none")


# -- the report ---------------------------------------------------------------------------------
@dataclass(slots=True)
class LabPdfResults:
    entries: list[Entry]
    warnings: list[str]
    lines_read: int  # result lines found (for the report's details)


@cache
def _collected() -> re.Pattern[str]:
    """The specimen's collection as laboratories print it, on folded text: the label
    ('Prélèvement du', 'Prélevé le', 'Date de prélèvement :', 'Date/heure de prélèvement',
    'Prélèvement effectué le', 'Prélèvement :'), the date (figures with '/', '.' or '-', or
    in words: '12 mars 2025', '1er mars 2025'), then the time if printed ('à 08h15',
    '08:15', '- 8h', 'Heure : 08h15'); a weekday before the date, ISO 8601 ('2025-03-12'),
    the time before the date ('Prélevé à 08h15 le 12/03/2025')."""
    months = "|".join(sorted((r["word"] for r in table("french_months")), key=len, reverse=True))
    return re.compile(
        r"(?:\bdate\s*(?:et|/)\s*heure\s+(?:de\s+|du\s+)?prelevement"
        r"|\bdate\s+(?:de\s+|du\s+)?prelevement|\bpre?l\.?\s+le\b"
        r"|\bprelevement\s+(?:(?:effectue|realise)e?\s+)?(?:du|le)\b|\bprelevee?s?\s+le\b"
        r"|\bprelevement\s*(?=:)|\bprelevee?s?(?=\s+a\s+\d))"
        r"\s*:?\s*(?:a\s+(?P<h0>\d{1,2})\s*(?:h|:)\s*(?P<mi0>\d{2})?\s+le\s+)?(?:le\s+)?"
        r"(?:(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)\s+)?"
        r"(?:(?P<d>\d{1,2})\s?[/.\-]\s?(?P<m>\d{1,2})\s?[/.\-]\s?(?P<y>\d{4}|\d{2})(?!\d)"
        r"|(?P<y3>\d{4})-(?P<m3>\d{2})-(?P<d3>\d{2})(?!\d)"
        rf"|(?P<d2>1er|\d{{1,2}})\s+(?P<mon>{months})\.?\s+(?P<y2>\d{{4}})(?!\d))"
        r"(?:\s*(?:a|-|,)?\s*(?:heure(?:\s+de\s+prelevement)?\s*:?\s*)?"
        r"(?P<h>\d{1,2})\s*(?:h|:)\s*(?P<mi>\d{2})?(?!\d))?")


def _collected_at(m: re.Match[str]) -> str | None:
    """One collection found, as ISO 8601 (to the minute, the hour or the day as printed);
    None when it is no date. A time that is none ('25h') leaves the day."""
    months = {r["word"]: int(r["month"]) for r in table("french_months")}
    if m.group("mon"):
        day = 1 if m.group("d2") == "1er" else int(m.group("d2"))
        month, y = months[m.group("mon")], m.group("y2")
    elif m.group("y3"):  # ISO 8601, as some LIS print it from their database
        day, month, y = int(m.group("d3")), int(m.group("m3")), m.group("y3")
    else:
        day, month, y = int(m.group("d")), int(m.group("m")), m.group("y")
    year = int(y)
    if len(y) == 2:  # '03/03/26': this century unless that is in the future
        year += 2000 if 2000 + year <= date.today().year else 1900
    ts = f"{year:04d}{month:02d}{day:02d}"
    hour, minute = (m.group("h"), m.group("mi")) if m.group("h") else (m.group("h0"),
                                                                     m.group("mi0"))
    for timed in ((f"{int(hour):02d}{minute or ''}",) if hour else ()) + ("",):
        try:
            return hl7_ts_to_iso(ts + timed)
        except ValueError:
            continue
    return None


def ends_a_table(text: str) -> bool:
    """Whether a line ends a laboratory's result table: the biologist's validation or
    signature, the conclusion ('Résultats validés par Dr ...', 'Fin du compte rendu')."""
    return _ends_table(" ".join(text.split()))


@cache
def _conclusion_titles() -> re.Pattern[str]:
    """tables/pdf_lab_conclusion_titles.csv's headings, at a line's start, alone or followed
    by ':' or '-' ('Synthèse :', 'AVIS BIOLOGIQUE'; 'Synthèse du profil' is none), folded."""
    titles = sorted((_fold(r["title"]) for r in table("pdf_lab_conclusion_titles")), key=len,
                    reverse=True)
    return re.compile(r"^\W{0,3}(?:" + "|".join(re.escape(t) for t in titles)
                      + r")\s*(?:[:\-]|$)")


def _ends_table(text: str) -> bool:
    """Whether a line ends a result table: the validation, a signature, the conclusion under
    'Conclusion' or another heading of the biologist's (tables/pdf_lab_conclusion_titles)."""
    return _TABLE_END.search(text) is not None \
        or _conclusion_titles().match(_fold(text)) is not None


def collection_days(lines: list[str]) -> list[str]:
    """The days (YYYY-MM-DD) of the specimen collections printed on ``lines`` (one page's),
    in order, up to a block of former results ('ANTÉRIORITÉS', 'Résultats antérieurs du
    ...': their collections are not this report's): what tells one report from the next in
    a PDF of several (a batch print of one patient's reports of different days, each
    report's results dated by its own specimen)."""
    out: list[str] = []
    for line in lines:
        if _block_title(line):
            break
        out.extend(d[:10] for m in _collected().finditer(_fold(line))
                   if (d := _collected_at(m)) is not None)
    return out


def collection_time(doc: PdfDocument, pages: list[int]) -> str | None:
    """The specimen's collection ('Prélèvement du 12/03/2026 à 08h15', 'Prélevé le
    03/03/26 à 08:15', 'Date/heure de prélèvement : 12.03.2025 08:15', 'Prélevé le 12 mars
    2025 à 8h15') printed on ``pages`` (one report's: a batch print holds several), as ISO
    8601, with Paris's offset when a time is printed. A report printing it twice, in its
    header without the time and above the results with it, is dated to the minute; the
    same day only (another day is another specimen's)."""
    return _collection_in([p.text or "" for p in doc.pages if p.number in pages])


def _collection_in(texts: list[str]) -> str | None:
    """collection_time's reading of ``texts`` (pages, or one report's lines)."""
    found: list[str] = []
    for text in texts:
        for m in _collected().finditer(_fold(text)):
            if (iso := _collected_at(m)) is not None:
                found.append(iso)
    if not found:
        return None
    timed = [f for f in found if "T" in f and f[:10] == found[0][:10]]
    return timed[0] if timed else found[0]


def lab_results(doc: PdfDocument, pages: list[int], parent_key: str, *,
                effective: str | None, issued: str | None,
                only: set[tuple[int, int]] | None = None) -> LabPdfResults:
    """The results of the result table(s) on ``pages`` of ``doc`` (on the lines ``only``,
    (page, line number), when the report shares a page with another), each a LAB_RESULT
    under ``parent_key``, dated by the specimen's collection (``collection_time``, else
    ``effective``)."""
    rows = _side_by_side([r for r in _rows(doc) if r.page in pages
                          and (only is None or (r.page, r.line) in only)])
    comma = _comma_decimals(rows)
    collected = (collection_time(doc, pages) if only is None
                 else _collection_in([r.text for r in rows]))
    when = collected or effective
    warnings: list[str] = []
    unknown_said: set[tuple[str, ...]] = set()  # unknown headings said (once per table)
    lines: list[tuple[_Line, str, str, _Heading | None]] = []
    heading: _Heading | None = None
    section = ""
    pending = ""  # a line naming an analysis alone, above its values
    last: _Line | None = None
    gap = 0  # rows since the heading or the last result
    furniture = _page_furniture(rows)
    # the columns of a heading refused for its only result column dated before the
    # collection: their values are antériorités of the lines read as outside a table
    stale: list[tuple[float, float, str]] = []
    page, started = 0, False  # started: a heading or a result read on this page
    former = 0  # the page of the block of former results we are in (0: none)
    # the name left alone at the foot of a page (and the line whose comment it was taken
    # for), carried to the next page's first values printed without a name: a table cut by
    # the page break between an analysis's name and its values
    tail: tuple[str, _Line | None] = ("", None)
    carried: tuple[str, _Line | None] = ("", None)
    for row in rows:
        if row.page != page:
            stale = []
            carried = tail if row.page == page + 1 else ("", None)
            page, started, tail = row.page, False, ("", None)
        if last is not None and row.page != last.row.page:
            last, pending = None, ""  # the page's header is no comment of the line above
        text = " ".join(row.text.split())
        if _previous_block(row):
            # 'ANTÉRIORITÉS', 'Résultats antérieurs du 12/01/2026': the lines under it are
            # former results, never this specimen's (a sodium of January filed as today's),
            # their own heading row included, to the next section or page
            heading, pending, last, former = None, "", None, row.page
            warnings.append(f"PDF_LAB_PREVIOUS_BLOCK: page {row.page} line {row.line + 1}: "
                            "a block of former results (antériorités): not filed as results "
                            "(read them on the report)")
            continue
        if former == row.page and not _is_section(text) and not _ends_table(text):
            continue
        former = 0
        read = _HeadingRead()
        found = _heading(row, collected[:10] if collected else None, read)
        _heading_warnings(read, found is not None, row, unknown_said, warnings)
        if found is None and read.stale:
            heading, stale, pending, last, gap = None, read.stale, "", None, 0
            started = True
            continue
        if found:
            stale = []
            heading, pending, last, gap = found[0], "", None, 0
            tail = ("", None)
            section = found[1] or section
            started = True
            continue
        if not started and _fold(text) in furniture:
            pending = ""  # the page's header ('LABORATOIRE BIOMED 35'), never a result
            continue
        gap += 1
        if _ends_table(text) or gap > _MAX_GAP_ROWS:
            heading, stale = None, []  # the table is over: what follows is read only by the table
            if _ends_table(text):
                # the section ends with its table: the next exam's results are not of its
                # specimen (an ECBU's leucocytes under the hemogram's 'HÉMATOLOGIE')
                last, pending, section = None, "", ""
                continue
        if _NOT_COMMENT.search(text):
            pending = ""  # 'Edité le ...', 'page 1/2': the page's, never a result
            continue
        row, former_values = _apart_stale(row, stale)
        line = _read_line(row, heading, comma)
        line.previous.extend(former_values)
        where = f"page {row.page} line {row.line + 1}"
        if last is not None and (_METHOD.match(text) or _formula_alone(text)) \
                and not any(v.unit for v in line.values):
            # 'Formule CKD-EPI 2009', 'CKD-EPI 2021' alone: its year no value
            last.extra.setdefault("method", text)
            continue
        # '(HbA1c)  6,5 %' under 'Hémoglobine glyquée': the name's end, not a method line
        # or '(ALAT)  35' under 'Alanine aminotransférase': not a method of the line above
        wrapped = bool(pending) and (_analyte(f"{pending} {line.name}") is not None
                                     or line.name.startswith("("))
        if last is not None and line.values and _below(line) and (line.name or not pending) \
                and not wrapped:
            _add_below(last, line, text)  # 'Soit : 10,02 mmol/l', '(méthode) 0.71 mmol/l'
            continue
        if not line.values and line.unread and line.name and heading is not None:
            warnings.append(f"PDF_LAB_VALUE_NOT_READ: {where}: what is printed under the "
                            "result's heading is no value we can read: no result filed (read "
                            "it on the report)")
        if not line.values:
            if last is not None and line.previous and not line.references \
                    and not line.name.strip(" :"):
                last.previous.extend(line.previous)  # the antériorité's date on the next line
                continue
            if last is not None and line.references and not line.name.strip(" :") \
                    or (last is not None and line.references
                        and _SEX_LABEL.search(line.name + " :")):
                last.references.extend(line.references)  # a range on the next line
                continue
            # the name's end right under it (its line or the name's line before), never
            # under comment lines (a conclusion's 'lèvement dans un mois.')
            if last is not None and gap == 1 and _name_goes_on(last, line, text):
                joint = "" if last.name.endswith(("/", "(", "-")) else " "
                last.name = f"{last.name}{joint}{text}"  # 'Indice de distribution' /
                gap = 0  # 'erythrocytaire (%)'
                continue
            if last is not None and (_METHOD.match(text) or _BELOW.match(text)):
                last.extra.setdefault("method", _LEAD.sub("", text))
                continue
            if _is_section(text) or (heading is None and len(text.split()) <= 10
                                     and _other_specimen(text)):
                # 'Examen cytobactériologique des urines (ECBU)' in lower case, outside a
                # table: the specimen of what follows
                section, pending, last = text, "", None
                tail = ("", None)
                continue
            if _NOT_COMMENT.search(text):
                pending = ""
                continue
            if _fold(text) in furniture:
                pending = ""  # the page's footer under the table: no comment of its last line
                continue
            if last is not None and not line.references and len(text) > 3 \
                    and heading is not None:
                last.extra.setdefault("comment", []).append(text)
                pending = text if len(text.split()) <= 6 and not text.endswith(".") else ""
                tail = (pending, last) if pending else tail
                continue
            pending = text if len(text.split()) <= 6 and ":" not in text else ""
            tail = (pending, last) if pending else tail
            continue
        name = line.name
        if not pending and carried[0] and (not name or name.startswith("(")) \
                and _analyte(f"{carried[0]} {name}") is not None:
            # 'Hémoglobine glyquée' at the foot of page 1, '(HbA1c) 6,5 %' or '6,5 %' under
            # the repeated heading of page 2: one result (its values were dropped unsaid)
            name = f"{carried[0]} {name}".strip()
            comments = carried[1].extra.get("comment", []) if carried[1] is not None else []
            if carried[0] in comments:
                comments.remove(carried[0])
                if not comments and carried[1] is not None:
                    del carried[1].extra["comment"]
        elif not name and not pending and heading is not None:
            warnings.append(f"PDF_LAB_NAME_NOT_READ: {where}: values under the table's "
                            "heading with no analysis name (on the page before, cut by the "
                            "page break?): not filed (read them on the report)")
        carried = ("", None)
        if pending and (not name or name.startswith("(")  # '(ALAT)' under its name
                        or _analyte(name) is None and _analyte(f"{pending} {name}")):
            name = f"{pending} {name}".strip()
            comments = last.extra.get("comment", []) if last is not None else []
            if pending in comments:
                comments.remove(pending)
                if not comments and last is not None:
                    del last.extra["comment"]
        line.name = name
        pending = ""
        if not name:
            continue
        lines.append((line, section, where, heading))
        last, gap, started, tail = line, 0, True, ("", None)
    _bold_flags([line for line, *_ in lines])
    entries: list[Entry] = []
    keys: set[str] = set()
    for line, section, where, line_heading in lines:
        _unit_in_name(line)
        _section_unit(line, section)
        _assign_references(line, warnings, where)
        for value in line.values:
            if value.doubtful:
                warnings.append(f"PDF_LAB_SIGN_DOUBTFUL: {where}: a dash apart before the "
                                "value, outside a result column: a minus sign or a separator, "
                                "it cannot be told: not filed (read it on the report)")
                continue
            entry = _entry(line, value, section, where, parent_key, when, issued, line_heading,
                           warnings)
            if entry is None:
                continue
            if line.row.source != TEXT_LAYER and value.conf < MIN_OCR_CONFIDENCE:
                warnings.append(f"PDF_LAB_OCR_DOUBTFUL: {where}: a result read by OCR with "
                                f"confidence {value.conf:g} < {MIN_OCR_CONFIDENCE:g}: not "
                                "filed (read it on the scan)")
                continue
            side = _out_of_range(value, comma) if value.flag is None else None
            if side is not None:
                entry.details["flag_computed"] = _computed_flag(side, value)
            if side is not None and not line.row.styles_seen:
                entry.details["flag_not_seen"] = True
                warnings.append(f"PDF_LAB_FLAG_NOT_SEEN: {where}: a value out of its printed "
                                "range with no flag read, on a scan where bold type (some "
                                "labs' only mark) cannot be seen: filed without a flag (check "
                                "it on the scan)")
            base, n = entry.key, 1
            while entry.key in keys:
                n += 1
                entry.key = f"{base}|{n}"
            keys.add(entry.key)
            entries.append(entry)
        if line.leftover:
            warnings.append(f"PDF_LAB_NOT_READ: {where}: text after the result was not read "
                            "as a result (an antériorité, or a number without a unit)")
    return LabPdfResults(entries, warnings, len(lines))


def _apart_stale(row: _Row, stale: list[tuple[float, float, str]]
                 ) -> tuple[_Row, list[str]]:
    """A row without its cells under a column dated before the collection (its centre
    within the heading's width, a few points aside), and their texts with that date: the
    line's antériorités ('102 (12/01/2026)'), never its values."""
    if not stale:
        return row, []
    kept: list[_Cell] = []
    former: list[str] = []
    for n, cell in enumerate(row.cells):
        centre = (cell.x0 + cell.x1) / 2
        under = next((d for x0, x1, d in stale if n and x0 - 10 <= centre <= x1 + 10), None)
        if under is None:
            kept.append(cell)
        else:
            dated = _DATE.search(cell.text) or _DATE_WORDS.search(cell.text)
            former.append(cell.text if dated else f"{cell.text} ({under})")
    return _Row(row.page, row.line, row.source, kept, row.styles_seen), former


HEADING_SHOWN = 40  # characters of an unknown heading said on the ledger (layout, capped)


def _heading_warnings(read: _HeadingRead, taken: bool, row: _Row,
                      said: set[tuple[str, ...]], warnings: list[str]) -> None:
    """What a heading row leaves unread, said once per table (a heading repeated on each
    page is said once): a column dated before the specimen's collection where today's
    result was looked for, and the headings naming no column of ours, so that an operator
    can add them to tables/pdf_lab_columns.csv (a heading is layout, no patient data; its
    length capped all the same)."""
    where = f"page {row.page} line {row.line + 1}"
    if read.stale:
        warnings.append(f"PDF_LAB_COLUMN_BEFORE_COLLECTION: {where}: the only column headed as "
                        "a result is dated before the specimen's collection (today's heading "
                        "unread): its values are antériorités, kept as the former results, "
                        "never filed as today's; today's read as outside a table")
    unknown = tuple(" ".join(t.split())[:HEADING_SHOWN] for t in read.unknown)
    if taken and unknown and unknown not in said:
        said.add(unknown)
        shown = "', '".join(unknown)
        warnings.append(f"PDF_LAB_COLUMN_UNKNOWN: {where}: column heading(s) '{shown}' name no "
                        "column we know (tables/pdf_lab_columns.csv): what is printed under "
                        "them was not read")


def _out_of_range(value: _Value, comma: bool) -> str | None:
    """Which side of the one range printed for it a value (no comparator) is on: 'H' above,
    'L' below ('3,5 - 5,0', '< 5', '> 60'); None inside it, or when that cannot be told
    (ranges by sex, words, no range)."""
    if value.num is None or value.comparator or not value.reference:
        return None
    ref = _ref_text(value.reference)
    if (m := _RANGE.fullmatch(ref)) is not None:
        low, high = _number(m.group("lo"), comma), _number(m.group("hi"), comma)
        if low is None or high is None:
            return None
        return "L" if value.num < low[0] else "H" if value.num > high[0] else None
    if (m := _BOUND.fullmatch(ref)) is not None and (n := _number(m.group("n"), comma)):
        cmp = _comparator(m.group("cmp"))
        out = {"<": value.num >= n[0], "<=": value.num > n[0], ">": value.num <= n[0],
               ">=": value.num < n[0]}.get(cmp, False)
        return ("H" if cmp.startswith("<") else "L") if out else None
    return None


COMPUTED_BY = "dmp-ingest"  # who computed a flag the lab did not print: we did, not the lab


def _computed_flag(side: str, value: _Value) -> dict[str, str]:
    """Our comparison of a value with its printed range, when the lab printed no flag.
    Why not the entry's interpretation: that field is OBX-8's, the producer's judgement of
    its result (HL7 v2.5 7.4.2.8; FHIR Observation.interpretation likewise); a flag we
    derive from the printed range is no judgement of the lab's (it may flag by colour, by a
    mark we cannot read, or know the range does not apply), so it is kept apart, said as
    ours: the HL7 table 0078 code, who computed it, and the range it was computed from."""
    return {"code": side, "system": "HL7-0078", "computed_by": COMPUTED_BY,
            "against": _ref_text(value.reference or "")}


def _page_furniture(rows: list[_Row]) -> set[str]:
    """The lines printed on more than one page (folded): the page's header and footer (the
    laboratory's name, the patient's banner) when read before the page's table."""
    pages: dict[str, set[int]] = {}
    for row in rows:
        pages.setdefault(_fold(row.text), set()).add(row.page)
    return {text for text, on in pages.items() if len(on) > 1}


BOLD_FLAG = "A"  # a value marked abnormal by bold type alone: abnormal, no direction printed


def _bold_flags(lines: list[_Line]) -> None:
    """A value in bold, on a report printing its other values in regular type, is marked
    abnormal ('A'; details.flag_printed 'bold') when no flag is printed beside it: some
    LIS (Cerballiance's, hospitals') mark an out-of-range result by bold type alone. A
    report printing every value in bold marks none."""
    # each line's own value only: a LIS printing every result in bold prints the same
    # result in another unit ('Soit : 5,83 mmol/L', a second column) in regular type
    values = [line.values[0] for line in lines
              if line.values and line.values[0].num is not None and line.row.styles_seen]
    if not any(v.bold for v in values) or all(v.bold for v in values):
        return
    for line in lines:
        for v in line.values:
            if v.bold and v.num is not None and v.flag is None:
                v.flag = BOLD_FLAG
                line.extra["flag_printed"] = "bold"


@cache
def _sections() -> tuple[str, ...]:
    return tuple(_fold(r["word"]) for r in table("pdf_lab_sections"))


# A line under a result naming how it was measured ('(Colorimétrie enzymatique)', printed
# '…(IFCC)' by some LIS) or giving it in another unit ('Soit : 10,02 mmol/l')
_LEAD = re.compile(r"^[.…\s]+")  # the dots some LIS print before a method
_BELOW = re.compile(r"(?i)^\s*(?:[.…]+\s*)?(?:\(|soit\b)")


def _below(line: _Line) -> bool:
    """A line with values whose name is a method or 'Soit': the result above, in another
    unit."""
    return not line.name or bool(_BELOW.match(line.name))


def _add_below(last: _Line, line: _Line, text: str) -> None:
    """The values of a line under a result: results of the same analysis in another unit
    (with the range printed beside them), never a second value in a unit already read."""
    _assign_references(line, [], "")
    for v in line.values:
        if v.num is not None and v.unit and all(v.unit != k.unit for k in last.values) \
                and last.values and last.values[0].num is not None:
            v.below = True
            last.values.append(v)
    name = _LEAD.sub("", line.name)
    if name.startswith("("):
        last.extra.setdefault("method", name)


def _name_goes_on(last: _Line, line: _Line, text: str) -> bool:
    """The analysis's name wrapped onto the line under its values: a line of words only,
    under the name's column, starting in lower case or with a unit in parentheses ('(fL)',
    'dL)')."""
    if line.references or line.previous or len(text.split()) > 6 or _NOT_COMMENT.search(text):
        return False
    cells = line.row.cells
    if len(cells) != 1 or abs(cells[0].x0 - last.row.cells[0].x0) > 4:
        return False
    if text[0].islower():
        return True
    m = re.fullmatch(r"\(([^()]+)\)", text)
    return bool(m and to_ucum(m.group(1)).mapped)


def _unit_in_name(line: _Line) -> None:
    """'Leucocytes (10*9/L)', 'Hématocrite (%)': the unit printed after the name, for a
    value printed without one."""
    m = re.search(r"\s*\(([^()]+)\)\s*$", line.name)
    if not m or not to_ucum(m.group(1).strip()).mapped:
        return
    bare = [v for v in line.values if v.unit is None and v.num is not None]
    if len(line.values) == 1 and bare:
        bare[0].unit = m.group(1).strip()
        line.name = line.name[:m.start()].strip()


def _section_unit(line: _Line, section: str) -> None:
    """'IONOGRAMME (mmol/L)': the unit a section's heading prints is its values' printed bare
    (after the name's own: 'Leucocytes (10*9/L)')."""
    found = _unit_after(section) if section else None
    rows = _analyte(line.name)
    if found is not None and _is_section(section) \
            and (rows is None or to_ucum(found[1]).unit in rows):  # never the INR's, the pH's
        for v in line.values:
            if v.num is not None and v.unit is None:
                v.unit = found[1]


def _is_section(text: str) -> bool:
    """'HÉMATOLOGIE', 'BIOCHIMIE SANGUINE': a line in capitals, words only, starting with a
    discipline of tables/pdf_lab_sections.csv (the laboratory's name in capitals is none)."""
    text = found[0] if (found := _unit_after(text)) else text  # 'IONOGRAMME (mmol/L)'
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters) \
        and bool(_SECTION_WORDS.match(text)) and _fold(text).startswith(_sections())


def _analyte(name: str) -> dict[str, dict[str, str]] | None:
    key = _fold(name).replace("*", "").strip(" :.")
    table_ = _analytes()
    if key in table_:
        return table_[key]
    bare = " ".join(re.sub(r"\([^)]*\)", " ", key).split())
    if bare in table_:
        return table_[bare]
    # 'Alanine aminotransférase (ALAT)', 'Gamma-glutamyltransférase (GGT)': the
    # abbreviation in parentheses ending the name, when it is a name of the table
    m = re.search(r"\(([^()]+)\)$", key)
    return table_.get(m.group(1).strip()) if m else None


@cache
def _formulas() -> tuple[tuple[str, str], ...]:
    rows = sorted(table("pdf_lab_formulas"), key=lambda r: len(r["word"]), reverse=True)
    return tuple((_fold(r["word"]), r["name"]) for r in rows)


def _formula_alone(text: str) -> bool:
    """Whether a line is a formula's name alone, with its year or not ('CKD-EPI 2021',
    '(MDRD)'): the method of the computed result above, never a result of that year."""
    words = "|".join(re.escape(word) for word, _ in _formulas())
    return bool(re.fullmatch(rf"\(?\s*(?:{words})(?:\s+(?:19|20)\d{{2}})?\s*\)?\.?",
                             _fold(text)))


def _formula_said(line: _Line) -> str | None:
    """The suffix (tables/pdf_lab_formulas.csv) of the formula the line's name, method or
    comment names ('Formule CKD-EPI 2009': '(ckd-epi)'), if any."""
    said = " ".join([line.name, str(line.extra.get("method", "")),
                     *line.extra.get("comment", [])])
    folded = _fold(said)
    return next((name for word, name in _formulas()
                 if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", folded)), None)


@cache
def _formula_unnamed() -> dict[str, str]:
    """{LOINC: why} of tables/pdf_lab_formula_unnamed.csv: codes of a computed analysis
    (the eGFR of no method) filed when the report names no formula for it."""
    return {r["loinc"]: r["why"] for r in table("pdf_lab_formula_unnamed")}


def _unnamed_formula_warning(line: _Line, row: dict[str, str] | None, where: str,
                             details: dict[str, Any], warnings: list[str]) -> None:
    """A computed result coded without its formula ('DFG  55 mL/min/1,73m²', no CKD-EPI or
    MDRD printed): said on the ledger and in details.formula_unnamed, so that nobody trends
    it against another equation's values as if it were the same analysis."""
    if row is None or (why := _formula_unnamed().get(row["loinc"])) is None \
            or _formula_said(line) is not None:
        return
    details["formula_unnamed"] = True
    warnings.append(f"PDF_LAB_FORMULA_UNNAMED: {where}: {why}: filed under the code of no "
                    "named equation")


def _by_formula(line: _Line) -> dict[str, dict[str, str]] | None:
    """The analysis as computed by the formula its name, method or comment names ('DFG
    estimé' over 'Formule CKD-EPI 2009': 'dfg estime (ckd-epi)'; 'LDL cholestérol' over
    'Formule de Friedewald': 'ldl cholesterol calcule'): each formula has its own code."""
    suffix = _formula_said(line)
    if suffix is None:
        return None
    bare = " ".join(re.sub(r"\([^)]*\)", " ", line.name).split())
    # the name without its parentheses first: 'DFG estimé (CKD-EPI)' + '(ckd-epi)' is 'dfg
    # estime (ckd-epi)', whereas the whole name's lookup falls back to 'dfg estime' alone
    # (the eGFR of no named equation)
    return _analyte(f"{bare} {suffix}") or _analyte(f"{line.name} {suffix}")


@cache
def _egfr_markers() -> tuple[tuple[str, str], ...]:
    """(folded word, marker) of tables/pdf_lab_egfr_markers.csv, longest word first."""
    rows = sorted(table("pdf_lab_egfr_markers"), key=lambda r: len(r["word"]), reverse=True)
    return tuple((_fold(r["word"]), r["marker"]) for r in rows)


@cache
def _egfr_by_marker() -> dict[tuple[str, str], dict[str, str]]:
    """{(creatinine-based LOINC, marker): row} of tables/pdf_lab_egfr_by_marker.csv."""
    return {(r["loinc"], r["marker"]): r for r in table("pdf_lab_egfr_by_marker")}


CYSTATIN = "cystatine c"  # the marker (tables/pdf_lab_egfr_markers.csv) of a cystatin eGFR
# what joins the marker words to each other and to the name: 'créatinine + cystatine C',
# 'créatinine et cystatine C', 'estimé à partir de la cystatine C', 'DFG par cystatine C'
_MARKER_JOIN = (r"(?:\+|&|/|,|-|\bet\b|\ba partir d(?:e la|e|u|es|')|\bpar(?: la)?\b"
                r"|\bselon(?: la)?\b|\bavec(?: la)?\b|\bde la\b|\bdu\b)")


@cache
def _marker_run() -> re.Pattern[str]:
    """The marker words of a folded name, with what joins them: one run to take out."""
    words = "|".join(re.escape(w) for w, _ in _egfr_markers())
    one = rf"(?<![\w])(?:{words})(?![\w])"
    return re.compile(rf"(?:\s*{_MARKER_JOIN}\s*)*{one}(?:\s*{_MARKER_JOIN}?\s*{one})*")


def _markers_said(line: _Line) -> frozenset[str]:
    """The filtration markers ('cystatine c', 'creatinine') the line's name or method
    names. Its comments are not read: 'Contrôle par la cystatine C conseillé' under a
    creatinine eGFR says nothing of the eGFR printed."""
    folded = _fold(f"{line.name} {line.extra.get('method', '')}")
    return frozenset(marker for word, marker in _egfr_markers()
                     if re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", folded))


def _without_markers(name: str) -> str:
    """The name with its marker words taken out: 'DFG estimé cystatine C (CKD-EPI 2012)' is
    'dfg estime (ckd-epi 2012)', 'DFG (créatinine et cystatine C, CKD-EPI)' 'dfg
    (ckd-epi)'."""
    bare = _marker_run().sub(" ", _fold(name))
    bare = re.sub(r"\(\s*[,;:-]?\s*", "(", bare)
    bare = re.sub(r"\s*[,;:-]?\s*\)", ")", bare)
    return " ".join(bare.replace("()", " ").split())


@dataclass(frozen=True, slots=True)
class _Marked:
    """An eGFR from cystatin C: its marker and its rows under that marker's code (None:
    LOINC has no code for it that we could confirm)."""
    marker: str
    rows: dict[str, dict[str, str]] | None


def _by_marker(line: _Line) -> _Marked | None:
    """An eGFR whose name or method names cystatin C ('DFG (cystatine C)', 'DFG créatinine
    + cystatine C'), coded as its creatinine-based reading, without the marker words, is
    recoded by tables/pdf_lab_egfr_by_marker.csv: the cystatin C eGFR is another analysis,
    never 69405-9 or 62238-1. None: no cystatin C named, or the line is no eGFR of the
    table ('Cystatine C  0,98 mg/L' itself)."""
    said = _markers_said(line)
    if CYSTATIN not in said:
        return None
    marker = f"creatinine + {CYSTATIN}" if "creatinine" in said else CYSTATIN
    base = _Line(row=line.row, name=_without_markers(line.name), extra=line.extra)
    rows = (_by_formula(base) or _analyte(base.name)) if base.name else None
    by_marker = _egfr_by_marker()
    known = {k for k, _ in by_marker}
    if not rows or not any(r["loinc"] in known for r in rows.values()):
        return None
    coded = {unit: {**r, "loinc": m["code"], "display": m["display"]}
             for unit, r in rows.items()
             if (m := by_marker.get((r["loinc"], marker))) is not None and m["code"]}
    return _Marked(marker, coded or None)


def _result_apart(line: _Line, value: _Value, ucum: Any) -> bool:
    """Whether a line outside any result table, naming an analysis our table does not know,
    is laid out as a result ('Vitamine B9   12,3 nmol/L   (10,4 - 42,4)'): the name in cells
    of its own, words only, a number in a unit we know, and a reference range. A sentence
    quoting a value ('Contrôle de la kaliémie à 4,8 mmol/L') or an address is none."""
    name = line.name
    return bool(line.apart and value.num is not None and ucum is not None and ucum.mapped
                and value.reference and name and len(name.split()) <= 8
                and re.search(r"[^\W\d_]{2}", name) and not _NOT_COMMENT.search(name))


def _entry(line: _Line, value: _Value, section: str, where: str, parent_key: str,
           when: str | None, issued: str | None, heading: _Heading | None,
           warnings: list[str]) -> Entry | None:
    ucum = to_ucum(value.unit) if value.unit else None
    marked = _by_marker(line)
    rows = marked.rows if marked else (_by_formula(line) or _analyte(line.name))
    if marked is not None and marked.rows is None:
        warnings.append(f"PDF_LAB_EGFR_UNCODED: {where}: an estimated GFR from {marked.marker} "
                        "by no named equation or one LOINC has no code of ours for: not coded, "
                        "never under the creatinine-based eGFR's code")
    specimen = _specimen(section)
    of_specimen = _specimen_analyte(specimen, line.name) if specimen else None
    if of_specimen is not None and specimen == BLOOD:
        rows = {**(rows or {}), **of_specimen}  # '7 200 /mm3' under 'HÉMOGRAMME'
        of_specimen = None
    elif of_specimen is not None:
        rows = of_specimen  # the urine's leucocytes, never the blood's
    blood_only = _specimen_analyte(BLOOD, line.name) if specimen != BLOOD else None
    row = None
    if rows is not None:
        row = rows.get(ucum.unit if ucum and ucum.mapped else "") or (
            rows.get("") if value.unit is None or (ucum and ucum.mapped) else None)
        if row is None and value.num is None and value.unit is None \
                and (value.word is None or value.word["kind"] != "qualitative") \
                and len({r["loinc"] for r in rows.values()}) == 1:
            row = next(iter(rows.values()))  # 'Non réalisé': the analysis has one code
    if rows is None and heading is None:
        if not _result_apart(line, value, ucum):
            if value.num is not None and ucum is not None and ucum.mapped and line.name:
                warnings.append(f"PDF_LAB_NOT_FILED: {where}: a value with a unit after words "
                                "naming no analysis we know, outside a result table and "
                                "without a range of its own: not filed (read it on the report)")
            return None
        warnings.append(f"PDF_LAB_UNKNOWN_ANALYSIS: {where}: an analysis not in our table, "
                        "outside a result table (its name, value, unit and range each apart): "
                        "filed unmapped under its printed name")
    elif rows is None and not (ucum and ucum.mapped and value.word is None
                               or value.column == "result"):
        warnings.append(f"PDF_LAB_NOT_FILED: {where}: a value of an analysis we do not know, "
                        "neither under the result's heading nor in a unit we know: not filed "
                        "(read it on the report)")
        return None
    if row is not None and of_specimen is None and _other_specimen(section):
        row = None  # every code of the table is of blood or serum
        warnings.append(f"PDF_LAB_OTHER_SPECIMEN: {where}: under a section of another "
                        "specimen than blood: filed unmapped under its printed name")
        if heading is None:
            return None
    if rows is not None and row is None and heading is None:
        # outside a result table only the analysis's name and a unit of its row make a
        # result: 'HbA1c : contrôle dans 3 mois' is none
        warnings.append(f"PDF_LAB_NOT_FILED: {where}: an analysis we know, outside a result "
                        "table, with no unit or a unit of none of its codes: not filed")
        return None
    if row is None and blood_only is not None and ucum is not None \
            and ucum.unit in blood_only and not _other_specimen(section):
        # leucocytes per mm3 are counted in blood and in urine alike: a section heading
        # ('HÉMOGRAMME', 'ECBU') says which, and none does
        warnings.append(f"PDF_LAB_SPECIMEN_UNSAID: {where}: an analysis counted in this unit "
                        "in blood and in other specimens (urine, CSF) alike, under no section "
                        "heading naming its specimen: filed unmapped under its printed name")
    elif row is None and (why := _ambiguous(line.name)) is not None:
        warnings.append(f"PDF_LAB_ANALYSIS_AMBIGUOUS: {where}: {why}: the printed name and "
                        "unit do not say which code: filed unmapped under its printed name")
    elif rows is not None and row is None:
        warnings.append(f"PDF_LAB_UNIT_UNEXPECTED: {where}: the analysis is known but not in "
                        "this unit: filed unmapped under its printed name")
    details: dict[str, Any] = {
        "pdf": {"page": line.row.page, "line": line.row.line + 1, "source": line.row.source,
                "confidence": value.conf if line.row.source != TEXT_LAYER else 100.0},
    }
    if section:
        details["section"] = section
    if line.previous:
        details["previous"] = " ".join(line.previous)
    if value.uncertainty:
        details["uncertainty"] = value.uncertainty
    if value.checked or _checked_below(line):
        details["checked"] = True
    _unnamed_formula_warning(line, row, where, details, warnings)
    details.update({k: list(v) if isinstance(v, list) else v for k, v in line.extra.items()})
    status, vtype, text_value = "final", "NM", value.text
    num = value.num
    if value.word is not None:
        kind = value.word["kind"]
        if kind == "qualitative":
            vtype = "CWE"
            details["value_code"] = {"system": "SCT", "code": value.word["code"],
                                     "display": value.word["display"]}
        elif kind in ("no_result", "specimen_problem"):
            status, vtype, text_value = "cancelled", None, None
            details["not_done"] = value.text
        else:  # see_comment
            comment = " ".join(details.get("comment", []))
            vtype, text_value = ("TX", comment) if comment else (None, None)
            if not comment:
                warnings.append(f"PDF_LAB_NO_COMMENT: {where}: the result says to see a "
                                "comment and none is printed under it: filed without value")
    elif value.comparator:
        vtype = "SN"
    code = row["loinc"] if row else " ".join(line.name.split())[:100]
    system = "LN" if row else LABEL_SYSTEM
    unit = (ucum.unit if ucum else None)
    key = f"result|pdf|{(when or 'nodate')[:16]}|{system}|{code}|{unit or ''}"
    return Entry(type=LAB_RESULT, key=key, source_ref=where, code=code, system=system,
                 display=line.name[:500], mapped=row is not None, value=text_value,
                 value_type=vtype, value_num=num, comparator=value.comparator, unit=unit,
                 unit_original=value.unit, reference_range=value.reference,
                 interpretation=value.flag, status=status, effective=when, issued=issued,
                 specimen_time=when, parent_key=parent_key, details=details)
