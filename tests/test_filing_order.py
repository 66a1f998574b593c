"""The same inputs file the same way whatever the batching (DESIGN.md: a faster path that
changes a single output is a bug).

The preparing pool hands filing its messages in pieces cut by its pace; a piece is filed in
bulk, the messages that depend on an earlier one of the piece one by one after it. Whatever
the cut, the store must be the one of filing every message alone in ledger order. Both are
run here from the same prepared messages (pickled as the pool does), on copies of one store:
once one message per piece (each alone: the one-by-one path), once cut as given.

The ANS "Volets TRANS DOC CDA HL7V2" v2.0/v2.1 ORU examples exposed the bugs: two patients,
the v2.1 one's dossier created by a BIO-TROD before, all under one MSH-10 ('015'),
replacement, deletion and initial of one document number ('1001-E1'). A message creating a
dossier went to one-by-one filing without holding back the later messages of its piece:
one for the other patient went in bulk before it, owned the document number first, and the
replacement of the first patient was quarantined (CORRECTION_OTHER_DOSSIER) instead of
filed. Bench: bench/diff_batching.py runs the same comparison over samples and corpus.
"""

from __future__ import annotations

import csv
import pickle
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.diff_batching import snapshot
from dossiers.db import make_engine
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.ledger import claim_batch
from pipelines.process import Context, drain, file_prepared, prepare_rows, read_claimed
from pipelines.settings import load_settings
from tests.conftest import SAMPLES, corpus_path, migrated_sqlite
from tests.test_dedup_channels import cr_bio, oru

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


