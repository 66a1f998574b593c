"""Name folding for strict demographic matching: accents, case, hyphens and apostrophes.

'Lefèvre-Ünal' and 'LEFEVRE UNAL' are the same name to a French identity server; 'Lefèvre'
and 'Lefebvre' are not (strict matching never guesses spelling).
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-'’`.]+")
_LIGATURES = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss"})


def fold_name(name: str) -> str:
    text = unicodedata.normalize("NFKD", name.translate(_LIGATURES))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", text).strip().upper()
