"""Identity round 7: the identity-vigilance operator's way out of ADT_MERGE_DOSSIERS, `dossier
merge SURVIVOR MERGED` (CLI and admin API). Invented patients (samples/patients.csv), INS with
made-up digits and valid keys, the lab's real LOINC code (cholesterol total 2093-3, 1.84 g/L)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from dossiers import access
from dossiers.access import Principal
from dossiers.audit import verify
from dossiers.merged import merged_into
from dossiers.patients import find_by_ins, find_by_local_id, get_patient
from dossiers.schema import audit_log, entries, imports, patients, provenance
from pipelines.audit import Actor
from pipelines.dossier_merge import MergeRefusedError, merge_dossiers
from tests.api_support import running_api
from tests.test_dedup_channels import CHOL, cholesterol, cr_bio, file, links, oru
from tests.test_identity_round4 import CHU, dossier, pid, resolve
from tests.test_identity_round6 import (
    IPP,
    LE_GOFF,
    LEFEVRE,
    OLD_IPP,
    his_dossier_under_the_old_ipp,
    merge_adt,
)
from tests.test_operators_round import no_prefect, run  # noqa: F401 (a fixture)

OPERATOR = Actor("cellule-identitovigilance")
LE_GOFF_TRAITS = {"names": "LE GOFF^Jérôme", "birth": "19551102", "sex": "M"}
REASON = "doublon confirmé par la cellule d'identitovigilance (pièce d'identité vérifiée)"


def quarantined_merge(ctx):  # noqa: ANN001, ANN202
    """M. Le Goff's dossier (his cholesterol, the CHU's IPP 7399) and the CHU's record 7311;
    the CHU's A40 merging 7399 into 7311 is quarantined ADT_MERGE_DOSSIERS (round 6)."""
    his = his_dossier_under_the_old_ipp(ctx)
    other = dossier(ctx.engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02",
                    sex="M", birth_family="Le Goff", ids=((CHU, "7311", "PI"),))
    row = file(ctx, merge_adt(IPP, OLD_IPP, status="PROV", names="LE GOFF^Jérôme^^^^^L"),
               "chu")
    assert (row.status, row.error_code) == ("quarantined", "ADT_MERGE_DOSSIERS")
    return his, other, row


@pytest.fixture
def cli_env(ctx, home, monkeypatch, no_prefect):  # noqa: ANN001, ANN201, F811
    """`dmp-ingest` run in-process against the test's store and archive."""
    monkeypatch.setenv("DMP_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("DMP_ARCHIVE_URL", ctx.settings.archive_url)
    return ctx


def trail(ctx, patient_id: int) -> list[tuple[str, str | None]]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(audit_log.c.action, audit_log.c.reason).where(
                audit_log.c.patient_id == patient_id,
                audit_log.c.action.like("dossier.merge%")))]


def test_the_quarantine_names_the_command_that_merges(sqlite_ctx) -> None:  # noqa: ANN001
    """The operator read 'an admin's decision' and had no command to make it."""
    his, other, row = quarantined_merge(sqlite_ctx)
    assert f"dmp-ingest dossier merge {other} {his} --reason" in row.error_message
    assert "7399" not in row.error_message and "Goff" not in row.error_message
    from pipelines.advice import advice  # what `imports show` says to do about the code

    assert "dossier merge SURVIVOR MERGED" in advice("ADT_MERGE_DOSSIERS")
    assert "dossier merge" in advice("IDENTITY_CONFLICT")


