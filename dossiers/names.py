"""Name folding for strict demographic matching: accents, case, ligatures and separators.

``fold_name`` keeps a name readable ('Lefèvre-Ünal' -> 'LEFEVRE UNAL': separators as one
blank). ``name_key`` is what names are compared by: the same fold with every separator
(blank, hyphen, apostrophes ' ’ `, dot) removed, so 'D'ARTAGNAN' and 'DARTAGNAN', 'LE GOFF'
and 'LEGOFF', 'MARTIN-DUPONT' and 'MARTIN DUPONT' are one name (laboratory systems drop
them: fixed-width fields, old LIS). 'Lefèvre' and 'Lefebvre' are not (strict matching never
guesses spelling). ``patients.family_key`` holds ``name_key(family)``, ``birth_family_key``
the birth name's; changing either function means a migration that recomputes them (see
migrations/versions/0006, 0007).
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-'’`.]+")
_LIGATURES = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss"})


def fold_name(name: str) -> str:
    """Accents, case and ligatures folded, each run of separators one blank."""
    text = unicodedata.normalize("NFKD", name.translate(_LIGATURES))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", text).strip().upper()


def name_key(name: str) -> str:
    """The matching key of one name: ``fold_name`` without its separators."""
    return fold_name(name).replace(" ", "")
