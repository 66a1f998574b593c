"""Identity round 8: what senders we had not seen send in PID. Invented patients, INS with
made-up digits and valid keys; store behaviour on SQLite and on the PostgreSQL fixture."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.db import make_engine
from dossiers.patients import get_patient
from dossiers.schema import imports
from normalizers.identity import extract_identity
from parsers.hl7v2.er7 import parse_text
from pipelines.identity import resolve_identity
from pipelines.settings import load_settings
from tests.test_dedup_channels import HL7, file
from tests.test_identity_round4 import CHU, INS_NIR, MSH, dossier, nir, pid

INS_TEST = "1.2.250.1.213.1.4.10"  # the INSi test platform's INS-NIR
LABO = "2.999.250.1.7"  # a laboratory's own patient numbers


@pytest.fixture
def engine(database_url):  # noqa: ANN001, ANN201
    """A store at head on SQLite and on PostgreSQL (tests/conftest.py)."""
    store = make_engine(database_url)
    yield store
    store.dispose()


def resolve(engine, *segments: str, auto_create: bool = False, trust_test_ins: bool = True):  # noqa: ANN001, ANN201
    ident = extract_identity(parse_text(MSH + "\r" + "\r".join(segments) + "\r"))
    with engine.begin() as conn:
        return resolve_identity(conn, ident, auto_create=auto_create,
                                trust_test_ins=trust_test_ins)


# -- PID-32: plain HL7 v2.5 table 0445 codes ----------------------------------------------------
@pytest.mark.parametrize(("status", "matched"), [
    ("AL", False),  # the name is an alias: the traits are not the person's own
    ("PROV~UD", False),  # a default birth date (19000101, 1st January of a year)
    ("pROV~ud", False),  # lower case, as some engines write it
    ("PROV~UA", True),  # only the address is a default one
])
def test_alias_or_default_birth_date_is_no_demographic_match(sqlite_engine, status: str,  # noqa: ANN001
                                                             matched: bool) -> None:
    """An engine outside PAM France fills PID-32 from HL7 table 0445: 'AL' (the name is an
    alias), 'UD' (a default birth date). Unknown to the table, the codes only withdrew trust
    from the INS: the look-alike dossier of Maëlle Le Bihan was matched on an alias."""
    hers = dossier(sqlite_engine)
    res = resolve(sqlite_engine, pid("", "MARTIN^Maëlle^^^^^L", status=status))
    if matched:
        assert (res.patient_id, res.via) == (hers, "demographics")
    else:
        assert (res.patient_id, res.code) == (None, "IDENTITY_UNKNOWN_PATIENT")
        assert "no demographic match" in res.reason
        assert not any("not in table" in w for w in res.warnings)


def test_default_social_security_number_withdraws_the_ins(sqlite_engine) -> None:  # noqa: ANN001
    """'VALI~US': the NIR (the French social security number) is a default one: the INS
    is not the person's, whatever VALI says; it was trusted as soon as the code was known."""
    ins = nir("2840699351042")
    dossier(sqlite_engine, ins=ins, ins_oid=INS_NIR)
    res = resolve(sqlite_engine, pid(f"{ins}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS",
                                     "MARTIN^Maëlle^^^^^L", status="VALI~US"))
    assert res.via != "ins"
    assert any("INS ignored" in w and "VALI~US" in w for w in res.warnings)
    assert not any("not in table" in w for w in res.warnings)


# -- a test INS in a production intake ----------------------------------------------------------
TEST_NIR = nir("2840699351042")


