"""Identity round 11: what French senders we had not seen send. An ADT under a fictitious or
doubtful identity (PID-32 FICTI, DOUTE...) no longer rewrites the dossier's traits; the NIR of
a person born in Algeria, Morocco or Tunisia before independence, or in Paris, Lyon or
Marseille, is not "another birth place" than the one their INS traits state; PID-5's
partner name (type P) is the used name, an alias never the name compared. Invented
patients, INS with made-up digits and valid keys; store behaviour on SQLite and on the
PostgreSQL fixture."""

from __future__ import annotations

import pytest

from dossiers.db import make_engine
from dossiers.patients import add_identifier, create_patient
from normalizers.identity import read_identity_status
from normalizers.nir import birth_place_contradicts
from tests.test_adt_consent import SOURCE, adt, ledger, patient_row
from tests.test_identity_round4 import INS_NIR, dossier, identity, nir, pid
from tests.test_identity_round8 import LABO, resolve
from tests.test_pipeline import ingest

GAM_IPP = "1.2.250.1.999.9"  # the IPP domain of tests.test_adt_consent's GAM (CHU-X)


@pytest.fixture
def engine(database_url):  # noqa: ANN001, ANN201
    """A store at head on SQLite and on PostgreSQL (tests/conftest.py)."""
    store = make_engine(database_url)
    yield store
    store.dispose()


# -- PID-32: an ADT whose traits are not stated as the patient's own ---------------------------
def known_by_ipp(ctx) -> int:  # noqa: ANN001
    """Mme Hélène Lefèvre's dossier, known by the GAM's IPP, without INS."""
    with ctx.engine.begin() as conn:
        patient = create_patient(conn, family="Lefèvre", given="Hélène",
                                 birth_date="1979-03-28", sex="F", birth_family="Lefèvre")
        add_identifier(conn, patient, GAM_IPP, "IPP0042", "PI")
    return patient


def a08(status: str) -> bytes:
    """The GAM's ADT^A08 for the IPP0042 patient under another name, 'DURAND Zoé' (as an
    'identité d'emprunt': a patient admitted under a made-up name), PID-32 ``status``."""
    return adt("C-A08", "A08", family="DURAND", given="Zoé", pid32=status)


# the other codes of tables/identity_status.csv: test_which_statuses_say_the_traits_are_...
@pytest.mark.parametrize("status", ["PROV~FICTI", "VALI~DOUTE", "VIDE~USUR"])
def test_an_adt_under_a_fictitious_or_doubtful_identity_keeps_the_dossiers_traits(
        sqlite_ctx, status: str) -> None:  # noqa: ANN001
    """A GAM admits a patient under a made-up identity (PAM France PID-32 FICTI) or flags
    the identity as doubtful (DOUTE); its A08 reaches us with the hospital's IPP, which names
    the patient's dossier. Found by that IPP, the A08 was applied: the dossier took the
    made-up names. Its traits are not the patient's own: nothing applied, a warning says
    which status and why (no value), the A08 is still recorded on the dossier."""
    ctx = sqlite_ctx
    hers = known_by_ipp(ctx)
    (import_id,) = ingest(ctx, a08(status), source=SOURCE)
    row = ledger(ctx, import_id)
    assert (row.status, row.patient_id) == ("deposited", hers)
    assert row.error_message == "ADT^A08 recorded, nothing to apply"
    held = patient_row(ctx, hers)
    assert (held.family, held.given, held.birth_family) == ("Lefèvre", "Hélène", "Lefèvre")
    said = [w for w in row.warnings if w.startswith("identity not updated: the identity status")]
    assert len(said) == 1 and "not stated as the patient's own" in said[0], row.warnings
    assert "DURAND" not in said[0] and "Zoé" not in said[0]


@pytest.mark.parametrize("status", ["PROV", "PROV~HOMD"])
def test_an_adt_of_the_patients_own_traits_still_updates_the_dossier(sqlite_ctx,  # noqa: ANN001
                                                                     status: str) -> None:
    """The same A08 under a provisional identity, or a homonym flagged (the traits are the
    patient's own, shared with another): applied as before, found by the IPP."""
    ctx = sqlite_ctx
    hers = known_by_ipp(ctx)
    (import_id,) = ingest(ctx, a08(status), source=SOURCE)
    assert ledger(ctx, import_id).error_message.startswith("identity updated: family")
    assert patient_row(ctx, hers).family == "DURAND"


