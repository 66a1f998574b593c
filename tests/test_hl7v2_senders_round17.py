"""HL7v2 message types, structures and versions, round 17: what senders we have not seen send
besides ORU^R01 v2.5 (laboratory automation middleware, order and query traffic routed to
the wrong interface, orders sent before their results), written as such a sender writes it
(French lab traffic, invented patients) and checked against what must be filed or refused.

What the round found:
- OUL^R21 (v2.4-v2.6 'unsolicited laboratory observation', as laboratory automation
  middleware sends an analyser's results: [SAC [OBX]] [SID] [ORC] OBR [OBX [TCD] [SID]]) was
  refused HL7_UNSUPPORTED_EVENT (AR 201), every result lost to the dossier. It is read as
  results, each container's own OBX (its hemolysis index, its volume) filed with the order
  that follows it. An OUL without any PID (an automation line's quality control results:
  its PATIENT group is optional) was refused 'the message has no PID segment', as if
  broken: the refusal (still HL7_NO_PID) says it is about no patient;
- an order (ORM, OML), an order response (ORL), a query (QRY, QBP), a master file (MFN), a
  business acknowledgement (ZAM) or an ACK routed to this intake was refused 'message type
  X is not handled by this intake', which reads as a gap of ours: the refusal (the same
  code, AR 200) now says what the message is and where it belongs, an acknowledgement
  which control id it answers (tables/message_types_not_received.csv);
- an order sent before its results (ORC-5 'IP' or 'SC', an OBR without OBX, OBR-25 empty as
  v2.3 senders leave it) was filed as a report of unknown status: it is 'registered' now
  (ORC-5, HL7 table 0038, tables/order_status.csv), a cancelled one 'cancelled';
- an OBR with no field valued at the end of a message ('OBR|2': a template's last order
  group left unfilled) was filed as a report of no test, no date, unknown status, under the
  number of the ORC before it: left out now, with a warning;
- an SPM sent between the ORC and its OBR (ORC SPM OBR OBX, where an OUL has it) was
  dropped before the first order and given to the previous order after one (a urine's
  specimen and collection time filed on the serum potassium, the urine sodium without
  any): it is the specimen of the order whose OBR follows, with a warning;
- an ORC sent before the message's only PID (ORC PID OBR OBX) was dropped at the PID,
  the order numbers it alone held lost: the message failed HL7_NO_ORDER_NUMBER. It is the
  order's ORC now, with a warning (a message of several patients still refuses it);
- a point-of-care message (ORU^R30-R32, v2.7+) holding the patient's own observations
  after the PID and before the order (a blood gas's temperature and FiO2: the
  PATIENT_OBSERVATION group) failed HL7_OBX_WITHOUT_OBR: they are filed with the order that
  follows, details['patient_observation'], no specimen of the order given to them;
- a file whose FTS-1 counts its messages (v2.5: its batches), 'FHS BHS ... BTS|2 FTS|2' as
  many senders write it, was failed HL7_BATCH_COUNT_MISMATCH ('truncated file?') although
  every message was there: a warning on the file's row now (HL7_FTS_COUNTS_MESSAGES), on
  both intake paths; a count that matches neither still fails the file.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.schema import imports
from normalizers.lab import handles_message_type
from normalizers.model import NormalizationError
from pipelines.intake import Received, intake
from pipelines.intake_stream import intake_file
from pipelines.process import drain
from tests.conftest import migrated_sqlite
from tests.mllp_support import Client, msa, running_service, segment
from tests.test_lab_normalizer import MSH, OBR, ORC, PID, norm
from tests.test_mllp_service import make_ctx

K, NA = "2823-3", "2951-2"  # potassium, sodium [Moles/volume] in Serum or Plasma
OBX_K = "OBX|1|NM|2823-3^Potassium^LN||4,1|mmol/L|3,5-5,1|N|||F|||202403150805"
OBX_NA = "OBX|1|NM|2951-2^Sodium^LN||140|mmol/L|136-145|N|||F|||202403150805"
ORC_2 = "ORC|RE|CMD-2^SERVICE-NEPHRO|24C0315-08^LABO-DEMO"
OBR_2 = OBR.replace("CMD-1", "CMD-2").replace("24C0315-07", "24C0315-08").replace("OBR|1",
                                                                                   "OBR|2")


def _message(msh9: str, *segments: str, version: str = "2.5") -> str:
    header = MSH.replace("ORU^R01^ORU_R01", msh9).replace("|P|2.5|", f"|P|{version}|")
    return "\r".join([header, *segments]) + "\r"


# -- OUL^R21: laboratory automation results, each order opened by its container -------------
def _tube(tube: str, index: str) -> tuple[str, str]:
    """A SAC (the tube, its volume in SAC-23/24) and the container's own OBX: its hemolysis
    index as the automation line measures it."""
    return (f"SAC|||{tube}^CHAINE-AUTO" + "|" * 20 + "4,5^mL",
            f"OBX|1|NM|HEMOL^Indice d'hémolyse^L||{index}|mg/dL|||||F")


def test_oul_r21_is_read_as_results_each_container_with_its_order() -> None:
    sac_1, hemolysis_1 = _tube("T-0001", "12")
    sac_2, hemolysis_2 = _tube("T-0002", "85")
    nm = norm(_message("OUL^R21^OUL_R21",
                       PID, sac_1, hemolysis_1, "SID|K^Potassium^L|LOT-2403||ROCHE", ORC, OBR,
                       OBX_K, "TCD|2823-3^Potassium^LN|1^1", "NTE|1|L|Contrôlé sur 2e tube",
                       sac_2, hemolysis_2, ORC_2, OBR_2, OBX_NA, version="2.4"))
    reports = [e for e in nm.entries if e.type == "lab_report"]
    assert len(reports) == 2
    by_order = {r.key: sorted((e.code, e.value) for e in nm.entries
                              if e.parent_key == r.key) for r in reports}
    first, second = (by_order[r.key] for r in reports)
    # read as R24 the second tube's index (85: a hemolysed tube) was the first order's
    assert first == [(K, "4,1"), ("HEMOL", "12")]
    assert second == [(NA, "140"), ("HEMOL", "85")]
    potassium = next(e for e in nm.entries if e.code == K)
    assert potassium.details["comments"] == ["Contrôlé sur 2e tube"]
    assert handles_message_type("OUL", "R21")  # the listener accepts what is read


def test_oul_r21_container_without_order_says_so() -> None:
    sac, hemolysis = _tube("T-0003", "9")
    with pytest.raises(NormalizationError) as exc:
        norm(_message("OUL^R21^OUL_R21", PID, ORC, OBR, OBX_K, sac, hemolysis))
    assert exc.value.code == "HL7_OBX_WITHOUT_OBR"
    assert "specimen or container no OBR follows" in str(exc.value)



@pytest.mark.parametrize("msh9, segments, role", [
    ("OUL^R22^OUL_R22", ("SPM|1|CQ-2403-01^CHAINE-AUTO||SER^Sérum^HL70487|||||||Q", OBR, ORC,
                         OBX_K), " (SPM-11 specimen role 'Q')"),
    ("OUL^R21^OUL_R21", (_tube("CQ-0002", "3")[0], ORC, OBR, OBX_K), ""),
])
def test_an_oul_without_patient_says_it_is_about_no_patient(msh9: str, segments: tuple,
                                                             role: str) -> None:
    """Quality control results of an automation line (OUL's PATIENT group is optional):
    'the message has no PID segment' told the sender its message was broken."""
    with pytest.raises(NormalizationError) as exc:
        norm(_message(msh9, *segments))
    assert (exc.value.code, exc.value.location) == ("HL7_NO_PID", "PID")
    assert str(exc.value) == (
        f"{msh9[:7]} without a patient (no PID: an OUL's PATIENT group is optional, as in the "
        f"results of quality control or calibration specimens{role}): nothing in it is for a "
        "patient's dossier")

# -- messages routed to the wrong interface ------------------------------------------------
@pytest.mark.parametrize("msh9, said", [
    ("ORM^O01^ORM_O01", "is an order (a request for tests or exams)"),
    ("OML^O21^OML_O21", "is a laboratory order"),
    ("ORL^O22^ORL_O22", "is a laboratory order response"),
    ("QBP^Q11^QBP_Q11", "is a query by parameter"),
    ("QRY^R02", "is a query"),
    ("ORF^R04^ORF_R04", "is a query response carrying observations"),
    ("MFN^M08^MFN_M08", "is a master file notification"),
    ("ZAM^Z01^ZAM_Z01", "is a business acknowledgement"),
])
def test_a_message_routed_here_by_mistake_says_what_it_is(msh9: str, said: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        norm(_message(msh9, PID, "ORC|NW|CMD-9^SERVICE-NEPHRO", "OBR|1|CMD-9^SERVICE-NEPHRO||"
                      "BIOCHIMIE^Bilan biochimique^L"))
    assert (exc.value.code, exc.value.location) == ("HL7_UNSUPPORTED_TYPE", "MSH-9")
    kind, trigger = msh9.split("^")[:2]
    assert str(exc.value).startswith(f"message type {kind}^{trigger} {said}")
    assert "this intake receives results, documents and patient administration only; it " \
        "belongs to " in str(exc.value)
    assert "LEFÈVRE" not in str(exc.value)


def test_a_type_not_listed_is_refused_as_before() -> None:
    with pytest.raises(NormalizationError) as exc:
        norm(_message("SSU^U03^SSU_U03", PID))
    assert str(exc.value) == "message type SSU^U03 is not handled by this intake"


def test_an_acknowledgement_filed_here_names_the_exchange_on_the_ledger(sqlite_ctx) -> None:  # noqa: ANN001
    """A lab engine routing its ACKs to this intake: the ledger says which message of its it
    answers (MSA-2), for the operator to find the misrouted exchange."""
    ack = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|20240315104502||ACK^R01^ACK|ACK-0001|"
           "P|2.5\rMSA|AE|MSG-0417\r")
    ids = intake(sqlite_ctx.engine, sqlite_ctx.archive,
                 [Received(ack.encode(), "demo-lab", "file", file_name="ack.hl7")])[0].message_ids
    drain(sqlite_ctx)
    with sqlite_ctx.engine.connect() as conn:
        row = conn.execute(select(imports.c.status, imports.c.error_code,
                                  imports.c.error_message).where(imports.c.id == ids[0])).one()
    assert (row.status, row.error_code) == ("failed", "HL7_UNSUPPORTED_TYPE")
    assert row.error_message.startswith("message type ACK^R01 is an acknowledgement")
    assert row.error_message.endswith("(MSA-1 AE, answering control id MSG-0417)")



def test_over_mllp_an_order_is_refused_saying_so_and_an_oul_r21_is_taken(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """Over a real socket (application ACKs): the order's AR carries the new text in ERR-8
    (the listener refuses from MSH-9 with the normalizer's words), the OUL^R21 is taken."""
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"),
                   ack_mode="application")
    order = _message("ORM^O01^ORM_O01", PID, "ORC|NW|CMD-9^SERVICE-NEPHRO",
                     "OBR|1|CMD-9^SERVICE-NEPHRO||BIOCHIMIE^Bilan biochimique^L")
    sac, hemolysis = _tube("T-0004", "10")
    results = _message("OUL^R21^OUL_R21", PID, sac, hemolysis, ORC, OBR, OBX_K,
                       version="2.4").replace("MSG-0001", "MSG-0002")
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            refused, taken = client.send(order.encode()), client.send(results.encode())
        err = segment(refused, "ERR")
        assert msa(refused)[1:3] == ["AR", "MSG-0001"]
        assert err[3].startswith("200^") and err[8].startswith(
            "HL7_UNSUPPORTED_TYPE: message type ORM\\S\\O01 is an order (a request for tests or "
            "exams): this intake receives results")
        assert msa(taken)[1:3] == ["AA", "MSG-0002"]
        with ctx.engine.connect() as conn:
            states = conn.execute(select(imports.c.status).order_by(imports.c.id)).scalars()
            assert list(states)[1] in ("deposited", "quarantined")
    finally:
        ctx.engine.dispose()

# -- an order sent before its results ---------------------------------------------------------
OBR_NO_STATUS = OBR.replace("202403151045|||F", "202403151045|||")


@pytest.mark.parametrize("orc, status", [
    ("ORC|SC|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO||IP", "registered"),
    ("ORC|SC|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO||SC", "registered"),
    ("ORC|SC|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO||CA", "cancelled"),
    ("ORC|OC|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO||IP", "cancelled"),  # ORC-1 first
    ("ORC|SC|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO||CM", "unknown"),  # results elsewhere
    (ORC, "unknown"),
])
def test_an_order_without_results_takes_its_status_from_orc5(orc: str, status: str) -> None:
    nm = norm(_message("ORU^R01^ORU_R01", PID, orc, OBR_NO_STATUS, version="2.3"))
    (report,) = nm.entries
    assert report.status == status


def test_orc5_is_not_read_beside_results() -> None:
    """Results carry their own status: ORC-5 'IP' does not make a report with a final
    potassium 'registered'."""
    nm = norm(_message("ORU^R01^ORU_R01", PID,
                       "ORC|SC|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-DEMO||IP", OBR_NO_STATUS,
                       OBX_K))
    report = next(e for e in nm.entries if e.type == "lab_report")
    assert report.status == "final"





@pytest.mark.parametrize("trailer", [("OBR|",), ("OBR|2",), ("OBR|2|\"\"|||",), ("ORC|", "OBR|2")])
def test_a_trailing_empty_obr_files_no_phantom_report(trailer: tuple) -> None:
    """A sender's template leaving its last order group unfilled ('OBR|2' at the end): a
    report of no test, no date and unknown status was filed under the order number of the
    ORC before it, beside the real one."""
    nm = norm(_message("ORU^R01^ORU_R01", PID, ORC, OBR, OBX_K, *trailer))
    assert [(e.type, e.code) for e in nm.entries] == [("lab_report", "BIOCHIMIE"),
                                                      ("lab_result", K)]
    where = 5 + len(trailer)
    assert f"OBR[{where}]: observation request with no field valued (no test, no order " \
        "number) and no result: nothing filed for it" in nm.warnings


def test_an_obr_with_only_its_order_number_is_still_filed() -> None:
    """Not empty: an order sent before its results, its number alone (the report 'registered'
    or 'unknown' that the next message completes)."""
    nm = norm(_message("ORU^R01^ORU_R01", PID, ORC, OBR, OBX_K, "OBR|2||24C0315-09^LABO-DEMO"))
    assert [e.key for e in nm.entries if e.type == "lab_report"][1] == \
        "report|24C0315-09|LABO-DEMO|"


# -- an SPM sent before its OBR ----------------------------------------------------------------
SERUM = "SPM|1|24C0315-07-1^LABO-DEMO||SER^Sérum^HL70487" + "|" * 13 + "202403150805"
URINE = "SPM|1|24C0315-08-1^LABO-DEMO||UR^Urine^HL70487" + "|" * 13 + "202403150700"


def test_a_specimen_sent_before_its_obr_is_that_orders() -> None:
    """ORC SPM OBR OBX, the specimen where an OUL or an OML has it: before any OBR it was
    dropped, after the first order it was given to that order (the urine to the serum's
    potassium), the urine sodium filed without specimen nor collection time."""
    nm = norm(_message("ORU^R01^ORU_R01", PID, ORC, SERUM, OBR, OBX_K, ORC_2, URINE, OBR_2,
                       OBX_NA.replace("202403150805", ""), version="2.5.1"))
    k, na = (e for e in nm.entries if e.type == "lab_result")
    assert (k.details["specimen"]["display"], k.specimen_time) == ("Sérum",
                                                                   "2024-03-15T08:05+01:00")
    assert (na.details["specimen"]["display"], na.specimen_time) == ("Urine",
                                                                     "2024-03-15T07:00+01:00")
    assert "SPM[4]: specimen sent before its order's OBR (ORU_R01 has it after the OBR and its " \
        "results): read as OBR[5]'s" in nm.warnings
    assert any(w.startswith("SPM[8]: specimen sent before") for w in nm.warnings)


def test_a_specimen_after_its_obr_is_read_as_before() -> None:
    """The v2.5.1 place (OBR OBX SPM), and an SPM after an ORC that no OBR follows (OBR ORC
    SPM OBX, the ORC after its OBR): the order's, without a warning."""
    for segments in ((ORC, OBR, OBX_K, SERUM), (OBR, ORC, SERUM, OBX_K)):
        nm = norm(_message("ORU^R01^ORU_R01", PID, *segments, version="2.5.1"))
        (k,) = (e for e in nm.entries if e.type == "lab_result")
        assert k.details["specimen"]["display"] == "Sérum"
        assert not any("specimen sent before" in w for w in nm.warnings)


# -- an ORC sent before the PID ----------------------------------------------------------------
OBR_UNNUMBERED = "OBR|1|||BIOCHIMIE^Bilan biochimique^L|||202403150810"


@pytest.mark.parametrize("segments", [
    (ORC, PID, OBR_UNNUMBERED, OBX_K),
    (ORC, "NTE|1|L|Prélèvement au domicile", PID, "PV1|1|O", OBR_UNNUMBERED, OBX_K),
])
def test_an_orc_sent_before_the_pid_is_the_orders(segments: tuple) -> None:
    """ORC PID OBR OBX, the order control first: its order numbers were dropped at the PID
    and the message failed HL7_NO_ORDER_NUMBER, though no other order could be meant."""
    nm = norm(_message("ORU^R01^ORU_R01", *segments, version="2.3"))
    report, k = nm.entries
    assert report.key == "report|24C0315-07|LABO-DEMO|BIOCHIMIE"
    assert k.parent_key == report.key
    assert "ORC[2]: order control sent before the patient (PID): read as " \
        f"OBR[{len(segments)}]'s, the message's only order control before it" in nm.warnings
    if len(segments) > 4:  # the order's comment, sent with it before the PID
        assert report.details["comments"] == ["Prélèvement au domicile"]


def test_an_orc_after_the_pid_is_read_as_before() -> None:
    nm = norm(_message("ORU^R01^ORU_R01", PID, ORC, OBR_UNNUMBERED, OBX_K))
    assert nm.entries[0].key == "report|24C0315-07|LABO-DEMO|BIOCHIMIE"
    assert not any("before the patient" in w for w in nm.warnings)

# -- point of care: the patient's own observations before the order (v2.7+ ORU_R30-R32) ------
TEMPERATURE = "OBX|1|NM|8310-5^Température corporelle^LN||37,8|Cel|||||F|||202403150800"
FIO2 = "OBX|2|NM|3150-0^FiO2^LN||40|%|||||F|||202403150800"
GAS_ORC = "ORC|NW||GDS-2403150801^GAZO-URG"
GAS_OBR = "OBR|1||GDS-2403150801^GAZO-URG|24336-0^Gaz du sang artériel^LN|||202403150801"
PO2 = "OBX|1|NM|2703-7^pO2 artériel^LN||82|mm[Hg]|83-108|L|||F|||202403150801"


@pytest.mark.parametrize("msh9", ["ORU^R30^ORU_R30", "ORU^R32^ORU_R30"])
def test_point_of_care_patient_observations_are_filed_with_the_order(msh9: str) -> None:
    """A blood gas analyser sends the patient's temperature and FiO2 (what the gas is read
    at) after the PID, before the order, as ORU_R30's PATIENT_OBSERVATION group has them
    (OBX [PRT]): the whole message failed HL7_OBX_WITHOUT_OBR."""
    nm = norm(_message(msh9, PID, TEMPERATURE, "PRT||AD||AAP^Aide-soignant", FIO2, "PV1|1|E",
                       GAS_ORC, GAS_OBR, PO2, "SPM|1|||122554006^Sang capillaire^SCT",
                       version="2.7"))
    report, *results = nm.entries
    assert report.type == "lab_report"
    assert [(r.code, r.value_num, r.parent_key) for r in results] == [
        ("8310-5", 37.8, report.key), ("3150-0", 40.0, report.key),
        ("2703-7", 82.0, report.key)]
    temperature, fio2, po2 = results
    assert temperature.details["patient_observation"] is fio2.details["patient_observation"]
    assert "specimen" not in temperature.details  # the patient's, not the capillary blood's
    assert "patient_observation" not in po2.details
    assert po2.details["specimen"]["display"] == "Sang capillaire"


@pytest.mark.parametrize("msh9, segments, said", [
    ("ORU^R30^ORU_R30", (TEMPERATURE,), "observation of the patient (before any order) that "
     "no OBR follows"),
    ("ORU^R30^ORU_R30", (GAS_ORC, TEMPERATURE, GAS_OBR), "observation before any OBR"),
    ("ORU^R01^ORU_R01", (TEMPERATURE, GAS_ORC, GAS_OBR, PO2), "observation before any OBR"),
])
def test_an_observation_before_any_order_elsewhere_still_fails(msh9: str, segments: tuple,
                                                               said: str) -> None:
    """Only ORU_R30-R32 have a patient's observations before the order: an R01's OBX there
    (its OBR lost) or one between an ORC and its OBR still fails the message."""
    with pytest.raises(NormalizationError) as exc:
        norm(_message(msh9, PID, *segments, version="2.7"))
    assert exc.value.code == "HL7_OBX_WITHOUT_OBR" and said in str(exc.value)

# -- FTS-1 counting the file's messages -------------------------------------------------------
def _lab_file(fts: str, *, bhs: bool = True) -> bytes:
    """One laboratory's file of two messages (two patients' potassium), FHS [BHS] ... FTS."""
    first = _message("ORU^R01^ORU_R01", PID, ORC, OBR, OBX_K)
    second = _message("ORU^R01^ORU_R01", PID, ORC_2, OBR_2, OBX_NA).replace("MSG-0001",
                                                                            "MSG-0002")
    body = first + second
    if bhs:
        body = "BHS|^~\\&|SIL-BIO|LABO-DEMO\r" + body + "BTS|2\r"
    return ("FHS|^~\\&|SIL-BIO|LABO-DEMO\r" + body + fts).encode()


def _file_row(ctx, result) -> tuple:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports.c.status, imports.c.error_code, imports.c.warnings)
                            .where(imports.c.id == result.batch_id)).one()


