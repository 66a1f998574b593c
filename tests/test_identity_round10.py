"""Identity round 10: namespaces a source's facilities share, the identifiers of a sender
without MSH-4, an ADT^A47 naming one domain by OID and by namespace, the INS key at every
entry point. Invented patients, INS with made-up digits and valid keys unless said; store
behaviour on SQLite and on the PostgreSQL fixture."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dossiers.db import make_engine
from dossiers.schema import imports, patient_identifiers
from normalizers.adt import normalize_adt
from normalizers.cda import normalize_cda
from normalizers.identity import domain_authority, extract_identity
from parsers.cda import parse_cda
from parsers.hl7v2.er7 import parse_text
from pipelines.identity import resolve_identity
from pipelines.process import Context, source_settings
from pipelines.settings import SettingsError, load_settings
from tests.test_identity_round4 import INS_NIA, INS_NIR, dossier, nir, pid
from tests.test_identity_round5 import CRBIO, CRBIO_IDS
from tests.test_pipeline import ingest

CHU_OID = "1.2.250.1.71.4.2.2.350000001"
SHARED = """
[sources.chu-rennes]
sending_facility = "*"
shared_namespaces = ["CHU"]
"""


def settings_of(tmp_path, toml: str):  # noqa: ANN001, ANN201
    (tmp_path / "dmp.toml").write_text(toml, encoding="utf-8")
    return load_settings(env={"DMP_HOME": str(tmp_path), "DMP_CONFIG": str(tmp_path / "dmp.toml"),
                              "DMP_DATABASE_URL": "sqlite://"})


def oru(facility: str, segments: str) -> bytes:
    return (f"MSH|^~\\&|SIL|{facility}|DMP|DMP|20261127093000+0100||ORU^R01^ORU_R01|"
            f"M-{facility}|P|2.5\r{segments}\r").encode()


def message(facility: str, segment: str, settings=None, source: str = "chu-rennes"):  # noqa: ANN001, ANN201
    """An ORU from ``facility`` (MSH-4) read as its source's settings say (``settings`` None:
    as a message normalized without them)."""
    msg = parse_text(oru(facility, segment).decode())
    if settings is not None:
        source_settings(msg, settings, source)
    return msg


def resolve_msg(engine, msg):  # noqa: ANN001, ANN201
    with engine.begin() as conn:
        return resolve_identity(conn, extract_identity(msg), auto_create=False)


def held(engine, patient_id: int) -> set[tuple[str, str]]:  # noqa: ANN001
    with engine.connect() as conn:
        return set(conn.execute(select(patient_identifiers.c.authority,
                                       patient_identifiers.c.value)
                                .where(patient_identifiers.c.patient_id == patient_id)).all())


LAB_PID = pid("770041^^^CHU^PI", "LE BIHAN^Maëlle^^^^^L")
RIS_PID = pid("770041^^^CHU^PI", "", birth="", sex="")  # the IPP alone: no traits to match


# -- settings -----------------------------------------------------------------------------------
def test_identifier_settings_are_read_per_source(tmp_path) -> None:  # noqa: ANN001
    settings = settings_of(tmp_path, SHARED + """
