"""A family name field holding two names joined by 'épouse' or 'née' ('MARTIN ÉPOUSE
DUPONT', 'DUPONT NÉE MARTIN', 'MARTIN EP. DUPONT'): the birth name and the used name.

Why: systems with one family name field write a married woman's names so. Compared whole,
'MARTIN EPOUSE DUPONT' matched no dossier (neither 'Dupont' nor 'Martin'), and a dossier
auto-created from it had that for a name. The joining words are data
(tables/married_name_words.csv). Read only when the word stands between two names.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from normalizers.tabledata import table


@dataclass(frozen=True, slots=True)
class FamilyNames:
    birth: str
    used: str


@cache
def _words() -> dict[str, str]:
    return {row["word"].upper(): row["order"] for row in table("married_name_words")}


def _fold(word: str) -> str:
    text = unicodedata.normalize("NFKD", word)
    return "".join(c for c in text if not unicodedata.combining(c)).upper().rstrip(".")


_WORD = re.compile(r"\S+")


def split_family(name: str) -> FamilyNames | None:
    """The birth and used names of ``name`` when a joining word stands between two names,
    else None. The first such word counts ('MARTIN NÉE DUPONT ÉPOUSE X' is not guessed at:
    None, as the names either side are not plain)."""
    words = list(_WORD.finditer(name))
    joins = [(n, _words()[_fold(m.group())]) for n, m in enumerate(words)
             if _fold(m.group()) in _words()]
    if len(joins) != 1:
        return None
    n, order = joins[0]
    if n == 0 or n == len(words) - 1:
        return None
    before = name[:words[n].start()].strip()
    after = name[words[n].end():].strip()
    if order == "birth_first":
        return FamilyNames(birth=before, used=after)
    return FamilyNames(birth=after, used=before)
