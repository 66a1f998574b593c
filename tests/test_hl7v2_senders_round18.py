"""HL7v2 lab results from senders we have not seen, round 18: envelopes and values as such
senders write them (French lab traffic, invented patients), checked against what must be
filed, warned about or refused.

What the round found:
- a BHS inside a BHS ('FHS BHS BHS ... BTS BTS FTS', a day's batch holding a ward's) was
  reported truncated (the outer BHS 'has no BTS trailer') and its second BTS 'closes no
  open batch': the file's row failed although every message was there. The nested batch
  is read, its BTS-1 checked, a note (HL7_BATCH_NESTED) on the file's row; a BHS whose BTS
  never comes is still truncated, as before;
- two messages glued (no CR before the second MSH) whose MSH-2 differ ('^~\\&#' then
  '^~\\&', two senders' messages gathered in one file) were not cut: the second message was
  read as text of the first one's last segment. Any MSH header is now cut there;
- a text ED ('^TEXT^PLAIN^A^...') holding an unescaped '~' was cut there (a repetition),
  the rest of the report dropped unsaid: read to the field's end, with a warning;
- words under NM, SN or CQ ('voir commentaire', 'non réalisé', 'ininterprétable', and
  qualitative results: 'Négatif', 'Indétectable') failed the whole message OBX_BAD_NUMBER:
  filed as text (tables/numeric_text_words.csv), with a warning; a garbled number still
  fails; under OBX-11 X/N the words stay withheld as before;
- susceptibility panels whose OBR-26 names the isolate without PRL.2 ('600-7&...&LN^^
  Escherichia coli') were told apart by rank ('#2'), and linked to a key no result had:
  keyed by the isolate, linked to the message's result naming it;
- over MLLP, a frame whose second message is glued to the first and is a training one
  (MSH-11 T) was answered AA and filed (the listener looked for a second MSH at a line
  start only): refused whole, as a plainly concatenated one is.
"""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports
from normalizers.model import NormalizationError
from parsers.hl7v2.framing import (
    BATCH_TRUNCATED,
    BATCH_UNEXPECTED,
    GLUED_MESSAGE,
    iter_batch,
    split_batch,
)
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import migrated_sqlite
from tests.mllp_support import Client, msa, running_service, segment
from tests.test_lab_normalizer import MSH, OBR, ORC, PID, norm
from tests.test_mllp_service import _with_msh, make_ctx, original_mode, sample

BATCH_NESTED = "HL7_BATCH_NESTED"  # framing.BATCH_NESTED, a ledger code: spelt out
OBX_K = "OBX|1|NM|2823-3^Potassium^LN||4,1|mmol/L|3,5-5,1|N|||F|||202403150805"


def _message(control: str, *segments: str, msh2: str = "^~\\&") -> str:
    header = MSH.replace("MSG-0001", control).replace("MSH|^~\\&|", f"MSH|{msh2}|", 1)
    return "\r".join([header, *segments]) + "\r"


def _lab(control: str, msh2: str = "^~\\&") -> bytes:
    """A potassium under its own order (the order number follows MSH-10's)."""
    n = control[-1]
    return _message(control, PID, ORC.replace("CMD-1", f"CMD-{n}").replace("-07", f"-0{n}"),
                    OBR.replace("CMD-1", f"CMD-{n}").replace("-07", f"-0{n}"), OBX_K,
                    msh2=msh2).encode()


M1, M2, M3 = _lab("MSG-0001"), _lab("MSG-0002"), _lab("MSG-0003")
FHS, BHS = b"FHS|^~\\&|SIL-BIO|LABO-DEMO\r", b"BHS|^~\\&|SIL-BIO|LABO-DEMO\r"


