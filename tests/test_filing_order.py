"""The same inputs file the same way whatever the batching (DESIGN.md: a faster path that
changes a single output is a bug).

The preparing pool hands filing its messages in pieces cut by its pace; a piece is filed in
bulk, the messages that depend on an earlier one of the piece one by one after it. Whatever
the cut, the store must be the one of filing every message alone in ledger order. Both are
run here from the same prepared messages (pickled as the pool does), on copies of one store:
once one message per piece (each alone: the one-by-one path), once cut as given.

The ANS "Volets TRANS DOC CDA HL7V2" v2.0/v2.1 ORU examples exposed the bugs: ten messages of
two patients who have no dossier yet (auto-create), all under one MSH-10 ('015'), initial,
replacement and deletion of one document number ('1001-E1'). A message creating a dossier
went to one-by-one filing without holding back the later messages of its piece: one for the
other patient went in bulk before it, owned the document number first, and the replacement
of the first patient was quarantined (CORRECTION_OTHER_DOSSIER) instead of filed.
"""

from __future__ import annotations

import csv
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.diff_batching import snapshot
from dossiers.db import make_engine
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.ledger import claim_batch
from pipelines.process import Context, file_prepared, prepare_rows, read_claimed
from pipelines.settings import load_settings
from tests.conftest import SAMPLES, corpus_path, migrated_sqlite

VOLETS = "Volets_TRANS_DOC_CDA_HL7V2_V2.{}_ORU_{}_ORU_message_ORU_CR_Bio_{}"


def volets(version: str) -> list[Path]:
    """One version's ORU of the document number '1001-E1' (the forms without the 800 KB
    base64 CDA), in the order a folder lists them: replacement, deletion, initial."""
    return [corpus_path("hl7v2", VOLETS.format(version, step, name)) for step, name in (
        ("Remplacement", "RPLC_N1_N3.er7"), ("Suppression", "DEL_N1_N3.er7"),
        ("Transmission_initiale", "INIT_N1_N3.hl7"))]


@dataclass
class Prepared:
    """A store with the inputs received and claimed, and its messages prepared (pickled:
    filing changes them, each run takes fresh copies)."""

    home: Path
    db: Path
    settings: object
    blob: bytes


class _Pieces:
    """What ``file_prepared`` reads from the pool, with the pieces given: each one handed
    over as the pool would when it is behind (filed before the next one is ready)."""

    def __init__(self, rows: list, pieces: list) -> None:  # noqa: ANN001
        self.rows = rows
        self._pieces = pieces

    def chunks(self):  # noqa: ANN201
        yield from self._pieces

    def ready_ahead(self) -> bool:
        return False


def prepare(tmp_path: Path, template: Path, inputs: list[tuple[bytes, str]]) -> Prepared:
    home = tmp_path / "base"
    url = migrated_sqlite(template, home / "dmp.sqlite3")
    conf = load_settings(env={"DMP_HOME": str(home), "DMP_DATABASE_URL": url,
                              "DMP_AUTO_CREATE": "1",
                              "DMP_MAPPINGS_DIR": str(SAMPLES / "mappings")})
    ctx = Context.from_settings(conf)
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    intake(ctx.engine, ctx.archive, [Received(data, source, "file", file_name=f"{n}")
                                     for n, (data, source) in enumerate(inputs)])
    ids = claim_batch(ctx.engine, limit=1000, worker=ctx.worker, lease_seconds=3600)
    blob = pickle.dumps(prepare_rows(ctx, read_claimed(ctx, ids)))
    ctx.engine.dispose()
    return Prepared(home, home / "dmp.sqlite3", conf, blob)


def file_cut(base: Prepared, cuts: list[int], name: str) -> dict[str, list[str]]:
    """File the prepared messages on a copy of the store, in pieces ending before each index
    of ``cuts``; the store as comparable lines."""
    db = base.home / f"{name}.sqlite3"
    shutil.copyfile(base.db, db)
    ctx = Context.from_settings(base.settings)
    ctx.engine.dispose()
    ctx.engine = make_engine(f"sqlite:///{db}")
    prepared, decided = pickle.loads(base.blob)
    rows = sorted([p.row for p in prepared], key=lambda r: r.id)
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(prepared))), len(prepared)]
    pieces = [(prepared[a:b], decided if a == 0 else {})
              for a, b in zip(bounds, bounds[1:], strict=False)]
    try:
        file_prepared(ctx, _Pieces(rows, pieces))
        return snapshot(ctx.engine)
    finally:
        ctx.engine.dispose()


def one_by_one(base: Prepared) -> dict[str, list[str]]:
    count = len(pickle.loads(base.blob)[0])
    return file_cut(base, list(range(1, count)), "alone")


def test_a_duplicate_whose_dossier_was_to_be_created_names_no_dossier(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """The v2.1 replacement repeats the v2.0 one (MSH-10 '015', the same document) for
    another patient, who has no dossier: the dossier created for it went with the
    duplicate's savepoint, but the outcome still named it, and recording it failed on the
    foreign key, with it the whole transaction of the batch. It is a duplicate naming no
    dossier now, and no empty dossier is left."""
    from sqlalchemy import func, select

    from dossiers.schema import imports, patients

    base = prepare(tmp_path, sqlite_template, [(p.read_bytes(), "labs")
                                               for p in [*volets("0"), volets("1")[0]]])
    with make_engine(f"sqlite:///{base.db}").connect() as conn:
        before = conn.execute(select(func.count()).select_from(patients)).scalar_one()
    one_by_one(base)
    with make_engine(f"sqlite:///{base.home / 'alone.sqlite3'}").connect() as conn:
        ledger = conn.execute(select(imports.c.status, imports.c.patient_id)
                              .order_by(imports.c.id)).all()
        after = conn.execute(select(func.count()).select_from(patients)).scalar_one()
    assert ledger[0].status == "deposited" and ledger[0].patient_id is not None
    assert tuple(ledger[3]) == ("duplicate", None)
    assert after == before + 1