[sources.imagerie]
sending_facility = "RIS_CHU"
shared_namespaces = ["chu", "IPP"]
identifier_domain = "chu-rennes"
namespace_oids = { CHU = "1.2.250.1.71.4.2.2.350000001" }
""")
    assert settings.identifier_settings("chu-rennes") == ("chu-rennes", frozenset({"CHU"}), {})
    assert settings.identifier_settings("imagerie") == (
        "chu-rennes", frozenset({"CHU", "IPP"}), {"CHU": CHU_OID})
    assert settings.identifier_settings("undeclared") == ("undeclared", frozenset(), {})


@pytest.mark.parametrize(("line", "said"), [
    ('shared_namespaces = "CHU"', "shared_namespaces"),
    ('shared_namespaces = [""]', "shared_namespaces"),
    ("identifier_domain = 3", "identifier_domain"),
    ('namespace_oids = { CHU = "CHU-RENNES" }', "namespace_oids"),
])
def test_bad_identifier_settings_are_said(tmp_path, line: str, said: str) -> None:  # noqa: ANN001
    with pytest.raises(SettingsError, match=rf"\[sources.chu-rennes\] {said}"):
        settings_of(tmp_path, f"[sources.chu-rennes]\n{line}\n")


# -- namespaces shared by a source's facilities -------------------------------------------------
@pytest.mark.parametrize(("toml", "facility", "authority"), [
    (SHARED, "LABO_CHU", "CHU@domain:chu-rennes"),  # declared shared: the source's domain
    (SHARED, "RIS_CHU", "CHU@domain:chu-rennes"),
    ("", "LABO_CHU", "CHU@LABO_CHU"),  # not declared: MSH-4's, as in round 9
    (SHARED.replace('["CHU"]', '["IPP"]'), "RIS_CHU", "CHU@RIS_CHU"),
    (SHARED + 'identifier_domain = "GHT-35"\n', "RIS_CHU", "CHU@domain:GHT-35"),
], ids=["shared-lab", "shared-ris", "undeclared", "another-shared", "named-domain"])
def test_a_shared_namespace_is_scoped_to_the_sources_domain(tmp_path, toml: str, facility: str,  # noqa: ANN001
                                                             authority: str) -> None:
    msg = message(facility, LAB_PID, settings_of(tmp_path, toml))
    assert [(li.authority, li.unscoped) for li in extract_identity(msg).local_ids] == [
        (authority, "CHU")]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request):  # noqa: ANN001, ANN201
    """A store at head on SQLite and on PostgreSQL (tests/conftest.py)."""
    engine = request.getfixturevalue("sqlite_engine") if request.param == "sqlite" else \
        make_engine(request.getfixturevalue("postgres_server").new_database())
    yield engine
    engine.dispose()


def lab_then_ris(tmp_path, engine, toml: str):  # noqa: ANN001, ANN201
    """The CHU's lab (MSH-4 LABO_CHU) and RIS (RIS_CHU) both number patients as 'CHU' (no
    OID). The lab's message finds Maëlle by her traits and teaches her IPP; then the RIS's,
    sending the IPP alone: (Maëlle's dossier, the RIS's resolution)."""
    settings = settings_of(tmp_path, toml)
    hers = dossier(engine)
    res = resolve_msg(engine, message("LABO_CHU", LAB_PID, settings))
    assert (res.patient_id, res.via) == (hers, "demographics")
    return hers, resolve_msg(engine, message("RIS_CHU", RIS_PID, settings))


def test_lab_and_ris_sharing_one_namespace_find_each_others_ipp(tmp_path, store) -> None:  # noqa: ANN001
    """Declared shared by the source, the RIS finds the IPP the lab taught; since round 9
    scoped 'CHU' to each MSH-4, it missed it."""
    hers, res = lab_then_ris(tmp_path, store, SHARED)
    assert (res.patient_id, res.via) == (hers, "local-id")
    assert held(store, hers) == {("CHU@domain:chu-rennes", "770041")}


def test_a_namespace_not_declared_shared_stays_each_facilitys(tmp_path, sqlite_engine) -> None:  # noqa: ANN001
    """Not declared (the default), round 9's behaviour stands."""
    hers, res = lab_then_ris(tmp_path, sqlite_engine, "")
    assert (res.patient_id, res.code) == (None, "IDENTITY_UNKNOWN_PATIENT")
    assert held(sqlite_engine, hers) == {("CHU@LABO_CHU", "770041")}


def test_another_sources_namespace_of_the_same_name_is_not_shared(tmp_path, sqlite_engine) -> None:  # noqa: ANN001
    """Another source whose facility also calls its numbers 'CHU' (undeclared, or declaring
    it shared in its own domain) never finds the CHU de Rennes's IPP, nor does a facility
    whose MSH-4 names the domain."""
    settings = settings_of(tmp_path, SHARED + "[sources.labo-sud]\nshared_namespaces = "
                                              '["CHU"]\n')
    dossier(sqlite_engine)
    resolve_msg(sqlite_engine, message("LABO_CHU", LAB_PID, settings))
    for facility, source in (("LABO_SUD", "labo-sud"), ("LABO_SUD", "other"),
                             ("chu-rennes", "other"), ("domain:chu-rennes", "other")):
        res = resolve_msg(sqlite_engine, message(facility, RIS_PID, settings, source))
        assert res.code == "IDENTITY_UNKNOWN_PATIENT", (facility, source)


