"""Alembic migrations: from empty, from revision 0001 with rows, stores made by create_all
before migrations existed; the head schema equals dossiers/schema.py (no forgotten migration)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from dossiers import migrate
from dossiers.db import create_schema, make_engine
from dossiers.schema import audit_log, imports, metadata

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HEAD = "0015"  # the newest revision: a new one changes it here


@pytest.fixture
def engine(empty_database_url):  # noqa: ANN001, ANN201
    engine = make_engine(empty_database_url)
    yield engine
    engine.dispose()


def differences(engine) -> list:  # noqa: ANN001
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def test_upgrade_from_empty_gives_the_declared_schema(engine) -> None:  # noqa: ANN001
    assert migrate.current(engine) is None
    assert migrate.upgrade(engine) == [f"upgraded to {migrate.head()}"]
    assert migrate.current(engine) == migrate.head() == HEAD
    assert differences(engine) == []
    assert migrate.upgrade(engine) == []  # at head: nothing to do


def test_upgrade_from_0001_keeps_rows(engine) -> None:  # noqa: ANN001
    migrate.upgrade(engine, "0001")
    assert "retries" not in {c["name"] for c in inspect(engine).get_columns("imports")}
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO imports (source, channel, received_at, sha256, size, status,"
            " entries_count, duplicates_count, attempts) VALUES"
            " ('lab', 'mllp', :t, :sha, 12, 'failed', 0, 0, 1)"), {"t": NOW, "sha": "ab" * 32})
    create_schema(engine)
    assert migrate.current(engine) == HEAD
    assert differences(engine) == []
    with engine.begin() as conn:
        row = conn.execute(select(imports)).one()
        assert (row.source, row.status, row.sha256, row.retries) == ("lab", "failed",
                                                                     "ab" * 32, 0)
        assert row.not_before is None and row.assigned_patient_id is None
        conn.execute(audit_log.insert().values(at=NOW, actor="admin", action="import.raw",
                                               import_id=row.id))
        conn.execute(imports.update().values(retries=2, edited_from=row.id))


def _drop_version_table(engine) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))


def test_store_made_at_0001_by_create_all_is_stamped_then_upgraded(engine) -> None:  # noqa: ANN001, E501
    """Made by the old create_all (tables, no version table), then opened by code that
    added audit_log by create_all but not the new columns: both end at head."""
    migrate.upgrade(engine, "0001")
    _drop_version_table(engine)
    audit_log.create(engine)
    assert migrate.upgrade(engine) == ["stamped 0001 (created before migrations)",
                                       f"upgraded to {HEAD}"]
    assert differences(engine) == []


def test_store_created_at_head_by_create_all_is_stamped(engine) -> None:  # noqa: ANN001
    metadata.create_all(engine)
    create_schema(engine)
    assert migrate.current(engine) == HEAD
    assert differences(engine) == []


def test_db_commands(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from cli import main

    monkeypatch.setenv("DMP_HOME", str(tmp_path))
    monkeypatch.delenv("DMP_DATABASE_URL", raising=False)
    monkeypatch.delenv("DMP_CONFIG", raising=False)
    assert main(["db", "current"]) == 0
    assert f"store revision none, code head {HEAD}: upgrade needed" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert f"upgraded to {HEAD}" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert "up to date" in capsys.readouterr().out
    monkeypatch.setenv("DMP_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["db", "current"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unavailable" in err


def test_upgrade_from_0002_chains_the_audit_rows_already_there(engine) -> None:  # noqa: ANN001
    from dossiers.audit import record, verify

    migrate.upgrade(engine, "0002")
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(text("INSERT INTO audit_log (at, actor, action, reason) VALUES"
                              " (:t, 'admin', 'import.raw', :r)"), {"t": NOW, "r": f"r{n}"})
    create_schema(engine)
    assert differences(engine) == []
    with engine.begin() as conn:
        record(conn, "admin", "import.discard", reason="after the upgrade")
    checked = verify(engine)
    assert checked.ok and checked.rows == 4 and checked.chains == 1


# Invented patients: family name as typed, the key it had up to 0005, the key from 0006.
OLD_KEYS = [("D'Artagnan", "D ARTAGNAN", "DARTAGNAN"),
            ("Le Goff", "LE GOFF", "LEGOFF"),
            ("N’Diaye", "N DIAYE", "NDIAYE"),
            ("Martin-Dupont", "MARTIN DUPONT", "MARTINDUPONT"),
            ("Lefèvre", "LEFEVRE", "LEFEVRE")]  # no separator: the same key


def _revision_module(number: str):  # noqa: ANN202
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate.alembic_config()).get_revision(number).module


def test_upgrade_to_0006_rekeys_family_names_without_separators(engine) -> None:  # noqa: ANN001
    """Rows written at 0005 (separators kept as a blank in family_key) are rekeyed, then found
    by a family name sent without its separators; downgrade restores the old keys."""
    from alembic import command

    from dossiers.names import name_key
    from dossiers.patients import find_by_demographics

    migrate.upgrade(engine, "0005")
    with engine.begin() as conn:
        for family, old_key, _ in OLD_KEYS:
            conn.execute(text(
                "INSERT INTO patients (family, given, birth_date, sex, family_key, given_key,"
                " opposed, created_at) VALUES (:f, 'Anne', '1980-02-29', 'F', :k, 'ANNE',"
                " :no, :t)"), {"f": family, "k": old_key, "no": False, "t": NOW})
    assert migrate.upgrade(engine) == [f"upgraded to {HEAD}"]
    assert differences(engine) == []

    def keys() -> dict[str, str]:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT family, family_key FROM patients")).all())

    assert keys() == {family: new for family, _, new in OLD_KEYS}
    assert all(name_key(family) == new for family, _, new in OLD_KEYS)  # the code's key
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT family, id FROM patients")).all())
        for family, sent in (("D'Artagnan", "DARTAGNAN"), ("Le Goff", "LEGOFF"),
                             ("N’Diaye", "N'DIAYE"), ("Martin-Dupont", "MARTIN DUPONT")):
            assert find_by_demographics(conn, sent, "Anne", "1980-02-29", "F") == [ids[family]]
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0005")
    assert migrate.current(engine) == "0005"
    assert keys() == {family: old for family, old, _ in OLD_KEYS}
    rekeying = _revision_module("0006")  # in batches of 2: three reads, the last one short
    with engine.begin() as conn:
        assert rekeying.rekey(conn, rekeying.fold_0006, 2) == 4
        assert rekeying.rekey(conn, rekeying.fold_0006, 2) == 0
    assert keys() == {family: new for family, _, new in OLD_KEYS}


def test_upgrade_to_0007_keys_birth_names(engine) -> None:  # noqa: ANN001
    """Dossiers written at 0006 (no birth_family_key) get the key of their birth name (NULL
    without one); the birth name alone then finds the dossier made under the used name.
    Downgrade drops the column and its index."""
    from alembic import command

    from dossiers.patients import find_by_demographics

    migrate.upgrade(engine, "0006")
    rows = [("Le Bihan", "Martin"), ("Dupont", "D’Hérouville"), ("Moreau", None)]
    with engine.begin() as conn:
        for family, birth in rows:
            conn.execute(text(
                "INSERT INTO patients (family, birth_family, given, birth_date, sex, family_key,"
                " given_key, opposed, created_at) VALUES (:f, :b, 'Maëlle', '1984-06-12', 'F',"
                " :k, 'MAELLE', :no, :t)"), {"f": family, "b": birth, "k": family.upper(),
                                              "no": False, "t": NOW})
    assert migrate.upgrade(engine) == [f"upgraded to {HEAD}"]
    assert differences(engine) == []
    with engine.connect() as conn:
        keys = dict(conn.execute(text("SELECT family, birth_family_key FROM patients")).all())
        ids = dict(conn.execute(text("SELECT family, id FROM patients")).all())
        assert keys == {"Le Bihan": "MARTIN", "Dupont": "DHEROUVILLE", "Moreau": None}
        assert find_by_demographics(conn, "MARTIN", "Maëlle", "1984-06-12", "F") == [
            ids["Le Bihan"]]
        assert find_by_demographics(conn, "d'Hérouville", "MAELLE", "1984-06-12", "F") == [
            ids["Dupont"]]
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0006")
    assert "birth_family_key" not in {c["name"] for c in inspect(engine).get_columns("patients")}
    assert "ix_patients_birth_demo" not in {i["name"] for i in inspect(engine).get_indexes(
        "patients")}


def test_upgrade_to_0009_folds_letters_without_decomposition(engine) -> None:  # noqa: ANN001
    """Rows keyed at 0008 ('WAŁESA', 'ØSTERGARD') are rekeyed with their plain letters, used
    and birth names alike, and found by the INS traits' spelling; downgrade restores."""
    from alembic import command

    from dossiers.patients import find_by_demographics

    migrate.upgrade(engine, "0008")
    rows = [("Wałęsa", "WAŁESA", None, None), ("Dupont", "DUPONT", "Østergård", "ØSTERGARD"),
            ("Martin", "MARTIN", None, None)]
    with engine.begin() as conn:
        for family, key, birth, birth_key in rows:
            conn.execute(text(
                "INSERT INTO patients (family, birth_family, given, birth_date, sex, family_key,"
                " birth_family_key, given_key, opposed, created_at) VALUES (:f, :b, 'Anna',"
                " '1991-04-30', 'F', :k, :bk, 'ANNA', :no, :t)"),
                {"f": family, "b": birth, "k": key, "bk": birth_key, "no": False, "t": NOW})
    assert migrate.upgrade(engine) == [f"upgraded to {HEAD}"]

    def keys() -> set[tuple]:
        with engine.connect() as conn:
            return set(conn.execute(text(
                "SELECT family, family_key, birth_family_key FROM patients")).all())

    assert keys() == {("Wałęsa", "WALESA", None), ("Dupont", "DUPONT", "OSTERGARD"),
                      ("Martin", "MARTIN", None)}
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT family, id FROM patients")).all())
        assert find_by_demographics(conn, "WALESA", "Anna", "1991-04-30", "F") == [
            ids["Wałęsa"]]
        assert find_by_demographics(conn, "OSTERGARD", "ANNA", "1991-04-30", "F") == [
            ids["Dupont"]]
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0008")
    assert keys() == {(f, k, bk) for f, k, _, bk in rows}


