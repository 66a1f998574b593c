"""PDF reports, round 11: what real reports print that round 10 left read wrong.

A letterhead's sidebar printed on the report's own baselines (its leading, in a smaller
type) was wedged into the report's lines: round 10 split a sidebar only in a leading of its
own. A report dated only in its letterhead ('Lyon, le 3 mars 2025' above the title) had no
exam date. AES-encrypted exports with an owner password only (printing restricted), as
hospital systems write them, are pinned: read; a user password: PDF_ENCRYPTED.
Born-digital PDFs are written with samples/generate_pdf.py's writer (each line at its
own x and baseline), read by parsers.pdf and normalized as the pipeline does."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import select

from dossiers.schema import imports
from parsers.pdf import PdfLimits, PdfParseError, parse_pdf
from pipelines.intake import Received, intake
from pipelines.process import drain
from samples import generate_pdf as g
from tests.test_pdf_round3 import _lab_pdf, _read
from tests.test_pdf_round10 import REPORT, SIDEBAR


def _fields(msg, n: int = 0) -> dict:  # noqa: ANN001
    return {k: v["value"] for k, v in msg.entries[n].details["fields"].items()}


def _text(data: bytes) -> list[str]:
    return parse_pdf(data, PdfLimits(processes=1)).pages[0].text.splitlines()


# -- a sidebar on the report's own baselines -------------------------------------------------
@pytest.mark.parametrize(("top", "leading"), [(800.0, 14.0), (702.0, 14.0), (800.0, 28.0)],
                         ids=["beside-all", "beside-conclusion", "every-other-line"])
def test_a_sidebar_in_the_reports_leading_is_read_after_the_report(top: float,
                                                                    leading: float) -> None:
    """The radiologists' sidebar (8.5 pt) printed on the report's baselines (10 pt, 14 pt
    leading, or every other one): 'Dr Jean MARTIN Fissure horizontale...' was one line, the
    conclusion lost at the sidebar's 'Dr' and 'Dr Jean MARTIN Fissure' the signer, or
    'Radiologues IRM DU GENOU DROIT' the exam. Its smaller type tells it apart: read after
    the report, as a sidebar in a leading of its own is since round 10."""
    page = [g.Line("body", t, 170.0, 800.0 - 14.0 * n) for n, t in enumerate(REPORT)]
    page += [g.Line("small", t, 30.0, top - leading * n) for n, t in enumerate(SIDEBAR)]
    data = g.write_pdf([page], title="Compte rendu")
    text = _text(data)
    assert text[:len(REPORT)] == REPORT and text[len(REPORT):] == SIDEBAR
    fields = _fields(_read(data))
    assert fields["conclusion"] == ("Fissure horizontale du ménisque interne.\n"
                                    "Pas d'épanchement articulaire.")
    assert fields["radiologist"] == "Dr Jean MARTIN"
    assert fields["exam_type"] == "IRM DU GENOU DROIT"


def test_small_labels_and_result_names_beside_their_values_stay_in_their_rows() -> None:
    """What the smaller type must not split: a form's labels in small type ending in ':'
    beside their values, and a result table whose analyte names are in a smaller type than
    its values: read row by row, as before."""
    labels = [("Nom :", "LEFÈVRE"), ("Prénom :", "Hélène"), ("Née le :", "14/03/1968"),
              ("Examen :", "IRM DU GENOU DROIT"), ("Date :", "12/03/2025")]
    results = [("Sodium", "141 mmol/L (136 - 145)"), ("Potassium", "4,1 mmol/L (3,5 - 5,1)"),
               ("Chlorure", "< 95 mmol/L (98 - 107)"), ("Créatinine", "68 µmol/L (45 - 84)"),
               ("Glucose", "5,2 mmol/L (4,1 - 5,9)")]
    for rows in (labels, results):
        page = []
        for n, (left, right) in enumerate(rows):
            page += [g.Line("small", left, 40.0, 800.0 - 14.0 * n),
                     g.Line("body", right, 150.0, 800.0 - 14.0 * n)]
        assert _text(g.write_pdf([page], title="CR")) == [f"{a} {b}" for a, b in rows]


# -- a report dated only in its letterhead ---------------------------------------------------
PARC = [("centre", "CENTRE D'IMAGERIE DU PARC"), ("small", "12 avenue Jean Jaurès, 69007 Lyon")]
LEFEVRE = [("label", "Patiente : Mme LEFÈVRE Hélène"), ("label", "Née le 14/03/1968")]
ECHO = [("title", "ÉCHOGRAPHIE ABDOMINALE"),
        ("body", "Indication : douleurs de l'hypocondre droit."), ("head", "Conclusion :"),
        ("body", "Stéatose hépatique modérée, sans lésion focale.")]


@pytest.mark.parametrize("dated", ["Lyon, le 3 mars 2025", "Le lundi 03/03/2025"])
def test_a_report_dated_only_in_its_letterhead_takes_that_date_as_its_exam_date(
        dated: str) -> None:
    """'Lyon, le 3 mars 2025' in the letterhead, above the patient and the title, and no
    date in the body: no exam date (the entry's ``effective`` empty, its dedupe key
    'nodate'). The letterhead's date is the exam date, marked as read from the header, with
    a warning saying where."""
    msg = _read(_lab_pdf([*PARC, ("small", dated), *LEFEVRE, *ECHO,
                          ("body", "Dr Jean MARTIN")]))
    entry = msg.entries[0]
    exam = entry.details["fields"]["exam_date"]
    assert (exam["value"], exam["from"], entry.effective) == ("2025-03-03", "header",
                                                               "2025-03-03")
    assert entry.key.startswith("report|2025-03-03|US|")
    said = [w for w in msg.warnings if w.startswith("REPORT_EXAM_DATE_FROM_HEADER")]
    assert said and "page 1, line 3" in said[0] and "LEFÈVRE" not in said[0]


def test_two_reports_in_one_pdf_each_take_their_own_letterheads_date() -> None:
    """Two exams of one visit exported as one PDF, a page each, each page's letterhead
    dated and neither body: each report its own page's date, its warning saying its page."""
    def page(dated: str, title: str, said: str) -> list[tuple]:
        return [*PARC, ("small", dated), *LEFEVRE, ("title", title), ("head", "Conclusion :"),
                ("body", said), ("body", "Dr Jean MARTIN")]

    msg = _read(_lab_pdf(page("Lyon, le 3 mars 2025", "ÉCHOGRAPHIE ABDOMINALE", "Normale."),
                         page("Lyon, le 4 mars 2025", "RADIOGRAPHIE DU THORAX",
                              "Pas d'anomalie pleuro-parenchymateuse.")))
    assert [(e.display, e.effective) for e in msg.entries] == [
        ("ÉCHOGRAPHIE ABDOMINALE", "2025-03-03"), ("RADIOGRAPHIE DU THORAX", "2025-03-04")]
    assert sum("REPORT_EXAM_DATE_FROM_HEADER" in w and "(page 2, line 3)" in w
               for w in msg.warnings) == 1