# -- nested batches ---------------------------------------------------------------------------
@pytest.mark.parametrize("data, problems, notes", [
    # BHS inside BHS, both closed; BTS-1 of the outer one counting every message in it
    (FHS + BHS + BHS + M1 + M2 + b"BTS|2\rBTS|2\rFTS|1\r", [], [BATCH_NESTED]),
    # ... or its own messages and its batches (1 + 1); FTS-1 counting every BHS
    (FHS + BHS + M1 + BHS + M2 + b"BTS|1\rBTS|2\rFTS|2\r", [], [BATCH_NESTED]),
    # ... or its own messages only (none here)
    (FHS + BHS + BHS + M1 + M2 + b"BTS|2\rBTS|0\rFTS|1\r", [], [BATCH_NESTED]),
    # three levels, no FHS
    (BHS + BHS + BHS + M1 + b"BTS|1\rBTS|1\rBTS|1\r", [], [BATCH_NESTED, BATCH_NESTED]),
    # a nested BTS-1 that counts what is not there still says so
    (BHS + BHS + M1 + b"BTS|1\rBTS|5\r", ["HL7_BATCH_COUNT_MISMATCH"], [BATCH_NESTED]),
    # a batch whose BTS never came, then the next batch: truncated, as before
    (BHS + M1 + BHS + M2 + b"BTS|1\r", [BATCH_TRUNCATED], []),
    (FHS + BHS + M1 + BHS + M2 + b"BTS|1\rFTS|2\r", [BATCH_TRUNCATED], []),
    # several batches side by side in one file (2.10.3): nothing to say, as before
    (FHS + BHS + M1 + b"BTS|1\r" + BHS + M2 + M3 + b"BTS|2\rFTS|2\r", [], []),
    # one BTS too many is still one too many
    (BHS + M1 + b"BTS|1\rBTS|1\r", [BATCH_UNEXPECTED], []),
])
def test_nested_batches_are_read(data: bytes, problems: list, notes: list) -> None:
    batch = split_batch(data)
    assert [m for m in batch.messages if m] == [m for m in (M1, M2, M3) if m in data]
    assert [p.code for p in batch.problems] == problems
    assert [n.code for n in batch.notes] == notes
    # streamed (a file above LARGE_FILE_BYTES), windows ending inside segments: the same
    *streamed, last = iter_batch(io.BytesIO(data).read, 64)
    assert (streamed, last.problems, last.notes) == (batch.messages, batch.problems,
                                                     batch.notes)


def test_a_truncated_batch_still_names_what_cut_it_short() -> None:
    data = BHS + M1 + BHS + M2 + b"BTS|1\r"
    [problem] = split_batch(data).problems
    at = len(BHS + M1)
    assert problem.message == (f"BHS at byte 0 has no BTS trailer before BHS at byte {at}: "
                               "truncated batch?")


def test_a_file_of_nested_batches_files_every_message_with_a_warning(sqlite_ctx) -> None:  # noqa: ANN001
    """Through intake and processing: the file's row split with a note, both messages
    deposited (the file's row failed HL7_BATCH_TRUNCATED before)."""
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    data = FHS + BHS + BHS + M1 + M2 + b"BTS|2\rBTS|2\rFTS|1\r"
    (result,) = intake(sqlite_ctx.engine, sqlite_ctx.archive,
                       [Received(data, "demo-lab", "file", file_name="CR_20240315.hl7")])
    drain(sqlite_ctx)
    with sqlite_ctx.engine.connect() as conn:
        status, code, warnings = conn.execute(
            select(imports.c.status, imports.c.error_code, imports.c.warnings)
            .where(imports.c.id == result.batch_id)).one()
        states = conn.execute(select(imports.c.status).where(
            imports.c.id.in_(result.message_ids))).scalars().all()
    assert (status, code) == ("split", None)
    assert warnings == [f"{BATCH_NESTED}: BHS at byte {len(FHS)} holds 1 batch of its own (a "
                        "BHS inside a BHS, which HL7 v2.5 2.10.3 does not provide for): every "
                        "message was read"]
    assert states == ["deposited", "deposited"]