def test_cli_merge_moves_everything_and_the_quarantined_a40_then_reruns(
        cli_env, capsys) -> None:  # noqa: ANN001
    """The survivor (the CHU's record) receives the merged dossier's IPPs, INS and
    cholesterol with its provenance; the merged one stays as a closed pointer; the A40
    quarantined before the merge is deposited when rerun; a later result under the old IPP
    files in the survivor; both patients' trails say so, and the trail still verifies."""
    ctx = cli_env
    his, other, row = quarantined_merge(ctx)
    (chol,) = cholesterol(ctx)
    before = links(ctx, chol.id)
    code, out, err = run(capsys, "dossier", "merge", str(other), str(his), "--reason", REASON,
                         "--as", OPERATOR.name)
    assert (code, err) == (0, "")
    assert f"dossier {his} was merged into dossier {other}" in out and "Goff" not in out
    (moved,) = cholesterol(ctx)
    assert (moved.id, moved.patient_id) == (chol.id, other)
    assert links(ctx, moved.id) == before
    with ctx.engine.connect() as conn:
        assert find_by_local_id(conn, CHU, "7399") == [other]
        assert find_by_local_id(conn, "2.999.250.1.1", "4100001953") == [other]
        assert find_by_ins(conn, LE_GOFF).id == other
        assert merged_into(conn, his) == other
        assert get_patient(conn, his).dmp_status == "FERME"
        assert conn.execute(select(func.count()).select_from(entries).where(
            entries.c.patient_id == his)).scalar_one() == 0
    assert verify(ctx.engine).ok
    assert trail(ctx, other) == [("dossier.merge", REASON)]
    assert trail(ctx, his) == [("dossier.merged_into", REASON)]
    code, out, err = run(capsys, "imports", "rerun", str(row.id))
    assert code == 0, err
    with ctx.engine.connect() as conn:
        again = conn.execute(select(imports).where(imports.c.id == row.id)).one()
    assert (again.status, again.patient_id) == ("deposited", other)
    found = resolve(ctx.engine, pid(OLD_IPP, **LE_GOFF_TRAITS))
    assert (found.patient_id, found.code) == (other, None)
    code, out, _ = run(capsys, "dossier", "show", str(his))
    assert code == 0 and f"merged into dossier {other}" in out


def test_dry_run_prints_counts_and_codes_and_changes_nothing(cli_env, capsys) -> None:  # noqa: ANN001
    ctx = cli_env
    his, other, _ = quarantined_merge(ctx)
    code, out, err = run(capsys, "dossier", "merge", str(other), str(his), "--reason", REASON,
                         "--dry-run")
    assert (code, err) == (0, "")
    assert "would move" in out and CHOL in out and "lab_result" in out
    assert "Goff" not in out and LE_GOFF not in out and "1.84" not in out
    code, out, _ = run(capsys, "dossier", "merge", str(other), str(his), "--reason", REASON,
                       "--dry-run", "--json")
    shown = __import__("json").loads(out)
    assert shown["dry_run"] and shown["codes"][f"LN|{CHOL}"] == 1
    assert shown["ins_moved"] and shown["entry_types"]["lab_result"] == 1
    assert [e.patient_id for e in cholesterol(ctx)] == [his]
    with ctx.engine.connect() as conn:
        assert merged_into(conn, his) is None
        assert find_by_local_id(conn, CHU, "7399") == [his]
    assert trail(ctx, his) == [] and trail(ctx, other) == []


def test_two_different_ins_are_refused_and_nothing_moves(cli_env, capsys) -> None:  # noqa: ANN001
    ctx = cli_env
    his = his_dossier_under_the_old_ipp(ctx)
    with ctx.engine.connect() as conn:
        hers = find_by_ins(conn, LEFEVRE).id
    code, out, err = run(capsys, "dossier", "merge", str(hers), str(his), "--reason", REASON)
    assert code == 1 and "IDENTITY_CONFLICT" in err and LEFEVRE not in err
    unknown = "299129935104270"  # a well-formed INS no dossier holds
    code, _, err = run(capsys, "dossier", "merge", unknown, str(his), "--reason", REASON)
    assert code == 1 and "NOT_FOUND" in err and unknown not in err
    assert [e.patient_id for e in cholesterol(ctx)] == [his]
    with ctx.engine.connect() as conn:
        assert merged_into(conn, his) is None and find_by_ins(conn, LE_GOFF).id == his


@pytest.mark.parametrize(("field", "value", "said"), [
    ("opposed", True, "opposition"), ("dmp_status", "FERME", "closed DMP"),
    ("consultation_consent", "INC", "consultation")])
