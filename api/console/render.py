"""What the console draws itself: SVG charts, the raw message with its error highlighted, and
a CDA document as readable HTML.

Everything from a message or a document is escaped here (html.escape) or by the templates'
autoescape; nothing of a document is ever executed: a CDA's narrative block is rebuilt from a
short whitelist of elements (paragraphs, lists, tables, line breaks), every other element
contributes its text only, and no attribute is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

STATUS_COLOURS = {"deposited": "#2e7d32", "duplicate": "#78909c", "failed": "#c62828",
                  "quarantined": "#ef6c00", "received": "#1565c0", "processing": "#6a1b9a",
                  "discarded": "#9e9e9e", "split": "#80cbc4", "held": "#8d6e63"}


# -- charts ------------------------------------------------------------------------------------
def stacked_bars(labels: list[str], series: dict[str, list[int]], *, title: str,
                 width: int = 720, height: int = 180) -> Markup:
    """A stacked bar chart (one bar per label, one colour per status) as inline SVG, with a
    text alternative; the tick labels are thinned so they never overlap."""
    n = max(len(labels), 1)
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    top = max(totals or [0]) or 1
    left, plot_h = 34, height - 30
    bar_w = (width - left - 4) / n
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'preserveAspectRatio="none" aria-label="{escape(title)}">',
             f'<title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{plot_h + 4}" x2="{width}" y2="{plot_h + 4}" '
             'stroke="#999"/>',
             f'<text x="2" y="12" class="tick">{top}</text>',
             f'<text x="2" y="{plot_h + 4}" class="tick">0</text>']
    for i in range(len(labels)):
        y = plot_h + 4
        for status, values in series.items():
            v = values[i]
            if not v:
                continue
            h = v / top * plot_h
            y -= h
            parts.append(f'<rect x="{left + i * bar_w + 1:.1f}" y="{y:.1f}" '
                         f'width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                         f'fill="{STATUS_COLOURS.get(status, "#555")}">'
                         f'<title>{escape(labels[i])} {escape(status)}: {v}</title></rect>')
    step = max(1, round(n / 8))
    for i in range(0, len(labels), step):
        parts.append(f'<text x="{left + i * bar_w:.1f}" y="{height - 4}" class="tick">'
                     f'{escape(labels[i])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(points: list[tuple[str, float]], *, low: float | None = None,
              high: float | None = None, width: int = 160, height: int = 40) -> Markup:
    """A small line chart of a repeated result (dates in order), the reference range shaded."""
    values = [v for _, v in points] + [v for v in (low, high) if v is not None]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0

    def y(v: float) -> float:
        return height - 4 - (v - lo) / span * (height - 8)

    xs = [4 + i * (width - 8) / max(len(points) - 1, 1) for i in range(len(points))]
    parts = [f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="trend">']
    if low is not None and high is not None:
        parts.append(f'<rect x="0" y="{y(high):.1f}" width="{width}" '
                     f'height="{max(y(low) - y(high), 1):.1f}" fill="#e8f5e9"/>')
    path = " ".join(f"{x:.1f},{y(v):.1f}" for x, (_, v) in zip(xs, points, strict=True))
    parts.append(f'<polyline points="{path}" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
    for x, (when, v) in zip(xs, points, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="2.2" fill="#1565c0">'
                     f'<title>{escape(when)}: {v:g}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))


_RANGE = re.compile(r"^\s*(-?\d+(?:[.,]\d+)?)\s*-\s*(-?\d+(?:[.,]\d+)?)\s*$")


def reference_bounds(text: str | None) -> tuple[float | None, float | None]:
    found = _RANGE.match(text or "")
    if not found:
        return None, None
    return (float(found.group(1).replace(",", ".")), float(found.group(2).replace(",", ".")))


# -- the raw message, its error highlighted ---------------------------------------------------
@dataclass
class Line:
    number: int
    parts: list[tuple[str, bool]] = field(default_factory=list)  # (text, highlighted)
    marked: bool = False


_HL7_LOCATION = re.compile(r"^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+)(?:\.(\d+))?)?")
_LINE_LOCATION = re.compile(r"\bline (\d+)")


def raw_lines(text: str, fmt: str | None, location: str | None) -> list[Line]:
    """The message one segment (HL7v2) or one line (XML) per row; the row the error's
    location names is marked, and for HL7v2 its field (and component) highlighted.
    Locations: 'OBX[10]-5' or 'OBX[10]-5.1' (segment position, field, component), 'MSH-9',
    'line 435, column 65', or an XPath-like path as parsers/cda and normalizers/cda write
    it ('/ClinicalDocument/component/structuredBody/component[3]/section': the element it
    names is found in the document, its line marked and its start tag highlighted)."""
    if fmt == "hl7v2":
        rows = [r for r in re.split(r"\r\n|\r|\n", text) if r != ""]
    else:  # the line breaks the XML parser counts (its sourceline), no others
        rows = re.split(r"\r\n|\r|\n", text)
        if rows and rows[-1] == "":
            rows.pop()
    lines = [Line(i + 1, [(row, False)]) for i, row in enumerate(rows)]
    if not location:
        return lines
    if fmt == "hl7v2":
        _mark_hl7(lines, rows, location)
    else:
        _mark_xml(lines, rows, location)
    return lines


def _mark_hl7(lines: list[Line], rows: list[str], location: str) -> None:
    found = _HL7_LOCATION.match(location.strip())
    if not found:
        return
    segment, position = found.group(1), int(found.group(2) or 0)
    field_no = int(found.group(3)) if found.group(3) else None
    component = int(found.group(4)) if found.group(4) else None
    # OBX[10]: the 10th segment of the message (the parsers' numbering), which is an OBX;
    # without a position (MSH-9), the first segment of that name
    if 0 < position <= len(rows) and rows[position - 1][:3] == segment:
        candidates = [position - 1]
    else:
        candidates = [i for i, row in enumerate(rows) if row[:3] == segment][:1]
    for i in candidates:
        row = rows[i]
        lines[i].marked = True
        if field_no is None or len(row) < 4:
            return
        sep = row[3] if segment == "MSH" else "|"
        fields = row.split(sep)
        # MSH-1 is the separator itself: MSH-n is fields[n-1]; other segments fields[n]
        index = field_no - 1 if segment == "MSH" else field_no
        if not 0 < index < len(fields) and not (segment == "MSH" and index == 0):
            return
        before = sep.join(fields[:index]) + (sep if index else "")
        target = fields[index] if index < len(fields) else ""
        after = (sep + sep.join(fields[index + 1:])) if index + 1 < len(fields) else ""
        if component is not None and segment != "MSH" and "^" in target:
            comps = target.split("^")
            if 0 < component <= len(comps):
                pre = "^".join(comps[:component - 1]) + ("^" if component > 1 else "")
                post = ("^" + "^".join(comps[component:])) if component < len(comps) else ""
                lines[i].parts = [(before + pre, False), (comps[component - 1], True),
                                  (post + after, False)]
                return
        lines[i].parts = [(before, False), (target or " ", True), (after, False)]
        return


def _mark_xml(lines: list[Line], rows: list[str], location: str) -> None:
    found = _LINE_LOCATION.search(location)
    if found:
        n = int(found.group(1))
        if 0 < n <= len(lines):
            lines[n - 1].marked = True
        return
    root = _readable_xml(rows)
    target = xml_path_target(root, rows, location) if root is not None else None
    if target is not None:
        number, name, nth = target
        row = rows[number - 1]
        lines[number - 1].marked = True
        hits = list(re.finditer(rf"<(?:[\w.-]+:)?{re.escape(name)}(?=[\s/>])", row))
        if nth < len(hits):
            start = hits[nth].start()
            end = row.find(">", start)
            end = len(row) if end < 0 else end + 1
            lines[number - 1].parts = [(row[:start], False), (row[start:end], True),
                                       (row[end:], False)]
        return
    if root is not None:  # a path naming nothing in this document: no guess
        return
    # not readable XML (cut short...): the first element of the last step's name
    steps = [re.sub(r"\[.*?\]", "", s).split(":")[-1] for s in location.split("/") if s]
    steps = [s for s in steps if s and not s.startswith("@")]
    if not steps:
        return
    tag = re.compile(rf"<(?:[\w.-]+:)?{re.escape(steps[-1])}[\s/>]")
    for line, row in zip(lines, rows, strict=True):
        if tag.search(row):
            line.marked = True
            return


_STEP = re.compile(r"(?:[\w.-]+:)?([\w.-]+)(?:\[(\d+)\])?")
_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?)\sencoding\s*=\s*(["'])[^"']*\2""")