def test_shared_namespace_through_the_pipeline(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """The source's settings reach the normalizer of an ingested message (process.py):
    the RIS's result, IPP alone, is filed in the dossier the lab's result taught it."""
    from tests.conftest import migrated_sqlite

    url = migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3")
    (tmp_path / "dmp.toml").write_text(SHARED, encoding="utf-8")
    settings = load_settings(env={"DMP_HOME": str(tmp_path), "DMP_DATABASE_URL": url,
                                  "DMP_CONFIG": str(tmp_path / "dmp.toml")})
    ctx = Context.from_settings(settings)
    try:
        hers = dossier(ctx.engine)
        obx = ("OBR|1|P-1|F-{n}^LABO_CHU|2823-3^Potassium^LN|||20261127080000+0100\r"
               "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F")
        ids = ingest(ctx, oru("LABO_CHU", LAB_PID + "\r" + obx.format(n=1)),
                     oru("RIS_CHU", RIS_PID + "\r" + obx.format(n=2)), source="chu-rennes")
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(imports.c.status, imports.c.error_code)
                                .where(imports.c.id.in_(ids)).order_by(imports.c.id)).all()
        assert [tuple(r) for r in rows] == [("deposited", None)] * 2
        assert held(ctx.engine, hers) == {("CHU@domain:chu-rennes", "770041")}
    finally:
        ctx.engine.dispose()


# -- a sender without MSH-4: what it teaches is its source's, not global ------------------------
def test_an_identifier_learnt_without_msh4_is_not_found_by_another_sender(tmp_path,  # noqa: ANN001
                                                                         sqlite_engine) -> None:
    """A laboratory's engine leaves MSH-4 empty and numbers its patients 'LABO' 4711 (Maëlle).
    Stored as sent ('LABO', global), another laboratory's 'LABO' 4711 (Jérôme, MSH-4
    LABO-SUD) found it by the fallback kept for identifiers stored before round 9 (its traits
    quarantined it as a mismatch; thinner traits would have filed it in her dossier). Now
    scoped to its source's domain; the source itself still finds it."""
    settings = settings_of(tmp_path, "")
    hers = dossier(sqlite_engine)
    res = resolve_msg(sqlite_engine, message("", pid("4711^^^LABO^PI", "LE BIHAN^Maëlle^^^^^L"),
                                             settings, "labo-nord"))
    assert (res.patient_id, res.via) == (hers, "demographics")
    assert held(sqlite_engine, hers) == {(domain_authority("LABO", "labo-nord"), "4711")}
    his = pid("4711^^^LABO^PI", "", birth="", sex="")
    res = resolve_msg(sqlite_engine, message("LABO-SUD", his, settings, "labo-sud"))
    assert (res.patient_id, res.code) == (None, "IDENTITY_UNKNOWN_PATIENT")
    res = resolve_msg(sqlite_engine, message("", his, settings, "labo-nord"))
    assert (res.patient_id, res.via) == (hers, "local-id")


def test_an_identifier_stored_before_scoping_is_still_found_without_msh4(tmp_path,  # noqa: ANN001
                                                                        sqlite_engine) -> None:
    hers = dossier(sqlite_engine, ids=(("LABO", "4711", "PI"),))
    msg = message("", pid("4711^^^LABO^PI", "", birth="", sex=""), settings_of(tmp_path, ""),
                  "labo-nord")
    assert (resolve_msg(sqlite_engine, msg).patient_id) == hers


# -- ADT^A47: one domain named by its OID on one side, by its namespace on the other ------------
def a47(mrg1: str, pid3: str, settings=None, tmp_path=None):  # noqa: ANN001, ANN201
    msg = parse_text(
        "MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20261127090000||ADT^A47^ADT_A30|C47|P|2.5^FRA^2.11\r"
        "EVN||20261127090000\r"
        f"PID|1||{pid3}||LE BIHAN^Maëlle^^^^^L||19840612|F" + "|" * 24 + "PROV\r"
        f"MRG|{mrg1}\r")
    if settings is not None:
        source_settings(msg, settings, "gam")
    return normalize_adt(msg, "gam")


ALIAS = f'[sources.gam]\nnamespace_oids = {{ IPP = "{CHU_OID}" }}\n'


