"""HL7v2 lab results from senders we have not seen, round 22: fields of the order and the
result that French laboratory systems fill and we did not read, or read against HL7 v2.5
(French lab traffic, invented patients).

What the round found:
- OBR-13, relevant clinical information (v2.5 7.4.1.13, ST; CWE and repeating from v2.7):
  what the prescriber told the laboratory ('Sous AVK, INR cible 2-3', 'Grossesse 12 SA'),
  printed beside the results of a French report, without which an INR or a hCG is misread,
  was not read at all: nothing of it reached the dossier. Kept now on the report, in
  details.clinical_information, each repetition as {text} (ST) or as a coded item (CWE);
  a report without it is filed as before;
- SPM-18, specimen received date/time (v2.5 7.4.3.18), and OBR-14 (the same time as
  v2.3-2.4 senders and HPRIM converters still send it) were not read: when the laboratory
  received the specimen, how long it waited before analysis (a potassium or a glucose
  drifts with it), was lost. Kept now on the report, details.specimen_received (ISO 8601,
  the sender's zone as for every time), SPM-18 first; it dates nothing. A value that is
  no HL7 time ('15/03/2024 09:35') is not read, said (OBR[n]-14 / SPM[n]-18), and fails
  nothing: the message was filed before and still is.
- OBX-4 empty and OBX-4 '1' are one sub-id (v2.5 7.4.2.4: 'use a null or 1 when there is
  no need for multiples'), but a result's key kept the sub-id as sent: a lab whose
  middleware writes '1' and whose LIS leaves it empty (or one LIS before and after an
  upgrade) had its final filed beside the preliminary it completes, a second final beside
  the first, and its withdrawal (OBX-11 W) left a tombstone while the potassium withdrawn
  stayed current. The result held under the other spelling is followed now (its key kept:
  nothing stored before changes key), in the bulk and the one-message deposit alike; a
  message sending both spellings files two results, as before.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dossiers.schema import entries
from tests.test_hl7v2_senders_round21 import _file, _message, _versions
from tests.test_lab_normalizer import MSH, OBR, ORC, PID, norm, oru

K = "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F"
INR = "OBX|1|NM|34714-6^INR^LN||2.6||2.0-3.0||||F"


def _with(segment: str, n: int, value: str) -> str:
    """The segment with its field n set to ``value``."""
    fields = segment.split("|")
    fields[n] = value
    return "|".join(fields)


def _report(nm):  # noqa: ANN001, ANN202
    (report,) = [e for e in nm.entries if e.type == "lab_report"]
    return report


# -- OBR-13, relevant clinical information -----------------------------------------------------
@pytest.mark.parametrize("sent, kept", [
    ("Sous AVK (fluindione), INR cible 2-3",
     [{"text": "Sous AVK (fluindione), INR cible 2-3"}]),
    ("Grossesse 12 SA\\T\\ diabète", [{"text": "Grossesse 12 SA& diabète"}]),  # escaped
    ("AVK", [{"text": "AVK"}]),  # one word: text all the same (ST has no code)
    ("Z33.1^Grossesse^I10", [{"code": "Z33.1", "system": "CIM-10", "display": "Grossesse"}]),
    ("Z79.01^^I10^^^^^^Traitement anticoagulant au long cours~^Fièvre au retour du Mali",
     [{"code": "Z79.01", "system": "CIM-10",
       "display": "Traitement anticoagulant au long cours"},
      {"text": "Fièvre au retour du Mali"}]),  # v2.7 CWE, repeated
    ("~Patient à jeun~", [{"text": "Patient à jeun"}]),  # empty repetitions are nothing
])
def test_relevant_clinical_information_is_kept_on_the_report(sent: str, kept: list) -> None:
    nm = norm(oru(INR, order=(ORC, _with(OBR, 13, sent))))
    report = _report(nm)
    assert report.details["clinical_information"] == kept
    assert report.key == "report|24C0315-07|LABO-DEMO|BIOCHIMIE"  # the key is unchanged
    assert nm.warnings == []


@pytest.mark.parametrize("sent", ["~", " ", "^^^^^^^^"])
def test_an_empty_clinical_information_is_nothing(sent: str) -> None:
    report = _report(norm(oru(K, order=(ORC, _with(OBR, 13, sent)))))
    assert report.details == {"placer_order": "CMD-1", "ordering_provider": "DR Paul MARTIN"}




# -- SPM-18 / OBR-14, specimen received time ---------------------------------------------------
SPM = "SPM|1|||SER^Sérum^HL70487|||||||||||||202403150805"


@pytest.mark.parametrize("obr14, spm18, received", [
    ("202403150935", None, "2024-03-15T09:35+01:00"),  # OBR-14 alone (no SPM)
    ("20240315093512+0100", None, "2024-03-15T09:35:12+01:00"),
    ("202403150935^M", None, "2024-03-15T09:35+01:00"),  # v2.3 degree of precision
    ("", "202403150920", "2024-03-15T09:20+01:00"),  # SPM-18 alone
    ("202403150935", "202403150920", "2024-03-15T09:20+01:00"),  # SPM-18 first
])
def test_the_specimen_received_time_is_kept_on_the_report(obr14: str, spm18: str | None,
                                                          received: str) -> None:
    obr = _with(OBR, 14, obr14)
    tail = () if spm18 is None else (f"{SPM}|{spm18}",)
    nm = norm(oru(K, order=(ORC, obr), tail=tail))
    report = _report(nm)
    assert report.details["specimen_received"] == received
    assert report.effective == "2024-03-15T08:10+01:00"  # dated by OBR-7 as before
    assert nm.warnings == []


@pytest.mark.parametrize("obr14", ["15/03/2024 09:35", "20240332"])
def test_a_received_time_that_is_no_date_is_said_and_fails_nothing(obr14: str) -> None:
    nm = norm(oru(K, order=(ORC, _with(OBR, 14, obr14))))
    report = _report(nm)
    assert "specimen_received" not in report.details
    assert [e.value for e in nm.entries if e.type == "lab_result"] == ["4.1"]
    assert nm.warnings == ["OBR[4]-14: the specimen's reception time is no HL7 date/time "
                           "(YYYYMMDD[HHMM[SS]]): not read"]
    assert "2024" not in nm.warnings[0]


def test_the_received_time_reaches_the_dossier(sqlite_ctx) -> None:  # noqa: ANN001
    obr = _with(_with(OBR, 14, "202403150935"), 13, "Patiente à jeun")
    ((status, code, warnings),) = _file(sqlite_ctx, _message("MSG-2202", K, obr=obr))
    assert (status, code, warnings) == ("deposited", None, None)
    with sqlite_ctx.engine.connect() as conn:
        details = conn.execute(select(entries.c.details).where(
            entries.c.type == "lab_report")).scalar_one()
    assert details["specimen_received"] == "2024-03-15T09:35+01:00"
    assert details["clinical_information"] == [{"text": "Patiente à jeun"}]


def test_an_oul_r22_specimen_first_gives_both_to_its_order() -> None:
    """OUL^R22 (v2.5 13.4, IHE LAB-3 on an automation line): the SPM before its orders."""
    header = MSH.replace("ORU^R01^ORU_R01", "OUL^R22^OUL_R22")
    nm = norm("\r".join([
        header, PID, f"{SPM}|202403150920", "ORC|SC|CMD-1|24C0315-07^LABO-DEMO",
        "OBR|1|CMD-1|24C0315-07^LABO-DEMO|K^Kaliémie^L|||202403150810||||||Sous diurétiques",
        K]) + "\r")
    report = _report(nm)
    assert report.details["specimen_received"] == "2024-03-15T09:20+01:00"
    assert report.details["clinical_information"] == [{"text": "Sous diurétiques"}]
    assert nm.warnings == []


# -- OBX-4 empty or '1': one sub-id --------------------------------------------------------------
def _k(sub_id: str, value: str, status: str) -> str:
    return f"OBX|1|NM|2823-3^Potassium^LN|{sub_id}|{value}|mmol/L|3.5-5.1|N|||{status}"


@pytest.mark.parametrize("first, then, versions", [
    (("", "4.1", "P"), ("1", "4.3", "F"),  # the final of a preliminary
     [(1, False, "preliminary", "4.1"), (2, True, "final", "4.3")]),
    (("1", "4.1", "F"), ("", "4.3", "C"),  # a correction
     [(1, False, "final", "4.1"), (2, True, "corrected", "4.3")]),
    (("1", "4.1", "F"), ("", "", "W"),  # a withdrawal
     [(1, False, "final", "4.1"), (2, True, "withdrawn", "4.1")]),
    (("", "4.1", "F"), ("1", "4.6", "F"),  # a final sent again with another value
     [(1, False, "final", "4.1"), (2, True, "final", "4.6")]),
])
def test_an_empty_sub_id_and_sub_id_1_are_one_result(sqlite_ctx, first: tuple, then: tuple,
                                                     versions: list) -> None:  # noqa: ANN001
    rows = _file(sqlite_ctx, _message("MSG-2211", _k(*first)), _message("MSG-2212", _k(*then)))
    assert [r[:2] for r in rows] == [("deposited", None)] * 2
    assert _versions(sqlite_ctx, "2823-3") == versions
    with sqlite_ctx.engine.connect() as conn:  # the key held is kept
        keys = set(conn.execute(select(entries.c.key).where(entries.c.code == "2823-3")).scalars())
    assert keys == {f"result|24C0315-07|LABO-DEMO|2823-3|LN|{first[0]}"}


def test_a_message_sending_both_spellings_still_files_two_results(sqlite_ctx) -> None:  # noqa: ANN001
    _file(sqlite_ctx, _message("MSG-2215", _k("", "4.1", "F")))
    _file(sqlite_ctx, _message("MSG-2216", _k("", "4.2", "F"),
                               _k("1", "4.4", "F").replace("OBX|1|", "OBX|2|")))
    assert sorted(v[1:] for v in _versions(sqlite_ctx, "2823-3")) == [
        (False, "final", "4.1"), (True, "final", "4.2"), (True, "final", "4.4")]


def test_another_sub_id_is_not_followed(sqlite_ctx) -> None:  # noqa: ANN001
    _file(sqlite_ctx, _message("MSG-2217", _k("1", "4.1", "F")),
          _message("MSG-2218", _k("2", "4.3", "F")))
    assert sorted(v[1:] for v in _versions(sqlite_ctx, "2823-3")) == [
        (True, "final", "4.1"), (True, "final", "4.3")]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_empty_sub_id_follows_sub_id_1_on_postgresql(ctx) -> None:  # noqa: ANN001
    _file(ctx, _message("MSG-2219", _k("1", "4.1", "F")), _message("MSG-2220", _k("", "", "W")))
    assert _versions(ctx, "2823-3") == [(1, False, "final", "4.1"), (2, True, "withdrawn", "4.1")]