def test_a_test_ins_does_not_choose_a_dossier_in_production(engine) -> None:  # noqa: ANN001
    """A laboratory's engine, qualified against the INSi test platform, goes live still
    sending that platform's INS (OID .4.10) under VALI. Trusted, the test number was given
    to the dossier its IPP names; a production intake (trust_test_ins false) ignores it."""
    ipp = (CHU, "4711", "PI")
    hers = dossier(engine, ids=(ipp,))
    segment = pid(f"{TEST_NIR}^^^ASIP-SANTE-INS-NIR-TEST&{INS_TEST}&ISO^INS~4711^^^CHU&{CHU}"
                  "&ISO^PI", "LE BIHAN^Maëlle^^^^^D~MARTIN^Maëlle^^^^^L", status="VALI")
    res = resolve(engine, segment, trust_test_ins=False)
    assert (res.patient_id, res.via) == (hers, "local-id")
    assert any("INS-NIR-TEST ignored" in w and "production" in w for w in res.warnings)
    assert TEST_NIR not in " ".join(res.warnings)
    with engine.connect() as conn:
        assert get_patient(conn, hers).ins is None
    # as before where test INS are trusted (a test platform of our own)
    assert resolve(engine, segment).patient_id == hers
    with engine.connect() as conn:
        assert (get_patient(conn, hers).ins, get_patient(conn, hers).ins_oid) == \
            (TEST_NIR, INS_TEST)


def test_a_test_ins_creates_no_dossier_in_production(engine) -> None:  # noqa: ANN001
    """Auto-creation on: a test INS under VALI, no known identifier, no look-alike. It
    created a dossier holding the test number; in production nothing is created."""
    segment = pid(f"{TEST_NIR}^^^ASIP-SANTE-INS-NIR&{INS_TEST}&ISO^INS", "MARTIN^Maëlle^^^^^L",
                  status="VALI")
    res = resolve(engine, segment, auto_create=True, trust_test_ins=False)
    assert (res.patient_id, res.code) == (None, "IDENTITY_UNKNOWN_PATIENT")
    assert resolve(engine, segment, auto_create=True).via == "auto-create"


@pytest.mark.parametrize(("value", "trusted"), [("0", False), ("false", False), ("", True)])
def test_trust_test_ins_setting(tmp_path, value: str, trusted: bool) -> None:  # noqa: ANN001
    env = {"DMP_HOME": str(tmp_path)}
    if value:
        env["DMP_TRUST_TEST_INS"] = value
    assert load_settings(env=env).trust_test_ins is trusted


def test_pipeline_files_a_test_ins_by_traits_only_in_production(sqlite_ctx) -> None:  # noqa: ANN001
    """The laboratory's ORU (test INS under VALI, its own IPP unknown here) reaches the
    dossier by the strict demographic match, the ledger row saying why the INS was not
    used; with test INS trusted it is filed by the INS, as before."""
    sqlite_ctx.settings = replace(sqlite_ctx.settings, trust_test_ins=False)
    row = file(sqlite_ctx, HL7.encode(), "LABM")
    assert row.status == "deposited"
    assert any("INS-NIR-TEST ignored" in w for w in row.warnings)
    sqlite_ctx.settings = replace(sqlite_ctx.settings, trust_test_ins=True)
    again = file(sqlite_ctx, HL7.replace("RB2502040000002", "RB2502040000099").encode(), "LABM")
    assert again.status == "deposited"
    assert not any("INS-NIR-TEST ignored" in w for w in again.warnings or ())
    with sqlite_ctx.engine.connect() as conn:
        assert conn.execute(select(imports.c.patient_id).where(
            imports.c.id.in_([row.id, again.id]))).scalars().all() == [row.patient_id] * 2


# -- a newborn's mother named in NK1 (relationship MTH), not in PID-21 --------------------------
MOTHER_NIR = nir("2840699351042")
MOTHER_IDS = f"{MOTHER_NIR}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS~7311^^^CHU&{CHU}&ISO^PI"


def nk1(relation: str = "MTH^Mère^HL70063", ids: str = MOTHER_IDS) -> str:
    return "NK1|1|LE BIHAN^Maëlle^^^^^D|" + relation + "|" * 30 + ids


def baby(ids: str = f"7311^^^CHU&{CHU}&ISO^PI") -> str:
    """Results for a girl named after her mother, sent before her birth date was keyed."""
    return pid(ids, "LE BIHAN^Maëlle^^^^^L", birth="", sex="F")


