"""Identity round 9: Unicode apostrophes and hyphens in name keys (migration 0014), PID-32
repeating consistent statuses, the A47 conflict naming its dossiers. Invented patients, INS
with made-up digits and valid keys; store behaviour on SQLite and on the PostgreSQL
fixture."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, text

from dossiers import migrate
from dossiers.db import make_engine
from dossiers.names import fold_name, name_key
from dossiers.patients import create_patient, find_by_demographics, get_patient
from dossiers.schema import imports, patient_identifiers
from normalizers.cda import normalize_cda
from normalizers.identity import (
    extract_identity,
    identifiers_in,
    read_identity_status,
    scoped_authority,
)
from parsers.cda import parse_cda
from parsers.hl7v2.er7 import parse_text
from pipelines.identity import resolve_identity
from pipelines.merge import merged_dossiers
from tests.test_adt_consent import a47, adt
from tests.test_identity_round4 import INS_NIR, MSH, dossier, nir, pid
from tests.test_identity_round5 import CRBIO, CRBIO_IDS
from tests.test_pipeline import NIR, ingest, make_patient

SOURCE = "gam-chu"


@pytest.fixture
def store(database_url):  # noqa: ANN001, ANN201
    """A store at head on SQLite and on PostgreSQL (tests/conftest.py)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def resolve(engine, *segments: str, auto_create: bool = False):  # noqa: ANN001, ANN201
    ident = extract_identity(parse_text(MSH + "\r" + "\r".join(segments) + "\r"))
    with engine.begin() as conn:
        return resolve_identity(conn, ident, auto_create=auto_create)


# -- name keys: the Unicode apostrophes and hyphens ------------------------------------------
@pytest.mark.parametrize(("sent", "held"), [
    ("N\u2019DIAYE", "N'Diaye"),  # typographic apostrophe (a word processor's)
    ("N\u02bcDIAYE", "N'Diaye"),  # modifier letter apostrophe
    ("N\u2018DIAYE", "N\u2019Diaye"),  # left quote typed for an apostrophe
    ("N\u2032DIAYE", "NDIAYE"),  # prime
    ("N\uff07DIAYE", "N'Diaye"),  # full-width apostrophe (an Asian input method)
    ("MARIE\u2013CLAIRE", "Marie-Claire"),  # en dash
    ("MARIE\u2010CLAIRE", "Marie-Claire"),  # Unicode hyphen
    ("MARIE\u2011CLAIRE", "Marie-Claire"),  # non-breaking hyphen
    ("MARIE\u2212CLAIRE", "Marie-Claire"),  # minus sign
    ("MARIE\u2014CLAIRE", "Marie Claire"),  # em dash
    ("MARIE\u00adCLAIRE", "MARIECLAIRE"),  # soft hyphen
    ("L\u2019HÔTE\u2013DE\u2011LA\u2010FONTAINE", "L'Hôte-de-la-Fontaine"),
])
def test_unicode_apostrophes_and_hyphens_are_separators(sent: str, held: str) -> None:
    """Senders type names with the apostrophes and hyphens of their keyboards and word
    processors; only ' ’ ` and the ASCII hyphen were separators, so 'NʼDIAYE' keyed
    'NʼDIAYE' and matched no 'N'Diaye' dossier."""
    assert name_key(sent) == name_key(held)
    assert name_key("Lefèvre") != name_key("Lefebvre")  # still no spelling guessed


def test_compound_given_name_with_an_en_dash_is_one_first_given_name(sqlite_engine) -> None:  # noqa: ANN001
    """'MARIE–CLAIRE' (en dash) is the compound first name Marie-Claire, not a list: it finds
    her dossier; it did not, and 'MARIE CLAIRE' (a list, first name Marie) still does not."""
    hers = dossier(sqlite_engine, family="N'Diaye", given="Marie-Claire", birth_family=None)
    res = resolve(sqlite_engine, pid("", "N\u02bcDIAYE^MARIE\u2013CLAIRE^^^^^L"))
    assert (res.patient_id, res.via) == (hers, "demographics")
    res = resolve(sqlite_engine, pid("", "N\u2019DIAYE^MARIE CLAIRE^^^^^L"))
    assert res.patient_id is None


# -- migration 0014: the stored keys of existing patients ---------------------------------------
ROWS = [  # (family, birth family, given): made at 0013 with the keys of then
    ("N\u02bcDiaye", None, "Aïssatou"),
    ("Martin\u2013Dupont", "L\u2018Hôte", "Marie\u2011Claire"),
    ("Łukasiewicz", None, "Zofia"),  # no new separator: keys as they were
    ("Le Goff", "D'Hérouville", "Anne Sophie"),
]