def test_a_choice_only_the_merged_patient_made_is_not_lifted(sqlite_ctx, field, value,  # noqa: ANN001
                                                            said) -> None:
    his, other, _ = quarantined_merge(sqlite_ctx)
    with sqlite_ctx.engine.begin() as conn:
        conn.execute(update(patients).where(patients.c.id == his).values(**{field: value}))
    with pytest.raises(MergeRefusedError) as exc:
        merge_dossiers(sqlite_ctx.engine, str(other), str(his), OPERATOR, REASON)
    assert exc.value.code == "MERGE_CONSENT_DIFFERS" and said in str(exc.value)


def le_goff_twice(ctx):  # noqa: ANN001, ANN202
    """M. Le Goff's dossier (by INS: the lab's ORU) and a duplicate the CHU's CR-BIO made
    under its IPP alone: the same cholesterol, once in each."""
    lab = file(ctx, oru(), "LABM")
    (his_entry,) = cholesterol(ctx)
    dup = dossier(ctx.engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02",
                  sex="M", birth_family="Le Goff", ids=((CHU, "7399", "PI"),))
    ids = ('<id extension="155112923219071" root="1.2.250.1.213.1.4.10"/>\n'
           '      <id extension="4100001953" root="2.999.250.1.1"/>')
    data = cr_bio().decode()
    assert ids in data
    hospital = file(ctx, data.replace(ids, f'<id extension="7399" root="{CHU}"/>').encode(),
                    "chu")
    assert (hospital.status, hospital.patient_id) == ("deposited", dup)
    assert sorted(e.patient_id for e in cholesterol(ctx)) == sorted([his_entry.patient_id, dup])
    return his_entry.patient_id, dup, lab, hospital


def counts(ctx) -> tuple[int, int]:  # noqa: ANN001
    """(entries, provenance links) in the whole store."""
    with ctx.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(entries)).scalar_one(),
                conn.execute(select(func.count()).select_from(provenance)).scalar_one())


def test_the_same_fact_in_both_becomes_one_entry_with_both_links(ctx) -> None:  # noqa: ANN001
    """Dedupe level 4 across the merge: the ORU's cholesterol and the CR-BIO's, one in each
    dossier, were two entries of one dossier after the merge."""
    his, dup, lab, hospital = le_goff_twice(ctx)
    before = counts(ctx)
    plan = merge_dossiers(ctx.engine, str(his), str(dup), OPERATOR, REASON)
    assert plan.absorbed_same_fact >= 1
    absorbed = plan.absorbed_same_fact + plan.absorbed_same_key
    assert counts(ctx) == (before[0] - absorbed, before[1])  # every link kept
    (entry,) = cholesterol(ctx)
    assert entry.patient_id == his
    assert links(ctx, entry.id) == sorted([(lab.id, "created"), (hospital.id, "confirmed")])
    with ctx.engine.connect() as conn:  # the CR-BIO's report moved, nothing lost
        assert conn.execute(select(func.count()).select_from(entries).where(
            entries.c.import_id == hospital.id, entries.c.patient_id == his)).scalar_one() > 0
        assert conn.execute(select(func.count()).select_from(provenance).where(
            provenance.c.import_id == hospital.id)).scalar_one() == hospital.entries_count \
            + hospital.duplicates_count


def test_merge_is_all_or_nothing(ctx, monkeypatch) -> None:  # noqa: ANN001
    """A failure after the entries moved (here: the pointer's write) leaves both dossiers as
    they were, on SQLite and PostgreSQL."""
    import pipelines.dossier_merge as dm

    his, dup, _, _ = le_goff_twice(ctx)

    def broken(*_args):  # noqa: ANN002, ANN202
        raise RuntimeError("disk full")

    monkeypatch.setattr(dm, "add_identifiers", broken)
    with pytest.raises(RuntimeError):
        merge_dossiers(ctx.engine, str(his), str(dup), OPERATOR, REASON)
    assert sorted(e.patient_id for e in cholesterol(ctx)) == sorted([his, dup])
    with ctx.engine.connect() as conn:
        assert find_by_local_id(conn, CHU, "7399") == [dup]
        assert merged_into(conn, dup) is None
    assert trail(ctx, his) == [] and trail(ctx, dup) == []


