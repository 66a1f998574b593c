"""The CDA narrative block (section/text) flattened to readable plain text.

Why plain text: it is what a human reads in the document and what report entries and search
keep; the markup (styleCode, tables laid out for print) is presentation. Rules: paragraphs,
list items, captions and table rows go on their own lines; table cells are separated by
' | ' (empty cells kept, so columns stay countable: a cell spanning rows (rowspan) is read
again in each row it covers, one spanning columns (colspan) is followed by the empty cells it
covers); <br/> breaks the line; inline markup
(content, sub, sup, linkHtml, footnote) reads as its text; renderMultiMedia has no text, nor
does content marked revised="delete" (what the previous version said and this one deletes:
CDA R2 requires receivers to suppress or mark it; it read as if still said, in the
narrative and in every value or name pointing at it).
Whitespace inside lines collapses to single spaces (the XML's indentation is not content) and
blank lines are dropped.

Elements carrying an ID attribute are also returned (ID -> their plain text): originalText and
act texts point into the narrative with '#ID' references.
"""

from __future__ import annotations

from lxml import etree

_BREAK = "\x00"  # cannot occur in XML text (libxml2 refuses NUL), so a safe line marker
_BLOCKS = frozenset({
    "paragraph", "caption", "item", "tr", "list", "table", "thead", "tbody", "tfoot",
    # XHTML names some senders put in the narrative by mistake: read them the same way
    "p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
})
_CELLS = frozenset({"td", "th"})
_SKIP = frozenset({"renderMultiMedia", "col", "colgroup"})


_LOCAL: dict[str, str] = {}


def _local(tag: str) -> str:
    name = _LOCAL.get(tag)
    if name is None:
        name = tag.rpartition("}")[2]
        if len(_LOCAL) < 1024:
            _LOCAL[tag] = name
    return name


def flatten(el: etree._Element) -> tuple[str, dict[str, str]]:
    """(plain text, {ID: plain text of that element}) of a narrative block."""
    out: list[str] = []
    ids: dict[str, str] = {}
    if el.text:
        out.append(el.text)
    if len(el):
        _children(el, out, ids)
    return _lines("".join(out)), ids


def _children(el: etree._Element, out: list[str], ids: dict[str, str]) -> None:
    """The children of ``el`` (and their tails) into ``out``, one pass, leaves inline.

    Text goes in untouched: tabs and newlines are whitespace that _lines collapses anyway."""
    append = out.append
    local = _LOCAL
    first_cell = True
    spans: dict[int, list] = {}  # the rows of ``el`` (a table or row group): see _row
    for c in el[:]:
        tag = c.tag
        if tag.__class__ is str:
            name = local.get(tag)
            if name is None:
                name = _local(tag)
            if name in _CELLS:
                if not first_cell:
                    append(" | ")
                first_cell = False
            ident = c.get("ID")
            start = len(out)
            if name in _SKIP or c.get("revised") == "delete":
                pass
            elif name == "br":
                append(_BREAK)
            elif name == "tr":
                _row(c, out, ids, spans)
            elif name in _BLOCKS:
                append(_BREAK)
                text = c.text
                if text:
                    append(text)
                if len(c):
                    _children(c, out, ids)
                append(_BREAK)
            else:
                text = c.text
                if text:
                    append(text)
                if len(c):
                    _children(c, out, ids)
            if ident:
                ids[ident] = _lines("".join(out[start:]))
        tail = c.tail
        if tail:
            append(tail)


def _span(cell: etree._Element, name: str) -> int:
    """A cell's rowspan or colspan: 1 when absent, not a number or out of reason."""
    text = cell.get(name)
    if not text:
        return 1
    text = text.strip()
    return int(text) if text.isdigit() and 0 < int(text) <= _MAX_SPAN else 1


_MAX_SPAN = 1000  # a hostile rowspan="99999999" must not make a loop of that many cells