def _revision(number: str):  # noqa: ANN202
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate.alembic_config()).get_revision(number).module


def test_migration_0014_rekeys_stored_names(empty_database_url) -> None:  # noqa: ANN001
    """A store holding keys made the old way ('NʼDIAYE' keeps its apostrophe, 'MARTIN–DUPONT'
    its dash), upgraded, holds the keys the code computes, and is matched by the spellings
    it missed; downgrade restores the old keys. On SQLite and on PostgreSQL."""
    engine = make_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0013")
        old = _revision("0014")
        with engine.begin() as conn:
            for family, birth, given in ROWS:
                conn.execute(text(
                    "INSERT INTO patients (family, birth_family, given, birth_date, sex,"
                    " family_key, birth_family_key, given_key, opposed, created_at) VALUES"
                    " (:f, :b, :g, '1986-09-14', 'F', :k, :bk, :gk, :no, '2026-11-27')"),
                    {"f": family, "b": birth, "g": given, "k": old.fold_0009(family),
                     "bk": old.fold_0009(birth) if birth else None,
                     "gk": old.display_0009(given), "no": False})

        def keys() -> set[tuple]:
            with engine.connect() as conn:
                return set(conn.execute(text(
                    "SELECT family, family_key, birth_family_key, given_key FROM patients")))

        made_then = keys()
        assert ("N\u02bcDiaye", "N\u02bcDIAYE", None, "AISSATOU") in made_then
        assert migrate.upgrade(engine, "0014") == ["upgraded to 0014"]
        assert keys() == {(f, name_key(f), name_key(b) if b else None, fold_name(g))
                          for f, b, g in ROWS}
        with engine.connect() as conn:
            ids = dict(conn.execute(text("SELECT family, id FROM patients")).all())
            for sent, given, family in (("N'DIAYE", "Aissatou", "N\u02bcDiaye"),
                                        ("MARTIN-DUPONT", "Marie-Claire", "Martin\u2013Dupont"),
                                        ("L'HOTE", "MARIE\u2010CLAIRE", "Martin\u2013Dupont")):
                assert find_by_demographics(conn, sent, given, "1986-09-14", "F") == \
                    [ids[family]]
            # a dossier created after the upgrade keys as the migrated ones do
            create_patient(conn, family="N\u2019Diaye", given="Awa", birth_date="1990-01-02",
                           sex="F")
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0013")
        assert {r for r in keys() if r[0] != "N\u2019Diaye"} == made_then
        rekeying = _revision("0014")  # in batches of 2: the rows changed, then none
        with engine.begin() as conn:
            assert rekeying.rekey(conn, rekeying.fold_0014, rekeying.display_0014, 2) == 2
            assert rekeying.rekey(conn, rekeying.fold_0014, rekeying.display_0014, 2) == 0
    finally:
        engine.dispose()


def test_migration_0014_folds_as_the_code_does() -> None:
    """The migration's copy of the fold computes the keys ``dossiers.names`` computes."""
    m = _revision("0014")
    for name in ("N\u02bcDiaye", "Marie\u2013Claire", "L\u2018Hôte", "O\uff07Neil", "Wałęsa",
                 "Œuvray-Lætitia", "D. ARTAGNAN", "Jean\u00a0Pierre", "Ab\u2015cd", "Ab\u2212cd"):
        assert (m.fold_0014(name), m.display_0014(name)) == (name_key(name), fold_name(name))


# -- PID-32 repeating consistent statuses ------------------------------------------------------
@pytest.mark.parametrize(("status", "trusted", "read_as"), [
    ("VALI~QUAL", True, "QUAL"),  # validated, then qualified: its history
    ("QUAL~VALI", True, "QUAL"),
    ("RECUP~QUAL", True, "QUAL"),  # recovered from the INSi, then checked: qualified
    ("VALI~RECUP~QUAL~CACH", True, "QUAL"),
    ("VALI~QUAL~DOUTE", False, "QUAL"),  # a doubt still withdraws the trust
    ("PROV~VALI", False, ""),  # provisional is not validated: contradictory
    ("PROV~QUAL", False, ""),
    ("RECUP~VALI", False, ""),  # neither implies the other: not guessed
    ("VALI~VALI", True, ""),
    ("QUAL", True, ""),
])
def test_consistent_statuses_read_as_the_most_qualified(status: str, trusted: bool,
                                                        read_as: str) -> None:
    reading = read_identity_status(status)
    assert (reading.ins_trusted, reading.read_as) == (trusted, read_as)


