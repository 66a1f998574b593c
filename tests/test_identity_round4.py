"""Identity round 4: birth names, INS-NIA and INS-NIR, corrections whose original lies in
another dossier. Invented patients; INS with made-up digits and valid keys; real LOINC codes."""

from __future__ import annotations

import shutil

import pytest

from dossiers.db import create_schema, make_engine
from dossiers.patients import add_identifier, create_patient, update_demographics
from normalizers.identity import extract_identity
from parsers.hl7v2.er7 import parse_text
from pipelines.identity import resolve_identity

MSH = "MSH|^~\\&|DXCARE|CHU-RENNES|DMP|DMP|20261120093000+0100||ORU^R01^ORU_R01|77|P|2.5"
INS_NIR = "1.2.250.1.213.1.4.8"
INS_NIA = "1.2.250.1.213.1.4.9"
CHU = "1.2.250.1.71.4.2.2.350000001"  # the hospital's IPP domain


def nir(base13: str) -> str:
    digits = base13[:5] + {"2A": "19", "2B": "18"}.get(base13[5:7], base13[5:7]) + base13[7:]
    return f"{base13}{97 - int(digits) % 97:02d}"


def pid(ids: str, names: str = "MARTIN^Maëlle^^^^^L", birth: str = "19840612",
        sex: str = "F", status: str = "PROV") -> str:
    return f"PID|||{ids}||{names}||{birth}|{sex}" + "|" * 24 + status


@pytest.fixture(scope="module")
def template(tmp_path_factory):  # noqa: ANN001, ANN201
    """One empty store for the module; each test files into its own copy."""
    path = tmp_path_factory.mktemp("template") / "store.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    engine.dispose()
    return path


@pytest.fixture
def engine(template, tmp_path):  # noqa: ANN001, ANN201
    copy = tmp_path / "store.sqlite3"
    shutil.copyfile(template, copy)
    made = make_engine(f"sqlite:///{copy}")
    yield made
    made.dispose()


def identity(segment: str):  # noqa: ANN201
    return extract_identity(parse_text(f"{MSH}\r{segment}\r"))


def dossier(engine, *, family: str = "Le Bihan", given: str = "Maëlle",  # noqa: ANN001
            birth_date: str = "1984-06-12", sex: str = "F", ins: str | None = None,
            ins_oid: str | None = None, birth_family: str | None = "Martin",
            ids: tuple[tuple[str, str, str], ...] = ()) -> int:
    with engine.begin() as conn:
        pid_ = create_patient(conn, family=family, given=given, birth_date=birth_date, sex=sex,
                              ins=ins, ins_oid=ins_oid, birth_family=birth_family)
        for authority, value, type_code in ids:
            add_identifier(conn, pid_, authority, value, type_code)
    return pid_


def resolve(engine, segment: str, auto_create: bool = False):  # noqa: ANN001, ANN201
    with engine.begin() as conn:
        return resolve_identity(conn, identity(segment), auto_create=auto_create)


# -- the birth name alone finds the dossier made under the used name ----------------------------
@pytest.mark.parametrize("names", [
    "MARTIN^Maëlle^^^^^L",  # the INS traits: the birth name, typed L
    "MARTIN^MAELLE",  # one name, no type
    "Martin^Maëlle Anne^^^^^L",  # the list of given names
])
def test_birth_name_alone_finds_the_dossier_made_under_the_used_name(engine, names):  # noqa: ANN001
    """Mme Le Bihan née Martin's dossier; a laboratory knows her by her birth name only. It
    was matched on the used name alone: no dossier, quarantined (a second dossier with
    auto-creation and an INS)."""
    hers = dossier(engine)
    found = resolve(engine, pid("", names))
    assert (found.patient_id, found.via) == (hers, "demographics")


def test_birth_name_of_one_dossier_and_used_name_of_another_is_ambiguous(engine):  # noqa: ANN001
    """Maëlle Le Bihan née Martin, and Maëlle Martin (unmarried), born the same day: a
    message naming 'MARTIN' may be either: quarantined, never filed on a guess."""
    dossier(engine)
    dossier(engine, family="Martin", birth_family=None)
    found = resolve(engine, pid("", "MARTIN^Maëlle^^^^^L"))
    assert (found.patient_id, found.code) == (None, "IDENTITY_AMBIGUOUS")


def test_birth_name_written_otherwise_still_matches(engine):  # noqa: ANN001
    """The key of the birth name is the family name's: accents, apostrophes, blanks and
    decomposed (NFD) letters fold alike."""
    hers = dossier(engine, family="Dupont", birth_family="D’Hérouville")
    nfd = "D'HE\u0301ROUVILLE"
    found = resolve(engine, pid("", f"{nfd}^Maëlle^^^^^L"))
    assert (found.patient_id, found.via) == (hers, "demographics")
    found = resolve(engine, pid("", "DHEROUVILLE^MAELLE"))
    assert found.patient_id == hers


def test_birth_name_given_later_is_keyed(engine):  # noqa: ANN001
    """A dossier made with one name, its birth name set later (an A31, an admin): the key
    follows, and the birth name finds it."""
    hers = dossier(engine, birth_family=None)
    assert resolve(engine, pid("", "MARTIN^Maëlle^^^^^L")).patient_id is None
    with engine.begin() as conn:
        assert update_demographics(conn, hers, birth_family="Martin") == ["birth_family"]
    assert resolve(engine, pid("", "MARTIN^Maëlle^^^^^L")).patient_id == hers


def test_new_ins_under_the_birth_name_of_a_dossier_without_ins_makes_no_second(engine):  # noqa: ANN001
    """A qualified INS no dossier holds, sent with the birth name of a dossier created
    under the used name without INS: a look-alike, assigned by an admin, not a second
    dossier made by auto-creation."""
    dossier(engine)
    ins = nir("2840635238123")
    ids = f"{ins}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
    found = resolve(engine, pid(ids, status="VALI"), auto_create=True)
    assert (found.patient_id, found.code) == (None, "IDENTITY_AMBIGUOUS")
