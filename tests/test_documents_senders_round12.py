"""Documents carried in HL7v2, round 12: the document of a child order keyed through its
parent's numbers (OBR-29) and of a point-of-care set keyed by its device (OBX-18) are scoped
by the sending facility (MSH-4) when that number or device has no universal id, as round 11
scopes an ORU order number.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest

from normalizers.model import DOCUMENT
from tests.test_documents_normalizer import PID, b64, norm
from tests.test_documents_senders_round4 import PDF_REPORT, _auto, _through
from tests.test_documents_senders_round9 import _documents

PDF = b64(PDF_REPORT.read_bytes())


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


CHILD_NORD = "document|24B0412-03|LAB@LABO-NORD|1"
CHILD_SUD = "document|24B0412-03|LAB@LABO-SUD|1"
CHILD_LEGACY = "document|24B0412-03|LAB|1"  # as filed before this round


def test_a_child_order_document_is_keyed_by_its_scoped_parent_number():
    """Was: 'document|24B0412-03|LAB|1' for both laboratories (the parent's namespace as
    sent, though round 11 scoped the parent's own documents)."""
    assert _keys(_susceptibility("LABO-NORD")) == [CHILD_NORD]
    assert _keys(_susceptibility("LABO-SUD")) == [CHILD_SUD]


@pytest.mark.parametrize(("obr29", "key"), [
    # a universal id names the authority: the key as before
    ("^24B0412-03&LAB&1.2.250.1.999.1.3&ISO", CHILD_LEGACY),
    # the placer number alone (no filler): scoped the same way
    ("24B0412-03&LAB", CHILD_NORD),
    # a bare parent number: scoped by its sender as since documents round 4
    ("^24B0412-03", "document|24B0412-03|&SIL^LABO-NORD|1"),
])
def test_only_a_parent_namespace_without_universal_id_is_scoped(obr29, key):
    assert _keys(_susceptibility("LABO-NORD", obr29)) == [key]


def test_two_labs_antibiograms_under_one_parent_number_stay_apart(sqlite_ctx):
    """Two laboratories' SIL (MSH-4 LABO-NORD, LABO-SUD) both number their cultures
    '24B0412-03^LAB': each one's antibiogram is its own document, and LABO-SUD's cancel
    (OBX-11 D) withdraws its own. Was: one key, the second antibiogram a new version of the
    first, its cancel withdrawing the other laboratory's."""
    ctx = _auto(sqlite_ctx)
    other = b64(PDF_REPORT.read_bytes() + b"\n% Antibiogramme SUD\n")
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


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_point_of_care_printout_filed_before_scoping_gets_its_correction(ctx):
    """On PostgreSQL: a printout filed by CHU-NORD under the key this round's code did not
    give yet ('...|GAZ-01^GEM-PREMIER|1'); CH-SUD's correction of its own reading at that
    minute leaves it; CHU-NORD's correction (OBX-11 C) supersedes it (the old key followed)."""
    from sqlalchemy import update

    from dossiers.schema import entries
    ctx = _auto(ctx)
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