def _readable_xml(rows: list[str]):  # noqa: ANN202
    """The text's root element (lxml, line numbers kept), or None if it is not readable XML.
    Parsed without DTD, entities or network, like every CDA here."""
    from lxml import etree

    # the text is already decoded: its declared encoding no longer applies (same line count)
    text = _ENCODING.sub(r"\1", "\n".join(rows), count=1)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False)
    try:
        return etree.fromstring(text.encode("utf-8"), parser)
    except (etree.XMLSyntaxError, ValueError):
        return None


def xml_path_target(root, rows: list[str],  # noqa: ANN001
                    location: str) -> tuple[int, str, int] | None:
    """Where the element an XPath-like location names starts: (line number, its local name,
    how many elements of that name start before it on that line), or None when the path
    names nothing in ``root``. Steps are local names, ``[n]`` counting the siblings of that
    name (as parsers/cda's paths do); a trailing ``@attribute`` names its element."""
    steps: list[tuple[str, int]] = []
    for step in location.strip().split("/"):
        if not step:
            continue
        if step.startswith("@"):
            break
        found = _STEP.fullmatch(step)
        if found is None:
            return None
        steps.append((found.group(1), int(found.group(2) or 1)))
    if not steps:
        return None
    (first, n), rest = steps[0], steps[1:]
    # the document's root, or (a CDA inside an envelope) the first element of that name
    node = root if _local(root.tag) == first else next(
        (e for e in root.iter() if _local(e.tag) == first), None)
    if node is None or n != 1:
        return None
    for name, n in rest:
        same = [c for c in node if _local(c.tag) == name]
        if not 0 < n <= len(same):
            return None
        node = same[n - 1]
    number = node.sourceline
    if not number or number > len(rows):
        return None
    name = _local(node.tag)
    before = 0  # elements of that name starting earlier on the same line (document order)
    for element in root.iter():
        if element is node:
            break
        if element.sourceline == number and _local(element.tag) == name:
            before += 1
    return number, name, before


