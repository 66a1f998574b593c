"""Documents carried in HL7v2, round 2: senders we have not seen (MDM triggers and TXA,
the ED and its escapes, the MetaDMPMSS flags, versions across messages and dossiers).

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest

from normalizers.model import DOCUMENT, NormalizationError
from tests.test_documents_normalizer import NIR, b64, cda, mdm, norm, oru
from tests.test_documents_senders import _filed, _ingest

DOC = b64(cda("DOC-1"))
DESTDMP = "OBX|{n}|CE|DESTDMP^Destinataire DMP^MetaDMPMSS||{v}^^HL70136||||||F"


def _flag(text: str, n: int, value: str) -> str:
    """``text`` with its DESTDMP flag (OBX ``n``) set to ``value``."""
    return text.replace(DESTDMP.format(n=n, v="Y"), DESTDMP.format(n=n, v=value))


# -- DESTDMP=N: the message is for MSSanté mailboxes, not for the dossier ------------------------
def test_a_document_not_addressed_to_the_dmp_is_refused_at_its_flag():
    """Was: filed in the dossier (DESTDMP kept as a masking flag nothing reads), shown to
    professionals and to the patient though the sender sent it to MSSanté recipients only."""
    text = oru("NW", "F", DOC)
    assert DESTDMP.format(n=4, v="Y") in text
    with pytest.raises(NormalizationError) as exc:
        norm(_flag(text, 4, "N"))
    assert (exc.value.code, exc.value.location) == ("CISIS_NOT_FOR_DMP", "OBX[10]-5")
    assert NIR not in str(exc.value)
    # the same for an MDM (CWE flags), and for a Y then an N (the N is kept: nowhere)
    m = mdm("T02", "F", DOC).replace("|CWE|DESTDMP^Destinataire DMP^MetaDMPMSS||Y",
                                     "|CWE|DESTDMP^Destinataire DMP^MetaDMPMSS||N")
    with pytest.raises(NormalizationError) as exc:
        norm(m)
    assert exc.value.code == "CISIS_NOT_FOR_DMP"
    twice = text.replace(DESTDMP.format(n=4, v="Y"),
                         DESTDMP.format(n=4, v="Y") + "\r" + DESTDMP.format(n=5, v="N"))
    with pytest.raises(NormalizationError) as exc:
        norm(twice)
    assert exc.value.location == "OBX[11]-5"
    # DESTDMP=Y, or no DESTDMP at all (the v1.x guides), files as before
    assert [e.type for e in norm(text).entries] == [DOCUMENT]
    bare = text.replace(DESTDMP.format(n=4, v="Y") + "\r", "")
    assert [e.type for e in norm(bare).entries] == [DOCUMENT]


def test_a_message_not_for_the_dmp_fails_on_the_ledger_and_files_nothing(sqlite_ctx):
    from dataclasses import replace
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    row, = _ingest(sqlite_ctx, _flag(oru("NW", "F", DOC), 4, "N"))
    assert (row.status, row.error_code, row.error_location) == (
        "failed", "CISIS_NOT_FOR_DMP", "OBX[10]-5")
    assert _filed(sqlite_ctx) == []