@pytest.mark.parametrize("ids", [f"7311^^^CHU&{CHU}&ISO^PI",
                                 f"{MOTHER_NIR}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"])
def test_newborn_with_the_mothers_identifier_given_in_nk1_is_a_conflict(engine, ids: str) -> None:  # noqa: ANN001
    """A plain HL7 maternity names the mother in NK1 (NK1-3 'MTH', her identifiers in
    NK1-33), not in PID-21, and its software copied her IPP (or INS) into the baby's PID-3.
    Read only in PID-21, the copy went unseen: the baby's results went to her dossier."""
    dossier(engine, ins=MOTHER_NIR, ins_oid=INS_NIR, ids=((CHU, "7311", "PI"),))
    res = resolve(engine, baby(ids).replace("PROV", "VALI"), nk1())
    assert (res.patient_id, res.code) == (None, "IDENTITY_CONFLICT")
    assert "NK1[3]-33" in res.reason and "PID[2]-3" in res.reason
    assert "7311" not in res.reason and MOTHER_NIR not in res.reason


@pytest.mark.parametrize("segments", [
    (nk1("FTH^Père^HL70063"),),  # the father's identifiers: not the mother's
    ("PV1|1|I", nk1()),  # an NK1 after PV1 is no longer this PID's
])
def test_nk1_other_than_this_patients_mother_is_not_read(segments: tuple[str, ...]) -> None:
    ident = extract_identity(parse_text("\r".join((MSH, baby(), *segments))))
    assert ident.conflicts == []


def test_newborn_with_its_own_ipp_and_its_mother_in_nk1_is_filed(sqlite_engine) -> None:  # noqa: ANN001
    dossier(sqlite_engine, ins=MOTHER_NIR, ins_oid=INS_NIR, ids=((CHU, "7311", "PI"),))
    girl = dossier(sqlite_engine, given="Maëlle", birth_date="2026-11-20",
                   ids=((CHU, "88001", "PI"),))
    res = resolve(sqlite_engine, baby(f"88001^^^CHU&{CHU}&ISO^PI"), nk1())
    assert (res.patient_id, res.via) == (girl, "local-id")


# -- PID-3: two identifiers naming two dossiers --------------------------------------------------
def test_identifiers_naming_two_dossiers_name_both_without_patient_data(engine) -> None:  # noqa: ANN001
    """The hospital's IPP names Mme Le Bihan's dossier, the laboratory's own number beside
    it another woman's (a number keyed on the wrong request). It was IDENTITY_AMBIGUOUS
    'local identifiers point to 2 different dossiers': the admin, told neither which nor
    why, searched both by name. A conflict between identifiers, each dossier named by its
    internal id and the identifier's authority, never by a value."""
    hers = dossier(engine, ids=((CHU, "4711", "PI"),))
    other = dossier(engine, family="Quéré", given="Anaïs", birth_family=None,
                    birth_date="1991-02-03", ids=((LABO, "LB-20931", "PI"),))
    res = resolve(engine, pid(f"4711^^^CHU&{CHU}&ISO^PI~LB-20931^^^LABO&{LABO}&ISO^PI"))
    assert (res.patient_id, res.code) == (None, "IDENTITY_CONFLICT")
    assert f"{CHU} (PI) -> dossier {hers}" in res.reason
    assert f"{LABO} (PI) -> dossier {other}" in res.reason
    for said in ("4711", "LB-20931", "MARTIN", "Maëlle", "Quéré"):
        assert said not in res.reason