# -- glued messages whose MSH-2 differ --------------------------------------------------------
@pytest.mark.parametrize("first, second", [
    (_lab("MSG-0001", "^~\\&#"), _lab("MSG-0002")),  # v2.7 truncation character, then none
    (_lab("MSG-0001"), _lab("MSG-0002", "^~!&")),  # another escape character
    (_lab("MSG-0001", "^~\\&"), _lab("MSG-0002", "#~\\@")),
])
def test_a_glued_msh_with_other_encoding_characters_is_cut(first: bytes, second: bytes) -> None:
    data = first.removesuffix(b"\r") + second
    batch = split_batch(data)
    assert batch.messages == [first.removesuffix(b"\r"), second]
    assert [(n.code, n.offset) for n in batch.notes] == [(GLUED_MESSAGE, len(first) - 1)]
    for window in (16, 64, len(first) - 4, len(first) + 8):  # around the glued header
        *streamed, last = iter_batch(io.BytesIO(data).read, window)
        assert (streamed, last.notes) == (batch.messages, batch.notes)


@pytest.mark.parametrize("text", [
    "NTE|1|L|Cf. MSH|^~&|reçu",  # an unescaped field separator: too few fields after it
    "NTE|1|L|MSH|--/|x|||||||||||",  # not distinct characters
    "NTE|1|L|MSH|ab!|x|||||||||||",  # letters
])
def test_msh_letters_that_start_no_header_are_not_cut(text: str) -> None:
    data = _message("MSG-0001", PID, ORC, OBR, OBX_K, text).encode()
    assert split_batch(data).messages == [data]
    norm(data.decode())  # and the message still reads


# -- a text ED holding an unescaped '~' -------------------------------------------------------
CR_TEXT = "Hémoglobine normale ~ plaquettes 250 G/L, contrôle à J+7 ~ Dr Lefèvre"


def test_a_text_ed_holding_a_raw_tilde_is_read_to_the_fields_end() -> None:
    """'^TEXT^PLAIN^A^...~...': the report stopped at the first '~' (read as a repetition),
    the rest dropped without a word. Read to the field's end now, each '~' a line break
    (documents round 8 reads a text ED's repetitions as its next lines, which is what a
    sender writing one line per repetition means; a '~' meant as a character is rare in a
    French report, and the words are kept either way)."""
    nm = norm(_message("MSG-0001", PID, ORC, OBR,
                       f"OBX|1|ED|11502-2^Compte rendu^LN||^TEXT^PLAIN^A^{CR_TEXT}||||||F"))
    [doc] = [e for e in nm.entries if e.type == "document"]
    assert doc.attachment.data.decode("utf-8") == CR_TEXT.replace("~", "\n")
    assert any("OBX[5]-5: the text goes on in 2 more repetition(s) of OBX-5" in w
               for w in nm.warnings)


def test_a_repeated_text_ed_is_read_as_the_next_line() -> None:
    """A second repetition that is a text ED of its own is the report's next line (its data),
    never dropped."""
    nm = norm(_message("MSG-0001", PID, ORC, OBR, "OBX|1|ED|11502-2^Compte rendu^LN||"
                       "^TEXT^PLAIN^A^Hémoglobine normale~^TEXT^PLAIN^A^Annexe||||||F"))
    [doc] = [e for e in nm.entries if e.type == "document"]
    assert doc.attachment.data == "Hémoglobine normale\nAnnexe".encode()


# -- words under a numeric value type ---------------------------------------------------------
OBX_NA = "OBX|2|NM|2951-2^Sodium^LN||140|mmol/L|136-145|N|||F|||202403150805"


