"""The plain narrative of each section, for the document's details."""

from __future__ import annotations

from normalizers.cda.common import is_placeholder
from parsers.cda.model import Section


def narratives(sections: list[Section], depth: int = 0) -> list[dict]:
    """Every section's title, LOINC code and plain narrative text, nested sections flattened."""
    out = []
    for s in sections:
        text = None if is_placeholder(s.text) else s.text  # '(texte libre)' is no narrative
        if text or s.title:
            out.append({"code": s.code.code if s.code else None, "title": s.title or None,
                        "text": text or None, "level": depth})
        out.extend(narratives(s.sections, depth + 1))
    return out
