"""The CDA narrative block (section/text) flattened to readable plain text.

Why plain text: it is what a human reads in the document and what report entries and search
keep; the markup (styleCode, tables laid out for print) is presentation. Rules: paragraphs,
list items, captions and table rows go on their own lines; table cells are separated by
' | ' (empty cells kept, so columns stay countable); <br/> breaks the line; inline markup
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


def _lines(text: str) -> str:
    lines = []
    for line in text.split(_BREAK):
        line = " ".join(line.split())
        if line and line.strip(" |"):
            lines.append(line)
    return "\n".join(lines)
