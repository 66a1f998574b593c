"""Operators' round 4: what an operator (CLI, admin API, console) or a FHIR consumer still
tripped on. The CLI in-process (its Prefect flows as plain functions), the API app
in-process; SQLite and PostgreSQL where the store is touched."""

from __future__ import annotations

import json

from tests.conftest import ROOT
from tests.test_operators_round import no_prefect, run  # noqa: F401 (a fixture)
from tests.test_pipeline import ingest, make_patient, oru

# -- FHIR: one biologist, two senders --------------------------------------------------------
CDA_CRBIO = ROOT / "samples" / "cda" / "01_crbio_labm_lipides_glycemie.xml"
NIR_LE_GOFF = "155112923219071"  # the sample CR-BIO's patient (test INS-NIR OID)
# the CR-BIO's validating biologist (AUTHEN, idNatPS 808751632788) as a lab's SIL names
# her in OBX-16: the bare RPPS under ASIP-SANTE-PS
CREATININE_VALIDATED = ("OBX|4|NM|2160-0^Créatinine [Masse/Volume] Sérum^LN||9.2|mg/L|"
                        "7.0-12.0|N|||F|||20240315083000+0100||08751632788^CHAUVET^"
                        "Bénédicte^^^MME^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS")
FR_CORE_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"


def test_one_biologist_from_hl7v2_and_cda_is_one_practitioner_with_both_ids(  # noqa: ANN001
        ctx, home, database_url, monkeypatch, capsys) -> None:
    """A lab's ORU names the biologist by her 11-digit RPPS (OBX-16), a hospital's CR-BIO by
    her national PS id ('8' + RPPS, participant AUTHEN). The export had one Practitioner
    carrying the idNatPS alone, typed with the sender's text 'RPPS' when the HL7v2 result
    came first and untyped when the CDA did: a consumer looking her up by RPPS found
    nothing. Now one Practitioner, the same whichever came first, with FR Core's idNatPs
    and rpps identifiers."""
    monkeypatch.setenv("DMP_DATABASE_URL", database_url)
    make_patient(ctx, NIR_LE_GOFF, family="Le Goff", given="Jérôme", birth_date="1955-11-02",
                 sex="M")
    hl7 = oru("BIO-1", nir=NIR_LE_GOFF, family="LE GOFF", given="Jérôme", birth="19551102",
              sex="M", extra_obx=CREATININE_VALIDATED)
    done = ingest(ctx, hl7, CDA_CRBIO.read_bytes())
    assert len(done) == 2
    code, out, _ = run(capsys, "dossier", "export", NIR_LE_GOFF, "--as", "carol")
    assert code == 0
    bundle = json.loads(out)
    found = [e["resource"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "Practitioner"]
    assert len(found) == 1, [p["identifier"] for p in found]
    assert found[0]["identifier"] == [
        {"type": {"coding": [{"system": FR_CORE_TYPES, "code": "IDNPS"}]},
         "system": "urn:oid:1.2.250.1.71.4.2.1", "value": "808751632788"},
        {"type": {"coding": [{"system": FR_CORE_TYPES, "code": "RPPS"}]},
         "system": "https://rpps.esante.gouv.fr", "value": "08751632788"}]
    url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is found[0])
    validated = {e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "Observation" and
                 {"reference": url} in [{"reference": p.get("reference")}
                                        for p in e["resource"].get("performer", [])]}
    assert "2160-0" in validated and len(validated) > 1  # the ORU's and the CR-BIO's
