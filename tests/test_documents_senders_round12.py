"""Documents carried in HL7v2, round 12: the document of a child order keyed through its
parent's numbers (OBR-29) and of a point-of-care set keyed by its device (OBX-18) are scoped
by the sending facility (MSH-4) when that number or device has no universal id, as round 11
scopes an ORU order number; a replacement naming a version replaced since replaces the
current version; a report legally authenticated (TXA-17 AU -> LA) gets a version saying so.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest

from dossiers.deposit import legally_authenticated_since
from normalizers.model import DOCUMENT
from tests.test_documents_normalizer import PID, b64, norm
from tests.test_documents_senders import _filed
from tests.test_documents_senders_round4 import _auto, _through
from tests.test_documents_senders_round9 import CDA_KEY, _cda_obx, _documents, _mdm, _pdf_obx

# a PDF printout as a SIL or analyser sends it (a minimal one: its text is not read here)
PRINTOUT = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PDF = b64(PRINTOUT)


def _keys(text: str) -> list[str]:
    return [e.key for e in norm(text).entries if e.type == DOCUMENT]


# -- a child order's document, keyed by its parent's numbers (OBR-29) ---------------------------

def _susceptibility(facility: str, obr29: str = "^24B0412-03&LAB", obx11: str = "F",
                    pdf: str = PDF) -> str:
    """A laboratory's antibiogram sent the day after its culture (IHE LAB, ORU^R01 outside
    CI-SIS): a child order with no number of its own (ORC-2/3, OBR-2/3 empty), its parent
    result in OBR-26 (the E. coli isolate) and its parent's filler number in OBR-29
    ('24B0412-03&LAB': namespace alone, no OID), its PDF printout in an OBX ED."""
    return "\r".join([
        f"MSH|^~\\&|SIL|{facility}|DMP|GHT|202403161430||ORU^R01^ORU_R01|{facility}-{obx11}"
        f"-{len(pdf)}|P|2.5|||||FRA|UNICODE UTF-8",
        PID, "PV1|1|I|UROLOGIE",
        "ORC|RE",
        "OBR|1|||18769-0^Antibiogramme^LN|||202403150810" + "|" * 18 + "F|"
        f"600-7&Bactérie identifiée&LN^1^Escherichia coli|||{obr29}",
        f"OBX|1|ED|18769-0^Antibiogramme^LN||^AP^PDF^Base64^{pdf}||||||{obx11}",
    ]) + "\r"


# since documents round 13 a child order's document key ends with the child's own identity
# (OBR-4, OBR-26): tests/test_documents_senders_round13.py
CHILD = "|18769-0|600-7^1"
CHILD_NORD = "document|24B0412-03|LAB@LABO-NORD|1" + CHILD
CHILD_SUD = "document|24B0412-03|LAB@LABO-SUD|1" + CHILD
CHILD_LEGACY = "document|24B0412-03|LAB|1"  # as filed before this round


def test_a_child_order_document_is_keyed_by_its_scoped_parent_number():
    """Was: 'document|24B0412-03|LAB|1' for both laboratories (the parent's namespace as
    sent, though round 11 scoped the parent's own documents)."""
    assert _keys(_susceptibility("LABO-NORD")) == [CHILD_NORD]
    assert _keys(_susceptibility("LABO-SUD")) == [CHILD_SUD]


@pytest.mark.parametrize(("obr29", "key"), [
    # a universal id names the authority: the key as before
    ("^24B0412-03&LAB&1.2.250.1.999.1.3&ISO", CHILD_LEGACY + CHILD),
    # the placer number alone (no filler): scoped the same way
    ("24B0412-03&LAB", CHILD_NORD),
    # a bare parent number: scoped by its sender as since documents round 4
    ("^24B0412-03", "document|24B0412-03|&SIL^LABO-NORD|1" + CHILD),
])
def test_only_a_parent_namespace_without_universal_id_is_scoped(obr29, key):
    assert _keys(_susceptibility("LABO-NORD", obr29)) == [key]


def test_two_labs_antibiograms_under_one_parent_number_stay_apart(sqlite_ctx):
    """Two laboratories' SIL (MSH-4 LABO-NORD, LABO-SUD) both number their cultures
    '24B0412-03^LAB': each one's antibiogram is its own document, and LABO-SUD's cancel
    (OBX-11 D) withdraws its own. Was: one key, the second antibiogram a new version of the
    first, its cancel withdrawing the other laboratory's."""
    ctx = _auto(sqlite_ctx)
    other = b64(PRINTOUT + b"% Antibiogramme SUD\n")
    rows = _through(ctx, _susceptibility("LABO-NORD"), _susceptibility("LABO-SUD", pdf=other),
                    _susceptibility("LABO-SUD", obx11="D", pdf=other))
    assert [r.status for r in rows] == ["deposited"] * 3
    documents = _documents(ctx)
    assert documents[CHILD_NORD] == (True, "final")
    assert documents[CHILD_SUD][1] != "final" and CHILD_LEGACY not in documents


# -- a point-of-care set's document, keyed by its device (OBX-18) -------------------------------

def _blood_gas(facility: str, device: str = "GAZ-01^GEM-PREMIER", obx11: str = "F") -> str:
    """An intensive care unit's blood gas analyser, sent by its point-of-care data manager
    (ORU^R30, IHE LPOCT: no order number): the pH and the analyser's PDF printout, the
    device named in OBX-18 by its name and the data manager's namespace, no OID."""
    return "\r".join([
        f"MSH|^~\\&|POCDM|{facility}|DMP|GHT|202403150750||ORU^R30^ORU_R30|{facility}-{obx11}"
        "|P|2.5|||||FRA|UNICODE UTF-8",
        PID, "PV1|1|I|REA^12^1",
        "ORC|NW",
        "OBR|1|||24336-0^Gaz du sang artériel^LN|||202403150742",
        f"OBX|1|NM|2744-1^pH sang artériel^LN||7,38||7.35-7.45||||{obx11}|||202403150742"
        f"||^MOREAU^Anaïs^^^IDE||{device}",
        f"OBX|2|ED|24336-0^Gaz du sang artériel^LN|1|^AP^PDF^Base64^{PDF}||||||{obx11}|||"
        f"202403150742||||{device}",
    ]) + "\r"


POC = "document|POC-2024-03-15T07:42+01:00|"


@pytest.mark.parametrize(("facility", "device", "key"), [
    # Was: 'GAZ-01^GEM-PREMIER|1' for every unit naming its analyser so
    ("CHU-NORD", "GAZ-01^GEM-PREMIER", f"{POC}GAZ-01^GEM-PREMIER@CHU-NORD|1"),
    ("CH-SUD", "GAZ-01^GEM-PREMIER", f"{POC}GAZ-01^GEM-PREMIER@CH-SUD|1"),
    ("CHU-NORD", "GAZ-01", f"{POC}GAZ-01@CHU-NORD|1"),
    # a universal id names the device: as before
    ("CHU-NORD", "GAZ-01^GEM-PREMIER^1.2.250.1.999.7.2^ISO",
     f"{POC}GAZ-01^GEM-PREMIER^1.2.250.1.999.7.2|1"),
    # no device: named by its sender (MSH-3^MSH-4), as before
    ("CHU-NORD", "", f"{POC}POCDM^CHU-NORD|1"),
])
def test_a_point_of_care_document_device_without_universal_id_is_scoped(facility, device,
                                                                        key):
    assert _keys(_blood_gas(facility, device)) == [key]


def test_a_point_of_care_result_key_is_unchanged():
    """Only the document's key is scoped: the pH keeps the key its results had."""
    entries = norm(_blood_gas("CHU-NORD")).entries
    result = next(e for e in entries if e.code == "2744-1")
    assert result.key.startswith("result|POC-2024-03-15T07:42+01:00|GAZ-01^GEM-PREMIER|")


def test_a_point_of_care_printout_filed_before_scoping_gets_its_correction(sqlite_ctx):
    """A printout filed by CHU-NORD under the key this round's code did not
    give yet ('...|GAZ-01^GEM-PREMIER|1'); CH-SUD's correction of its own reading at that
    minute leaves it; CHU-NORD's correction (OBX-11 C) supersedes it (the old key followed)."""
    from sqlalchemy import update

    from dossiers.schema import entries
    ctx = _auto(sqlite_ctx)
    legacy, scoped = f"{POC}GAZ-01^GEM-PREMIER|1", f"{POC}GAZ-01^GEM-PREMIER@CHU-NORD|1"
    _through(ctx, _blood_gas("CHU-NORD"))
    with ctx.engine.begin() as conn:
        conn.execute(update(entries).where(entries.c.key == scoped).values(key=legacy))
    rows = _through(ctx, _blood_gas("CH-SUD", obx11="C"), _blood_gas("CHU-NORD", obx11="C"))
    assert [r.status for r in rows] == ["deposited"] * 2
    documents = _documents(ctx)
    assert documents[legacy] == (False, "final")
    assert documents[scoped] == (True, "corrected")
    assert documents[f"{POC}GAZ-01^GEM-PREMIER@CH-SUD|1"][0] is True


# -- a replacement naming a version replaced since (MDM^T10 TXA-13 the original) -------------

def _report(trigger: str, txa12: str, text: str, txa13: str = "",
            issued: str = "202405061100") -> str:
    """A hospital DPI's MDM (v2.5, outside CI-SIS) carrying an imaging report as text lines
    (OBX TX), originated (TXA-6) at ``issued``; its T10 corrections name in TXA-13 the
    number of the report's first version, as the DPI's screen shows it."""
    return "\r".join([
        f"MSH|^~\\&|DPI-Y|CHU-EST|DMP|GHT|{issued}||MDM^{trigger}^MDM_T02|{txa12}-{trigger}|P|"
        "2.5|||||FRA|UNICODE UTF-8",
        f"EVN||{issued}", PID, "PV1|1|O",
        f"TXA|1|18748-4^CR d'imagerie médicale^LN|TX|202405061000||{issued}||||||{txa12}|"
        f"{txa13}||||LA||AV",
        f"OBX|1|TX|18748-4^CR d'imagerie médicale^LN||{text}||||||F",
    ]) + "\r"


FIRST = "CR-980^DPI-Y"
V1, V2, V3 = (f"document|CR-98{n}|DPI-Y@CHU-EST" for n in (0, 1, 2))


def _corrections(*issued: str) -> list[str]:
    """The report (v1), then corrections v2 and v3 both naming v1 (TXA-13), originated at
    ``issued`` (v2's, v3's)."""
    return [_report("T02", FIRST, "Radiographie thoracique : pas d'anomalie décelée."),
            _report("T10", "CR-981^DPI-Y", "Radiographie thoracique : opacité basale droite.",
                    FIRST, issued[0]),
            _report("T10", "CR-982^DPI-Y", "Radiographie thoracique : opacité basale droite, "
                    "à contrôler dans un mois.", FIRST, issued[1])]


def _current(ctx) -> set[str]:  # noqa: ANN001
    return {key for key, (current, status) in _documents(ctx).items()
            if current and status != "withdrawn"}


def test_a_second_correction_naming_the_original_replaces_the_first_correction(sqlite_ctx):
    """v3 names v1 in TXA-13, v2 having replaced v1: v3 supersedes v2, one current report,
    and the ledger says which version it replaced. Was: v3 filed as a new document beside
    v2, both current, the ledger saying v1 was 'never received here'."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, *_corrections("202405061130", "202405061200"))
    assert [r.status for r in rows] == ["deposited"] * 3
    assert _current(ctx) == {V3}
    assert any("replaces CR-981|DPI-Y@CHU-EST, the document's current version" in w
               for w in rows[2].warnings)
    assert not any("never received" in w for w in rows[2].warnings)


def test_a_correction_issued_before_the_current_version_replaces_nothing_more(sqlite_ctx):
    """The corrections arrive the wrong way round (v3 first): v2, originated before v3, does
    not supersede v3 when it names v1 (filed as before, beside it)."""
    ctx = _auto(sqlite_ctx)
    v1, v2, v3 = _corrections("202405061130", "202405061200")
    _through(ctx, v1, v3, v2)
    assert V3 in _current(ctx) and V1 not in _current(ctx)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_third_correction_naming_the_original_follows_the_chain_on_postgresql(ctx):
    """On PostgreSQL, a chain of two replacements (v2 then v3 naming v2): v4 naming v1
    supersedes v3, the current one."""
    ctx = _auto(ctx)
    v1, v2, _ = _corrections("202405061130", "202405061200")
    v3 = _report("T10", "CR-982^DPI-Y", "Opacité basale droite.", "CR-981^DPI-Y",
                 "202405061200")
    v4 = _report("T10", "CR-983^DPI-Y", "Opacité basale droite, à contrôler.", FIRST,
                 "202405061300")
    rows = _through(ctx, v1, v2, v3, v4)
    assert [r.status for r in rows] == ["deposited"] * 4
    assert _current(ctx) == {"document|CR-983|DPI-Y@CHU-EST"}


# -- TXA-17 from authenticated (AU) to legally authenticated (LA) ------------------------------

def _signed(trigger: str, txa17: str, control: str, obx: tuple[str, ...] = ()) -> str:
    """A DPI's MDM (v2.5) for report CR-500: a T02 carrying its CDA and PDF rendering, or a
    T03 without content stating its new completion status (TXA-17)."""
    return _mdm(trigger, "CR-500^DPI-Y", list(obx), txa17=txa17) \
        .replace(f"|DPI-{trigger}-{len(obx)}|", f"|{control}|")


T02_AU = _signed("T02", "AU", "MSG-1", (_cda_obx(1, "DOC-50"), _pdf_obx(2)))
NUMBER = "document|CR-500|DPI-Y@CHU-EST"


def _completion(ctx) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    """key -> (status, TXA-17) of each current document."""
    return {e.key: (e.status, e.details.get("completion_status")) for e in _filed(ctx)
            if e.type == DOCUMENT and e.current}


def test_a_legal_authentication_is_a_new_version_of_the_report(sqlite_ctx):
    """T02 TXA-17 AU (authenticated, final), then the T03 saying the author signed it with
    legal value (LA): the PDF under the number and the CDA filed under its id both get a
    version saying LA; the same T03 again is a duplicate, and a T03 saying AU again does
    not undo it. Was: the T03 a duplicate, the dossier saying AU."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, T02_AU, _signed("T03", "LA", "MSG-2"))
    assert [r.status for r in rows] == ["deposited", "deposited"]
    assert _completion(ctx) == {NUMBER: ("final", "LA"), CDA_KEY: ("final", "LA")}
    rows = _through(ctx, _signed("T03", "LA", "MSG-3"), _signed("T03", "AU", "MSG-4"))
    assert [r.status for r in rows] == ["duplicate", "duplicate"]
    assert _completion(ctx) == {NUMBER: ("final", "LA"), CDA_KEY: ("final", "LA")}


@pytest.mark.parametrize(("said", "held", "new_version"), [
    ("LA", "AU", True),
    ("LA", "LA", False),  # the same again
    ("AU", "LA", False),  # never undone
    ("LA", None, False),  # held without TXA-17 (a CDA from a file, an ORU's document)
    ("AU", "PA", False),  # a status change: decided by the status (preliminary -> final)
])
def test_only_au_to_la_makes_a_final_document_new(said, held, new_version):
    assert legally_authenticated_since({"completion_status": said},
                                       {"completion_status": held}) is new_version
