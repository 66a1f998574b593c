"""Patients (dossiers) and their identifiers: create, find by INS, local id, demographics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, text, update

from dossiers.merged import tombstone_ids
from dossiers.names import fold_name, name_key
from dossiers.schema import patient_identifiers, patients
from normalizers.tabledata import read_csv_rows

TABLES = Path(__file__).resolve().parent / "tables"


class PatientError(ValueError):
    """A dossier cannot be created or found as asked (user error, shown as one line)."""


@dataclass(slots=True)
class Patient:
    id: int
    ins: str | None
    family: str
    given: str
    birth_date: str
    sex: str
    opposed: bool
    dmp_status: str | None = None  # ZFA-1 as last stated: a FERME dossier is not fed
    birth_family: str | None = None
    ins_oid: str | None = None  # which kind of INS ``ins`` is (production, test...)
    deceased: bool | None = None  # PID-30 as last stated (dossiers/death.py); None: never
    deceased_at: str | None = None  # PID-29, ISO with its precision


def patient_from_row(row) -> Patient:  # noqa: ANN001
    return Patient(row.id, row.ins, row.family, row.given, row.birth_date, row.sex,
                   bool(row.opposed), row.dmp_status, row.birth_family, row.ins_oid,
                   row.deceased, row.deceased_at)


_GIVEN_SEPARATORS = re.compile(r"[\s,]+")


@lru_cache(maxsize=4096)  # a pure function of the string, asked for every message filed
def first_given_key(given: str) -> str:
    """The key of the first given name ('premier prénom'): the list's first name, names being
    separated by blanks or commas, then keyed as a family name is (``name_key``). A hyphen
    joins a compound name: 'Jean-Pierre' is one first name, not 'Jean' (folding first turned
    the hyphen into a blank, and the twins Jean-Pierre and Jean-Marc matched each other's
    dossier); 'JEANPIERRE' sent without its hyphen is that same name.

    A blank is not dropped here as it is in a family name: it separates the names of a list
    (PID-5.2/5.3 'Jean Pierre', the INS referential's 'liste des prénoms' are blank-separated,
    a compound name is hyphenated), so 'JEAN PIERRE' names Jean, and does not match a
    'Jean-Pierre' dossier: the twin brother Jean, second name Pierre, would be it too."""
    names = _GIVEN_SEPARATORS.split(given.strip()) if given else []
    return name_key(names[0]) if names else ""


def create_patient(conn: Connection, *, family: str, given: str, birth_date: str, sex: str,
                   ins: str | None = None, ins_oid: str | None = None,
                   birth_family: str | None = None, created_by: str = "admin",
                   identifiers: list[tuple[str, str, str]] = ()) -> int:
    if ins and conn.execute(select(patients.c.id).where(patients.c.ins == ins)).first():
        raise PatientError("a dossier with this INS already exists")
    pid = conn.execute(insert(patients).values(
        ins=ins, ins_oid=ins_oid, family=family, given=given, birth_family=birth_family,
        birth_date=birth_date, sex=sex, family_key=name_key(family),
        birth_family_key=birth_family_key(birth_family),
        given_key=fold_name(given), opposed=False, created_at=datetime.now(UTC),
        created_by=created_by,
    ).returning(patients.c.id)).scalar_one()
    for authority, value, type_code in identifiers:
        add_identifier(conn, pid, authority, value, type_code)
    return pid


DEMOGRAPHICS = ("family", "given", "birth_family", "birth_date", "sex")


def birth_family_key(birth_family: str | None) -> str | None:
    """``patients.birth_family_key``: the birth name's ``name_key``, None without one."""
    return name_key(birth_family) or None if birth_family else None