def test_vali_qual_files_by_the_ins_with_a_warning(sqlite_engine) -> None:  # noqa: ANN001
    """A GAM moving to the RNIV statuses sends 'VALI~QUAL'. Read as two exclusive statuses,
    the qualified INS was ignored and the message fell back on the demographics."""
    ins = nir("2860975056042")
    hers = dossier(sqlite_engine, ins=ins, ins_oid=INS_NIR)
    res = resolve(sqlite_engine, pid(f"{ins}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS",
                                     "MARTIN^Maëlle^^^^^L", status="VALI~QUAL"))
    assert (res.patient_id, res.via) == (hers, "ins")
    assert any("read as QUAL" in w and "VALI~QUAL" in w for w in res.warnings)
    assert not any("INS ignored" in w for w in res.warnings)


# -- ADT^A47: the INS and the local identifiers name two dossiers -------------------------------
def test_a47_whose_ins_and_local_id_name_two_dossiers_is_a_conflict_naming_them(
        sqlite_ctx) -> None:  # noqa: ANN001
    """MRG-1's INS is held by Hélène's dossier, PID-3's IPP names Ange's: the A47 answered
    IDENTITY_AMBIGUOUS with no dossier named (round 8 made the other paths a conflict naming
    them); now IDENTITY_CONFLICT with both dossiers and the identifier's authority, no
    identifier value nor name; nothing removed."""
    hers = make_patient(sqlite_ctx)
    his = make_patient(sqlite_ctx, nir="188102B17295165", family="Santoni", given="Ange",
                       birth_date="1988-10-02", sex="M")
    ingest(sqlite_ctx, adt("C2", "A31", nir="188102B17295165", family="SANTONI", given="Ange",
                           birth="19881002", sex="M", local_id="IPP0099"), source=SOURCE)
    ids = ingest(sqlite_ctx, a47("C3", local_id="IPP0099"), source=SOURCE)
    with sqlite_ctx.engine.connect() as conn:
        row = conn.execute(select(imports).where(imports.c.id == ids[0])).one()
    assert (row.status, row.error_code) == ("quarantined", "IDENTITY_CONFLICT")
    assert f"INS-NIR-TEST of MRG-1 -> dossier {hers}" in row.error_message
    assert f"1.2.250.1.999.9 (PI) -> dossier {his}" in row.error_message
    for secret in (NIR, "IPP0099", "LEFÈVRE", "Santoni", "SANTONI"):
        assert secret not in row.error_message


# -- namespace-only assigning authorities, scoped to the sending facility -----------------------
def msh(facility: str) -> str:
    return MSH.replace("|DXCARE|CHU-RENNES|", f"|SIL|{facility}|")


def resolve_from(engine, facility: str, segment: str):  # noqa: ANN001, ANN201
    ident = extract_identity(parse_text(f"{msh(facility)}\r{segment}\r"))
    with engine.begin() as conn:
        return resolve_identity(conn, ident, auto_create=False)


def held_identifiers(engine, patient_id: int) -> set[tuple[str, str]]:  # noqa: ANN001
    with engine.connect() as conn:
        return set(conn.execute(select(patient_identifiers.c.authority,
                                       patient_identifiers.c.value)
                                .where(patient_identifiers.c.patient_id == patient_id)).all())


def test_two_laboratories_calling_their_numbers_labo_do_not_share_them(store) -> None:  # noqa: ANN001
    """Two laboratories send their patient numbers as 'LABO' with no OID (CX.4.1 only). Lab
    Nord's number 4711 is Maëlle's; Lab Sud's 4711 is Jérôme's. Read as one global authority,
    Lab Sud's message named Maëlle's dossier (quarantined as a traits mismatch, or filed
    there when its traits were too thin to contradict). Each is now its facility's."""
    hers = dossier(store)
    his = dossier(store, family="Le Goff", given="Jérôme", birth_date="1979-11-02", sex="M",
                  birth_family=None)
    res = resolve_from(store, "LABO-NORD", pid("4711^^^LABO^PI", "MARTIN^Maëlle^^^^^L"))
    assert (res.patient_id, res.via) == (hers, "demographics")
    assert ("LABO@LABO-NORD", "4711") in held_identifiers(store, hers)
    res = resolve_from(store, "LABO-SUD", pid("4711^^^LABO^PI", "LE GOFF^Jérôme^^^^^L",
                                               birth="19791102", sex="M"))
    assert (res.patient_id, res.via, res.code) == (his, "demographics", None)
    assert ("LABO@LABO-SUD", "4711") in held_identifiers(store, his)
    # each laboratory's number now names its own patient, without the traits
    for facility, patient in (("LABO-NORD", hers), ("LABO-SUD", his)):
        res = resolve_from(store, facility, pid("4711^^^LABO^PI", "", birth="", sex=""))
        assert (res.patient_id, res.via) == (patient, "local-id")