def _row(tr: etree._Element, out: list[str], ids: dict[str, str],
         spans: dict[int, list]) -> None:
    """One table row on its own line, its cells in the columns they are in.

    A cell with rowspan="n" covers its column in the n-1 rows below: those rows' own cells
    start one column further (HTML table model, which the CDA narrative table is). It was
    read once: the rows below had a cell less, each under the header of the column before
    (a results table whose first column, the date, spans the rows of the day read
    'Hémoglobine' under 'Date'). Its text is read again in those rows, so each row says
    all it shows. A colspan="n" cell is followed by n-1 empty cells when more cells come.
    ``spans``: column -> [rows still covered, text], shared by the rows of one row group."""
    if not spans and _plain_row(tr, out):
        return
    append = out.append
    append(_BREAK)
    if tr.text:
        append(tr.text)
    column = cells = pad = 0
    broken: list[tuple[int, int]] = []  # where cells holding a line break were written
    local = _LOCAL
    for c in tr[:]:
        tag = c.tag
        name = (local.get(tag) or _local(tag)) if tag.__class__ is str else ""
        if name not in _CELLS:
            if name and name not in _SKIP:  # not a cell (a sender's stray markup): inline
                start = len(out)
                if c.text:
                    append(c.text)
                if len(c):
                    _children(c, out, ids)
                ident = c.get("ID")
                if ident:
                    ids[ident] = _lines("".join(out[start:]))
            if c.tail:
                append(c.tail)
            continue
        if pad:  # the columns the colspan before covers, as empty cells
            out.extend([" | "] * pad)
            column, pad = column + pad, 0
        if spans:
            column, cells = _spanned(column, cells, spans, out)
        if cells:
            append(" | ")
        cells += 1
        start = len(out)
        keys = c.keys()  # most cells have no attribute: one call instead of four
        ident = c.get("ID") if keys else None
        if not keys or c.get("revised") != "delete":
            if c.text:
                append(c.text)
            if len(c):
                _children(c, out, ids)
        rows = _span(c, "rowspan") if keys else 1
        text = _lines("".join(out[start:])) if ident or rows > 1 else ""
        if ident:
            ids[ident] = text
        if len(out) - start > 1 and _BREAK in out[start:]:  # a <br/> or paragraphs inside
            broken.append((start, len(out)))
        width = _span(c, "colspan") if keys else 1
        if rows > 1:
            for k in range(width):
                spans[column + k] = [rows - 1, text.replace("\n", " ") if k == 0 else ""]
        column, pad = column + 1, width - 1
        if c.tail:
            append(c.tail)
    if spans and any(col >= column + pad for col in spans):
        # columns after the last cell covered by rows above: read in their place
        for _ in range(pad):
            append(" | ")
        _spanned(column + pad, cells, spans, out)
    if broken and cells > 1:
        # a <br/> or paragraphs inside a cell of a row of several: the row stays one line
        # (it was cut in two, the cells after the break read as a row of their own, each
        # under the header of the first columns). A row of one cell (a table used for
        # layout, a conclusion in a frame) keeps its lines.
        for begin, end in reversed(broken):
            out[begin:end] = ["".join(out[begin:end]).replace(_BREAK, " ")]
    append(_BREAK)


# Cell attributes ``_row`` reads; a cell without any of them, nor children, is plain text.
_CELL_READ = frozenset({"ID", "revised", "rowspan", "colspan"})


def _plain_row(tr: etree._Element, out: list[str]) -> bool:
    """``_row`` for the row of a results table: only cells (td, th), each its text alone
    (no markup inside; attributes ``_row`` does not read, such as align or styleCode), no
    cell of a row above covering one of its columns (the caller's ``spans`` empty). Writes
    exactly what ``_row`` writes for it and returns True; False (nothing written) for any
    other row. Why: a CR-BIO's narrative is a table row per result, and ``_row``'s
    bookkeeping per cell (spans, IDs, line breaks) was most of its reading."""
    cells = tr[:]
    local = _LOCAL
    for c in cells:
        if len(c) or local.get(c.tag) not in _CELLS or not _CELL_READ.isdisjoint(c.keys()):
            return False
    append = out.append
    append(_BREAK)
    if tr.text:
        append(tr.text)
    first = True
    for c in cells:
        if first:
            first = False
        else:
            append(" | ")
        if c.text:
            append(c.text)
        if c.tail:
            append(c.tail)
    append(_BREAK)
    return True


def _spanned(column: int, cells: int, spans: dict[int, list],
             out: list[str]) -> tuple[int, int]:
    """The cells of rows above covering ``column`` and the ones after it (rowspan),
    written before the row's next cell; (next column, cells written)."""
    while column in spans:
        covered = spans[column]
        covered[0] -= 1
        if covered[0] <= 0:
            del spans[column]
        if cells:
            out.append(" | ")
        out.append(covered[1])
        cells += 1
        column += 1
    return column, cells


def _lines(text: str) -> str:
    lines = []
    for line in text.split(_BREAK):
        line = " ".join(line.split())
        if line and line.strip(" |"):
            lines.append(line)
    return "\n".join(lines)
