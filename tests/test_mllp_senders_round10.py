"""The MLLP listener's acknowledgements, round 10: what each refusal tells the sender (AE or
AR per HL7 table 0008 and the table 0357 code in ERR-3, from pipelines/tables/ack_codes.csv
for every failure the HL7v2 path records), and batches that answer batches. Over real
sockets, one application-mode service for the module; the ACKs read with python-hl7."""

from __future__ import annotations

import csv
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import hl7
import pytest

import pipelines.acknowledge
from pipelines.acknowledge import AckRule, ack_rules
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.process import Context
from pipelines.settings import ListenerSettings, Source, load_settings
from tests.conftest import SAMPLES, migrated_sqlite
from tests.mllp_support import Client, running_service
from tests.test_mllp_service import original_mode, sample

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "labm-lyon"


@pytest.fixture(scope="module")
def port(tmp_path_factory, sqlite_template) -> Iterator[int]:  # noqa: ANN001
    """An application-mode listener whose one source requires every local code mapped
    (``require_mapping``), as a DMP feed configured strict would be."""
    tmp = tmp_path_factory.mktemp("round10")
    settings = load_settings(
        env={"DMP_HOME": str(tmp / "home"),
             "DMP_DATABASE_URL": migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
             "DMP_ARCHIVE_URL": str(tmp / "archive"),
             "DMP_MAPPINGS_DIR": str(SAMPLES / "mappings")},
        sources=(Source(SOURCE),), listener=ListenerSettings(port=0, ack_mode="application"),
        require_mapping=frozenset({SOURCE}), workers=0)
    ctx = Context.from_settings(settings)
    with (SAMPLES / "patients.csv").open(encoding="utf-8", newline="") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)],
                        skip_existing=True)
    try:
        with running_service(ctx, process=False) as svc:
            yield svc.port
    finally:
        ctx.engine.dispose()


def parsed(ack: bytes) -> hl7.Message:
    return hl7.parse(ack.decode("utf-8"))


# --- AE/AR and ERR-3 for every failure the HL7v2 path records -----------------------------

# The modules an HL7v2 message goes through, parse to filing; the codes they fail it with
HL7V2_PATH = ["parsers/hl7v2/*.py", "normalizers/lab/*.py", "normalizers/documents.py",
              "normalizers/adt.py", "normalizers/fields.py", "normalizers/model.py",
              "pipelines/mapping_policy.py", "pipelines/process.py"]
_RAISED = re.compile(r"(?:Error|error_code=)\(?\s*\"([A-Z][A-Z0-9]*_[A-Z0-9_]+)\"")


def test_every_failure_of_the_hl7v2_path_has_its_ack_rule() -> None:
    """A failure code missing from ack_codes.csv fell on the '*' row: AE with ERR-3 207
    "Application internal error", telling a laboratory whose message holds a local code
    not mapped (CODE_UNMAPPED), a NUL byte, a DSC continuation or an MDM^T01 notification
    that the fault was ours. Each code an HL7v2 message can be failed with has its row."""
    raised = {code for pattern in HL7V2_PATH for path in ROOT.glob(pattern)
              for code in _RAISED.findall(path.read_text(encoding="utf-8"))}
    assert {"CODE_UNMAPPED", "HL7_NUL_CHARACTER", "MDM_NOTIFICATION_ONLY"} <= raised
    # not failures an ACK reports: quarantines (answered AA), the transient retry, ours
    not_failures = {"IDENTITY_UNKNOWN_PATIENT", "IDENTITY_AMBIGUOUS", "IDENTITY_CONFLICT",
                    "CORRECTION_OTHER_DOSSIER", "ASSIGN_SEVERAL_PATIENTS", "ARCHIVE_MISSING",
                    "INTERNAL_ERROR"}
    rules = ack_rules()
    assert sorted(raised - not_failures - set(rules)) == []
    assert (rules["CODE_UNMAPPED"].ack, rules["CODE_UNMAPPED"].hl7_code) == ("AE", "103")
    assert (rules["MDM_NOTIFICATION_ONLY"].ack,  # MSH-9's event refused: table 0008 AR
            rules["MDM_NOTIFICATION_ONLY"].hl7_code) == ("AR", "201")
    assert rules["FIELD_TOO_LONG"].hl7_code == "104"
    assert {r.ack for r in rules.values()} == {"AE", "AR"}


LOCAL_GLUCOSE = b"OBX|20|NM|ZZGLU^Glyc\xc3\xa9mie locale^L||5.1|mmol/L|3.9-5.8|N|||F\r"


def test_unmapped_local_code_is_ae_103_at_its_obx(port: int) -> None:
    """A source required to map its codes sends a local glucose code: AE, ERR-3 103 (table
    value not found) at OBX-3 of the 20th OBX (after the sample's four MetaDMPMSS ones),
    severity E, our code in ERR-8 and MSA-3; it was AE 207 (an internal error of ours),
    which an integrator reads as ours to fix."""
    data = original_mode(sample("01_labm_nfs.hl7")).replace(
        b"|RB2501140000001|", b"|R10-UNMAPPED-1|", 1) + LOCAL_GLUCOSE
    with Client(port) as client:
        ack = parsed(client.send(data))
    assert str(ack.segment("MSA")[1]) == "AE"
    assert str(ack.segment("MSA")[2]) == "R10-UNMAPPED-1"
    err = ack.segment("ERR")
    assert str(err[2]) == "OBX^20^3^1"  # the 20th OBX, 25th segment
    assert str(err[3]) == "103^Table value not found^HL70357"
    assert str(err[4]) == "E"
    assert str(err[8]).startswith("CODE_UNMAPPED: OBX[25]-3: local code ZZGLU")
    assert str(ack.segment("MSA")[3]).startswith("CODE_UNMAPPED")


