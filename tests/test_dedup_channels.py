"""Dedupe across channels and senders, as real traffic brings them: a lab's LIS sends its
ORU (cholesterol total, LOINC 2093-3, 1.84 g/L at 10:07 on 3 Feb 2025) and the hospital
sends the CR-BIO of the same panel as a CDA, each in its own time; corrections travel by
one channel, finals by the other (levels 3 and 4 of DESIGN.md)."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports, provenance
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import SAMPLES

CHOL = "2093-3"  # Cholesterol [Mass/volume] in Serum or Plasma
HL7 = (SAMPLES / "hl7v2" / "02_labm_lipides_glycemie.hl7").read_bytes().decode()
CDA = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes().decode()
CDA_CHOL = ('<code code="2093-3" displayName="Cholestérol total" '
            'codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC"/>\n'
            '                          <statusCode code="completed"/>\n'
            '                          <effectiveTime value="202502031007+0100"/>\n'
            '                          <value xsi:type="PQ" value="1.84" unit="g/L"/>')


def oru(*, control: str = "RB2502040000002", value: str = "1.84", status: str = "F",
        unit: str = "g/L", obx14: str = "202502031007+0100") -> bytes:
    """The lab's ORU of the lipid panel, cholesterol total alone (and the DMP metadata)."""
    kept = []
    for seg in HL7.split("\r"):
        f = seg.split("|")
        if f[0] == "MSH":
            f[9] = control
        elif f[0] == "OBX" and f[3].startswith(CHOL):
            f[5], f[6], f[11], f[14] = value, unit, status, obx14
        elif f[0] == "OBX" and not f[3].endswith("MetaDMPMSS"):
            continue
        elif seg.startswith(("ORC|RE|8127079-2", "OBR|2|")):
            continue
        kept.append("|".join(f))
    return "\r".join(kept).encode()


def cr_bio(*, value: str = "1.84", unit: str = "g/L", when: str = "202502031007+0100") -> bytes:
    """The hospital's CR-BIO of the same panel, its cholesterol as given."""
    assert CDA_CHOL in CDA
    return CDA.replace(CDA_CHOL, CDA_CHOL.replace('value="1.84" unit="g/L"',
                                                  f'value="{value}" unit="{unit}"')
                       .replace("202502031007+0100", when)).encode()


def file(ctx, data: bytes, source: str) -> object:  # noqa: ANN001
    """Intake and drain one input; its ledger row."""
    if not getattr(ctx, "_patients", False):
        ctx.settings = replace(ctx.settings, mappings_dir=SAMPLES / "mappings")
        with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
            create_dossiers(ctx.engine, [DossierInput.from_mapping(r)
                                         for r in csv.DictReader(fh)])
        ctx._patients = True
    (received,) = intake(ctx.engine, ctx.archive, [Received(data, source, "file",
                                                             file_name="in")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(
            imports.c.id == received.message_ids[0])).one()


def cholesterol(ctx) -> list:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return conn.execute(select(entries).where(entries.c.code == CHOL)
                            .order_by(entries.c.id)).all()


def links(ctx, entry_id: int) -> list[tuple[int, str]]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(
            select(provenance.c.import_id, provenance.c.relation)
            .where(provenance.c.entry_id == entry_id)))


def test_the_same_result_by_oru_then_cr_bio_is_one_entry_with_two_links(sqlite_ctx) -> None:  # noqa: ANN001
    lab = file(sqlite_ctx, oru(), "LABM")
    hospital = file(sqlite_ctx, cr_bio(value="1.840E0", unit="g/l"), "chu")
    (entry,) = cholesterol(sqlite_ctx)
    assert links(sqlite_ctx, entry.id) == [(lab.id, "created"), (hospital.id, "confirmed")]


def test_a_final_restated_by_the_other_channel_after_its_correction_stays_history(
        sqlite_ctx) -> None:  # noqa: ANN001
    """Final 1.84 by the lab, corrected to 1.90 by the lab (another MSH-10), then the
    hospital's CR-BIO, written before the correction, saying 1.84. The 1.84 came back as a
    second current cholesterol beside the corrected 1.90 (the fact was looked for among
    current entries only). It is the version the correction superseded: one more link on
    it, and the correction stays the only current value."""
    first = file(sqlite_ctx, oru(), "LABM")
    corrected = file(sqlite_ctx, oru(control="RB2502040000009", value="1.90", status="C"),
                     "LABM")
    hospital = file(sqlite_ctx, cr_bio(), "chu")
    assert hospital.status == "deposited"  # its document and its other results
    final, correction = cholesterol(sqlite_ctx)
    assert (final.value, final.current, final.superseded_by) == ("1.84", False, correction.id)
    assert (correction.value, correction.current) == ("1.90", True)
    assert links(sqlite_ctx, final.id) == [(first.id, "created"), (corrected.id, "superseded"),
                                           (hospital.id, "confirmed")]
    assert any("earlier version" in w for w in hospital.warnings or ())


