"""The whole life of an input through pipelines/ (no Prefect), on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from dossiers.schema import entries, import_attempts, imports, provenance
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from pipelines.report import show_dossier, show_import
from pipelines.rerun import reopen

# A valid test NIR (key = 97 - n mod 97) under the test INS OID.
NIR = "279035121518989"
NIR_2 = "188102B17295165"  # Corsican department, valid key
INS_OID = "1.2.250.1.213.1.4.10"


def oru(control_id: str, *, nir: str = NIR, value: str = "5.4", status: str = "F",
        family: str = "LEFÈVRE", given: str = "Hélène", birth: str = "19790328",
        sex: str = "F", pid32: str = "VALI", local_id: str = "LAB00042",
        filler: str = "CMD-1001", extra_obx: str = "") -> bytes:
    segs = [
        f"MSH|^~\\&|SIL-LAB|LABO-LYON|DMP|DMP|20240315101500+0100||ORU^R01^ORU_R01|"
        f"{control_id}|P|2.5|||||FRA|UNICODE UTF-8",
        f"PID|||{nir}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS~{local_id}^^^LABO-LYON&"
        f"1.2.250.1.999.1&ISO^PI||{family}^{given}^^^^^L||{birth}|{sex}"
        + "|" * 24 + pid32,
        f"ORC|RE|P-77|{filler}^LABO-LYON",
        f"OBR|1|P-77|{filler}^LABO-LYON|24331-1^Bilan lipidique^LN|||20240315083000+0100"
        "|||||||||||||||20240315100000+0100|||F",
        f"OBX|1|NM|14749-6^Glucose [Moles/volume] in Serum^LN||{value}|mmol/L|3.9-5.8|"
        f"{'H' if float(value) > 5.8 else 'N'}|||{status}|||20240315083000+0100",
        "OBX|2|NM|2093-3^Cholestérol total^LN||2.10|g/L|1.50-2.00|H|||F|||20240315083000+0100",
        "OBX|3|ST|8251-1^Commentaire^LN||Sérum légèrement hémolysé \\T\\ lipémique||||||F",
    ]
    if extra_obx:
        segs.append(extra_obx)
    return ("\r".join(segs) + "\r").encode("utf-8")


def ingest(ctx, *blobs: bytes, source: str = "lab") -> list[int]:  # noqa: ANN001
    items = [Received(data=b, source=source, channel="file", file_name=f"m{i}.hl7")
             for i, b in enumerate(blobs)]
    ids = [i for r in intake(ctx.engine, ctx.archive, items) for i in r.message_ids]
    drain(ctx)
    return ids


def statuses(ctx, ids: list[int]) -> list[str]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        rows = dict(conn.execute(select(imports.c.id, imports.c.status)
                                 .where(imports.c.id.in_(ids))).all())
    return [rows[i] for i in ids]


def make_patient(ctx, nir: str = NIR, **kw) -> int:  # noqa: ANN001
    fields = dict(family="Lefèvre", given="Hélène", birth_date="1979-03-28", sex="F")
    fields.update(kw)
    return create_dossiers(ctx.engine, [DossierInput(ins=nir, ins_oid=INS_OID, **fields)])[0]


def test_result_deposited_with_codes_units_and_provenance(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ids = ingest(ctx, oru("MSG-1"))
    assert statuses(ctx, ids) == ["deposited"]
    dossier = show_dossier(ctx.engine, NIR)
    assert dossier["patient"]["id"] == pid
    by_code = {e["code"]: e for e in dossier["entries"]}
    glucose = by_code["14749-6"]
    assert glucose["type"] == "lab_result"
    assert glucose["system"] in ("LN", "LOINC", "http://loinc.org")
    assert glucose["value_num"] == 5.4 and glucose["unit"] == "mmol/L"
    assert glucose["reference_range"] == "3.9-5.8"
    assert glucose["effective"].startswith("2024-03-15T08:30")
    assert glucose["effective"].endswith("+01:00")
    assert glucose["parent_id"] == by_code["24331-1"]["id"]
    assert by_code["8251-1"]["value"] == "Sérum légèrement hémolysé & lipémique"
    with ctx.engine.connect() as conn:
        links = conn.execute(select(provenance).where(
            provenance.c.entry_id == glucose["id"])).all()
    assert [(link.import_id, link.source_ref) for link in links] == [(ids[0], "OBX[5]")]


def test_same_bytes_twice_is_recorded_not_reprocessed(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    first = ingest(ctx, oru("MSG-1"))
    again = ingest(ctx, oru("MSG-1"))
    assert statuses(ctx, first + again) == ["deposited", "duplicate"]
    info = show_import(ctx.engine, again[0])
    assert info["duplicate_of"] == first[0] and info["attempts"] == []


def test_same_control_id_with_other_bytes_is_a_duplicate(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    first = ingest(ctx, oru("MSG-1"))
    resent = ingest(ctx, oru("MSG-1").replace(b"\r", b"\n"))  # other bytes, same message
    assert statuses(ctx, first + resent) == ["deposited", "duplicate"]
    assert show_import(ctx.engine, resent[0])["duplicate_of"] == first[0]


def test_correction_replaces_value_and_keeps_history(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    ids = ingest(ctx, oru("MSG-1", value="5.4"), oru("MSG-2", value="6.1", status="C"))
    assert statuses(ctx, ids) == ["deposited", "deposited"]
    current = {e["code"]: e for e in show_dossier(ctx.engine, NIR)["entries"]}
    assert current["14749-6"]["value_num"] == 6.1
    assert current["14749-6"]["status"] == "corrected"
    history = [e for e in show_dossier(ctx.engine, NIR, history=True)["entries"]
               if e["code"] == "14749-6"]
    assert [(e["value_num"], e["version"], e["current"]) for e in history] == [
        (5.4, 1, False), (6.1, 2, True)]
    assert history[0]["superseded_by"] == history[1]["id"]
    # The unchanged results of the correcting message are one fact with two provenance links.
    with ctx.engine.connect() as conn:
        chol = conn.execute(select(entries.c.id).where(entries.c.code == "2093-3")).all()
        assert len(chol) == 1
        links = conn.execute(select(provenance.c.relation).where(
            provenance.c.entry_id == chol[0].id)).scalars().all()
    assert sorted(links) == ["confirmed", "created"]


def test_unknown_patient_is_quarantined_then_rerun_after_dossier_created(ctx) -> None:  # noqa: ANN001
    ids = ingest(ctx, oru("MSG-1"))
    info = show_import(ctx.engine, ids[0])
    assert info["status"] == "quarantined"
    assert info["error_code"] == "IDENTITY_UNKNOWN_PATIENT"
    assert NIR not in info["error_message"] and "LEF" not in info["error_message"].upper()
    make_patient(ctx)
    assert reopen(ctx.engine, ids) == ids
    drain(ctx)
    info = show_import(ctx.engine, ids[0])
    assert info["status"] == "deposited"
    assert [a["status"] for a in info["attempts"]] == ["quarantined", "deposited"]


def test_auto_create_files_a_valid_ins(ctx) -> None:  # noqa: ANN001
    from dataclasses import replace

    ctx.settings = replace(ctx.settings, auto_create=True)
    ids = ingest(ctx, oru("MSG-1", nir=NIR_2, family="SANTONI", given="Jean-Baptiste",
                          sex="M", birth="19881002"))
    assert statuses(ctx, ids) == ["deposited"]
    dossier = show_dossier(ctx.engine, NIR_2)
    assert dossier["patient"]["family"] == "SANTONI"
    assert dossier["patient"]["created_by"] == "auto-create"


def test_invalid_ins_key_is_quarantined_even_with_auto_create(ctx) -> None:  # noqa: ANN001
    from dataclasses import replace

    ctx.settings = replace(ctx.settings, auto_create=True)
    ids = ingest(ctx, oru("MSG-1", nir=NIR[:-2] + "00"))
    info = show_import(ctx.engine, ids[0])
    assert (info["status"], info["error_code"]) == ("quarantined", "IDENTITY_INS_INVALID_KEY")


def test_unqualified_ins_falls_back_to_local_id(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ingest(ctx, oru("MSG-1"))  # qualified INS: the lab's local id is learnt
    ids = ingest(ctx, oru("MSG-2", nir="299999999999999", pid32="PROV", value="4.9"))
    info = show_import(ctx.engine, ids[0])
    assert (info["status"], info["patient_id"]) == ("deposited", pid)
    assert any("PID-32" in w for w in info["warnings"])


def test_demographic_match_is_strict_but_accent_insensitive(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ok = ingest(ctx, oru("MSG-1", pid32="", family="LEFEVRE", given="HELENE",
                         local_id="OTHER-1"))
    other = ingest(ctx, oru("MSG-2", pid32="", family="LEFEBVRE", given="HELENE",
                            local_id="OTHER-2"))
    assert show_import(ctx.engine, ok[0])["patient_id"] == pid
    assert statuses(ctx, other) == ["quarantined"]


def test_bad_messages_fail_with_codes_and_do_not_stop_others(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    good = oru("MSG-1")
    bad_number = oru("MSG-2", extra_obx="OBX|4|NM|2345-7^Glucose^LN||abc|mmol/L|||||F")
    no_msh = b"PID|||123\rOBX|1|NM|X||1\r"
    bad_date = oru("MSG-3").replace(b"20240315083000+0100|||||||||", b"20241345|||||||||", 1)
    ids = ingest(ctx, good + bad_number, no_msh, bad_date)
    infos = [show_import(ctx.engine, i) for i in ids]
    assert [i["status"] for i in infos] == ["deposited", "failed", "failed", "failed"]
    assert infos[1]["error_code"] == "OBX_BAD_NUMBER" and "OBX" in infos[1]["error_location"]
    assert infos[2]["error_code"] == "HL7_NO_MSH"
    assert infos[3]["error_code"] == "HL7_BAD_DATE" and "OBR" in infos[3]["error_location"]
    for info in infos[1:]:
        assert "abc" not in info["error_message"] and "Lef" not in info["error_message"]


def test_truncated_batch_is_reported_and_its_messages_processed(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    body = oru("MSG-1") + oru("MSG-2", filler="CMD-2")
    batch = (b"FHS|^~\\&|SIL-LAB|LABO-LYON\rBHS|^~\\&|SIL-LAB|LABO-LYON\r" + body
             + b"BTS|3\rFTS|1\r")
    results = intake(ctx.engine, ctx.archive,
                     [Received(data=batch, source="lab", channel="file", file_name="b.hl7")])
    drain(ctx)
    assert statuses(ctx, results[0].message_ids) == ["deposited", "deposited"]
    batch_row = show_import(ctx.engine, results[0].batch_id)
    assert batch_row["status"] == "failed"
    assert batch_row["error_code"] == "HL7_BATCH_COUNT_MISMATCH"


def test_rerun_of_deposited_import_changes_nothing(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    ids = ingest(ctx, oru("MSG-1"))
    assert reopen(ctx.engine, ids) == []
    with ctx.engine.connect() as conn:
        assert len(conn.execute(select(import_attempts)).all()) == 1


def test_same_result_under_another_order_is_one_entry_with_two_links(ctx) -> None:  # noqa: ANN001
    """Dedupe level 4: the same results (code, instant, value, unit) reach us again under
    another order number (another channel, another sender's numbering): no new entry, one
    more provenance link on each. Sent in one batch and in two, the outcome is the same."""
    make_patient(ctx)
    first = ingest(ctx, oru("MSG-1"))
    again = ingest(ctx, oru("OTHER-9", filler="CR-BIO-55"))
    # deposited: the report (OBR) under its new order number is an entry of its own
    assert statuses(ctx, first + again) == ["deposited", "deposited"]
    info = show_import(ctx.engine, again[0])
    assert (info["entries"], info["duplicates"]) == (1, 3)  # 3 results confirmed
    with ctx.engine.connect() as conn:
        results = conn.execute(select(entries).where(entries.c.type == "lab_result",
                                                     entries.c.code == "14749-6")).all()
        assert len(results) == 1
        links = conn.execute(select(provenance.c.import_id, provenance.c.relation).where(
            provenance.c.entry_id == results[0].id)).all()
    assert sorted(tuple(link) for link in links) == [(first[0], "created"),
                                                     (again[0], "confirmed")]


def test_same_result_twice_in_one_batch_is_one_entry(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    ids = ingest(ctx, oru("MSG-1"), oru("OTHER-9", filler="CR-BIO-55"))
    assert [show_import(ctx.engine, i)["duplicates"] for i in ids] == [0, 3]
    with ctx.engine.connect() as conn:
        assert len(conn.execute(select(entries).where(entries.c.code == "14749-6")).all()) == 1
