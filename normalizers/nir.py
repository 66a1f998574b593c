"""NIR (French social security number) key check and INS kinds.

The INS is the NIR (or NIA) of the person, qualified by an OID that says which kind it is. A
NIR is 13 characters plus a 2-digit key: key = 97 - (the 13 first digits mod 97), where
Corsican departments 2A / 2B (characters 6-7) count as 19 / 18. A wrong key is a typing
error or a test record: identity resolution must then quarantine, never guess.
"""

from __future__ import annotations

import re
from functools import cache

from normalizers.tabledata import table

_CORSICA = {"2A": "19", "2B": "18"}


def nir_key(base13: str) -> int | None:
    """The key of the 13 first characters of a NIR, None when they are not a NIR."""
    if len(base13) != 13:
        return None
    dept = base13[5:7].upper()
    if dept in _CORSICA:
        base13 = base13[:5] + _CORSICA[dept] + base13[7:]
    if not base13.isdigit() or not base13.isascii():
        return None
    return 97 - int(base13) % 97


def nir_key_valid(nir: str) -> bool:
    """True when ``nir`` is 15 characters (13 + key) and the key matches."""
    if len(nir) != 15:
        return False
    key = nir[13:]
    if not key.isdigit() or not key.isascii():
        return False
    expected = nir_key(nir[:13])
    return expected is not None and expected == int(key)


NO_ORDER = "000"  # digits 11-13, the birth order in the commune and month: 001 to 999


def nir_valid(nir: str) -> bool:
    """``nir_key_valid`` and a birth order number (digits 11-13) from 001 to 999 (INSEE:
    it tells apart the persons born in one commune in one month, from 001). Why: '000' is
    what software fills a number it made up with (a placeholder NIR whose key it then
    computed): its key matched, so it was trusted as the patient's INS."""
    return nir_key_valid(nir) and nir[10:13] != NO_ORDER


@cache
def _oids() -> dict[str, dict[str, str]]:
    return {row["oid"]: row for row in table("ins_oids")}


@cache
def _namespaces() -> dict[str, str]:
    return {row["namespace"].upper(): row["oid"] for row in table("ins_oids") if row["namespace"]}


def ins_kind(oid: str) -> str | None:
    """'INS-NIR', 'INS-NIA', 'INS-NIR-TEST', ... for an INS OID; None for any other OID."""
    row = _oids().get(oid.strip())
    return row["kind"] if row else None


def ins_replaced_by(kind: str) -> str | None:
    """The kind of INS that replaces an INS of ``kind`` once the person has it (column
    ``replaced_by`` of tables/ins_oids.csv): the INS-NIA, temporary, by the INS-NIR."""
    return next((row["replaced_by"] for row in _oids().values()
                 if row["kind"] == kind and row.get("replaced_by")), None)


def ins_nir_like(oid: str) -> bool:
    """Whether identifiers under this OID are NIR-shaped (15 chars with a key): not INS-C."""
    row = _oids().get(oid.strip())
    return bool(row) and row["nir_like"] == "1"


def ins_oid_for_namespace(namespace: str) -> str | None:
    """The INS OID of an assigning-authority namespace such as 'ASIP-SANTE-INS-NIR'."""
    return _namespaces().get(namespace.strip().upper())


@cache
def _type_codes() -> dict[str, str]:
    return {row["type_code"].upper(): row["oid"] for row in table("ins_type_codes")}


def ins_oid_for_type_code(type_code: str) -> str | None:
    """The INS OID an identifier type code (CX.5) names: 'INS-NIR' -> 1.2.250.1.213.1.4.8
    (tables/ins_type_codes.csv); None for 'INS' (no kind) and any other code."""
    return _type_codes().get(type_code.strip().upper())


def nir_problem(nir: str) -> str:
    """What is wrong with a NIR, in words that quote none of it: '' when it is valid
    (``nir_valid``); 'has birth order number 000', 'has no key (13 characters)', 'has N
    characters, not 15', 'is not digits (Corsica 2A/2B aside)', 'has a key that does not
    match'."""
    if nir_key_valid(nir):
        return "has birth order number 000 (a NIR's is 001 to 999)" \
            if nir[10:13] == NO_ORDER else ""
    if len(nir) == 13:
        return "has no key (13 characters)"
    if len(nir) != 15:
        return f"has {len(nir)} characters, not 15"
    if nir_key(nir[:13]) is None or not (nir[13:].isdigit() and nir[13:].isascii()):
        return "is not digits (Corsica 2A/2B aside)"
    return "has a key that does not match"