def test_a_date_in_the_body_wins_over_the_letterheads() -> None:
    """The body's own date is never replaced: an exam date in the body stays the exam date;
    a body signed 'Lyon, le 17 mars 2025' (the letter reprinted later under a letterhead
    dated otherwise) takes no exam date from the letterhead; no warning either way."""
    head = [*PARC, ("small", "Lyon, le 3 mars 2025"), *LEFEVRE]
    msg = _read(_lab_pdf([*head, ECHO[0], ("label", "Examen réalisé le 28/02/2025"),
                          *ECHO[1:], ("body", "Dr Jean MARTIN")]))
    assert msg.entries[0].effective == "2025-02-28"
    msg_signed = _read(_lab_pdf([*head, *ECHO, ("body", "Lyon, le 17 mars 2025"),
                                 ("body", "Dr Jean MARTIN")]))
    assert msg_signed.entries[0].effective is None
    assert not [w for m in (msg, msg_signed) for w in m.warnings
                if w.startswith("REPORT_EXAM_DATE_FROM_HEADER")]


# -- AES-encrypted exports: an owner password only, or a user password --------------------------
PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
PRINT_RESTRICTED = -3904  # /P: copy, print and modify refused, reading allowed


def _cbc(key: bytes, iv: bytes, data: bytes, pad: bool = True) -> bytes:
    if pad:
        padder = padding.PKCS7(128).padder()
        data = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def _rc4(key: bytes, data: bytes) -> bytes:
    return g.rc4(key, data)


def _r4(user: str, owner: str, file_id: bytes) -> tuple[bytes, bytes]:
    """/Encrypt of the standard handler R4 with AESV2 (AES-128; ISO 32000-1 algorithms 2, 3,
    5) and the file key."""
    upw, opw = (user.encode() + PAD)[:32], (owner.encode() + PAD)[:32]
    h = hashlib.md5(opw).digest()
    for _ in range(50):
        h = hashlib.md5(h).digest()
    o = upw
    for i in range(20):
        o = _rc4(bytes(b ^ i for b in h), o)
    k = hashlib.md5(upw + o + struct.pack("<i", PRINT_RESTRICTED) + file_id).digest()
    for _ in range(50):
        k = hashlib.md5(k).digest()
    u = hashlib.md5(PAD + file_id).digest()
    for i in range(20):
        u = _rc4(bytes(b ^ i for b in k), u)
    return (b"<< /Filter /Standard /V 4 /R 4 /Length 128 /CF << /StdCF << /CFM /AESV2 "
            b"/AuthEvent /DocOpen /Length 16 >> >> /StmF /StdCF /StrF /StdCF /O <%s> /U <%s> "
            b"/P %d >>" % (o.hex().encode(), (u + bytes(16)).hex().encode(),
                           PRINT_RESTRICTED)), k


