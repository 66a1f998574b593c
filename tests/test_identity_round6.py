"""Identity and dedupe round 6: what real senders still got wrong. Invented patients, INS
with made-up digits and valid keys, real LOINC codes and realistic values."""

from __future__ import annotations

import importlib

import pytest
from alembic import command
from sqlalchemy import select, update

from dossiers import migrate
from dossiers.deposit import _instant, fact_of
from dossiers.patients import add_identifier, find_by_local_id
from dossiers.schema import audit_log, entries
from normalizers.cda import normalize_cda
from normalizers.lab import normalize_message
from normalizers.model import Entry, NormalizationError
from parsers.cda import parse_cda
from parsers.hl7v2 import parse_message
from pipelines.identity import resolve_identity
from tests.test_dedup_channels import cholesterol, cr_bio, file, links, oru
from tests.test_identity_round4 import CHU, dossier, nir, pid, resolve
from tests.test_identity_round5 import CRBIO, CRBIO_IDS, INS_NIR, newborn_pid, twin_pid

_0011 = importlib.import_module("dossiers.migrations.versions.0011_hour_only_facts")
rehash, instant_0010, instant_0011 = _0011.rehash, _0011.instant_0010, _0011.instant_0011


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


# -- twins' placeholder names: 'BEBE 1' and 'BEBE 2' key alike -------------------------------
@pytest.mark.parametrize(("given", "same"), [
    ("BEBE 2", False), ("BEBE", False), ("Bébé 1", True), ("BEBE 01", True),
])
def test_twins_placeholder_numbers_are_compared(engine, given: str, same: bool) -> None:  # noqa: ANN001
    """Twin boys 'BEBE 1' (dossier) and 'BEBE 2', the lab sending no PID-24/25: both names
    key as BEBE, so the second twin's results matched the first one's dossier by traits."""
    first = dossier(engine, family="Le Bihan", given="BEBE 1", birth_date="2026-11-20",
                    sex="M", birth_family="Le Bihan")
    res = resolve(engine, twin_pid(given, multiple="", order=""))
    assert res.patient_id == (first if same else None)
    if not same:
        assert res.code == "IDENTITY_UNKNOWN_PATIENT"


def test_a_twins_ins_makes_its_dossier_beside_its_unqualified_twins(engine) -> None:  # noqa: ANN001
    """'BEBE 2' arrives with his own qualified INS-NIR; 'BEBE 1' has a dossier without INS:
    he was a look-alike ('a new dossier would duplicate it'), the INS quarantined."""
    first = dossier(engine, family="Le Bihan", given="BEBE 1", birth_date="2026-11-20",
                    sex="M", birth_family="Le Bihan")
    segment = newborn_pid(f"{nir('1261199351043')}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS",
                          "", given="BEBE 2")
    res = resolve(engine, segment, auto_create=True)
    assert res.code is None and res.via == "auto-create" and res.patient_id != first


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


# -- ADT^A40 / A18: the merged patient's identifier names the surviving dossier ---------------
def merge_adt(pid3: str, mrg1: str, *, trigger: str = "A40", control: str = "ADT-40-1",
              status: str = "VALI", names: str = "LE BIHAN^Maëlle^^^^^D~MARTIN^Maëlle^^^^^L",
              mrg: bool = True) -> bytes:
    """The CHU's merge: its duplicate record (MRG-1) merged into Mme Le Bihan's (PID-3)."""
    structure = "ADT_A39" if trigger == "A40" else "ADT_A18"
    segments = [f"MSH|^~\\&|DXCARE|CHU-RENNES|DMP|DMP|20261127093000+0100||ADT^{trigger}^"
                f"{structure}|{control}|P|2.5|||||FRA|8859/15",
                "EVN||20261127092900+0100",
                pid(pid3, names=names, status=status)]
    if mrg:
        segments.append(f"MRG|{mrg1}")
    return "\r".join(segments).encode("iso-8859-15")


IPP = f"7311^^^CHU-RENNES&{CHU}&ISO^PI"  # the surviving record's IPP
OLD_IPP = f"7399^^^CHU-RENNES&{CHU}&ISO^PI"  # the duplicate record's, merged into it
CERBA_IPP = "4100001953^^^CERBA-LYON&2.999.250.1.1&ISO^PI"  # Le Goff's, at the lab