def _one_dossier(engine, family: str, given: str, birth_date: str, family_key: str,  # noqa: ANN001
                 given_key: str) -> str:
    """A woman's dossier written with plain SQL (the store is at an old revision, the
    code's tables are newer), its id as the API takes it."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO patients (family, given, birth_date, sex, family_key, given_key,"
            " opposed, created_at) VALUES (:f, :g, :b, 'F', :fk, :gk, :no, :t)"),
            {"f": family, "g": given, "b": birth_date, "fk": family_key, "gk": given_key,
             "no": False, "t": NOW})
        return str(conn.execute(text("SELECT id FROM patients")).scalar_one())


def test_upgrade_to_0010_keeps_a_dossier_readable_and_adds_representatives(engine) -> None:  # noqa: ANN001, E501
    """A store at 0009 with a minor's dossier: after the upgrade the patient reads it as
    before, an admin declares her mother, who reads it too; downgrade drops the table."""
    from alembic import command

    from dossiers import access

    migrate.upgrade(engine, "0009")
    pid = _one_dossier(engine, "Da Silva", "Maëlys", "2010-09-14", "DA SILVA", "MAELYS")
    assert migrate.upgrade(engine) == [f"upgraded to {HEAD}"]
    patient = access.Principal("patient", pid)
    assert access.read_dossier(engine, patient, pid)["access"]["basis"] == "patient"
    admin, mother = access.Principal("admin", "alice"), \
        access.Principal("representative", "rep-claire")
    access.declare_representative(engine, admin, pid, subject="rep-claire", family="Da Silva",
                                  given="Claire", quality="parent")
    assert access.read_dossier(engine, mother, pid)["access"]["basis"] == "representative"
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0009")
    assert "legal_representatives" not in inspect(engine).get_table_names()


def test_upgrade_to_0012_adds_the_death_and_keeps_a_dossier_readable(engine) -> None:  # noqa: ANN001, E501
    """A store at 0011 with a dossier: after the upgrade it holds no death (never stated),
    its patient reads it as before; a death recorded, the patient's own read is refused
    PATIENT_DECEASED; downgrade drops the columns and the dossier is as it was."""
    from alembic import command

    from dossiers import access

    migrate.upgrade(engine, "0011")
    pid = _one_dossier(engine, "Lefèvre", "Hélène", "1968-03-14", "LEFEVRE", "HELENE")
    assert migrate.upgrade(engine) == [f"upgraded to {HEAD}"]
    assert differences(engine) == []
    patient = access.Principal("patient", pid)
    shown = access.read_dossier(engine, patient, pid)["patient"]
    assert (shown["deceased"], shown["deceased_at"]) == (False, None)
    with engine.begin() as conn:
        conn.execute(text("UPDATE patients SET deceased = :yes, deceased_at = '2026-11-20'"),
                     {"yes": True})
    with pytest.raises(access.AccessDenied) as refused:
        access.read_dossier(engine, patient, pid)
    assert refused.value.code == "PATIENT_DECEASED"
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0011")
    held = {c["name"] for c in inspect(engine).get_columns("patients")}
    assert not held & {"deceased", "deceased_at", "death_stated_at", "death_import_id",
                       "death_trigger"}
    with engine.begin() as conn:
        assert conn.execute(text("SELECT family FROM patients")).scalar_one() == "Lefèvre"


def test_upgrade_to_0013_anchors_the_chains_and_adds_the_oppositions(engine) -> None:  # noqa: ANN001, E501
    """A store at 0012 with a dossier and its trail: the upgrade anchors every chain where
    it ends (it verifies intact, and a deleted last row is found from then on), the
    dossier holds no opposition (never stated) and its patient reads it as before; the
    patient opposes break-glass, which is then refused; downgrade drops the table and the
    columns, the dossier and its trail as they were."""
    from alembic import command

    from dossiers import access
    from dossiers.audit import verify

    migrate.upgrade(engine, "0012")
    pid = _one_dossier(engine, "Lefèvre", "Hélène", "1968-03-14", "LEFEVRE", "HELENE")
    patient = access.Principal("patient", pid)
    # two reads at 0012: two rows in the dossier's chain, written with no anchor
    with engine.begin() as conn:
        from dossiers.audit import GENESIS, row_hash
        prev = GENESIS
        for seq in (1, 2):
            digest = row_hash(prev, chain=int(pid), seq=seq, at=NOW, actor=patient.actor,
                              action="dossier.read", import_id=None, patient_id=int(pid),
                              reason=None, details={"basis": "patient"})
            conn.execute(audit_log.insert().values(
                at=NOW, actor=patient.actor, action="dossier.read", patient_id=int(pid),
                details={"basis": "patient"}, chain=int(pid), seq=seq, prev_hash=prev,
                hash=digest))
            prev = digest
    assert migrate.upgrade(engine) == [f"upgraded to {HEAD}"]
    assert differences(engine) == []
    assert verify(engine).ok
    with engine.connect() as conn:
        assert conn.execute(text("SELECT seq, hash FROM audit_heads")).one() == (2, prev)
    shown = access.read_dossier(engine, patient, pid)["patient"]
    assert (shown["break_glass_opposed"], shown["regulation_opposed"]) == (False, False)
    access.set_emergency_opposition(engine, patient, pid, break_glass=True)
    with pytest.raises(access.AccessDenied) as refused:
        access.open_break_glass(engine, access.Principal("professional", "10000000009",
                                                         "médecin urgentiste"),
                                pid, "patient inconscient aux urgences")
    assert refused.value.code == "BREAK_GLASS_OPPOSED"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)"))
    assert [b.problem[:12] for b in verify(engine).breaks] == ["missing tail"]
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0012")
    assert "audit_heads" not in inspect(engine).get_table_names()
    held = {c["name"] for c in inspect(engine).get_columns("patients")}
    assert not held & {"break_glass_opposed", "regulation_opposed"}
    with engine.begin() as conn:
        assert conn.execute(text("SELECT family FROM patients")).scalar_one() == "Lefèvre"