def test_a_correction_by_the_lab_supersedes_the_final_the_hospital_sent(ctx) -> None:  # noqa: ANN001
    """The CR-BIO brought the final (1.84), the lab's ORU then corrects it (OBX-11 C, 1.90).
    The correction named the lab's key, which the dossier did not hold: filed as a new
    entry, both values were current. The same test at the same instant: it supersedes."""
    hospital = file(ctx, cr_bio(), "chu")
    lab = file(ctx, oru(value="1.90", status="C", obx14="202502030907+0000"), "LABM")
    final, correction = cholesterol(ctx)
    assert (final.import_id, final.current, final.superseded_by) == (hospital.id, False,
                                                                     correction.id)
    assert (correction.value, correction.status, correction.current) == ("1.90", "corrected",
                                                                         True)
    assert links(ctx, final.id) == [(hospital.id, "created"), (lab.id, "superseded")]
    assert not any("does not hold" in w for w in lab.warnings or ())
    assert any("another channel" in w for w in lab.warnings)


def test_a_correction_and_the_final_of_the_other_channel_in_one_batch(sqlite_ctx) -> None:  # noqa: ANN001
    """Filed in bulk, both were decided against the dossier before the batch: the correction
    did not see the final the hospital's CR-BIO files in the same batch. A correction and
    results of its code for the same patient are filed one after the other."""
    from pipelines.process import file_in_bulk, prepare_rows, read_claimed

    file(sqlite_ctx, oru(control="OTHER", value="2.50", obx14="202501031007+0100"), "LABM")
    ids = [i for r in intake(sqlite_ctx.engine, sqlite_ctx.archive, [
        Received(cr_bio(), "chu", "file", file_name="a"),
        Received(oru(control="RB-C", value="1.90", status="C"), "LABM", "file", file_name="b")])
        for i in r.message_ids]
    prepared, outcomes = prepare_rows(sqlite_ctx, read_claimed(sqlite_ctx, ids))
    with sqlite_ctx.engine.begin() as conn:
        later, rest = file_in_bulk(sqlite_ctx, conn, prepared, outcomes)
    assert [p.row.id for p in later] == [ids[1]]  # the correction: after the final
    assert rest == []


def test_a_correction_of_another_instant_is_not_applied_to_the_other_channel(sqlite_ctx) -> None:  # noqa: ANN001
    """A correction of the 11:07 sample is no correction of the 10:07 one the hospital sent:
    both stay, and the ledger says the correction's target was not found."""
    file(sqlite_ctx, cr_bio(), "chu")
    lab = file(sqlite_ctx, oru(value="1.90", status="C", obx14="202502031107+0100"), "LABM")
    assert [e.current for e in cholesterol(sqlite_ctx)] == [True, True]
    assert any("does not hold" in w for w in lab.warnings)


RENAL_V1 = (SAMPLES / "cda" / "02_crbio_synlab_bilan_renal_v1.xml").read_bytes().decode()
RENAL_V2 = (SAMPLES / "cda" / "03_crbio_synlab_bilan_renal_v2_rplc.xml").read_bytes().decode()


def related_to_v1(kind: str) -> bytes:
    """The second report of the renal panel (potassium 4.7 on a second sample), sent as an
    addendum (APND) or a transformation (XFRM) of the first, under the first's setId with
    versionNumber 2, as some senders number every document of a set."""
    text = RENAL_V2.replace('relatedDocument typeCode="RPLC"', f'relatedDocument typeCode="{kind}"')
    assert text != RENAL_V2
    return text.encode()


def documents(ctx) -> list:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return conn.execute(select(entries).where(entries.c.type == "document")
                            .order_by(entries.c.id)).all()


@pytest.mark.parametrize("kind", ["APND", "XFRM"])
def test_an_addendum_or_transformation_under_the_same_set_id_replaces_nothing(
        sqlite_ctx, kind: str) -> None:  # noqa: ANN001
    """CDA R2 relatedDocument: only RPLC makes a new version; APND adds to the parent, XFRM
    is the parent in another form, and the parent stays. Under the parent's setId they were
    taken for its next version: the first report superseded, its potassium 6.4 (the result
    the addendum comments on) withdrawn from the dossier."""
    file(sqlite_ctx, oru(control="OTHER"), "LABM")  # the dossiers and mappings, once
    first = file(sqlite_ctx, RENAL_V1.encode(), "synlab")
    second = file(sqlite_ctx, related_to_v1(kind), "synlab")
    assert (first.status, second.status) == ("deposited", "deposited")
    assert [(d.import_id, d.current) for d in documents(sqlite_ctx)] == [(first.id, True),
                                                                         (second.id, True)]
    with sqlite_ctx.engine.connect() as conn:
        potassium = conn.execute(select(entries.c.value, entries.c.current)
                                 .where(entries.c.code == "2823-3")).all()
    assert sorted(potassium) == [("4.7", True), ("6.4", True)]