def resolved_by(engine, pid3: str):  # noqa: ANN001, ANN201
    """How a later result naming the patient by ``pid3`` alone (PID-32 PROV) resolves."""
    return resolve(engine, pid(pid3, status="PROV"))


def test_a40_makes_the_merged_ipp_name_the_surviving_dossier(ctx) -> None:  # noqa: ANN001
    """A40 was refused (HL7_UNSUPPORTED_EVENT): a result still sent under the duplicate's
    IPP afterwards (a lab's order placed before the merge) found no dossier, or a second
    one made for the same person."""
    hers = dossier(ctx.engine, ids=((CHU, "7311", "PI"),))
    row = file(ctx, merge_adt(IPP, OLD_IPP, status="PROV"), "chu")
    assert (row.status, row.error_code, row.patient_id) == ("deposited", None, hers)
    assert "merge" in row.error_message and "7399" not in row.error_message
    found = resolved_by(ctx.engine, OLD_IPP)
    assert (found.patient_id, found.via) == (hers, "local-id")
    with ctx.engine.connect() as conn:
        trail = conn.execute(select(audit_log.c.action, audit_log.c.details).where(
            audit_log.c.patient_id == hers, audit_log.c.action == "identity.merged")).all()
    assert [(a, d["trigger"]) for a, d in trail] == [("identity.merged", "A40")]
    again = file(ctx, merge_adt(IPP, OLD_IPP, status="PROV"), "chu")  # resent: level 2
    assert (again.status, again.duplicate_of) == ("duplicate", row.id)


def test_a40_resent_with_another_segment_layout_is_a_duplicate(sqlite_ctx) -> None:  # noqa: ANN001
    """The same merge (same MSH-10) resent with a PD1 before its MRG: the same statement, a
    duplicate (level 2), not a 'control id reused' second application."""
    dossier(sqlite_ctx.engine, ids=((CHU, "7311", "PI"),))
    first = file(sqlite_ctx, merge_adt(IPP, OLD_IPP, status="PROV"), "chu")
    resent = merge_adt(IPP, OLD_IPP, status="PROV").replace(b"\rMRG|", b"\rPD1|||\rMRG|")
    again = file(sqlite_ctx, resent, "chu")
    assert (again.status, again.duplicate_of) == ("duplicate", first.id)


def test_a18_is_read_as_a_merge(sqlite_ctx) -> None:  # noqa: ANN001
    hers = dossier(sqlite_ctx.engine, ids=((CHU, "7311", "PI"),))
    row = file(sqlite_ctx, merge_adt(IPP, OLD_IPP, trigger="A18", status="PROV"), "chu")
    assert (row.status, row.patient_id) == ("deposited", hers)
    assert resolved_by(sqlite_ctx.engine, OLD_IPP).patient_id == hers


def his_dossier_under_the_old_ipp(ctx) -> int:  # noqa: ANN001
    """M. Le Goff's dossier, holding his cholesterol, and the CHU's IPP 7399 (his results
    were filed under it before the CHU reused the record for Mme Le Bihan)."""
    file(ctx, oru(), "LABM")
    (his_entry,) = cholesterol(ctx)
    with ctx.engine.begin() as conn:
        add_identifier(conn, his_entry.patient_id, CHU, "7399", "PI")
    return his_entry.patient_id


def test_a40_whose_merged_ipp_another_dossier_holds_moves_nothing(sqlite_ctx) -> None:  # noqa: ANN001
    """The CHU's IPP 7399, which names M. Le Goff's dossier here (his cholesterol in it),
    given as merged into Mme Le Bihan: applied, his next results went to her dossier.
    Quarantined: merging two dossiers is an admin's decision; his keeps its IPP, entries."""
    his = his_dossier_under_the_old_ipp(sqlite_ctx)
    hers = dossier(sqlite_ctx.engine, ids=((CHU, "7311", "PI"),))
    row = file(sqlite_ctx, merge_adt(IPP, OLD_IPP, status="PROV"), "chu")
    assert (row.status, row.error_code, row.error_location) == (
        "quarantined", "ADT_MERGE_DOSSIERS", "MRG[4]-1")
    assert f"dossier {his} (holding" in row.error_message
    assert f"surviving dossier {hers}" in row.error_message
    assert "7399" not in row.error_message and "Goff" not in row.error_message
    with sqlite_ctx.engine.connect() as conn:
        assert find_by_local_id(conn, CHU, "7399") == [his]
    assert [e.patient_id for e in cholesterol(sqlite_ctx)] == [his]