def test_a_quarantined_import_is_not_assigned_to_a_tombstone(sqlite_ctx) -> None:  # noqa: ANN001
    """Filed there, it would have been quarantined DOSSIER_CLOSED on its rerun."""
    from pipelines.admin import AdminError, assign

    his, other, row = quarantined_merge(sqlite_ctx)
    merge_dossiers(sqlite_ctx.engine, str(other), str(his), OPERATOR, REASON)
    with pytest.raises(AdminError, match=f"merged into dossier {other}"):
        assign(sqlite_ctx.engine, row.id, str(his), OPERATOR, REASON)


def test_a_tombstone_is_not_matched_by_traits_nor_merged_again_reads_say_where(sqlite_ctx) -> None:  # noqa: ANN001
    """After the merge both rows still hold M. Le Goff's traits: matched by them, every later
    result naming him by traits alone would be ambiguous (two dossiers)."""
    his, dup, _, _ = le_goff_twice(sqlite_ctx)
    merge_dossiers(sqlite_ctx.engine, str(his), str(dup), OPERATOR, REASON)
    res = resolve(sqlite_ctx.engine, pid("", **LE_GOFF_TRAITS))
    assert (res.patient_id, res.code) == (his, None)
    third = dossier(sqlite_ctx.engine)
    with pytest.raises(MergeRefusedError) as exc:
        merge_dossiers(sqlite_ctx.engine, str(third), str(dup), OPERATOR, REASON)
    assert exc.value.code == "DOSSIER_MERGED" and f"dossier {his}" in str(exc.value)
    with pytest.raises(MergeRefusedError) as exc:  # nor merged into
        merge_dossiers(sqlite_ctx.engine, str(dup), str(third), OPERATOR, REASON)
    assert exc.value.code == "DOSSIER_MERGED"
    with pytest.raises(access.Merged) as gone:
        access.read_dossier(sqlite_ctx.engine, Principal("patient", str(dup)), str(dup))
    assert gone.value.code == "DOSSIER_MERGED" and f"dossier {his}" in gone.value.message
    # the tombstone's trail (who read it before the merge) stays the patient's to read
    read = access.read_audit(sqlite_ctx.engine, Principal("patient", str(dup)), str(dup))
    assert "dossier.merged_into" in {e["action"] for e in read["events"]}


def test_admin_api_merges_with_the_same_checks(ctx) -> None:  # noqa: ANN001
    his, dup, _, _ = le_goff_twice(ctx)
    with running_api(ctx) as api, api.client("admin", subject="alice") as c:
        r = c.post("/admin/dossiers/merge", json={"survivor": str(his), "merged": str(dup),
                                                  "reason": REASON, "dry_run": True})
        assert r.status_code == 200, r.text
        assert r.json()["dry_run"] and r.json()["absorbed_same_fact"] >= 1
        assert len(cholesterol(ctx)) == 2
        with ctx.engine.connect() as conn:
            hers = find_by_ins(conn, LEFEVRE).id
        r = c.post("/admin/dossiers/merge", json={"survivor": str(hers), "merged": str(his),
                                                  "reason": REASON})
        assert (r.status_code, r.json()["error"]) == (409, "IDENTITY_CONFLICT")
        r = c.post("/admin/dossiers/merge", json={"survivor": str(his), "merged": str(dup),
                                                  "reason": REASON})
        assert r.status_code == 200, r.text
    assert [e.patient_id for e in cholesterol(ctx)] == [his]
    assert trail(ctx, his) == [("dossier.merge", REASON)]
    assert trail(ctx, dup) == [("dossier.merged_into", REASON)]