def test_an_unknown_ins_with_identifiers_naming_two_dossiers_names_both(sqlite_engine) -> None:  # noqa: ANN001
    hers = dossier(sqlite_engine, ids=((CHU, "4711", "PI"),))
    other = dossier(sqlite_engine, family="Quéré", given="Anaïs", birth_family=None,
                    ids=((LABO, "LB-20931", "PI"),))
    ins = nir("2840699351042")
    res = resolve(sqlite_engine, pid(f"{ins}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS~4711^^^CHU&"
                                     f"{CHU}&ISO^PI~LB-20931^^^LABO&{LABO}&ISO^PI", status="VALI"))
    assert (res.patient_id, res.code) == (None, "IDENTITY_CONFLICT")
    assert f"dossier {hers}" in res.reason and f"dossier {other}" in res.reason
    assert ins not in res.reason


# -- twins' placeholder names told apart by a letter ('BEBE A', 'BEBE B') ------------------------
@pytest.mark.parametrize(("given", "same"), [
    ("BEBE B", False), ("BEBE", False), ("Bébé a", True), ("BEBE A", True),
    ("JUMEAU B", False),  # another placeholder: never twin A's
])
def test_twins_placeholder_letters_are_compared(sqlite_engine, given: str, same: bool) -> None:  # noqa: ANN001
    """Twin boys 'BEBE A' (dossier) and 'BEBE B', the laboratory sending no PID-24/25: only
    numbers after the placeholder were compared, so both keyed as BEBE with no mark and
    twin B's results went into twin A's dossier."""
    first = dossier(sqlite_engine, family="Le Bihan", given="BEBE A", birth_date="2026-11-20",
                    sex="M", birth_family="Le Bihan")
    res = resolve(sqlite_engine, pid(f"88002^^^CHU&{CHU}&ISO^PI", f"LE BIHAN^{given}^^^^^L",
                              birth="202611200412", sex="M"))
    assert res.patient_id == (first if same else None)
    if not same:
        assert res.code == "IDENTITY_UNKNOWN_PATIENT"


def test_a_named_patients_initial_is_not_a_birth_mark(sqlite_engine) -> None:  # noqa: ANN001
    """Only after a placeholder does a letter count: 'Yann P' (a second name's initial) is
    still Yann Le Bihan, as before."""
    his = dossier(sqlite_engine, family="Le Bihan", given="Yann", birth_date="1979-04-30",
                  sex="M", birth_family=None)
    res = resolve(sqlite_engine, pid("", "LE BIHAN^Yann P^^^^^L", birth="19790430", sex="M"))
    assert (res.patient_id, res.via) == (his, "demographics")


# -- CX.4: namespace and universal id both OIDs, and not the same -------------------------------
def test_an_ins_whose_two_oids_name_two_kinds_is_a_conflict(engine) -> None:  # noqa: ANN001
    """'NIR^^^1.2.250.1.213.1.4.8&1.2.250.1.213.1.4.10&ISO^INS': CX.4.1 names the production
    INS-NIR, CX.4.2 the test one. The namespace was never read when CX.4.2 was an INS OID:
    the number was a test INS in silence, and given to the dossier the IPP names."""
    hers = dossier(engine, ids=((CHU, "4711", "PI"),))
    res = resolve(engine, pid(f"{TEST_NIR}^^^{INS_NIR}&{INS_TEST}&ISO^INS~4711^^^CHU&{CHU}&ISO^PI",
                              status="VALI"))
    assert (res.patient_id, res.code) == (None, "IDENTITY_CONFLICT")
    assert "INS-NIR (CX.4.1) and an INS-NIR-TEST (CX.4.2)" in res.reason
    assert "PID[2]-3 repetition 1" in res.reason and TEST_NIR not in res.reason
    with engine.connect() as conn:
        assert get_patient(conn, hers).ins is None
    # the same OID twice (one as a URN) is no disagreement
    same = resolve(engine, pid(f"{TEST_NIR}^^^urn:oid:{INS_TEST}&{INS_TEST}&ISO^INS~4711^^^CHU&"
                               f"{CHU}&ISO^PI", status="VALI"))
    assert same.patient_id == hers


