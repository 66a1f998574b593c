"""Documents carried in HL7v2, round 8: a parent document number sent without the root its
replacement names, MetaDMPMSS flags of each order of an ORU carrying several documents,
base64 pieces encoded one by one, a text report sent one line per repetition of OBX-5, a
TXA-12 naming its assigning authority and no number.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest

from normalizers.model import ACTION_REPLACE, DOCUMENT
from tests.test_documents_normalizer import PID, b64, norm
from tests.test_documents_senders import _filed
from tests.test_documents_senders_round4 import _auto, _through

ROOT = "1.2.250.1.71.4.2.2.120456789"  # the RIS's OID, as its CDA ids are rooted
REPORT = "^TEXT^PLAIN^Base64^" + b64("Échographie abdominale : foie de taille normale, "
                                     "pas de dilatation des voies biliaires.".encode())
FIXED = "^TEXT^PLAIN^Base64^" + b64("Échographie abdominale : foie de taille normale, "
                                    "vésicule alithiasique. Compte rendu corrigé.".encode())


def _mdm(trigger: str, txa12: str, txa13: str = "", ed: str = REPORT, obx11: str = "F") -> str:
    """An MDM (v2.5) of an imaging centre's RIS: the report as text, TXA-12 and TXA-13 as
    given, TXA-17 LA, TXA-19 AV."""
    segs = [f"MSH|^~\\&|RIS-Y|IMAGERIE-EST|DMP|GHT|202405061130||MDM^{trigger}^MDM_T02|"
            f"RIS-{trigger}-{len(txa12)}{obx11}|P|2.5|||||FRA|UNICODE UTF-8",
            "EVN||20240506113000", PID, "PV1|1|O",
            f"TXA|1|18748-4^CR d'imagerie médicale^LN|TX|202405061100||||||||{txa12}|{txa13}"
            "||||LA||AV",
            f"OBX|1|ED|18748-4^CR d'imagerie médicale^LN||{ed}||||||{obx11}"]
    return "\r".join(segs) + "\r"


def _doc(nm):  # noqa: ANN001, ANN202
    docs = [e for e in nm.entries if e.type == DOCUMENT]
    assert len(docs) == 1
    return docs[0]


# -- TXA-13 sent bare, TXA-12 under its assigning authority -------------------------------------
@pytest.mark.parametrize(("txa12", "txa13", "parent", "read"), [
    (f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100", f"{ROOT}^CR-100", True),
    (f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100^RIS-Y", f"{ROOT}^CR-100", True),
    (f"CR-101^{ROOT}", "CR-100", f"{ROOT}^CR-100", True),  # the OID in EI.2
    (f"{ROOT}.A71024000082", "A71024000081", f"{ROOT}^A71024000081", True),  # ANS dotted id
    # unchanged: another application's number, a root of its own, no root on TXA-12
    (f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100^DPI-Z", "CR-100|DPI-Z", False),
    (f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100^^1.2.250.1.71.4.2.7^ISO", "1.2.250.1.71.4.2.7^CR-100",
     False),
    ("CR-101^RIS-Y", "CR-100", "CR-100|RIS-Y", False),
])
def test_a_bare_parent_number_is_read_under_the_root_of_txa12(txa12, txa13, parent, read):
    """MDM^T10 'CR-101^RIS-Y^<OID>^ISO' replacing TXA-13 'CR-100': the parent is the RIS's
    CR-100, filed under its OID. Was: 'document|CR-100|RIS-Y', a document nobody filed."""
    nm = norm(_mdm("T10", txa12, txa13, FIXED, "C"))
    doc = _doc(nm)
    assert (doc.action, doc.replaces_key) == (ACTION_REPLACE, f"document|{parent}")
    said = [w for w in nm.warnings if w.startswith("TXA[5]-13: parent document number sent "
                                                   "without the assigning authority")]
    assert len(said) == read


def test_the_replacement_of_a_report_filed_under_its_root_supersedes_it(sqlite_ctx):
    """The T02 then the T10 of one RIS, TXA-13 bare: one current version, the corrected one.
    Was: 'replaces a document the dossier does not hold', both versions current."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, _mdm("T02", f"CR-100^RIS-Y^{ROOT}^ISO"),
                    _mdm("T10", f"CR-101^RIS-Y^{ROOT}^ISO", "CR-100", FIXED, "C"))
    assert [r.status for r in rows] == ["deposited", "deposited"]
    assert not any("does not hold" in w for w in rows[1].warnings or [])
    docs = [(e.key, e.current) for e in _filed(ctx) if e.type == DOCUMENT]
    assert docs == [(f"document|{ROOT}^CR-100", False), (f"document|{ROOT}^CR-101", True)]