_NIR_SEX = {"1": "M", "2": "F", "3": "M", "4": "F", "7": "M", "8": "F"}


def nir_contradicts(nir: str, birth_date: str, sex: str) -> str:
    """Which trait a NIR's own digits contradict: 'sex' (digit 1: 1/3/7 man, 2/4/8 woman),
    'birth year' (digits 2-3), 'birth month' (digits 4-5 when 01-12: other values code an
    unknown month); '' when none does or a trait is missing. The INSi service returns traits
    that agree with the NIR: a disagreement is an INS of another person."""
    if len(nir) < 5 or not nir[1:5].isdigit():
        return ""
    expected = _NIR_SEX.get(nir[0])
    if expected and sex in ("F", "M") and sex != expected:
        return "sex"
    if len(birth_date) >= 4 and birth_date[2:4] != nir[1:3]:
        return "birth year"
    if len(birth_date) >= 7 and "01" <= nir[3:5] <= "12" and birth_date[5:7] != nir[3:5]:
        return "birth month"
    return ""


_INSEE_PLACE = re.compile(r"(?:\d\d|2[AB])\d{3}")
_PLACE_DIGITS_UNKNOWN = {"7", "8"}  # NIR of a person being registered: no birth place in it


def birth_place_contradicts(nir: str, place: str, birth_date: str = "") -> bool:
    """Whether a NIR's own digits 6-10 (the INSEE code of the birth commune, or '99' and
    the country code for a birth abroad) contradict the birth place ``place`` (an INSEE
    code, PID-11 BDL). False when either is missing or not of that shape, for a temporary
    number (first digit 7 or 8), for Corsica written 20 on one side and 2A/2B on the
    other (NIRs of people born there before 1976 say 20), for Paris, Lyon or Marseille
    written as the commune on one side and one of its arrondissements on the other
    (``_commune_of``), and for a person born in Algeria, Morocco or Tunisia before their
    independence, whose NIR says 91 to 96 where the INS traits say the country
    (``_former_territory``; ``birth_date``, ISO, tells those digits from the Île-de-France
    departments of the same numbers). The INSi's traits agree with the NIR: a birth place
    that does not is another person's."""
    place = place.strip().upper()
    if len(nir) < 10 or nir[0] in _PLACE_DIGITS_UNKNOWN or not _INSEE_PLACE.fullmatch(place):
        return False
    held = nir[5:10].upper()
    if not _INSEE_PLACE.fullmatch(held):
        return False
    corsica = {"20", "2A", "2B"}
    if held[:2] in corsica and place[:2] in corsica:
        return held[2:] != place[2:]
    if _former_territory(held, birth_date) == place:
        return False
    # the commune on one side, one of its arrondissements on the other (two arrondissements
    # are two birth places: the INS traits name the arrondissement)
    return held != place and _commune_of(held) != place and _commune_of(place) != held


def _former_territory(held: str, birth_date: str) -> str:
    """The INSEE country code ('99352') a NIR's birth-place digits name when they are those
    of Algeria, Morocco or Tunisia before independence (tables/nir_former_territories.csv),
    '' otherwise, or when the birth year (``birth_date``) is unknown or past the table's
    bound (the same digits then name an Île-de-France department)."""
    row = _territories().get(held[:2])
    if row is None:
        return ""
    year = birth_date[:4]
    if row["born_until"] and not (year.isdigit() and int(year) <= int(row["born_until"])):
        return ""
    return row["country_code"]


@cache
def _territories() -> dict[str, dict[str, str]]:
    return {row["nir_department"]: row for row in table("nir_former_territories")}


def _commune_of(code: str) -> str:
    """``code`` as its commune's INSEE code when it is a municipal arrondissement of Paris,
    Lyon or Marseille (tables/insee_arrondissements.csv: '75112' -> '75056'), else as is."""
    if not code.isdigit():
        return code
    for commune, first, last in _arrondissements():
        if first <= int(code) <= last:
            return commune
    return code


@cache
def _arrondissements() -> tuple[tuple[str, int, int], ...]:
    return tuple((row["commune"], int(row["first_arrondissement"]),
                  int(row["last_arrondissement"])) for row in table("insee_arrondissements"))