def _hash_2b(pw: bytes, salt: bytes, udata: bytes) -> bytes:
    """ISO 32000-2 algorithm 2.B (the R6 password hash)."""
    k = hashlib.sha256(pw + salt + udata).digest()
    i = 0
    while True:
        e = _cbc(k[:16], k[16:32], (pw + k + udata) * 64, pad=False)
        k = (hashlib.sha256, hashlib.sha384, hashlib.sha512)[sum(e[:16]) % 3](e).digest()
        i += 1
        if i >= 64 and e[-1] <= i - 32:
            return k[:32]


def _r6(user: str, owner: str, file_id: bytes) -> tuple[bytes, bytes]:
    """/Encrypt of the standard handler R6 with AESV3 (AES-256, PDF 2.0) and the file key."""
    key, salts = os.urandom(32), os.urandom(32)
    u = _hash_2b(user.encode(), salts[:8], b"") + salts[:16]
    ue = _cbc(_hash_2b(user.encode(), salts[8:16], b""), bytes(16), key, pad=False)
    o = _hash_2b(owner.encode(), salts[16:24], u) + salts[16:]
    oe = _cbc(_hash_2b(owner.encode(), salts[24:], u), bytes(16), key, pad=False)
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    perms = enc.update(struct.pack("<i", PRINT_RESTRICTED) + b"\xff\xff\xff\xffTadb"
                       + bytes(4)) + enc.finalize()
    return (b"<< /Filter /Standard /V 5 /R 6 /Length 256 /CF << /StdCF << /CFM /AESV3 "
            b"/AuthEvent /DocOpen /Length 32 >> >> /StmF /StdCF /StrF /StdCF /O <%s> /U <%s> "
            b"/OE <%s> /UE <%s> /Perms <%s> /P %d >>"
            % (*(x.hex().encode() for x in (o, u, oe, ue, perms)), PRINT_RESTRICTED)), key


def _aes_pdf(lines: list[str], revision: int, user: str = "") -> bytes:
    """A one-page report encrypted as a hospital's export is: AES-128 (R4) or AES-256 (R6),
    the owner password set, the user password ``user`` (empty: any viewer opens it)."""
    file_id = hashlib.md5("|".join(lines).encode()).digest()
    encrypt, key = (_r4 if revision == 4 else _r6)(user, "Export-DPI-2025", file_id)

    def crypt(num: int, data: bytes) -> bytes:
        k = key if revision == 6 else hashlib.md5(key + num.to_bytes(3, "little") + b"\0\0"
                                                   + b"sAlT").digest()
        iv = os.urandom(16)
        return iv + _cbc(k, iv, data)

    content = b"\n".join(b"BT /F1 10 Tf 60 %d Td (%s) Tj ET" % (780 - 15 * n, g.pdf_escape(t))
                         for n, t in enumerate(lines))
    stream = crypt(5, content)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font "
            b"<< /F1 4 0 R >> >> /Contents 5 0 R >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
            b"<< /Title <%s> >>" % crypt(6, b"Compte rendu").hex().encode(), encrypt]
    out, offsets = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), []
    for num, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref = len(out)
    out += b"xref\n0 8\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o
                                                            for o in offsets)
    out += (b"trailer\n<< /Size 8 /Root 1 0 R /Info 6 0 R /Encrypt 7 0 R /ID [<%s> <%s>] >>\n"
            b"startxref\n%d\n%%%%EOF\n" % (file_id.hex().encode(), file_id.hex().encode(), xref))
    return bytes(out)


AES_REPORT = ["CENTRE HOSPITALIER DE VALENCE - Service d'imagerie", "Patient : M. GARNIER Rémi",
              "Né le 02/11/1955", "SCANNER THORACIQUE SANS INJECTION",
              "Examen du 17/03/2025", "Conclusion :", "Pas de nodule pulmonaire suspect.",
              "Dr Anne-Sophie BÉRARD"]