@pytest.mark.parametrize(("mrg1", "pid3", "toml"), [
    # MRG-1 by OID (with its namespace), PID-3 by the namespace only: declared in the message
    (f"IPP0042^^^IPP&{CHU_OID}&ISO^PI", "IPP0777^^^IPP^PI", None),
    # the reverse (ADT round 19)
    ("IPP0042^^^IPP^PI", f"IPP0777^^^IPP&{CHU_OID}&ISO^PI", None),
    # the OID alone on one side: the source's alias says whose namespace it is
    (f"IPP0042^^^&{CHU_OID}&ISO^PI", "IPP0777^^^IPP^PI", ALIAS),
    ("IPP0042^^^IPP^PI", f"IPP0777^^^&{CHU_OID}&ISO^PI", ALIAS),
])
def test_a47_pairs_one_domain_named_by_oid_and_by_namespace(tmp_path, mrg1: str, pid3: str,  # noqa: ANN001
                                                            toml: str | None) -> None:
    """The GAM's MRG-1 and PID-3 come from two templates: one names the IPP domain by its
    OID, the other by its namespace. The change was dropped ('PID-3 carries no identifier
    of its assigning authority'): the dossier kept the old IPP, never learnt the new one."""
    event = a47(mrg1, pid3, settings_of(tmp_path, toml) if toml else None).adt
    assert [(c.old.value, c.new.value if c.new else None) for c in event.changed_ids] == [
        ("IPP0042", "IPP0777")]


@pytest.mark.parametrize(("mrg1", "pid3"), [
    (f"IPP0042^^^&{CHU_OID}&ISO^PI", "IPP0777^^^IPP^PI"),  # no alias: nothing says it
    # the message gives the namespace two OIDs: two domains, not guessed
    (f"IPP0042^^^IPP&{CHU_OID}&ISO^PI", "IPP0777^^^IPP^PI~IPP0778^^^IPP&1.2.250.1.99.1&ISO^PI"),
    (f"IPP0042^^^IPP&{CHU_OID}&ISO^PI", "IPP0777^^^AUTRE^PI"),  # another namespace
])
def test_a47_of_two_domains_is_still_warned_and_not_changed(mrg1: str, pid3: str) -> None:
    """Not paired, still warned, with what would pair them (namespace_oids)."""
    normalized = a47(mrg1, pid3)
    assert normalized.adt.changed_ids == []
    said = [w for w in normalized.warnings
            if "PID-3 carries no identifier of its assigning authority" in w]
    assert len(said) == 1 and said[0].endswith("the source's namespace_oids may say which "
                                               "namespace is that OID's")
    assert "IPP0042" not in said[0] and "IPP0777" not in said[0]


def test_a47_of_two_namespaces_gets_no_hint() -> None:
    """Both by namespace only, two of them: no OID in sight, nothing to declare."""
    said = [w for w in a47("IPP0042^^^IPP^PI", "IPP0777^^^AUTRE^PI").warnings
            if "PID-3 carries no identifier" in w]
    assert said and not any("namespace_oids" in w for w in said)


def test_a47_by_oid_and_namespace_changes_the_dossiers_ipp(sqlite_ctx) -> None:  # noqa: ANN001
    """Through the pipeline: the dossier holding the IPP under the OID holds the new one (as
    PID-3 names it) instead; the ledger names authorities, no value."""
    hers = dossier(sqlite_ctx.engine, ids=((CHU_OID, "IPP0042", "PI"),))
    data = ("MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20261127090000||ADT^A47^ADT_A30|C47|P|2.5^FRA^2.11\r"
            "EVN||20261127090000\r"
            "PID|1||IPP0777^^^IPP^PI||LE BIHAN^Maëlle^^^^^L||19840612|F" + "|" * 24 + "PROV\r"
            f"MRG|IPP0042^^^IPP&{CHU_OID}&ISO^PI\r").encode()
    ids = ingest(sqlite_ctx, data, source="gam")
    with sqlite_ctx.engine.connect() as conn:
        row = conn.execute(select(imports).where(imports.c.id == ids[0])).one()
    assert row.status == "deposited", row.error_message
    assert held(sqlite_ctx.engine, hers) == {("IPP@CHU-X", "IPP0777")}
    assert "IPP0042" not in (row.error_message or "") + " ".join(row.warnings or [])


# -- the INS key, at every entry point -----------------------------------------------------------
MAELLE_NIR = nir("2840675056042")


def wrong_key(good: str) -> str:
    return good[:13] + f"{(int(good[13:]) % 97) + 1:02d}"