def update_demographics(conn: Connection, patient_id: int, **values: str | None) -> list[str]:
    """Set the dossier's demographics (``DEMOGRAPHICS``) to the values given; empty ones are
    left as they are (a sender that omits a field does not erase it). Returns the names of
    the fields that changed, never their values (for the audit trail)."""
    row = conn.execute(select(patients).where(patients.c.id == patient_id)).first()
    if row is None:
        raise PatientError(f"no dossier {patient_id}")
    changed = {name: value for name, value in values.items()
               if name in DEMOGRAPHICS and value and value != getattr(row, name)}
    if not changed:
        return []
    if "family" in changed:
        changed["family_key"] = name_key(changed["family"])
    if "given" in changed:
        changed["given_key"] = fold_name(changed["given"])
    if "birth_family" in changed:
        changed["birth_family_key"] = birth_family_key(changed["birth_family"])
    conn.execute(update(patients).where(patients.c.id == patient_id).values(**changed))
    return [name for name in DEMOGRAPHICS if name in changed]


def remove_ins(conn: Connection, patient_id: int, nir: str) -> bool:
    """Take the INS ``nir`` off the dossier (an ADT^A47 said it was not this patient's): the
    dossier stays, reachable by its local identifiers and demographics. False when the
    dossier does not hold that INS."""
    return conn.execute(update(patients).where(patients.c.id == patient_id,
                                               patients.c.ins == nir)
                        .values(ins=None, ins_oid=None)).rowcount == 1


def replace_identifier(conn: Connection, patient_id: int, old_authorities: tuple[str, ...],
                       old_value: str, new: tuple[str, str, str] | None) -> None:
    """An ADT^A47 replaced one of the dossier's local identifiers: the old one (stored under
    any of ``old_authorities``: the scoped authority, or the namespace as sent before round 9's
    scoping) no longer names it, ``new`` (authority, value, type code) does; None when the
    dossier holds the new one already.

    A plain INSERT, not ``add_identifiers``' ON CONFLICT DO NOTHING: the caller checked that
    no dossier holds the new identifier; another transaction giving it to a dossier at the
    same moment must fail this one (retried as a filing conflict), not leave the patient's
    identifier on someone else's dossier in silence."""
    conn.execute(delete(patient_identifiers).where(
        patient_identifiers.c.patient_id == patient_id,
        patient_identifiers.c.authority.in_(old_authorities),
        patient_identifiers.c.value == old_value))
    if new is not None:
        authority, value, type_code = new
        conn.execute(insert(patient_identifiers).values(
            patient_id=patient_id, authority=authority, value=value, type_code=type_code))


def add_identifier(conn: Connection, patient_id: int, authority: str, value: str,
                   type_code: str = "") -> None:
    """Remember a sender's local id for this patient (next time it resolves directly)."""
    add_identifiers(conn, [{"patient_id": patient_id, "authority": authority, "value": value,
                            "type_code": type_code}])


