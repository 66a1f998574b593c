"""Name folding for strict demographic matching: accents, case, ligatures and separators.

``fold_name`` keeps a name readable ('Lefèvre-Ünal' -> 'LEFEVRE UNAL': separators as one
blank). ``name_key`` is what names are compared by: the same fold with every separator
(blank, hyphen, apostrophes ' ’ `, dot) removed, so 'D'ARTAGNAN' and 'DARTAGNAN', 'LE GOFF'
and 'LEGOFF', 'MARTIN-DUPONT' and 'MARTIN DUPONT' are one name (laboratory systems drop
them: fixed-width fields, old LIS). 'Lefèvre' and 'Lefebvre' are not (strict matching never
guesses spelling). ``patients.family_key`` holds ``name_key(family)``, ``birth_family_key``
the birth name's, ``given_key`` ``fold_name(given)``; changing either function means a
migration that recomputes them (see migrations/versions/0006, 0007, 0009, 0014).

Separators are the ones senders really type, not only the ASCII ones: a name keyed by a
French keyboard's word processor or an INSi client arrives with the typographic apostrophe
(U+2019), the modifier letter apostrophe (U+02BC, what NFKC-minded software and some
African-name transliterations write), the left quote (U+2018) or a prime; compound names
with the Unicode hyphen (U+2010), the non-breaking hyphen (U+2011), the figure, en and em
dashes (U+2012-2014), the minus sign (U+2212) or a soft hyphen. Left out, 'NʼDIAYE' was
not 'N'DIAYE' and 'MARIE–CLAIRE' not 'MARIE-CLAIRE' (migration 0014).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Matched after NFKD, which already turns the full-width forms (U+FF07, U+FF0D, U+FE63) into
# their ASCII ones and U+2011 into U+2010: blanks, hyphen-minus, soft hyphen (U+00AD), the
# apostrophes and quotes (' ‘ ’ ‛ ` ʹ ʻ ʼ ′), dot, the hyphens and dashes (U+2010-2015), minus.
_SEPARATORS = re.compile("[\\s\\-\u00ad'\u2018\u2019\u201b`\u02b9\u02bb\u02bc\u2032."
                         "\u2010-\u2015\u2212]+")
# Letters Unicode does not decompose into a base letter and an accent: Polish Ł, Danish and
# Norwegian Ø, Croatian and Serbian Đ, Icelandic Þ, Maltese Ħ. A laboratory writing the
# INS traits' plain letters ('WALESA', the INSi's A-Z) did not match 'Wałęsa' (migration 0009).
_LIGATURES = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss",
                            "Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d",
                            "Þ": "TH", "þ": "th", "Ħ": "H", "ħ": "h"})


def fold_name(name: str) -> str:
    """Accents, case and ligatures folded, each run of separators one blank."""
    text = unicodedata.normalize("NFKD", name.translate(_LIGATURES))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", text).strip().upper()


@lru_cache(maxsize=4096)
def name_key(name: str) -> str:
    """The matching key of one name: ``fold_name`` without its separators. Cached: filing
    compares every message's names with its dossier's (``traits_differ``), and a batch names
    the same patients again and again; a pure function of the string."""
    return fold_name(name).replace(" ", "")