@pytest.mark.parametrize(("status", "doubted"), [
    ("FICTI", ("FICTI",)), ("VALI~DOUTE", ("DOUTE",)), ("QUAL~FICT~DOUT", ("FICT", "DOUT")),
    ("PROV~COLV", ("COLV",)), ("VALI~UD", ("UD",)), ("VALI", ()), ("PROV~HOMA", ()),
    ("VALI~US", ()), ("PROV~ZZZ", ()),  # an unknown code: the INS untrusted, traits as before
])
def test_which_statuses_say_the_traits_are_not_the_patients_own(status: str,
                                                                 doubted: tuple) -> None:
    assert read_identity_status(status).traits_doubted == doubted


# -- the NIR's birth place digits and the INS traits' birth place ------------------------------
ORAN_NIR = nir("2571092052123")  # a woman born October 1957 in Oran (French Algeria: 92)
PARIS_NIR = nir("1880575114087")  # a man born May 1988 in Paris 14e (INSEE 75114)


@pytest.mark.parametrize(("nir_", "place", "born", "contradicts"), [
    (ORAN_NIR, "99352", "1957-10-03", False),  # Algeria before 1962: 91 to 94 in the NIR
    (nir("1480391001045"), "99352", "1948-03-14", False),  # Alger: 91
    (nir("2550695003210"), "99350", "1955-06-21", False),  # Morocco: 95
    (nir("1600296040088"), "99351", "1960-02-11", False),  # Tunisia: 96, no year bound
    (ORAN_NIR, "99350", "1957-10-03", True),  # Oran is not Morocco
    (nir("2871092052123"), "99352", "1987-10-03", True),  # from 1968: Hauts-de-Seine
    (nir("1750391228045"), "99352", "1975-03-14", True),  # born in Évry (Essonne), 1975
    (ORAN_NIR, "99352", "", True),  # no birth year known: not told from Hauts-de-Seine
    (nir("1750391228045"), "91228", "1975-03-14", False),  # as before
    (PARIS_NIR, "75056", "1988-05-09", False),  # Paris, the commune's code
    (PARIS_NIR, "75114", "1988-05-09", False),
    (PARIS_NIR, "75113", "1988-05-09", True),  # another arrondissement is another place
    (nir("2660869123045"), "69383", "1966-08-30", False),  # Lyon, commune in the NIR
    (nir("2660813055045"), "13208", "1966-08-30", False),  # Marseille 8e, commune in the NIR
    (nir("2660813208045"), "69123", "1966-08-30", True),  # Marseille is not Lyon
    (nir("1551129232190"), "75056", "1955-11-02", True),  # Quimper is not Paris
])
def test_nir_birth_place_digits_of_former_territories_and_arrondissements(
        nir_: str, place: str, born: str, contradicts: bool) -> None:
    assert birth_place_contradicts(nir_, place, born) is contradicts


def born_in(place: str, names: str, birth: str, sex: str, ipp: str) -> str:
    """A laboratory's PID: no INS, an IPP nobody knows, the birth place (PID-11 BDL)."""
    fields = ["PID", "", "", f"{ipp}^^^LABO&{LABO}&ISO^PI", "", names, "", birth, sex,
              "", "", f"^^^^^^BDL^^{place}"] + [""] * 20 + ["PROV"]
    return "|".join(fields)


def test_a_woman_born_in_french_algeria_is_filed_by_her_traits(sqlite_engine) -> None:  # noqa: ANN001
    """Mme Joséphine Garcia, born 3 Oct 1957 in Oran: her NIR says 92 (the département
    d'Oran), her INS traits and the laboratory say Algeria (99352). The dossier holding her
    INS was refused as a homonym's born elsewhere (IDENTITY_TRAITS_MISMATCH): every result
    of a patient born in Algeria before 1962 was quarantined. A woman of the same traits said
    born in Morocco is still refused."""
    hers = dossier(sqlite_engine, family="Garcia", given="Joséphine", birth_date="1957-10-03",
                   sex="F", birth_family="Garcia", ins=ORAN_NIR, ins_oid=INS_NIR)
    res = resolve(sqlite_engine, born_in("99352", "GARCIA^Joséphine^^^^^L", "19571003", "F",
                                         "57100"))
    assert (res.patient_id, res.via) == (hers, "demographics")
    other = resolve(sqlite_engine, born_in("99350", "GARCIA^Joséphine^^^^^L", "19571003", "F",
                                           "57101"))
    assert (other.patient_id, other.code) == (None, "IDENTITY_TRAITS_MISMATCH")