def add_identifiers(conn: Connection, rows: list[dict]) -> None:
    """Remember local ids; one already known (to this or any patient) is left as it is.

    INSERT ... ON CONFLICT DO NOTHING rather than look-then-insert: two workers filing the
    first messages of one patient at the same time would otherwise both insert the id, and
    the second would fail on uq_identifier. On PostgreSQL an insert still waits for another
    transaction inserting the same id, and two batches waiting on each other's ids deadlock
    (the message then fails): so an id another transaction is writing right now is skipped
    (``pg_try_advisory_xact_lock`` per id, never waiting); that transaction records it."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert

        rows = _not_being_written(conn, rows)
        if not rows:
            return
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    conn.execute(dialect_insert(patient_identifiers).on_conflict_do_nothing(
        index_elements=["authority", "value"]), rows)


def _not_being_written(conn: Connection, rows: list[dict]) -> list[dict]:
    """The rows whose (authority, value) this transaction could lock (held until its end)."""
    keys = [f"{r['authority']}\x1f{r['value']}" for r in rows]
    got = dict(conn.execute(text(
        "SELECT k, pg_try_advisory_xact_lock(hashtextextended(k, 17)) "
        "FROM unnest(CAST(:keys AS text[])) AS t(k)"), {"keys": keys}).all())
    return [r for r, k in zip(rows, keys, strict=True) if got[k]]


def get_patient(conn: Connection, patient_id: int) -> Patient | None:
    row = conn.execute(select(patients).where(patients.c.id == patient_id)).first()
    return patient_from_row(row) if row else None


def find_by_ins(conn: Connection, ins: str) -> Patient | None:
    row = conn.execute(select(patients).where(patients.c.ins == ins)).first()
    return patient_from_row(row) if row else None


def find_by_reference(conn: Connection, ref: str) -> Patient | None:
    """A PATIENT argument: an INS (15 characters) or the internal id."""
    ref = ref.strip()
    if len(ref) == 15:
        found = find_by_ins(conn, ref.upper())
        if found:
            return found
    if ref.isdigit() and len(ref) <= 18:  # a larger number is no id (and overflows BIGINT)
        return get_patient(conn, int(ref))
    return None


def find_by_local_id(conn: Connection, authority: str, value: str,
                     unscoped: str = "") -> list[int]:
    """The dossiers holding this identifier; none under ``authority``, those holding it under
    ``unscoped``: the namespace as sent, before it was scoped to its sending facility
    (``LocalIdentifier.unscoped``), which identifiers stored before that still carry."""
    rows = conn.execute(select(patient_identifiers.c.patient_id).where(
        patient_identifiers.c.authority == authority,
        patient_identifiers.c.value == value)).all()
    if not rows and unscoped:
        return find_by_local_id(conn, unscoped, value)
    return [r.patient_id for r in rows]


# Built once: built per call (every message without an INS or a known local identifier),
# the statement cost about as much as the query.
_BY_DEMOGRAPHICS = select(patients.c.id, patients.c.given).where(
    or_(patients.c.family_key == bindparam("family"),
        patients.c.birth_family_key == bindparam("family")),
    patients.c.birth_date == bindparam("birth_date"),
    patients.c.sex == bindparam("sex"),
    # a dossier merged into another is a tombstone: its traits match the survivor's,
    # and matched as well they made every message ambiguous (dossiers/merged.py)
    patients.c.id.not_in(tombstone_ids()))


def find_by_demographics(conn: Connection, family: str, given: str, birth_date: str,
                         sex: str) -> list[int]:
    """Strict match: family name (``name_key``: folded, separators dropped, 'LE GOFF' is
    'LEGOFF') and first given name (``first_given_key``), full birth date, sex. The name
    sent is compared with the dossier's used name and with its birth name
    (``birth_family_key``): a laboratory that knows Mme Dupont née Martin by her birth name
    alone (the INS traits' name) finds the dossier created under 'Dupont'; matched on the
    used name only, it found none. Two dossiers answering (Marie Martin, and Marie Dupont
    née Martin, same birth date) are both returned: the caller refuses to choose.

    A list of given names ('JEAN PIERRE') names its first one, Jean; but a sender that
    lost a hyphen writes Jean-Pierre the same way. Where the same family, birth date and
    sex hold both a Jean and a Jean-Pierre (twins), the message may be either: both are
    returned, so that the caller refuses to choose (IDENTITY_AMBIGUOUS) rather than file
    one twin's results in the other's dossier. A lone Jean-Pierre is still no match."""
    first_given = first_given_key(given)
    family = name_key(family)
    if not family or not first_given:
        return []
    rows = conn.execute(_BY_DEMOGRAPHICS, {"family": family, "birth_date": birth_date,
                                           "sex": sex}).all()
    marks = birth_order_marks(given)  # 'BEBE 2' is not 'BEBE 1' (twins' placeholders)
    keys = {r.id: first_given_key(r.given) for r in rows if birth_order_marks(r.given) == marks}
    found = [pid for pid, key in keys.items() if key == first_given]
    joined = _joined_given_keys(given)
    if found and joined:
        found += [pid for pid, key in keys.items() if key in joined]
    return found


def search_by_traits(conn: Connection, family: str, given: str | None = None,
                     birth_date: str | None = None, limit: int = 50) -> list[Patient]:
    """An operator's lookup (``dossier find``), looser than ``find_by_demographics``: it
    lists candidates for a person to choose from, it never decides. The family name is
    compared by ``name_key`` with the used and the birth name (accents, case, separators
    ignored: 'lefevre unal' finds Lefèvre-Ünal, 'dupont' Mme Martin née Dupont, as a
    laboratory's message would); ``given`` is a prefix of the folded given names ('math'
    finds Mathéo, 'jean pierre' Jean-Pierre); ``birth_date`` the full ISO date. Merged
    dossiers (tombstones) are left out: nothing is filed there. At most ``limit`` rows,
    ordered by name and id: ask for ``limit + 1`` to know whether there are more."""
    key = name_key(family)
    if not key:
        return []
    q = select(patients).where(
        or_(patients.c.family_key == key, patients.c.birth_family_key == key),
        patients.c.id.not_in(tombstone_ids()))
    if given and (folded := fold_name(given)):
        escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(patients.c.given_key.like(escaped + "%", escape="\\"))
    if birth_date:
        q = q.where(patients.c.birth_date == birth_date)
    q = q.order_by(patients.c.family_key, patients.c.given_key, patients.c.id).limit(limit)
    return [patient_from_row(row) for row in conn.execute(q)]


def birth_order_marks(given: str) -> tuple[str, ...]:
    """The numbers among the given names: a maternity's placeholder names twins 'BEBE 1' and
    'BEBE 2' (or 'JUMEAU 1', 'JUMEAU 2') until they are named, and both key as BEBE
    (``first_given_key`` keeps the first name of the list). A laboratory rarely sends the
    multiple birth (PID-24/25), so the strict match compares these too: 'BEBE 2' is not the
    dossier of 'BEBE 1', nor of a plain 'BEBE' (which twin is unknown); names without a
    number are as before. After a placeholder (tables/newborn_placeholders.csv) every word
    counts, letters too: 'BEBE A' is not 'BEBE B' (read as numbers only, both had none)."""
    names = _GIVEN_SEPARATORS.split(given.strip()) if given else []
    if names and name_key(names[0]) in _placeholders():
        return tuple(n.lstrip("0") or "0" if n.isdigit() else name_key(n) for n in names[1:])
    return tuple(n.lstrip("0") or "0" for n in names if n.isdigit())


@cache
def _placeholders() -> frozenset[str]:
    """The keys of tables/newborn_placeholders.csv."""
    rows = read_csv_rows(TABLES / "newborn_placeholders.csv")
    return frozenset(name_key(row["name"]) for row in rows)


def _joined_given_keys(given: str) -> set[str]:
    """The first given name a list would be had its blanks been hyphens ('JEAN PIERRE' ->
    JEANPIERRE; 'MARIE ANNE SOPHIE' -> MARIEANNE, MARIEANNESOPHIE); empty for one name."""
    names = _GIVEN_SEPARATORS.split(given.strip()) if given else []
    return {name_key("".join(names[:n])) for n in range(2, min(len(names), 3) + 1)}


def set_ins(conn: Connection, patient_id: int, ins: str, ins_oid: str) -> bool:
    """Give a dossier that has no INS this one (a qualified identity arrived for a dossier
    known by a local identifier). False when it already has one, or another dossier holds it."""
    if conn.execute(select(patients.c.id).where(patients.c.ins == ins)).first():
        return False
    return conn.execute(update(patients).where(patients.c.id == patient_id,
                                               patients.c.ins.is_(None))
                        .values(ins=ins, ins_oid=ins_oid)).rowcount == 1


def replace_ins(conn: Connection, patient_id: int, old: str, old_oid: str, new: str,
                new_oid: str) -> bool:
    """The dossier's INS ``old`` becomes ``new`` (an INS-NIA, temporary, replaced by the
    person's INS-NIR); the old one is kept among its identifiers under its OID, so that a
    message still carrying it (sent before the change, rerun) finds the dossier. False when
    the dossier does not hold ``old`` or another dossier holds ``new``."""
    if conn.execute(select(patients.c.id).where(patients.c.ins == new)).first():
        return False
    if conn.execute(update(patients).where(patients.c.id == patient_id, patients.c.ins == old)
                    .values(ins=new, ins_oid=new_oid)).rowcount != 1:
        return False
    add_identifier(conn, patient_id, old_oid, old, "INS")
    return True


def list_patients(conn: Connection) -> list[Patient]:
    return [patient_from_row(r) for r in conn.execute(select(patients).order_by(patients.c.id))]