@pytest.mark.parametrize("details", [
    {"cda": {"set_id": "1.2.250.1.999.11^SB1", "version_number": "2",
             "related": [{"type": "APND", "parent_id": "1.2.250.1.999.10^SB1-1"}]}},
    {"cda": {"set_id": "1.2.250.1.999.11^SB1", "version_number": "2",
             "related": [{"type": "XFRM", "parent_id": "1.2.250.1.999.10^SB1-1"}]}},
    {"set_id": "1.2.250.1.999.11^SB1", "version": "2", "addendum_to": "document|CR-100"},
])
def test_a_carried_addendum_is_no_version_of_its_parents_set(details: dict) -> None:
    """A CDA carried in HL7v2 keeps the setId it was sent with; an MDM^T06 is an addendum."""
    from dossiers.deposit import document_set
    from normalizers.model import DOCUMENT, Entry

    assert document_set(Entry(type=DOCUMENT, key="document|x", source_ref="OBX[1]",
                              details=details)) is None
    replacing = {**details, "cda": {**details.get("cda", {}), "related": [
        {"type": "RPLC", "parent_id": "1.2.250.1.999.10^SB1-1"}]}}
    replacing.pop("addendum_to", None)
    assert document_set(Entry(type=DOCUMENT, key="document|x", source_ref="OBX[1]",
                              details=replacing)) is not None


def test_an_original_sent_again_after_its_replacement_stays_replaced(ctx) -> None:  # noqa: ANN001
    """A radiology system's MDM: T02 of CR-100, T10 of CR-101 replacing it (TXA-13), then
    the T02 of CR-100 again (replayed by the sender's interface after a restart, another
    MSH-10). The original became current again beside its replacement: two current
    reports of one exam. It is the version the dossier holds replaced: one more link on it."""
    from tests.test_documents_senders import _mdm

    ctx.settings = replace(ctx.settings, auto_create=True)
    rows = []
    for n, message in enumerate((
            _mdm("T02", "CR-100^RIS-Y"),
            _mdm("T10", "CR-101^RIS-Y", "CR-100^RIS-Y",
                 content="Scanner thoracique : nodule de 4 mm du lobe inférieur droit."),
            _mdm("T02", "CR-100^RIS-Y"))):
        (received,) = intake(ctx.engine, ctx.archive, [Received(
            message.replace("|M-T", f"|M{n}-T").encode(), "ris", "file", file_name=f"{n}")])
        drain(ctx)
        rows += received.message_ids
    original, replacement = documents(ctx)
    assert (original.key, original.current, original.superseded_by) == (
        "document|CR-100|RIS-Y@IMAGERIE-EST", False, replacement.id)
    assert (replacement.key, replacement.current) == ("document|CR-101|RIS-Y@IMAGERIE-EST", True)
    assert links(ctx, original.id) == [(rows[0], "created"), (rows[1], "superseded"),
                                              (rows[2], "confirmed")]


def test_an_original_arriving_after_its_replacement_is_history(ctx) -> None:  # noqa: ANN001
    """The T02 of CR-100 quarantined (or delayed), the T10 of CR-101 replacing it filed
    first: the T02, rerun later, was filed current beside its replacement. It is history,
    superseded by the replacement the dossier holds."""
    from tests.test_documents_senders import _mdm

    ctx.settings = replace(ctx.settings, auto_create=True)
    for n, message in enumerate((
            _mdm("T10", "CR-101^RIS-Y", "CR-100^RIS-Y",
                 content="Scanner thoracique : nodule de 4 mm du lobe inférieur droit."),
            _mdm("T02", "CR-100^RIS-Y"))):
        intake(ctx.engine, ctx.archive, [Received(
            message.replace("|M-T", f"|M{n}-T").encode(), "ris", "file", file_name=f"{n}")])
        drain(ctx)
    replacement, original = documents(ctx)
    assert (replacement.key, replacement.current) == ("document|CR-101|RIS-Y@IMAGERIE-EST", True)
    assert (original.key, original.current, original.superseded_by) == (
        "document|CR-100|RIS-Y@IMAGERIE-EST", False, replacement.id)