def test_a_local_id_whose_namespace_is_another_oid_is_read_by_its_universal_id(
        sqlite_engine) -> None:  # noqa: ANN001
    """CX.4.1 '1.2.250.1.71.4.2.2.9' (another site's OID left in an interface's template),
    CX.4.2 the hospital's: CX.4.2 is the assigning authority, as before, and the ledger row
    now says the two disagree."""
    hers = dossier(sqlite_engine, ids=((CHU, "4711", "PI"),))
    res = resolve(sqlite_engine, pid(f"4711^^^1.2.250.1.71.4.2.2.9&{CHU}&ISO^PI"))
    assert (res.patient_id, res.via) == (hers, "local-id")
    segment = pid(f"4711^^^1.2.250.1.71.4.2.2.9&{CHU}&ISO^PI")
    ident = extract_identity(parse_text(f"{MSH}\r{segment}"))
    assert ident.warnings == ["PID[2]-3 repetition 1: assigning authority's namespace (CX.4.1) "
                              "is another OID than its universal id (CX.4.2): CX.4.2 used"]


# -- the birth place (PID-11 BDL, PID-23) confirms a demographic match, never makes one ----------
LE_GOFF_NIR = nir("1551129232190")  # born November 1955 in Quimper (INSEE 29232)


def born_in(address: str = "", place: str = "", names: str = "LE GOFF^Jérôme^^^^^L",
            ipp: str = "55123") -> str:
    """PID of Jérôme Le Goff, no INS, an IPP nobody knows, the birth place as given."""
    fields = ["PID", "", "", f"{ipp}^^^LABO&{LABO}&ISO^PI", "", names, "", "19551102", "M",
              "", "", address] + [""] * 11 + [place] + [""] * 8 + ["PROV"]
    return "|".join(fields)


@pytest.mark.parametrize(("address", "place", "filed"), [
    ("4 place de l'Église^^Brest^^29200^FRA^H~^^^^^^BDL^^29019", "", False),  # born in Brest
    ("", "29019", False),  # PID-23 holding the INSEE code
    ("^^^^^^BDL^^99351", "", False),  # born abroad (Algeria), his INS says Quimper
    ("^^^^^^BDL^^29232", "", True),  # Quimper, as his INS says
    ("^^Brest^^29200^FRA^H", "Brest", True),  # no code: a place name is not compared
    ("", "", True),  # no birth place: as before
])
def test_a_birth_place_other_than_the_dossiers_ins_says_is_a_homonym(
        sqlite_engine, address: str, place: str, filed: bool) -> None:  # noqa: ANN001
    """M. Jérôme Le Goff born on 2 Nov 1955 in Quimper has a dossier with his INS; a
    laboratory sends results for a Jérôme Le Goff born the same day in Brest, without INS.
    The strict match found the dossier; the birth place sent (the INS trait that tells such
    homonyms apart) was never read."""
    his = dossier(sqlite_engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02",
                  sex="M", birth_family="Le Goff", ins=LE_GOFF_NIR, ins_oid=INS_NIR)
    res = resolve(sqlite_engine, born_in(address, place))
    if filed:
        assert (res.patient_id, res.via) == (his, "demographics")
    else:
        assert (res.patient_id, res.code) == (None, "IDENTITY_TRAITS_MISMATCH")
        assert "PID-11 BDL" in res.reason
        for said in ("29019", "29232", "99351", "Brest", "Quimper"):
            assert said not in res.reason


def test_a_birth_place_alone_finds_nothing_and_a_dossier_without_ins_is_not_vetoed(
        sqlite_engine) -> None:  # noqa: ANN001
    """Only an INS's digits state a dossier's birth place: a dossier without one is matched
    as before; and a birth place never makes a match of other traits."""
    his = dossier(sqlite_engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02",
                  sex="M", birth_family="Le Goff")
    brest = "^^^^^^BDL^^29019"
    assert resolve(sqlite_engine, born_in(brest)).patient_id == his
    other = resolve(sqlite_engine, born_in(brest, names="LE GOFF^Yves^^^^^L", ipp="55124"))
    assert (other.patient_id, other.code) == (None, "IDENTITY_UNKNOWN_PATIENT")