def test_a40_merges_no_identifier_of_another_authority(sqlite_ctx) -> None:  # noqa: ANN001
    """IHE PAM merges two records of one identifier domain: the lab's IPP of M. Le Goff in
    the CHU's MRG-1 is not the CHU's to give to Mme Le Bihan's dossier."""
    file(sqlite_ctx, oru(), "LABM")
    hers = dossier(sqlite_ctx.engine, ids=((CHU, "7311", "PI"),))
    row = file(sqlite_ctx, merge_adt(IPP, f"{CERBA_IPP}~{OLD_IPP}", status="PROV"), "chu")
    assert (row.status, row.patient_id) == ("deposited", hers)
    assert any("another assigning authority" in w for w in row.warnings)
    his = cholesterol(sqlite_ctx)[0].patient_id
    with sqlite_ctx.engine.connect() as conn:
        assert find_by_local_id(conn, "2.999.250.1.1", "4100001953") == [his]
        assert find_by_local_id(conn, CHU, "7399") == [hers]


LEFEVRE = "268036912354128"  # Mme Lefèvre's INS (samples/patients.csv)
LE_GOFF = "155112923219071"


@pytest.mark.parametrize("mrg1", [
    OLD_IPP,  # the merged IPP names the dossier holding M. Le Goff's INS
    f"{LE_GOFF}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS",  # his INS itself
    f"{nir('2840699351042')}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS",  # no one's
])
def test_a40_never_merges_two_different_ins(sqlite_ctx, mrg1: str) -> None:  # noqa: ANN001
    """Mme Lefèvre, named by her qualified INS, said to absorb a patient with another INS:
    one person has one INS, so two persons are never merged on the sender's word."""
    his = his_dossier_under_the_old_ipp(sqlite_ctx)
    pid3 = f"{LEFEVRE}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS~{IPP}"
    row = file(sqlite_ctx, merge_adt(pid3, mrg1, names="LEFEVRE^Hélène^^^^^D~BERANGER^Hélène"
                                     "^^^^^L"), "chu")
    assert (row.status, row.error_code) == ("quarantined", "IDENTITY_CONFLICT")
    assert "INS" in row.error_message and LE_GOFF not in row.error_message
    with sqlite_ctx.engine.connect() as conn:
        assert find_by_local_id(conn, CHU, "7399") == [his]


def test_a40_survivor_found_by_demographics_alone_is_not_merged_into(sqlite_ctx) -> None:  # noqa: ANN001
    """PID-3 names an IPP no dossier holds: Mme Le Bihan's dossier matches by her traits,
    but an identifier moved on look-alike traits files another person's results there."""
    hers = dossier(sqlite_ctx.engine)
    row = file(sqlite_ctx, merge_adt(IPP, OLD_IPP, status="PROV"), "chu")
    assert (row.status, row.error_code) == ("quarantined", "IDENTITY_UNKNOWN_PATIENT")
    assert "demographics" in row.error_message
    with sqlite_ctx.engine.connect() as conn:
        assert find_by_local_id(conn, CHU, "7399") == []
    assert resolved_by(sqlite_ctx.engine, OLD_IPP).patient_id == hers  # by traits, as before