@pytest.mark.parametrize("vtype, value", [
    ("NM", "voir commentaire"), ("NM", "Non réalisé"), ("NM", "ININTERPRÉTABLE"),
    ("NM", "Hémolysé, à contrôler"), ("NM", "Cf. compte rendu"), ("SN", "^Voir commentaire"),
    ("NM", "Quantité insuffisante"), ("CQ", "Voir commentaire^mmol/L&&UCUM"),
    ("NM", "Négatif"), ("NM", "Indétectable"), ("NM", "traces"),
])
def test_words_under_a_numeric_type_are_filed_as_text(vtype: str, value: str) -> None:
    """The potassium is filed as text with a warning, the sodium beside it as a number (the
    whole message failed OBX_BAD_NUMBER)."""
    nm = norm(_message("MSG-0001", PID, ORC, OBR,
                       f"OBX|1|{vtype}|2823-3^Potassium^LN||{value}|mmol/L|3,5-5,1||||F",
                       OBX_NA))
    _, k, na = nm.entries
    assert (k.value, k.value_num, k.value_type, k.status) == (
        value.lstrip("^").split("^")[0], None, "ST", "final")
    assert k.details["value_type_sent"] == vtype
    assert f"OBX[5]-5: value type {vtype} but the value is text, not a number: filed as " \
           "text" in nm.warnings
    assert (na.value_num, na.value_type) == (140.0, "NM")


@pytest.mark.parametrize("value", ["abc", "4,1,2", "cinq", "Voir commentaire : 4,1 ?"])
def test_a_garbled_number_still_fails(value: str) -> None:
    """No word saying why, or digits beside the words: a number garbled, never shown as
    text (the number it may hold hidden in it)."""
    with pytest.raises(NormalizationError) as exc:
        norm(_message("MSG-0001", PID, ORC, OBR,
                      f"OBX|1|NM|2823-3^Potassium^LN||{value}|mmol/L|||||F"))
    assert (exc.value.code, exc.value.location) == ("OBX_BAD_NUMBER", "OBX[5]-5")


def test_words_under_status_x_are_a_result_not_obtained() -> None:
    """OBX-11 X: not performed, the words kept apart (as since round 9), never the value."""
    nm = norm(_message("MSG-0001", PID, ORC, OBR,
                       "OBX|1|NM|2823-3^Potassium^LN||Non réalisé : tube hémolysé|mmol/L|||||X",
                       OBX_NA))
    _, k, na = nm.entries
    assert (k.status, k.value) == ("cancelled", None)
    assert k.details["value_withheld"] == "Non réalisé : tube hémolysé"
    assert na.value_num == 140.0


# -- susceptibility panels whose OBR-26 names the isolate without a sub-id --------------------
ORC_CULTURE = "ORC|RE|CMD-9^SERVICE-URO|24C0315-20^LABO-DEMO"
ORC_PANEL = "ORC|RE|CMD-9^SERVICE-URO|24C0315-21^LABO-DEMO"
CULTURE = ("OBR|1|CMD-9^SERVICE-URO|24C0315-20^LABO-DEMO|630-4^Culture urine^LN|||"
           "202403150810" + "|" * 15 + "202403151045|||F")
GERMS = ("OBX|1|CWE|600-7^Germe identifié^LN|1|112283007^Escherichia coli^SCT||||||F",
         "OBX|2|CWE|600-7^Germe identifié^LN|2|56415008^Klebsiella pneumoniae^SCT||||||F")


def _panel(n: int, prl: str, mic: str, flag: str) -> tuple[str, str]:
    """A child order (an antibiogram) of the culture: OBR-26 the isolate, OBR-29 the
    culture's order; its ampicillin MIC without OBX-4."""
    obr = (f"OBR|{n}|CMD-9^SERVICE-URO|24C0315-21^LABO-DEMO|29576-6^Antibiogramme^LN|||"
           "202403150810" + "|" * 15 + f"202403151045|||F|{prl}|||"
           "CMD-9&SERVICE-URO^24C0315-20&LABO-DEMO")
    return obr, f"OBX|1|SN|18864-9^Ampicilline^LN||{mic}|mg/L||{flag}|||F"