def test_the_volets_oru_sets_file_alike_in_one_piece_and_one_by_one(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """A BIO-TROD creating the dossier of the v2.1 set's patient, then the v2.0 and v2.1 ORU.
    Cut after the BIO-TROD, the v2.0 replacement (its patient's dossier to create) went
    one by one after the v2.1 one (its dossier now there), which went in bulk and owned the
    document number first: the v2.0 replacement, and its deletion, were quarantined
    CORRECTION_OTHER_DOSSIER instead of filed, and the v2.1 ones deposited instead of
    found duplicates. Each creation of a dossier now holds back what comes after it."""
    trod = corpus_path("cda", "BIO-TROD_2024.01_COVID-19.xml")
    files = [trod, *volets("0"), *volets("1")]
    base = prepare(tmp_path, sqlite_template, [(p.read_bytes(), "labs") for p in files])
    alone = one_by_one(base)
    assert sum('"duplicate"' in line for line in alone["ledger"]) == 3  # the v2.1 ones
    for cuts in ([], [1], [1, 4], [2, 5]):
        assert file_cut(base, cuts, f"c{'-'.join(map(str, cuts))}") == alone, cuts


def test_bio_trod_documents_sharing_a_fact_file_alike_whatever_the_cut(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """The four ANS BIO-TROD documents, whose patient has no dossier yet: the first creates
    it; two state the same influenza B result, which the first of them must own."""
    files = sorted(corpus_path("cda").glob("BIO-TROD_2024.01_*.xml"))
    base = prepare(tmp_path, sqlite_template, [(p.read_bytes(), "ans") for p in files])
    alone = one_by_one(base)
    for cuts in ([], [1], [2], [1, 3]):
        assert file_cut(base, cuts, f"c{'-'.join(map(str, cuts))}") == alone, cuts


def test_a_cancel_naming_the_number_of_a_document_of_its_piece_files_after_it(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """A RIS's T02 carries a CDA (filed under its ClinicalDocument/id, TXA-12 kept beside
    it); its T11, without content, names TXA-12 alone and is followed to that document.
    In one piece the two share no key: both went in bulk, the cancel found nothing and
    filed a tombstone, and the report stayed current. The number a document may be named
    by marks it as a key does."""
    from tests.test_documents_senders import _mdm, b64, cda

    ed = f"OBX|1|ED|18748-4^CR d'imagerie^LN||^TEXT^XML^Base64^{b64(cda('DOC-9'))}||||||F"
    messages = [_mdm("T02", txa12="CR-2024-0041^RIS-Y"),  # creates the dossier
                _mdm("T02", txa12="CR-2024-0042^RIS-Y", content=None) + ed + "\r",
                _mdm("T11", txa12="CR-2024-0042^RIS-Y", content=None)]
    base = prepare(tmp_path, sqlite_template, [(m.encode(), "labo-y") for m in messages])
    alone = one_by_one(base)
    assert not any('"document|CR-2024-0042' in line for line in alone["entries"])
    assert file_cut(base, [1], "bulk") == alone


def test_a_cancel_held_back_in_its_piece_files_before_the_original_sent_after_it(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """Patient B's T11 names report CR-777, which patient A's T02 files after it. Filed in
    ledger order, nothing holds CR-777 when the cancel comes (a tombstone in B's dossier),
    then A's report is filed. In one piece the cancel was held back (its control id is the
    one of B's report before it) while A's report, sharing no key of B's dossier, went in
    bulk before it: the cancel then found CR-777 in A's dossier and was quarantined
    (CORRECTION_OTHER_DOSSIER). What a held-back message corrects holds back a message
    filing it, in any dossier."""
    from tests.test_documents_senders import _mdm
    from tests.test_documents_senders_round2 import _other_patient

    cancel = _other_patient(_mdm("T11", txa12="CR-777^RIS-Y", content=None))
    messages = [_mdm("T02", txa12="CR-100^RIS-Y"),  # A's dossier
                _other_patient(_mdm("T02", txa12="CR-5^RIS-Y")),  # B's
                _other_patient(_mdm("T02", txa12="CR-6^RIS-Y")),
                cancel.replace("|M-T11-CR-777|", "|M-T02-CR-6^R|"),  # B's control id again
                _mdm("T02", txa12="CR-777^RIS-Y")]
    base = prepare(tmp_path, sqlite_template, [(m.encode(), "labo-y") for m in messages])
    alone = one_by_one(base)
    assert not any("CORRECTION_OTHER_DOSSIER" in line for line in alone["ledger"])
    assert file_cut(base, [1, 2], "bulk") == alone


def with_ipp(message: bytes) -> bytes:
    """The lab's ORU with the hospital's IPP as a second PID-3 repetition."""
    return message.replace(b"^PI||Le Goff", b"^PI~77001^^^HCL&2.999.250.1.9&ISO^PI||Le Goff")


def test_a_duplicate_filed_in_bulk_teaches_no_identifier(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """The lab sends its ORU again (same MSH-10, same results), its PID now with the
    hospital's IPP too: a duplicate. Alone, its savepoint is rolled back with what its
    identity taught; in bulk, the IPP was learnt for the dossier all the same (and the
    next messages found by it)."""
    again = with_ipp(oru(control="RB-1"))
    assert again != oru(control="RB-1")
    base = prepare(tmp_path, sqlite_template, [(oru(control="RB-1"), "LABM"),
                                               (again, "LABM"), (cr_bio(), "chu")])
    alone = one_by_one(base)
    assert sum('"duplicate"' in line for line in alone["ledger"]) == 1
    assert not any("77001" in line for line in alone["identifiers"])
    assert file_cut(base, [1], "bulk") == alone


def related_messages() -> list[tuple[bytes, str]]:
    """Messages that act on each other, in one ledger order: a preliminary result and its
    final from another channel (the CR-BIO), its correction; two versions of a CR-BIO
    (relatedDocument RPLC); the four BIO-TROD of a patient without a dossier (the first
    creates it, two state one fact); the replacement, deletion and initial of one
    document for another patient without a dossier, all under one MSH-10, and the v2.1
    replacement for the BIO-TROD patient; the preliminary sent again with the hospital's
    IPP (a duplicate); a patient's opposition (ADT^A31), a result
    refused by it, an identity update (ADT^A08) among other patients' results."""
    trod = sorted(corpus_path("cda").glob("BIO-TROD_2024.01_*.xml"))
    renal = [SAMPLES / "cda" / "02_crbio_synlab_bilan_renal_v1.xml",
             SAMPLES / "cda" / "03_crbio_synlab_bilan_renal_v2_rplc.xml"]
    v20, v21 = volets("0"), volets("1")
    preliminary = oru(control="RB-P", value="1.80", status="P")
    return [(preliminary, "LABM"),
            (trod[0].read_bytes(), "ans"),
            (cr_bio(), "chu"),
            (v20[0].read_bytes(), "labs"),
            (renal[0].read_bytes(), "synlab"),
            (trod[1].read_bytes(), "ans"),
            (with_ipp(preliminary), "LABM"),  # a duplicate, the hospital's IPP added
            (oru(control="RB-C", value="1.90", status="C"), "LABM"),
            (v21[0].read_bytes(), "labs"),
            (v20[1].read_bytes(), "labs"),
            (trod[2].read_bytes(), "ans"),
            (renal[1].read_bytes(), "synlab"),
            (trod[3].read_bytes(), "ans"),
            (v20[2].read_bytes(), "labs"),
            (hl7("26_gam_annecy_a31_opposition.hl7"), "gam"),
            (hl7("09_synlab_nfs_crp_groupe.hl7"), "synlab"),
            (hl7("27_labm_tsh_opposition.hl7"), "LABM"),
            (hl7("28_gam_annecy_a08_identite.hl7"), "gam")]


def hl7(name: str) -> bytes:
    return (SAMPLES / "hl7v2" / name).read_bytes()


_related: dict[str, object] = {}


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=17), max_size=6))
def test_related_messages_file_alike_wherever_the_batch_is_cut(
        tmp_path_factory, sqlite_template, cuts) -> None:  # noqa: ANN001
    """Versions, corrections, cancellations, one fact through two channels, messages
    creating a dossier followed by others for the same patient: cut into pieces anywhere,
    the store is the one of filing them one by one."""
    if "base" not in _related:
        base = prepare(tmp_path_factory.mktemp("related"), sqlite_template,
                       related_messages())
        _related.update(base=base, alone=one_by_one(base), n=0)
    _related["n"] += 1
    batched = file_cut(_related["base"], cuts, f"h{_related['n']}")
    assert batched == _related["alone"]


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


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request, tmp_path) -> tuple[str, str]:  # noqa: ANN001
    """Two stores at head, on SQLite and on PostgreSQL (the bulk path's statements differ)."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        return (migrated_sqlite(template, tmp_path / "a" / "dmp.sqlite3"),
                migrated_sqlite(template, tmp_path / "b" / "dmp.sqlite3"))
    server = request.getfixturevalue("postgres_server")
    return server.new_database(), server.new_database()


def _drained(url: str, home: Path, batch_size: int,
             groups: list[list[tuple[bytes, str]]]) -> dict[str, list[str]]:
    """Each group intaken then drained in batches of ``batch_size`` (no pool)."""
    conf = load_settings(env={"DMP_HOME": str(home), "DMP_DATABASE_URL": url,
                              "DMP_AUTO_CREATE": "1",
                              "DMP_MAPPINGS_DIR": str(SAMPLES / "mappings")})
    ctx = Context.from_settings(replace(conf, batch_size=batch_size, prepare_processes=0))
    try:
        n = 0
        for group in groups:
            intake(ctx.engine, ctx.archive, [Received(data, source, "file", file_name=f"{n + i}")
                                             for i, (data, source) in enumerate(group)])
            n += len(group)
            drain(ctx)
        return snapshot(ctx.engine)
    finally:
        ctx.engine.dispose()


def test_drained_in_one_batch_or_one_by_one_the_store_is_the_same(
        two_stores, tmp_path) -> None:  # noqa: ANN001
    """Through ``drain``, on both stores: the dossiers of the v2.1 Volets patient and of
    the RIS's patient created first, then one batch of the v2.0 and v2.1 ORU and of a T02
    carrying a CDA with the T11 naming its number."""
    from tests.test_documents_senders import _mdm, b64, cda

    ed = f"OBX|1|ED|18748-4^CR d'imagerie^LN||^TEXT^XML^Base64^{b64(cda('DOC-9'))}||||||F"
    first = [(corpus_path("cda", "BIO-TROD_2024.01_COVID-19.xml").read_bytes(), "labs"),
             (_mdm("T02", txa12="CR-2024-0041^RIS-Y").encode(), "labo-y")]
    batch = [(p.read_bytes(), "labs") for p in [*volets("0"), *volets("1")]] + [
        ((_mdm("T02", txa12="CR-2024-0042^RIS-Y", content=None) + ed + "\r").encode(),
         "labo-y"),
        (_mdm("T11", txa12="CR-2024-0042^RIS-Y", content=None).encode(), "labo-y")]
    alone = _drained(two_stores[0], tmp_path / "one", 1, [first, batch])
    assert _drained(two_stores[1], tmp_path / "bulk", 100, [first, batch]) == alone