# -- a CDA document as HTML -------------------------------------------------------------------
_SAFE = {"paragraph": "p", "list": "ul", "item": "li", "table": "table", "thead": "thead",
         "tbody": "tbody", "tfoot": "tfoot", "tr": "tr", "th": "th", "td": "td",
         "caption": "caption", "br": "br", "content": "span", "sub": "sub", "sup": "sup"}
_HL7 = "{urn:hl7-org:v3}"


@dataclass
class CdaView:
    title: str
    sections: list[tuple[str, Markup]]
    note: str | None = None  # e.g. a PDF embedded in a level 1 CDA


def _local(tag: object) -> str:
    return tag.split("}", 1)[-1] if isinstance(tag, str) else ""


def _narrative(element) -> str:  # noqa: ANN001
    """An element of a narrative block as safe HTML: whitelisted tags, escaped text, no
    attributes."""
    out = []
    name = _SAFE.get(_local(element.tag))
    if name:
        out.append(f"<{name}>")
    if element.text:
        out.append(escape(element.text))
    for child in element:
        if isinstance(child.tag, str):
            out.append(_narrative(child))
        if child.tail:
            out.append(escape(child.tail))
    if name and name != "br":
        out.append(f"</{name}>")
    return "".join(out)


def cda_view(data: bytes) -> CdaView:
    """Title and sections (title, narrative) of a CDA document, parsed without DTD, entities
    or network; ValueError if it is not readable XML."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False, remove_pis=True,
                             remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError("not readable XML") from exc
    title = root.findtext(f"{_HL7}title") or ""
    sections = []
    for section in root.iter(f"{_HL7}section"):
        heading = section.findtext(f"{_HL7}title") or ""
        text = section.find(f"{_HL7}text")
        body = _narrative(text) if text is not None else ""
        sections.append((heading, Markup(body)))
    note = None
    body = root.find(f"{_HL7}component/{_HL7}nonXMLBody/{_HL7}text")
    if body is not None:
        note = body.get("mediaType") or "nonXMLBody"
    return CdaView(title, sections, note)