@pytest.mark.parametrize("revision", [4, 6], ids=["aes128-r4", "aes256-r6"])
def test_an_aes_export_with_an_owner_password_only_is_read(revision: int) -> None:
    """A hospital's export encrypted with AES (printing and copying restricted by an owner
    password, no user password: every viewer opens it) is read like any other report, its
    Title decrypted; the same export with a user password is refused, PDF_ENCRYPTED, with
    no text of it in the message."""
    assert b"GARNIER" not in _aes_pdf(AES_REPORT, revision)  # encrypted indeed
    doc = parse_pdf(_aes_pdf(AES_REPORT, revision), PdfLimits(processes=1))
    assert doc.pages[0].text.splitlines() == AES_REPORT and doc.metadata["Title"] == \
        "Compte rendu"
    msg = _read(_aes_pdf(AES_REPORT, revision))
    assert (msg.identity.family, msg.entries[0].effective, msg.entries[0].value) == (
        "GARNIER", "2025-03-17", "Pas de nodule pulmonaire suspect.")
    with pytest.raises(PdfParseError) as err:
        parse_pdf(_aes_pdf(AES_REPORT, revision, user="Valence26"), PdfLimits(processes=1))
    assert err.value.code == "PDF_ENCRYPTED" and "password" in err.value.message
    assert "GARNIER" not in err.value.message


def test_a_user_password_aes_export_fails_on_the_ledger_with_its_code(sqlite_ctx) -> None:  # noqa: ANN001
    """Through intake and processing: the import is failed at the parse stage with
    PDF_ENCRYPTED and a message saying to send it without a password; the bytes archived."""
    ctx = sqlite_ctx
    data = _aes_pdf(AES_REPORT, 6, user="Valence26")
    intake(ctx.engine, ctx.archive, [Received(data, "ch-valence", "file", file_name="cr.pdf")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(imports.c.status, imports.c.stage, imports.c.error_code,
                                  imports.c.error_message, imports.c.sha256)).one()
    assert (row.status, row.stage, row.error_code) == ("failed", "parse", "PDF_ENCRYPTED")
    assert "without a password" in row.error_message and ctx.archive.get(row.sha256) == data


# -- signatures: initials, and the article before the title ----------------------------------
@pytest.mark.parametrize(("signed", "signer"), [
    ("Dr M. DUPONT", "Dr M. DUPONT"),
    ("Pr. M. DUPONT", "Pr. M. DUPONT"),
    ("Dr J.-P. MARTIN", "Dr J.-P. MARTIN"),
    ("Le Docteur Jean-Luc N'GUYEN", "Docteur Jean-Luc N'GUYEN"),
    ("Le Pr Marc DUPONT, radiologue", "Pr Marc DUPONT"),
    ("Le médecin radiologue, Dr Anne ROUX", "Dr Anne ROUX"),
])
def test_a_signature_with_initials_or_an_article_is_the_signer(signed: str,
                                                              signer: str) -> None:
    """'Dr M. DUPONT': 'M.' was read as 'Monsieur' and ended the name (no radiologist);
    'Dr J.-P. MARTIN': the compound initials were no name word. 'Le Docteur Jean-Luc
    N'GUYEN' and 'Le médecin radiologue, Dr ...' under the conclusion: read into it, and
    with the article no signer. Now the signer, the conclusion ending before the line."""
    msg = _read(_lab_pdf([*PARC, *LEFEVRE, ("title", "IRM DU GENOU DROIT"),
                          ("label", "Examen du 17.03.25"), ("head", "Conclusion :"),
                          ("body", "Fissure horizontale du ménisque interne."),
                          ("body", signed)]))
    fields = _fields(msg)
    assert (fields.get("radiologist"), fields["conclusion"], fields["exam_date"]) == (
        signer, "Fissure horizontale du ménisque interne.", "2025-03-17")


def test_a_conclusion_naming_a_doctor_in_a_sentence_goes_on() -> None:
    """'Le Dr ROCHE a été prévenu par téléphone.' is part of the conclusion, not a
    signature: kept in it, and the signer the 'Dr' line under it."""
    msg = _read(_lab_pdf([*PARC, *LEFEVRE, ("title", "SCANNER THORACIQUE"),
                          ("label", "Examen du 17/03/2025"), ("head", "Conclusion :"),
                          ("body", "Embolie pulmonaire segmentaire droite."),
                          ("body", "Le Dr ROCHE a été prévenu par téléphone."),
                          ("body", "Dr Claire DUBOIS")]))
    fields = _fields(msg)
    assert fields["conclusion"] == ("Embolie pulmonaire segmentaire droite.\n"
                                    "Le Dr ROCHE a été prévenu par téléphone.")
    assert fields["radiologist"] == "Dr Claire DUBOIS"