@pytest.mark.parametrize(("nir_", "place", "contradicts"), [
    (nir("1551129232190"), "29232", False),
    (nir("1551129232190"), "29019", True),
    (nir("1491220004828"), "2A004", False),  # born in Ajaccio before 1976: '20' in the NIR
    (nir("149122A004828"), "20004", False),
    (nir("149122A004828"), "2B033", True),
    (nir("2840699351042"), "99351", False),  # born abroad: '99' and the country's code
    (nir("7551129232190"), "29019", False),  # a temporary number says no birth place
    (nir("1551129232190"), "Quimper", False),
])
def test_nir_digits_against_the_birth_place(nir_: str, place: str, contradicts: bool) -> None:
    from normalizers.nir import birth_place_contradicts

    assert birth_place_contradicts(nir_, place) is contradicts


@pytest.mark.parametrize(("county", "filed"), [("29019", False), ("29232", True)])
def test_a_cda_birth_place_is_compared_as_pid_11_is(sqlite_engine, county: str,  # noqa: ANN001
                                                    filed: bool) -> None:
    """A CR-BIO whose patient has an IPP nobody knows (no INS): the birthplace's INSEE code
    (CI-SIS: birthplace/place/addr/county) vetoes the dossier of a homonym as PID-11 does."""
    from normalizers.cda import normalize_cda
    from parsers.cda import parse_cda
    from tests.test_identity_round5 import CRBIO, CRBIO_IDS

    his = dossier(sqlite_engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02",
                  sex="M", birth_family="Le Goff", ins=LE_GOFF_NIR, ins_oid=INS_NIR)
    unknown_ipp = '<id extension="4100009999" root="2.999.250.1.1"/>'
    data = CRBIO.replace(CRBIO_IDS, unknown_ipp).replace(
        "<county>29232</county>", f"<county>{county}</county>").encode()
    ident = normalize_cda(parse_cda(data), data, "chu").identity
    assert ident.birth_place == county
    with sqlite_engine.begin() as conn:
        res = resolve_identity(conn, ident, auto_create=False)
    assert res.patient_id == (his if filed else None)
    assert res.code == (None if filed else "IDENTITY_TRAITS_MISMATCH")


def test_the_round_on_both_stores(engine) -> None:  # noqa: ANN001
    """What the store answers for this round's demographic rules, on SQLite and PostgreSQL:
    an alias (PID-32 AL) is not matched, 'BEBE B' is not twin 'BEBE A', a homonym born
    elsewhere than his dossier's INS says is not filed, and each is found when it should."""
    twin = dossier(engine, family="Le Bihan", given="BEBE A", birth_date="2026-11-20",
                   sex="M", birth_family="Le Bihan")
    his = dossier(engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02", sex="M",
                  birth_family="Le Goff", ins=LE_GOFF_NIR, ins_oid=INS_NIR)
    hers = dossier(engine)

    def newborn(given: str) -> str:
        return pid("", f"LE BIHAN^{given}^^^^^L", birth="20261120", sex="M")

    assert resolve(engine, newborn("BEBE B")).code == "IDENTITY_UNKNOWN_PATIENT"
    assert resolve(engine, newborn("Bébé a")).patient_id == twin
    assert resolve(engine, born_in("^^^^^^BDL^^29019")).code == "IDENTITY_TRAITS_MISMATCH"
    assert resolve(engine, born_in("^^^^^^BDL^^29232", ipp="55125")).patient_id == his
    assert resolve(engine, pid("", "MARTIN^Maëlle^^^^^L", status="PROV~AL")).code == \
        "IDENTITY_UNKNOWN_PATIENT"
    assert resolve(engine, pid("", "MARTIN^Maëlle^^^^^L", status="PROV~UA")).patient_id == hers
