"""One order's results through their life, message after message, as a French lab's SIL sends
them (Hexalis, GLIMS, Kalisil): pending, preliminary, final, status-only final, corrected,
the cumulative report sent again with one more result, withdrawn (OBX-11 I, P, F, U, C, W,
X; HL7 v2.5 7.4.2.11), filed through the whole pipeline and read back from the dossier."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from dossiers.schema import entries, imports
from pipelines.intake import Received, intake
from pipelines.process import drain
from pipelines.rerun import reopen
from tests.test_lab_normalizer import MSH, ORC, PID

K = "2823-3"  # Potassium [Moles/volume] in Serum or Plasma
NA = "2951-2"  # Sodium [Moles/volume] in Serum or Plasma


def _msg(n: int, obr25: str, *obx: str) -> bytes:
    """Message n of the order 24C0315-07, sent at 09:n0 (MSH-7 and OBR-22)."""
    sent = f"2024031509{n}000"
    header = MSH.replace("MSG-0001", f"MSG-{n:04d}").replace("20240315104500", sent)
    obr = ("OBR|1|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO|BIOCHIMIE^Bilan biochimique^L|||"
           f"202403150810|||||||||^MARTIN^Paul^^^DR||||||{sent[:12]}|||{obr25}")
    return ("\r".join([header, PID, ORC, obr, *obx]) + "\r").encode()


def _file(ctx, *messages: bytes) -> list[int]:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, auto_create=True)
    ids: list[int] = []
    for n, data in enumerate(messages):
        ids += intake(ctx.engine, ctx.archive, [Received(data, "demo-lab", "file",
                                                         file_name=f"{n}.hl7")])[0].message_ids
        drain(ctx)
    return ids


def _versions(ctx, code: str):  # noqa: ANN001, ANN202
    with ctx.engine.connect() as conn:
        return conn.execute(select(entries).where(entries.c.code == code)
                            .order_by(entries.c.id)).all()


def _current(ctx, code: str):  # noqa: ANN001, ANN202
    (row,) = [r for r in _versions(ctx, code) if r.current]
    return row


def test_status_change_to_final_without_the_value_keeps_the_preliminary_value(ctx) -> None:  # noqa: ANN001
    """OBX-11 U: 'results status change to final without retransmitting results already sent
    as preliminary'. The final version had no value: the potassium vanished from the dossier
    the moment the lab validated it."""
    ids = _file(ctx,
                _msg(1, "P", f"OBX|1|NM|{K}^Potassium^LN||6,1|mmol/L|3.5-5.1|H|||P",
                     "NTE|1|L|Contrôle sur un second tube : hémolyse exclue"),
                _msg(2, "F", f"OBX|1|NM|{K}^Potassium^LN||||||||U"))
    prelim, final = _versions(ctx, K)
    assert (prelim.status, prelim.current, prelim.superseded_by) == ("preliminary", False,
                                                                      final.id)
    assert (final.status, final.current, final.import_id) == ("final", True, ids[1])
    assert (final.value, final.value_num, final.unit, final.reference_range,
            final.interpretation) == ("6,1", 6.1, "mmol/L", "3.5-5.1", "H")
    assert final.details["comments"] == ["Contrôle sur un second tube : hémolyse exclue"]
    assert final.fact == prelim.fact  # the same fact: another channel still meets it
    # a rerun of the status change files nothing more
    reopen(ctx.engine, [ids[1]])
    drain(ctx)
    assert len(_versions(ctx, K)) == 2


def test_status_change_with_nothing_held_files_a_final_without_value(ctx) -> None:  # noqa: ANN001
    """Nothing to carry (the preliminary never came, or was pending without value): the
    final is filed as sent, and it says its value was to be the one held before."""
    _file(ctx, _msg(1, "I", f"OBX|1|NM|{NA}^Sodium^LN||||||||I"),
          _msg(2, "F", f"OBX|1|NM|{K}^Potassium^LN||||||||U",
               f"OBX|2|NM|{NA}^Sodium^LN||||||||U"))
    for code in (K, NA):
        final = _current(ctx, code)
        assert (final.status, final.value, final.value_num) == ("final", None, None)
        assert final.details == {"value_held": True}


def test_the_life_of_one_order(ctx) -> None:  # noqa: ANN001
    """Pending, preliminary, final, corrected; the cumulative report sent again with one more
    result; a result posted to the wrong patient; one that cannot be obtained."""
    chlore = "OBX|3|NM|2075-0^Chlorure^LN||101|mmol/L|98-107|N|||F"
    ids = _file(
        ctx,
        _msg(1, "P", f"OBX|1|NM|{K}^Potassium^LN||4.2|mmol/L|3.5-5.1|N|||P",
             f"OBX|2|NM|{NA}^Sodium^LN||||||||I"),
        _msg(2, "F", f"OBX|1|NM|{K}^Potassium^LN||4.3|mmol/L|3.5-5.1|N|||F",
             f"OBX|2|NM|{NA}^Sodium^LN||140|mmol/L|135-145|N|||F"),
        _msg(3, "C", f"OBX|1|NM|{K}^Potassium^LN||5.9|mmol/L|3.5-5.1|H|||C",
             f"OBX|2|NM|{NA}^Sodium^LN||140|mmol/L|135-145|N|||F"),
        _msg(4, "F", f"OBX|1|NM|{K}^Potassium^LN||5.9|mmol/L|3.5-5.1|H|||C",
             f"OBX|2|NM|{NA}^Sodium^LN||140|mmol/L|135-145|N|||F", chlore),
        _msg(5, "F", f"OBX|1|NM|{NA}^Sodium^LN||140|mmol/L|135-145|N|||W",
             "OBX|2|NM|1963-8^Bicarbonates^LN||||||||X"))
    assert [(r.status, r.value, r.current) for r in _versions(ctx, K)] == [
        ("preliminary", "4.2", False), ("final", "4.3", False), ("corrected", "5.9", True)]
    assert [(r.status, r.current) for r in _versions(ctx, NA)] == [
        ("registered", False), ("final", False), ("withdrawn", True)]
    assert [(r.value, r.import_id) for r in _versions(ctx, "2075-0")] == [("101", ids[3])]
    bicar = _current(ctx, "1963-8")
    assert (bicar.status, bicar.value) == ("cancelled", None)
    with ctx.engine.connect() as conn:
        resent = conn.execute(select(imports).where(imports.c.id == ids[3])).one()
    assert (resent.entries_count, resent.duplicates_count) == (2, 2)  # chlorure and report


def test_a_comment_added_when_the_report_is_sent_again_is_filed(ctx) -> None:  # noqa: ANN001
    """The final potassium sent again with the lab's comment under it (NTE): the resend was
    a duplicate and the comment lost. A new version now holds it; a later resend without the
    comment (cumulative reports repeat values, not always notes) changes nothing."""
    k = f"OBX|1|NM|{K}^Potassium^LN||6,1|mmol/L|3.5-5.1|H|||F"
    note = "NTE|1|L|Contrôlé sur un second prélèvement : hémolyse exclue. Médecin prévenu."
    ids = _file(ctx, _msg(1, "F", k), _msg(2, "F", k, note), _msg(3, "F", k), _msg(4, "F", k, note))
    first, second = _versions(ctx, K)
    assert (first.current, first.details) == (False, None)
    assert (second.current, second.import_id, second.value) == (True, ids[1], "6,1")
    assert second.details["comments"] == [note.split("|")[3]]
    with ctx.engine.connect() as conn:
        statuses = [conn.execute(select(imports.c.status).where(imports.c.id == i)).scalar()
                    for i in ids]
    assert statuses == ["deposited", "deposited", "duplicate", "duplicate"]


def test_a_late_cannot_be_obtained_never_hides_the_final(ctx) -> None:  # noqa: ANN001
    """The first tube clotted (OBX-11 X at 09:10), the lab took another and validated the
    potassium at 09:20; the X message, held in a retry queue, arrives last. It replaced the
    final value with 'cannot be obtained'. It is history now, unless it says it was issued
    after the final (then it is the lab's last word)."""
    x = f"OBX|1|NM|{K}^Potassium^LN||Prélèvement coagulé||||||X"
    f = f"OBX|1|NM|{K}^Potassium^LN||4,3|mmol/L|3.5-5.1|N|||F"
    ids = _file(ctx, _msg(2, "F", f), _msg(1, "X", x))
    assert [(r.status, r.current, r.import_id) for r in _versions(ctx, K)] == [
        ("final", True, ids[0]), ("cancelled", False, ids[1])]
    _file(ctx, _msg(3, "X", x))  # issued after the final: the lab's last word
    assert (_current(ctx, K).status, _current(ctx, K).value) == ("cancelled", None)


def _micro(n: int, *segments: str) -> bytes:
    sent = f"2024041{n}1{n}0000"
    header = MSH.replace("MSG-0001", f"MIC-{n:04d}").replace("20240315104500", sent)
    return ("\r".join([header, PID, *segments]) + "\r").encode()


def test_a_urine_culture_then_its_susceptibility_panel_corrected(ctx) -> None:  # noqa: ANN001
    """ECBU: the culture preliminary, then final with its E. coli (OBX-4 sub-id 1) and a
    colony count '>^100000' UFC/mL, the susceptibility panel in a child order (OBR-26 names
    the organism, OBR-29 the parent order); a day later the panel alone, its ciprofloxacin
    corrected. The corrected panel, sent without its organism, lost its link to it."""
    orc = "ORC|RE|CMD-9|24M0412-01^LABO-DEMO"
    culture = ("OBR|1|CMD-9|24M0412-01^LABO-DEMO|630-4^Bactéries identifiées, urine^LN|||"
               "202404120730|||||||202404120800|URI|^MARTIN^Paul||||||{t}|||{s}")
    panel = ("OBR|2|CMD-9|24M0412-01-A1^LABO-DEMO|29576-6^Antibiogramme^LN|||202404120730||||G"
             "|||||||||||{t}|||{s}|600-7&Bactérie identifiée&LN^1^Escherichia coli|||"
             "CMD-9&LABO-DEMO^24M0412-01&LABO-DEMO")
    germ = "OBX|1|CWE|600-7^Bactérie identifiée^LN|1|112283007^Escherichia coli^SCT||||||{s}"
    count = "OBX|2|SN|564-5^Numération bactérienne^LN|1|>^100000|UFC/mL|<10^3|A|||{s}"
    ampi = "OBX|1|SN|18864-9^Ampicilline CMI^LN|1|>^16|mg/L||R|||F"
    cipro = "OBX|2|SN|18906-8^Ciprofloxacine CMI^LN|1|{v}|mg/L||{i}|||{s}"
    _file(ctx,
          _micro(3, orc, culture.format(t="202404131000", s="P"), germ.format(s="P"),
                 count.format(s="P")),
          _micro(4, orc, culture.format(t="202404141000", s="F"), germ.format(s="F"),
                 count.format(s="F"), orc, panel.format(t="202404141000", s="F"), ampi,
                 cipro.format(v="<=^0.25", i="S", s="F")),
          _micro(5, orc, panel.format(t="202404151000", s="C"), ampi,
                 cipro.format(v="^1", i="I", s="C")))
    organism = _current(ctx, "600-7")
    assert (organism.status, organism.value) == ("final", "Escherichia coli")
    colonies = _current(ctx, "564-5")
    assert (colonies.value, colonies.value_num, colonies.comparator, colonies.unit) == (
        ">100000", 100000.0, ">", "{CFU}/mL")
    reports = [r for r in _versions(ctx, "29576-6")]
    assert [(r.status, r.current, r.parent_id) for r in reports] == [
        ("final", False, organism.id), ("corrected", True, organism.id)]
    cipro_now = _current(ctx, "18906-8")
    assert (cipro_now.status, cipro_now.value, cipro_now.interpretation,
            cipro_now.parent_id) == ("corrected", "1", "I", reports[1].id)
    assert _current(ctx, "18864-9").parent_id == reports[0].id  # unchanged: still v1's


def test_a_susceptibility_panel_sent_the_day_after_its_organism_is_linked_to_it(ctx) -> None:  # noqa: ANN001
    """The usual course of a culture: the organism is identified on day 2, its panel comes on
    day 3 in a message of its own (OBR-26 names the organism, OBR-29 its order). The panel
    was linked to nothing (its parent was looked for in its own message only)."""
    orc = "ORC|RE|CMD-9|24M0412-01^LABO-DEMO"
    culture = ("OBR|1|CMD-9|24M0412-01^LABO-DEMO|630-4^Bactéries identifiées, urine^LN|||"
               "202404120730|||||||202404120800|URI|^MARTIN^Paul||||||202404141000|||F")
    panel = ("OBR|1|CMD-9-A|24M0412-01-A1^LABO-DEMO|29576-6^Antibiogramme^LN|||202404120730"
             "||||G|||||||||||202404151000|||F|600-7&Bactérie identifiée&LN^1^Escherichia "
             "coli|||CMD-9&LABO-DEMO^24M0412-01&LABO-DEMO")
    _file(ctx,
          _micro(4, orc, culture, "OBX|1|CWE|600-7^Bactérie identifiée^LN|1|112283007^"
                 "Escherichia coli^SCT||||||F"),
          _micro(5, orc, panel, "OBX|1|SN|18864-9^Ampicilline CMI^LN|1|>^16|mg/L||R|||F"))
    organism = _current(ctx, "600-7")
    assert _current(ctx, "29576-6").parent_id == organism.id


def test_two_entries_under_one_key_in_one_message_are_planned_without_error() -> None:
    """The normalizers tell apart results sharing a key within a message ('#2'), but filing
    must not depend on it: two entries under one key, the same fact twice, are one entry;
    a different fact under that key is kept apart, never dropped. (The duplicate check
    compared the planned row, a dict, by attribute and raised AttributeError: a message
    that reached it failed as INTERNAL_ERROR.)"""
    from dossiers.deposit import plan_deposit
    from normalizers.model import Entry

    def potassium(ref: str, value: str) -> Entry:
        return Entry(type="result", key="result|24C0315-07|LABO|K|L|", source_ref=ref,
                     code="2823-3", system="LN", value=value, value_num=float(value),
                     unit="mmol/L", status="final", effective="2024-03-15T10:45:00+01:00")

    plan = plan_deposit({}, patient_id=1, import_id=7, source="labo",
                        items=[(potassium("OBX[1]", "4.1"), None),
                               (potassium("OBX[2]", "4.1"), None),
                               (potassium("OBX[3]", "4.3"), None)])
    assert plan.result.duplicates == 1
    assert [(r["_ref"], r["value"]) for r in plan.new_rows] == [("OBX[1]", "4.1"),
                                                                 ("OBX[3]", "4.3")]
    assert plan.new_rows[0]["key"] != plan.new_rows[1]["key"]
