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
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dossiers.schema import entries
from tests.test_hl7v2_senders_round21 import _file, _message
from tests.test_lab_normalizer import OBR, ORC, norm, oru

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


def test_clinical_information_reaches_the_dossier(sqlite_ctx) -> None:  # noqa: ANN001
    obr = _with(OBR, 13, "Sous AVK (fluindione), INR cible 2-3")
    ((status, code, warnings),) = _file(sqlite_ctx, _message("MSG-2201", INR, obr=obr))
    assert (status, code, warnings) == ("deposited", None, None)
    with sqlite_ctx.engine.connect() as conn:
        details = conn.execute(select(entries.c.details).where(
            entries.c.type == "lab_report")).scalar_one()
    assert details["clinical_information"] == [{"text": "Sous AVK (fluindione), INR cible 2-3"}]