PRL_COLI = "600-7&Germe identifié&LN^^Escherichia coli"
PRL_KLEB = "600-7&Germe identifié&LN^^56415008&Klebsiella pneumoniae&SCT"


def _culture(*panels: tuple[str, str, str], germs: bool = True) -> list:
    segments = [PID, ORC_CULTURE, CULTURE, *(GERMS if germs else ())]
    for n, (prl, mic, flag) in enumerate(panels, start=2):
        segments += [ORC_PANEL, *_panel(n, prl, mic, flag)]
    return norm(_message("MSG-0001", *segments)).entries


def test_panels_without_sub_id_are_told_apart_by_their_isolate() -> None:
    """Each panel keyed by the organism OBR-26.3 names and linked to that organism's result
    (by its OBX-4): the second was keyed '#2' and both linked to a key no result had."""
    entries = _culture((PRL_COLI, "<=^2", "S"), (PRL_KLEB, ">=^32", "R"))
    coli, kleb = (e for e in entries if e.type == "lab_result" and e.code == "600-7")
    reports = [e for e in entries if e.type == "lab_report" and e.code == "29576-6"]
    amp = [e for e in entries if e.code == "18864-9"]
    assert [r.parent_key for r in reports] == [coli.key, kleb.key]
    assert [r.key for r in reports] == [
        "report|24C0315-21|LABO-DEMO|29576-6|600-7^^Escherichia coli",
        "report|24C0315-21|LABO-DEMO|29576-6|600-7^^Klebsiella pneumoniae"]
    assert [(a.key.endswith(r.key.rpartition("|")[2]), a.interpretation)
            for a, r in zip(amp, reports, strict=True)] == [(True, "S"), (True, "R")]
    assert not any("#" in e.key for e in entries)


def test_a_panel_sent_alone_later_keeps_its_isolates_key() -> None:
    """The Klebsiella panel corrected the next day, alone (no culture result in the
    message): the same key as the day before, never the E. coli panel's."""
    first = _culture((PRL_COLI, "<=^2", "S"), (PRL_KLEB, ">=^32", "R"))
    later = _culture((PRL_KLEB, ">=^32", "R"), germs=False)
    kleb_before = [e.key for e in first if e.code == "18864-9"][1]
    assert [e.key for e in later if e.code == "18864-9"] == [kleb_before]


def test_a_panel_with_its_sub_id_is_keyed_as_before() -> None:
    entries = _culture(("600-7&Germe identifié&LN^1^Escherichia coli", "<=^2", "S"),
                       ("600-7&Germe identifié&LN^2^Klebsiella pneumoniae", ">=^32", "R"))
    assert [e.key for e in entries if e.code == "18864-9"] == [
        "result|24C0315-21|LABO-DEMO|18864-9|LN||600-7^1",
        "result|24C0315-21|LABO-DEMO|18864-9|LN||600-7^2"]


# -- a glued training message in a production frame -------------------------------------------
def test_a_glued_training_message_refuses_its_frame(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """Over a real socket: a frame of two messages glued (no CR before the second MSH), the
    second a training one (MSH-11 T). Only an MSH at a line start was looked for: the frame
    was answered AA and the training message filed into a production dossier. Refused
    whole now, as when the messages are plainly concatenated (round 5)."""
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    first = original_mode(sample("01_labm_nfs.hl7"))
    training = _with_msh(original_mode(sample("03_synlab_iono_creatinine.hl7")), f11="T")
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            got = client.send(_with_msh(first, f10="GLUED1").removesuffix(b"\r") + training)
        assert msa(got, "latin-1")[1:3] == ["AR", "GLUED1"]
        err = segment(got, "ERR", "latin-1")
        assert err[3].startswith("202^") and "message 2 of the frame" in err[8]
        with ctx.engine.connect() as conn:
            assert not conn.execute(select(entries.c.id)).all()
    finally:
        ctx.engine.dispose()
