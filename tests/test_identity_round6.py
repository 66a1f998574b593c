"""Identity and dedupe round 6: what real senders still got wrong. Invented patients, INS
with made-up digits and valid keys, real LOINC codes and realistic values."""

from __future__ import annotations

import pytest

from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from pipelines.identity import resolve_identity
from tests.test_identity_round4 import CHU, dossier, pid, resolve
from tests.test_identity_round5 import CRBIO, CRBIO_IDS


@pytest.fixture
def engine(sqlite_engine):  # noqa: ANN001, ANN201
    """A store of the test's own (tests/conftest.py)."""
    return sqlite_engine


# -- CDA twins: sdtc:multipleBirthInd / sdtc:multipleBirthOrderNumber ------------------------
BIRTH_TIME = '<birthTime value="19551102"/>'
UNKNOWN_IPP = '<id extension="4100009999" root="2.999.250.1.1"/>'


def _with(sdtc: str):  # noqa: ANN202
    """The CR-BIO sample's patient (Jérôme Le Goff, born 2 Nov 1955, M) named by an IPP no
    dossier holds, with ``sdtc`` after his birthTime."""
    assert BIRTH_TIME in CRBIO
    data = CRBIO.replace(CRBIO_IDS, UNKNOWN_IPP).replace(BIRTH_TIME, BIRTH_TIME + sdtc).encode()
    return normalize_cda(parse_cda(data), data, "chu").identity


@pytest.mark.parametrize("sdtc", [
    '<sdtc:multipleBirthInd value="true"/>',
    '<sdtc:multipleBirthInd value="true"/><sdtc:multipleBirthOrderNumber value="1"/>',
    '<sdtc:multipleBirthOrderNumber value="2"/>',
])
def test_a_cda_twin_is_never_filed_by_demographics(engine, sdtc: str) -> None:  # noqa: ANN001
    """A twin's CDA (C-CDA's sdtc:multipleBirthInd, as PID-24 in HL7v2) was matched on its
    traits: the other twin's dossier (same family name, birth date, sex, placeholder given
    name) received the document."""
    dossier(engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02", sex="M",
            birth_family="Le Goff")
    ident = _with(sdtc)
    assert ident.multiple_birth
    with engine.begin() as conn:
        res = resolve_identity(conn, ident, auto_create=False)
    assert (res.patient_id, res.code) == (None, "IDENTITY_UNKNOWN_PATIENT")
    assert "multiple birth" in res.reason


@pytest.mark.parametrize("sdtc", [
    "", '<sdtc:multipleBirthInd value="false"/>',
    '<sdtc:multipleBirthInd value="false"/><sdtc:multipleBirthOrderNumber value="2"/>',
    '<sdtc:multipleBirthOrderNumber value="1"/>',
])
def test_a_cda_single_birth_still_matches_by_demographics(engine, sdtc: str) -> None:  # noqa: ANN001
    found = dossier(engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02",
                    sex="M", birth_family="Le Goff")
    ident = _with(sdtc)
    assert not ident.multiple_birth
    with engine.begin() as conn:
        assert resolve_identity(conn, ident, auto_create=False).patient_id == found


# -- sex unknown: no strict demographic match, and the reason says why -----------------------
@pytest.mark.parametrize("sex", ["U", "O", "A", "N"])
def test_sex_unknown_is_no_strict_match_and_the_reason_says_so(engine, sex: str) -> None:  # noqa: ANN001
    """PID-8 'U': a strict match compares four traits; the message was quarantined as if
    no dossier matched ('no dossier matches...'), which sent the admin looking for a
    missing dossier rather than at the sender's missing sex."""
    dossier(engine)
    res = resolve(engine, pid(f"7311^^^CHU-RENNES&{CHU}&ISO^PI", sex=sex))
    assert (res.patient_id, res.code) == (None, "IDENTITY_UNKNOWN_PATIENT")
    assert "sex" in res.reason and "no dossier matches" not in res.reason
