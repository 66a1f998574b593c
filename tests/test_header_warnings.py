"""MSH-7 and MSH-12 that the normalizers read past: a warning on the import naming the field,
never its value, for every message type (normalizers.fields.header_warnings, called once by
normalizers.lab.normalize_message); the message is read all the same."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dossiers.schema import imports
from normalizers.dates import is_hl7_ts
from normalizers.lab import normalize_message
from parsers.hl7v2.er7 import parse_text
from tests.test_adt_consent import adt
from tests.test_pipeline import ingest, make_patient, oru

MSH = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP|GHT|{msh7}||ORU^R01^ORU_R01|MSG-1|P|{msh12}|||||FRA|"
       "UNICODE UTF-8")
BODY = ["PID|||LD-778^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||DURAND^Claire||19790328|F",
        "OBR|1|CMD-1|24C0315-07^LABO-DEMO|BIO^Bilan^L|||202403150810",
        "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|||||F"]


def message(msh7: str = "20240315104500", msh12: str = "2.5", zone: str | None = None):  # noqa: ANN201
    msg = parse_text("\r".join([MSH.format(msh7=msh7, msh12=msh12), *BODY]) + "\r")
    msg.zone = zone
    return normalize_message(msg, "demo-lab")


def about(nm, field: str) -> list[str]:  # noqa: ANN001
    return [w for w in nm.warnings if w.startswith(f"{field}: ")]


@pytest.mark.parametrize("msh7", ["20241340104500", "15/03/2024 10:45", "2024031510450",
                                  "20240315250000", "2024-03-15T10:45:00-04:00", "NOW"])
def test_bad_message_time_is_said_without_its_value(msh7: str) -> None:
    nm = message(msh7=msh7)
    (said,) = about(nm, "MSH-7")
    assert "not a valid HL7 date/time" in said and "Paris time" in said
    assert msh7 not in " ".join(nm.warnings)
    # read all the same, at Paris's offset as before
    assert [e.effective for e in nm.entries if e.type == "lab_report"] == [
        "2024-03-15T08:10+01:00"]


@pytest.mark.parametrize("msh7", ["20240315104500", "20240315104500+0100", "202403151045-0400",
                                  "20240315", "2024", "20240315104500.123+0200",
                                  "20240315104500^S", ""])
def test_valid_or_absent_message_time_says_nothing(msh7: str) -> None:
    assert about(message(msh7=msh7), "MSH-7") == []


def test_bad_message_time_of_a_source_with_a_declared_zone() -> None:
    (said,) = about(message(msh7="bad", zone="America/New_York"), "MSH-7")
    assert "the source's declared zone" in said and "Paris" not in said


@pytest.mark.parametrize("msh12", ["", "9.9", "V2.5", "25", "2.5.9", "3.0", "2,5"])
def test_unknown_or_empty_version_is_said(msh12: str) -> None:
    nm = message(msh12=msh12)
    (said,) = about(nm, "MSH-12")
    assert ("no version id" if not msh12 else "no HL7 v2 version") in said
    assert "read all the same" in said
    assert any(e.type == "lab_result" for e in nm.entries)  # still processed


@pytest.mark.parametrize("msh12", ["2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6",
                                   "2.7", "2.7.1", "2.8", "2.8.2", "2.9", " 2.5 ",
                                   "2.5^FRA^2.11"])
def test_hl7_v2_versions_say_nothing(msh12: str) -> None:
    assert about(message(msh12=msh12), "MSH-12") == []


def test_every_message_type_gets_them_once() -> None:
    # an ADT (dated by EVN-2, so a bad MSH-7 does not fail it)
    nm = normalize_message(parse_text(adt("A-1", msh7="20240306111199").decode()
                                      .replace("|2.5^FRA^2.11|", "|9.9^FRA^2.11|")), "chu")
    assert len(about(nm, "MSH-7")) == 1 and len(about(nm, "MSH-12")) == 1
    # an ORU^R01 of two patients: the header's warnings said once
    two = "\r".join([MSH.format(msh7="x", msh12=""), *BODY,
                     BODY[0].replace("LD-778", "LD-779"), *BODY[1:]]) + "\r"
    nm = normalize_message(parse_text(two.replace("OBR|1|CMD-1|24C0315-07", "OBR|1|CMD-2|X", 1)),
                           "demo-lab")
    assert nm.patients and len(nm.patients) == 2
    assert len(about(nm, "MSH-7")) == 1 and len(about(nm, "MSH-12")) == 1


def test_is_hl7_ts() -> None:
    assert is_hl7_ts("20240315104500+0100") and is_hl7_ts("2024^Y")
    assert not is_hl7_ts("20240230") and not is_hl7_ts("2024-03-15T10:45")


def test_the_ledger_row_carries_them(sqlite_ctx) -> None:  # noqa: ANN001
    make_patient(sqlite_ctx)
    data = oru("MSG-W").replace(b"|20240315101500+0100|", b"|2024-15-03|")
    data = data.replace(b"|P|2.5|", b"|P||")
    (import_id,) = ingest(sqlite_ctx, data)
    with sqlite_ctx.engine.connect() as conn:
        row = conn.execute(select(imports).where(imports.c.id == import_id)).one()
    assert row.status == "deposited"
    assert [w.split(":", 1)[0] for w in row.warnings if w.startswith("MSH-")] == [
        "MSH-7", "MSH-12"]
    assert "2024-15-03" not in " ".join(row.warnings)


@pytest.mark.parametrize(("msh11", "said"), [("T", "training"), ("D^A", "debugging"),
                                             ("t", "training"), ("P", None), ("", None),
                                             ("P^T", None)])
def test_a_training_or_debugging_message_is_filed_with_a_warning(msh11: str, said) -> None:  # noqa: ANN001
    """MSH-11 T or D through a file, a bucket or HTTP (the MLLP listener refuses them unless
    declared): filed, as before, but the import says it is a test channel's message."""
    msg = parse_text("\r".join([MSH.format(msh7="20240315104500", msh12="2.5")
                                .replace("|MSG-1|P|", f"|MSG-1|{msh11}|"), *BODY]) + "\r")
    nm = normalize_message(msg, "demo-lab")
    warned = about(nm, "MSH-11")
    if said is None:
        assert warned == []
    else:
        assert len(warned) == 1 and said in warned[0] and "filed all the same" in warned[0]
    assert [e.code for e in nm.entries][-1] == "GLY"  # read all the same