def test_fts1_counting_the_messages_is_a_warning_not_a_truncated_file(ctx) -> None:  # noqa: ANN001
    """v2.5 FTS-1 counts the file's batches; many senders write its messages there. Every
    message announced is there: the file's row was failed 'FTS-1 announces 2 batches, 1
    found: truncated file?', an operator sent looking for a batch never lost. (SQLite and
    PostgreSQL: the file's row.)"""
    _fts_counting_messages(ctx, bhs=True)


def test_fts1_counting_the_messages_of_a_file_without_bhs(sqlite_ctx) -> None:  # noqa: ANN001
    """FHS, messages, FTS|2: the file's one implicit batch holds two messages."""
    _fts_counting_messages(sqlite_ctx, bhs=False)


def _fts_counting_messages(sqlite_ctx, bhs: bool) -> None:  # noqa: ANN001
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    (result,) = intake(sqlite_ctx.engine, sqlite_ctx.archive,
                       [Received(_lab_file("FTS|2\r", bhs=bhs), "demo-lab", "file",
                                 file_name="CR_20240315.hl7")])
    drain(sqlite_ctx)
    status, code, warnings = _file_row(sqlite_ctx, result)
    assert (status, code) == ("split", None)
    at = _lab_file("FTS|2\r", bhs=bhs).rindex(b"\rFTS|") + 1
    assert warnings == [f"HL7_FTS_COUNTS_MESSAGES: FTS-1 at byte {at}"
                        " counts the file's 2 messages, not its 1 batch (the file batch "
                        "count): every message it announces is there"]
    with sqlite_ctx.engine.connect() as conn:
        states = conn.execute(select(imports.c.status).where(
            imports.c.id.in_(result.message_ids))).scalars().all()
    assert states == ["deposited", "deposited"]


def test_fts1_announcing_what_is_not_there_still_fails_the_file(sqlite_ctx) -> None:  # noqa: ANN001
    (result,) = intake(sqlite_ctx.engine, sqlite_ctx.archive,
                       [Received(_lab_file("FTS|3\r"), "demo-lab", "file")])
    status, code, _ = _file_row(sqlite_ctx, result)
    assert (status, code) == ("failed", "HL7_BATCH_COUNT_MISMATCH")


def test_a_big_file_whose_fts1_counts_its_messages_is_split_too(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """The same file taken by the streaming intake (a file above LARGE_FILE_BYTES)."""
    path = tmp_path / "CR_20240315.hl7"
    path.write_bytes(_lab_file("FTS|2\r"))
    result = intake_file(sqlite_ctx.engine, sqlite_ctx.archive, path, source="demo-lab")
    status, code, warnings = _file_row(sqlite_ctx, result)
    assert (status, code) == ("split", None)
    assert [w.split(":")[0] for w in warnings] == ["HL7_FTS_COUNTS_MESSAGES"]