def test_a_man_born_in_paris_said_born_in_paris_is_filed(engine) -> None:  # noqa: ANN001
    """M. Théo Fontaine, born 9 May 1988 in Paris 14e (75114 in his NIR); the laboratory
    states Paris as the commune (75056): refused as a homonym born elsewhere, now filed; a
    Théo Fontaine said born in Paris 13e is still another person. SQLite and PostgreSQL."""
    his = dossier(engine, family="Fontaine", given="Théo", birth_date="1988-05-09", sex="M",
                  birth_family="Fontaine", ins=PARIS_NIR, ins_oid=INS_NIR)
    res = resolve(engine, born_in("75056", "FONTAINE^Théo^^^^^L", "19880509", "M", "88050"))
    assert (res.patient_id, res.via) == (his, "demographics")
    other = resolve(engine, born_in("75113", "FONTAINE^Théo^^^^^L", "19880509", "M", "88051"))
    assert (other.patient_id, other.code) == (None, "IDENTITY_TRAITS_MISMATCH")


# -- PID-5 name types: the partner's name is the used name, an alias is never a name ----------
@pytest.mark.parametrize(("names", "family", "birth_family", "warned"), [
    # a plain HL7 engine: the legal (birth) name 'L', the married name typed 'P' (partner or
    # spouse, table 0200): it was dropped, the birth name read as the used one
    ("BERTRAND^Marie-Claire^^^^^L~FAURE^Marie-Claire^^^^^P", "FAURE", "BERTRAND", False),
    ("FAURE^Marie-Claire^^^^^P~BERTRAND^Marie-Claire^^^^^L", "FAURE", "BERTRAND", False),
    # PAM France's 'D' beside it is the used name
    ("FAURE^Marie-Claire^^^^^P~ROCHE^Marie-Claire^^^^^D~BERTRAND^Marie-Claire^^^^^L",
     "ROCHE", "BERTRAND", False),
    # an alias or a bad name sent first was the name compared
    ("LOU^Léa^^^^^A~ROUSSEAU^Léa", "ROUSSEAU", "ROUSSEAU", True),
    ("ROUSSAU^Léa^^^^^BAD~ROUSSEAU^Léa", "ROUSSEAU", "ROUSSEAU", True),
    ("ROUSSEAU^Léa~LOU^Léa^^^^^A", "ROUSSEAU", "ROUSSEAU", False),  # as before
    ("LOU^Léa^^^^^A", "", "", True),  # an alias alone: no name to compare
])
def test_pid5_partner_name_is_the_used_name_and_an_alias_never_a_name(
        names: str, family: str, birth_family: str, warned: bool) -> None:
    ident = identity(pid("", names))
    assert (ident.family, ident.birth_family) == (family, birth_family)
    said = [w for w in ident.warnings if "typed as not the patient's own" in w]
    assert bool(said) is warned, ident.warnings
    assert all("LOU" not in w and "ROUSSAU" not in w for w in ident.warnings)


def test_an_alias_sent_before_the_name_no_longer_hides_the_dossier(sqlite_engine) -> None:  # noqa: ANN001
    """Mme Léa Rousseau's dossier; a laboratory's PID names her stage name first, typed as
    an alias ('LOU', type A), then her name untyped. Compared on the alias, no dossier
    matched (quarantined; with an INS and auto-creation, a dossier named LOU)."""
    hers = dossier(sqlite_engine, family="Rousseau", given="Léa", birth_date="1992-02-17",
                   birth_family="Rousseau")
    res = resolve(sqlite_engine, pid(f"92021^^^LABO&{LABO}&ISO^PI", "LOU^Léa^^^^^A~ROUSSEAU^Léa",
                                     birth="19920217"))
    assert (res.patient_id, res.via) == (hers, "demographics")


def test_an_a31_with_the_spouses_name_updates_the_used_name(sqlite_ctx) -> None:  # noqa: ANN001
    """A GAM outside PAM France sends Mme Lefèvre's married name typed 'P' beside her legal
    name 'L': the dossier now goes by her used name, her birth name kept. The 'P' name was
    dropped: nothing applied."""
    ctx = sqlite_ctx
    hers = known_by_ipp(ctx)
    (import_id,) = ingest(ctx, adt("C-A31", "A31", family="FAURE^Hélène^^^^^P~LEFÈVRE",
                                   pid32="PROV"), source=SOURCE)
    assert ledger(ctx, import_id).error_message.startswith("identity updated: family")
    held = patient_row(ctx, hers)
    assert (held.family, held.birth_family, held.given) == ("FAURE", "LEFÈVRE", "Hélène")