def test_an_identifier_stored_before_scoping_is_still_found(sqlite_engine) -> None:  # noqa: ANN001
    """A dossier holds 'LABO' 4711 as stored before the scoping: the laboratory's next
    message (no traits to match on) still reaches it by that identifier, which it then holds
    under the scoped authority too."""
    hers = dossier(sqlite_engine, ids=(("LABO", "4711", "PI"),))
    res = resolve_from(sqlite_engine, "LABO-NORD", pid("4711^^^LABO^PI", "", birth="", sex=""))
    assert (res.patient_id, res.via) == (hers, "local-id")
    assert held_identifiers(sqlite_engine, hers) == {("LABO", "4711"), ("LABO@LABO-NORD", "4711")}


@pytest.mark.parametrize(("namespace", "facility", "authority"), [
    ("LABO", "LABO-NORD", "LABO@LABO-NORD"),
    ("IPP", "CHU-RENNES", "IPP@CHU-RENNES"),
    ("CHU-RENNES", "chu-rennes", "CHU-RENNES"),  # the facility's own domain, by its name
    ("LABO", "", "LABO"),  # no MSH-4: as before
    ("LABO", "X" * 200, "LABO"),  # too long to store scoped
])
def test_scoped_authority(namespace: str, facility: str, authority: str) -> None:
    assert scoped_authority(namespace, facility) == authority


@pytest.mark.parametrize(("cx4", "authority"), [
    ("LABO", "LABO@LABO-NORD"),
    ("LABO&1.2.250.1.999.7&ISO", "1.2.250.1.999.7"),  # an OID is global
    ("1.2.250.1.999.7", "1.2.250.1.999.7"),
    ("LABO-NORD", "LABO-NORD"),
])
def test_only_namespace_only_authorities_are_scoped(cx4: str, authority: str) -> None:
    ident = extract_identity(parse_text(f"{msh('LABO-NORD')}\r{pid(f'4711^^^{cx4}^PI')}\r"))
    assert [(li.authority, li.unscoped) for li in ident.local_ids] == [
        (authority, "LABO" if authority.startswith("LABO@") else "")]


def test_a_merge_finds_the_dossier_of_an_identifier_stored_before_scoping(sqlite_engine) -> None:  # noqa: ANN001
    """ADT^A40's MRG-1 names 'IPP' 3301 (no OID), which a dossier holds as stored before the
    scoping: the merge still finds that dossier (``merged_dossiers``)."""
    merged = dossier(sqlite_engine, ids=(("IPP", "3301", "PI"),))
    msg = parse_text(f"{msh('CHU-RENNES')}\rMRG|3301^^^IPP^PI\r")
    ident = identifiers_in(msg, msg.first("MRG"), 1)
    assert [(li.authority, li.unscoped) for li in ident.local_ids] == [("IPP@CHU-RENNES", "IPP")]
    with sqlite_engine.connect() as conn:
        assert merged_dossiers(conn, [("MRG-1", ident)]) == {merged}


# -- an INS-NIR sent with the INS-NIA it replaced (CDA recordTarget, PID-3) ---------------------
INS_NIA = "1.2.250.1.213.1.4.9"
LE_GOFF_NIR = nir("1551129232190")
LE_GOFF_NIA = nir("1551199350123")  # his waiting number (born abroad, department 99)
IPP = '<id extension="4100001953" root="2.999.250.1.1"/>'


def recordtarget_identity(*ids: tuple[str, str]):  # noqa: ANN201
    """The identity of a CR-BIO whose patientRole carries these (root, extension) ids."""
    data = CRBIO.replace(CRBIO_IDS, "\n".join(
        f'      <id extension="{ext}" root="{root}"/>' for root, ext in ids)).encode()
    return normalize_cda(parse_cda(data), data, "chu").identity