@pytest.mark.parametrize(("oid", "number", "code"), [
    (INS_NIR, MAELLE_NIR, None),
    (INS_NIR, wrong_key(MAELLE_NIR), "IDENTITY_INS_INVALID_KEY"),
    (INS_NIR, nir("284062A004123"), None),  # Corsica, 2A counted as 19
    (INS_NIR, wrong_key(nir("284062A004123")), "IDENTITY_INS_INVALID_KEY"),
    (INS_NIA, nir("2840699352012"), None),  # a temporary NIA: its key checked alike
    (INS_NIA, wrong_key(nir("2840699352012")), "IDENTITY_INS_INVALID_KEY"),
    (INS_NIR, MAELLE_NIR[:13], "IDENTITY_INS_INVALID_KEY"),  # no key at all
    # birth order number 000 (digits 11-13, 001 to 999): a made-up number, its key computed
    (INS_NIR, nir("2840675056000"), "IDENTITY_INS_INVALID_KEY"),
    (INS_NIA, nir("2840699352000"), "IDENTITY_INS_INVALID_KEY"),
    (INS_NIR, nir("2840675056001"), None),
])
def test_ins_key_in_pid3_and_in_the_cda_record_target(sqlite_engine, oid: str, number: str,  # noqa: ANN001
                                                      code: str | None) -> None:
    """A qualified INS (PID-32 VALI; a CDA's recordTarget is qualified by rule) whose key
    does not match is never trusted: quarantined, its number never quoted."""
    hl7 = extract_identity(parse_text(
        "MSH|^~\\&|SIL|LABO|DMP|DMP|20261127093000||ORU^R01|1|P|2.5\r"
        + pid(f"{number}^^^ASIP-SANTE&{oid}&ISO^INS", "LE BIHAN^Maëlle^^^^^L", status="VALI")
        + "\r"))
    data = CRBIO.replace(CRBIO_IDS, f'      <id extension="{number}" root="{oid}"/>').encode()
    cda = normalize_cda(parse_cda(data), data, "chu").identity
    for ident in (hl7, cda):
        with sqlite_engine.begin() as conn:
            res = resolve_identity(conn, ident, auto_create=False)
        assert (res.code == "IDENTITY_INS_INVALID_KEY") == (code is not None)
        if code:
            assert number not in res.reason


# -- a namespace the source declares as an OID's --------------------------------------------------
@pytest.mark.parametrize("aliased", [True, False])
def test_a_namespace_declared_as_an_oids_finds_the_ipp_learnt_under_the_oid(
        tmp_path, sqlite_engine, aliased: bool) -> None:  # noqa: ANN001
    """The GAM names the CHU's IPP domain by its OID; the hospital's lab, by its namespace
    only ('IPP'). Without a declaration the lab's IPP is another identifier ('IPP@LABO_CHU')
    and its message, traits too thin, is quarantined; the source declaring 'IPP' as that
    OID's namespace, the lab's IPP names the dossier (and a namespace-only identifier stored
    before round 9 is still found by the namespace as sent)."""
    toml = f'[sources.chu-rennes]\nnamespace_oids = {{ IPP = "{CHU_OID}" }}\n' if aliased else ""
    hers = dossier(sqlite_engine, ids=((CHU_OID, "770041", "PI"),))
    old = dossier(sqlite_engine, given="Aïssatou", ids=(("IPP", "550012", "PI"),))
    settings = settings_of(tmp_path, toml)
    for value, patient in (("770041", hers), ("550012", old)):
        msg = message("LABO_CHU", pid(f"{value}^^^IPP^PI", "", birth="", sex=""), settings)
        res = resolve_msg(sqlite_engine, msg)
        expected = (patient, "local-id") if aliased or value == "550012" else (None, "")
        assert (res.patient_id, res.via) == expected
    assert ((CHU_OID, "550012") in held(sqlite_engine, old)) == aliased


def test_birth_order_000_is_said_and_refused_by_the_admin_too(tmp_path) -> None:  # noqa: ANN001
    """Its key matches, so 'INS key is not valid' would mislead: the warning and the
    quarantine reason say the birth order; an admin cannot create a dossier with it."""
    from pipelines.dossier_admin import DossierInput

    made_up = nir("2840675056000")
    ident = extract_identity(message("LABO", pid(f"{made_up}^^^ASIP-SANTE&{INS_NIR}&ISO^INS",
                                                 status="VALI")))
    assert [w.split(": ", 1)[1] for w in ident.warnings] == [
        "INS is not valid: the INS has birth order number 000 (a NIR's is 001 to 999)"]
    with pytest.raises(ValueError, match="birth order number 000"):
        DossierInput(family="Le Bihan", given="Maëlle", birth_date="1984-06-12", sex="F",
                     ins=made_up, ins_oid=INS_NIR).validate()