def _refused_type(control_id: str, accept: str = "", application: str = "") -> bytes:
    """The lab's message as a type no normalizer reads (refused from MSH-9, before
    processing), with MSH-15/16 as given."""
    data = sample("01_labm_nfs.hl7").replace(b"|RB2501140000001|", f"|{control_id}|".encode(),
                                            1).replace(b"|ORU^R01^ORU_R01|", b"|ZLB^Z01|", 1)
    return data.replace(b"|AL|NE|FRA|", f"|{accept}|{application}|FRA|".encode(), 1)


def test_a_refusal_answers_what_its_table_row_says(port: int, monkeypatch) -> None:  # noqa: ANN001
    """The MSA-1 of a refusal (a message refused before processing) is its code's row of
    ack_codes.csv, as for a processed message: the listener wrote AR whatever the row said.
    A row made AE here: AE in original mode, AE as the application ACK an NE/AL sender
    waits for, CR at the commit level (the message is refused, not stored in error)."""
    rules = dict(ack_rules())
    assert rules["HL7_UNSUPPORTED_TYPE"] == AckRule("AR", "200")  # as shipped
    with Client(port) as client:
        shipped = parsed(client.send(_refused_type("R10-REF-0")))
        rules["HL7_UNSUPPORTED_TYPE"] = AckRule("AE", "200")
        monkeypatch.setattr(pipelines.acknowledge, "ack_rules", lambda: rules)
        original = parsed(client.send(_refused_type("R10-REF-1")))
        waiting = parsed(client.send(_refused_type("R10-REF-2", "NE", "AL")))
        commit = parsed(client.send(_refused_type("R10-REF-3", "AL", "NE")))
    assert str(shipped.segment("MSA")[1]) == "AR"
    assert str(original.segment("MSA")[1]) == "AE"
    assert str(waiting.segment("MSA")[1]) == "AE"
    assert str(commit.segment("MSA")[1]) == "CR"
    for ack in (shipped, original, waiting, commit):
        assert str(ack.segment("ERR")[3]) == "200^Unsupported message type^HL70357"
        assert str(ack.segment("ERR")[2]) == "MSH^1^9^1"


# --- a batch that answers a batch is not answered -----------------------------------------

EMPTY_BATCH = b"BHS|^~\\&|LABM|CERBALLIANCE_LYON|DMP-INTAKE|DMP|20261127083000+0100||||R10B1\r" \
              b"BTS|0\r"


def test_an_empty_answering_batch_is_not_answered(port: int) -> None:
    """An empty batch (a periodic submission with nothing in it) is answered with an empty
    batch whose BHS-12 names it (v2.5 2.10.3.3). That answer, sent back by an engine routing
    its responses to us, is itself an answer (BHS-12 valued; empty: every message accepted)
    and was answered again with an empty batch, back and forth without end. Now it gets no
    answer, and the connection goes on."""
    with Client(port) as client:
        answer = client.send(EMPTY_BATCH)
        bhs = answer.split(b"\r")[0].split(b"|")
        assert bhs[0] == b"BHS" and bhs[11] == b"R10B1"
        assert answer.split(b"\r")[1] == b"BTS|0"
        with pytest.raises(socket.timeout):
            client.send(answer, timeout=0.6)
        data = original_mode(sample("01_labm_nfs.hl7")).replace(
            b"|RB2501140000001|", b"|R10-AFTER-ECHO|", 1)
        ack = parsed(client.send(data))
    assert [str(f) for f in ack.segment("MSA")[1:3]] == ["AA", "R10-AFTER-ECHO"]


# --- the response batch in the sender's encoding characters -------------------------------


def test_response_batch_keeps_the_v27_truncation_character(port: int) -> None:
    """A v2.7 sender declares the truncation character in MSH-2 and BHS-2 ('^~\\&#'). Each
    ACK of the response batch echoed it in its MSH-2 while the BHS-2 around them dropped
    it ('^~\\&'): the batch said other encoding characters than the messages it holds."""
    message = original_mode(sample("01_labm_nfs.hl7")).replace(
        b"|RB2501140000001|", b"|R10-V27-1|", 1).replace(b"MSH|^~\\&|", b"MSH|^~\\&#|", 1)
    message = message.replace(b"|P|2.5|", b"|P|2.7|", 1)
    batch = (b"BHS|^~\\&#|LABM|CERBALLIANCE_LYON|DMP-INTAKE|DMP|20261127083000+0100||||R10B27\r"
             + message + b"BTS|1\r")
    with Client(port) as client:
        answer = client.send(batch)
    lines = answer.split(b"\r")
    assert lines[0].split(b"|")[:2] == [b"BHS", b"^~\\&#"]
    assert lines[0].split(b"|")[11] == b"R10B27"
    ack = parsed(b"\r".join(line for line in lines if line[:3] in (b"MSH", b"MSA", b"ERR")))
    assert str(ack.segment("MSH")[2]) == "^~\\&#"
    assert [str(f) for f in ack.segment("MSA")[1:3]] == ["AA", "R10-V27-1"]
    assert lines[-2] == b"BTS|1"