@pytest.mark.parametrize(("held", "outcome"), [
    ("nia", "replaced"),  # the dossier still holds his NIA: the NIR replaces it
    ("nir", "ins"),  # the dossier holds his NIR already
    ("both", "IDENTITY_CONFLICT"),  # one dossier holds the NIR, another the NIA
])
def test_a_cda_with_the_ins_nir_and_the_ins_nia_it_replaced(sqlite_engine, held: str,  # noqa: ANN001
                                                             outcome: str) -> None:
    """A CR-BIO's recordTarget carries Jérôme Le Goff's INS-NIR and the INS-NIA he was known
    by until he received it (two patientRole/id). 'Two different INS, one person has one
    INS' quarantined it (IDENTITY_AMBIGUOUS); the NIA is the temporary number the NIR
    replaces: filed by the NIR, a dossier still holding the NIA receiving it."""
    traits = dict(family="Le Goff", given="Jérôme", birth_date="1955-11-02", sex="M",
                  birth_family="Le Goff")
    his = dossier(sqlite_engine, **traits, ins=LE_GOFF_NIA if held == "nia" else LE_GOFF_NIR,
                  ins_oid=INS_NIA if held == "nia" else INS_NIR)
    other = dossier(sqlite_engine, **{**traits, "given": "Jérôme Marie"}, ins=LE_GOFF_NIA,
                    ins_oid=INS_NIA) if held == "both" else None
    ident = recordtarget_identity((INS_NIA, LE_GOFF_NIA), (INS_NIR, LE_GOFF_NIR))
    with sqlite_engine.begin() as conn:
        res = resolve_identity(conn, ident, auto_create=False)
        holder = get_patient(conn, his)
    if outcome == "IDENTITY_CONFLICT":
        assert (res.patient_id, res.code) == (None, "IDENTITY_CONFLICT")
        assert f"INS-NIR -> dossier {his}; INS-NIA -> dossier {other}" in res.reason
        assert LE_GOFF_NIR not in res.reason and LE_GOFF_NIA not in res.reason
        return
    assert (res.patient_id, res.via, res.code) == (his, "ins", None)
    assert (holder.ins, holder.ins_oid) == (LE_GOFF_NIR, INS_NIR)
    assert any("INS-NIA sent beside the INS-NIR" in w for w in res.warnings)
    if outcome == "replaced":
        assert res.audit == ("identity.ins_replaced", {"from": "INS-NIA", "to": "INS-NIR"})


def test_two_ins_nir_are_still_two_persons(sqlite_engine) -> None:  # noqa: ANN001
    """Two INS-NIR (not a number and its predecessor): still IDENTITY_AMBIGUOUS."""
    dossier(sqlite_engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02", sex="M",
            ins=LE_GOFF_NIR, ins_oid=INS_NIR)
    ident = recordtarget_identity((INS_NIR, nir("1551129232191")), (INS_NIR, LE_GOFF_NIR))
    with sqlite_engine.begin() as conn:
        assert resolve_identity(conn, ident, auto_create=False).code == "IDENTITY_AMBIGUOUS"


# -- PID-5 naming only the used name ------------------------------------------------------------
@pytest.mark.parametrize(("names", "birth_family"), [
    ("DUPONT^Marie^^^^^D", None),  # only the used name: her birth name is not known
    ("DUPONT^Marie^^^^^D~MARTIN^Marie^^^^^L", "MARTIN"),
    ("MARTIN ÉPOUSE DUPONT^Marie^^^^^D", "MARTIN"),  # the joined form says it
    ("DUPONT^Marie", "DUPONT"),  # untyped: one name for both, as before
])
def test_a_dossier_created_from_the_used_name_alone_has_no_birth_name(
        sqlite_engine, names: str, birth_family: str | None) -> None:  # noqa: ANN001
    """Auto-creation from a PID-5 holding only the used name (PAM France type 'D', Mme Dupont
    née Martin): the dossier recorded 'DUPONT' as her birth name, which no ADT stating only
    the used name corrects, and which told the demographic match she was born Dupont."""
    ins = nir("2750875056042")
    segment = pid(f"{ins}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS", names, birth="19750812",
                  status="VALI")
    res = resolve(sqlite_engine, segment, auto_create=True)
    assert res.via == "auto-create"
    with sqlite_engine.connect() as conn:
        assert get_patient(conn, res.patient_id).birth_family == birth_family