@pytest.mark.parametrize(("mrg", "mrg1", "code", "where"), [
    (False, "", "HL7_NO_MRG", "MRG"),
    (True, "", "ADT_MERGE_NO_IDENTIFIER", "MRG[4]-1"),
    (True, "^^^CHU-RENNES&1.2.250.1.71.4.2.2.350000001&ISO^PI", "ADT_MERGE_NO_IDENTIFIER",
     "MRG[4]-1"),
])
def test_a40_without_the_merged_identifier_fails_saying_where(mrg: bool, mrg1: str, code: str,
                                                               where: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize_message(parse_message(merge_adt(IPP, mrg1, mrg=mrg)), "chu")
    assert (exc.value.code, exc.value.location) == (code, where)


# -- migration 0011: facts to the hour filed before round 5 keep the old ':00' hash ------------
def _as_entry(row, effective: str) -> Entry:  # noqa: ANN001
    return Entry(type=row.type, key=row.key, source_ref="OBX[1]", system=row.system,
                 code=row.code, value=row.value, value_num=row.value_num, comparator=row.comparator,
                 unit=row.unit, effective=effective, details=row.details or {})


def test_migration_0011_rehashes_old_hour_facts_so_the_other_channel_dedupes(ctx) -> None:  # noqa: ANN001
    """The lab's ORU to the hour filed before round 5 holds the fact of '09:00Z'; round 5
    hashes the hour as '09Z', so the CR-BIO to the same hour, filed after the upgrade, was
    a second cholesterol entry. 0011 rewrites the old hash (downgrade puts it back)."""
    lab = file(ctx, oru(obx14="2025020310+0100"), "LABM")
    (row,) = cholesterol(ctx)
    assert fact_of(_as_entry(row, row.effective)) == row.fact  # the row says all of its fact
    hour_fact = row.fact
    old_fact = fact_of(_as_entry(row, "2025-02-03T10:00+01:00"))  # how 0010 read the hour
    assert old_fact != hour_fact
    with ctx.engine.begin() as conn:  # the store as it was before round 5
        conn.execute(update(entries).where(entries.c.id == row.id).values(fact=old_fact))
        command.stamp(migrate.alembic_config(conn), "0010")
    assert migrate.upgrade(ctx.engine, "0011") == ["upgraded to 0011"]  # 0011 alone
    assert [r.fact for r in cholesterol(ctx)] == [hour_fact]
    with ctx.engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0010")
    assert [r.fact for r in cholesterol(ctx)] == [old_fact]
    migrate.upgrade(ctx.engine)
    hospital = file(ctx, cr_bio(when="2025020310+0100"), "chu")
    (entry,) = cholesterol(ctx)
    assert links(ctx, entry.id) == [(lab.id, "created"), (hospital.id, "confirmed")]


def test_migration_0011_leaves_a_fact_it_cannot_reproduce(sqlite_ctx) -> None:  # noqa: ANN001
    file(sqlite_ctx, oru(obx14="2025020310+0100"), "LABM")
    (row,) = cholesterol(sqlite_ctx)
    with sqlite_ctx.engine.begin() as conn:
        conn.execute(update(entries).where(entries.c.id == row.id).values(fact="f" * 32))
        command.stamp(migrate.alembic_config(conn), "0010")
        assert rehash(conn, instant_0010, instant_0011) == 0
    assert [r.fact for r in cholesterol(sqlite_ctx)] == ["f" * 32]


@pytest.mark.parametrize("iso", ["2025-02-03T10+01:00", "2025-02-03T10", "2025-02-03T10Z",
                                 "2024-03-15T08+05:30", "2024-10-27T02-03:00",
                                 "0999-01-01T08+01:00"])
def test_migration_0011_reads_the_hour_as_deposit_does(iso: str) -> None:
    """The copy frozen in 0011 gives the instant ``deposit._instant`` gives today, and the
    one it gave before round 5 (the same instant to the minute)."""
    minute = iso[:13] + ":00" + iso[13:]
    assert instant_0011(iso) == _instant(iso) and instant_0010(iso) == _instant(minute)


def test_a40_with_two_groups_of_one_survivor_merges_both_and_two_survivors_fail() -> None:
    """ADT_A39 repeats its PID-MRG group: two records merged into one survivor are read;
    two survivors in one message are two patients, refused (nothing mixed)."""
    one = merge_adt(IPP, OLD_IPP) + b"\r" + pid(IPP, status="VALI").encode() + \
        f"\rMRG|7398^^^CHU-RENNES&{CHU}&ISO^PI".encode()
    merged = normalize_message(parse_message(one), "chu").adt.merged
    assert [(where, [li.value for li in m.local_ids]) for where, m in merged] == [
        ("MRG[4]-1", ["7399"]), ("MRG[6]-1", ["7398"])]
    two = merge_adt(IPP, OLD_IPP) + b"\r" + pid(f"7400^^^CHU-RENNES&{CHU}&ISO^PI").encode() + \
        f"\rMRG|7398^^^CHU-RENNES&{CHU}&ISO^PI".encode()
    with pytest.raises(NormalizationError) as exc:
        normalize_message(parse_message(two), "chu")
    assert exc.value.code == "HL7_MULTIPLE_PATIENTS"