def same_result_twice(ctx, value: str = "1.84"):  # noqa: ANN001, ANN202
    """The lab's ORU filed in M. Le Goff's dossier (by INS), then sent again under another
    control id naming him by a second lab IPP alone, which a duplicate dossier holds: the
    same order's results under the same keys, in each dossier."""
    first = file(ctx, oru(), "LABM")
    dup = dossier(ctx.engine, family="Le Goff", given="Jérôme", birth_date="1955-11-02",
                  sex="M", birth_family="Le Goff", ids=(("2.999.250.1.1", "4100009999", "PI"),))
    pid3 = ("155112923219071^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS~4100001953^^^"
            "CERBA-LYON&2.999.250.1.1&ISO^PI")
    data = oru(control="RB2502040000099", value=value).decode()
    assert pid3 in data
    again = file(ctx, data.replace(pid3, "4100009999^^^CERBA-LYON&2.999.250.1.1&ISO^PI")
                 .encode(), "LABM")
    assert (again.status, again.patient_id) == ("deposited", dup)
    return first, again, dup


def test_the_same_entry_under_one_key_in_both_is_kept_once_with_both_links(sqlite_ctx) -> None:  # noqa: ANN001
    """Dedupe level 2 across the merge: moved as they were, the two rows broke the unique
    (patient, key, version) and the merge could not be done at all."""
    first, again, dup = same_result_twice(sqlite_ctx)
    his = first.patient_id
    plan = merge_dossiers(sqlite_ctx.engine, str(his), str(dup), OPERATOR, REASON)
    assert plan.absorbed_same_key >= 1 and plan.entries_moved == 0
    (entry,) = cholesterol(sqlite_ctx)
    assert entry.patient_id == his
    assert links(sqlite_ctx, entry.id) == [(first.id, "created"), (again.id, "confirmed")]
    with sqlite_ctx.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(entries).where(
            entries.c.patient_id == dup)).scalar_one() == 0


def test_one_key_with_other_content_in_both_refuses_the_whole_merge(sqlite_ctx) -> None:  # noqa: ANN001
    """1.84 g/L in one dossier, 1.95 g/L under the same key in the other: which is current
    would be a guess. Refused, nothing moved; the dry run says so too."""
    first, _, dup = same_result_twice(sqlite_ctx, value="1.95")
    for dry_run in (True, False):
        with pytest.raises(MergeRefusedError) as exc:
            merge_dossiers(sqlite_ctx.engine, str(first.patient_id), str(dup), OPERATOR,
                           REASON, dry_run=dry_run)
        assert exc.value.code == "MERGE_ENTRIES_CONFLICT" and "1.95" not in str(exc.value)
    assert sorted(e.patient_id for e in cholesterol(sqlite_ctx)) == sorted(
        [first.patient_id, dup])


def test_what_a_worker_filed_in_the_tombstone_meanwhile_is_found_and_swept(ctx) -> None:  # noqa: ANN001
    """A worker that resolved the merged dossier just before the merge committed files its
    result there after it (PostgreSQL, READ COMMITTED): invisible in a closed dossier.
    `check` names the dossier, and the same merge again moves what is there."""
    from pipelines.check import check

    his, dup, _, hospital = le_goff_twice(ctx)
    merge_dossiers(ctx.engine, str(his), str(dup), OPERATOR, REASON)
    with ctx.engine.begin() as conn:  # the late worker's report, as it would have filed it
        late = conn.execute(select(entries.c.id).where(
            entries.c.import_id == hospital.id, entries.c.patient_id == his)
            .order_by(entries.c.id)).scalars().first()
        conn.execute(update(entries).where(entries.c.id == late).values(patient_id=dup))
    found = {f.code: f.ids for f in check(ctx.engine, ctx.archive).findings}
    assert found.get("ENTRIES_IN_MERGED_DOSSIER") == [dup]
    plan = merge_dossiers(ctx.engine, str(his), str(dup), OPERATOR, REASON)
    assert plan.entries_moved + plan.absorbed_same_key + plan.absorbed_same_fact == 1
    assert "ENTRIES_IN_MERGED_DOSSIER" not in {
        f.code for f in check(ctx.engine, ctx.archive).findings}
    with ctx.engine.connect() as conn:
        assert conn.execute(select(entries.c.patient_id).where(entries.c.id == late)
                            ).scalar_one() == his
