"""The committed CDA sample set (samples/cda) and its generator (samples/generate_cda.py).

Checks the files themselves, not the pipeline: regenerating gives the same bytes, every sound
document is well-formed CI-SIS CDA R2 with the header fields a DMP intake relies on, NIR keys
are valid, the large CR-BIO has its 100 results, the cross-channel CR-BIO carries exactly the
results of its HL7v2 twin, and each broken file is broken in the one way it claims.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from pathlib import Path

import pytest
from lxml import etree

from samples import generate_cda
from tests.conftest import ROOT, SAMPLES

CDA = SAMPLES / "cda"
V3 = "urn:hl7-org:v3"
NS = {"v": V3}
INS_OIDS = {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.10"}
RPPS = "1.2.250.1.71.4.2.1"
STRUCT = "1.2.250.1.71.4.2.2"
DOC_CODES = {"11502-2", "11490-0", "SYNTH", "18748-4"}
TS = re.compile(r"^\d{12}(\d{2})?[+-]\d{4}$")  # minutes or seconds, with the Paris offset


def hardened() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False)


def rows() -> list[dict[str, str]]:
    with (CDA / "expected.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


GOOD = [r["file"] for r in rows() if r["outcome"] != "failed"]
BROKEN = {r["file"]: r["code"] for r in rows() if r["outcome"] == "failed"}


def parse(name: str) -> etree._Element:
    return etree.fromstring((CDA / name).read_bytes(), hardened())


def nir_valid(nir: str) -> bool:
    """NIR key computed here, independently of the generators (Corsica: 2A -> 19, 2B -> 18)."""
    if len(nir) != 15:
        return False
    digits = nir[:5] + nir[5:7].replace("2A", "19").replace("2B", "18") + nir[7:13]
    return digits.isdigit() and 97 - int(digits) % 97 == int(nir[13:])


# --------------------------------------------------------------------------------------------
# The set as a whole
# --------------------------------------------------------------------------------------------


def test_regenerating_gives_the_committed_bytes(tmp_path: Path) -> None:
    written = generate_cda.write_cda_set(tmp_path)
    assert sorted(p.name for p in written) == sorted(
        p.name for p in CDA.iterdir() if p.name != "README.md")
    for path in written:
        assert path.read_bytes() == (CDA / path.name).read_bytes(), path.name


def test_generation_is_deterministic_in_process() -> None:
    first = generate_cda.build_cda_set()
    second = generate_cda.build_cda_set()
    assert [(f.name, f.data) for f in first] == [(f.name, f.data) for f in second]


def test_expected_csv_and_readme_name_every_file() -> None:
    names = sorted(p.name for p in CDA.glob("*.xml"))
    assert names == sorted(r["file"] for r in rows())
    readme = (CDA / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert name in readme, name
    allowed = {"", "IDENTITY_UNKNOWN_PATIENT", "CDA_NOT_XML", "CDA_NOT_CDA",
               "CDA_DTD_FORBIDDEN", "CDA_NO_RECORD_TARGET"}
    assert {r["code"] for r in rows()} <= allowed
    assert {r["outcome"] for r in rows()} <= {"deposited", "duplicate", "quarantined", "failed"}


# --------------------------------------------------------------------------------------------
# Sound documents: XML, namespace and header
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GOOD)
def test_sound_document_header(name: str) -> None:
    data = (CDA / name).read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    data.decode("utf-8")  # strictly UTF-8
    assert b"<!DOCTYPE" not in data
    root = parse(name)
    assert root.tag == f"{{{V3}}}ClinicalDocument"
    assert root.nsmap[None] == V3
    assert root.nsmap["xsi"] == "http://www.w3.org/2001/XMLSchema-instance"
    assert root.nsmap["sdtc"] == "urn:hl7-org:sdtc"

    def one(path: str) -> etree._Element:
        found = root.findall(path, NS)
        assert len(found) == 1, (name, path, len(found))
        return found[0]

    assert one("v:realmCode").get("code") == "FR"
    type_id = one("v:typeId")
    assert (type_id.get("root"), type_id.get("extension")) == ("2.16.840.1.113883.1.3",
                                                              "POCD_HD000040")
    templates = [t.get("root") for t in root.findall("v:templateId", NS)]
    assert templates[:2] == ["2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1"]
    assert len(templates) >= 3
    assert one("v:id").get("root") and one("v:id").get("extension")
    assert one("v:code").get("code") in DOC_CODES
    assert one("v:title").text.strip()
    assert TS.match(one("v:effectiveTime").get("value"))
    conf = one("v:confidentialityCode")
    assert conf.get("code") in {"N", "R", "V"}
    assert conf.get("codeSystem") == "2.16.840.1.113883.5.25"
    assert one("v:languageCode").get("code") == "fr-FR"
    assert one("v:setId").get("root")
    assert int(one("v:versionNumber").get("value")) >= 1

    role = one("v:recordTarget/v:patientRole")
    assert role.findall("v:id", NS)
    patient = one("v:recordTarget/v:patientRole/v:patient")
    families = patient.findall("v:name/v:family", NS)
    assert [f.get("qualifier") for f in families][0] == "BR"
    assert "CL" in [f.get("qualifier") for f in families]
    assert re.fullmatch(r"\d{8}", patient.find("v:birthTime", NS).get("value"))
    assert patient.find("v:administrativeGenderCode", NS).get("code") in {"F", "M"}

    author = one("v:author/v:assignedAuthor")
    rpps = author.find("v:id", NS)
    assert rpps.get("root") == RPPS and re.fullmatch(r"8\d{11}", rpps.get("extension"))
    assert author.find("v:code", NS).get("codeSystem") == "1.2.250.1.213.1.1.4.5"
    assert author.find("v:representedOrganization/v:id", NS).get("root") == STRUCT
    assert one("v:custodian/v:assignedCustodian/v:representedCustodianOrganization/v:id") \
        .get("root") == STRUCT
    assert one("v:legalAuthenticator/v:assignedEntity/v:id").get("root") == RPPS
    assert root.findall("v:documentationOf/v:serviceEvent", NS)
    assert one("v:componentOf/v:encompassingEncounter/v:effectiveTime") is not None
    body = one("v:component")
    assert len(body) == 1 and etree.QName(body[0]).localname in {"structuredBody", "nonXMLBody"}


@pytest.mark.parametrize("name", GOOD)
def test_ins_keys_valid_and_patients_known(name: str) -> None:
    root = parse(name)
    ids = [(i.get("root"), i.get("extension"))
           for i in root.findall("v:recordTarget/v:patientRole/v:id", NS)]
    ins = [ext for oid, ext in ids if oid in INS_OIDS]
    for nir in ins:
        assert nir_valid(nir), (name, nir)
    with (SAMPLES / "patients.csv").open(encoding="utf-8", newline="") as fh:
        known = {r["key"]: r["ins"] for r in csv.DictReader(fh)}
    row = next(r for r in rows() if r["file"] == name)
    if row["patient"] in known:
        assert ins == [known[row["patient"]]], name
    elif row["patient"] == "U1":  # valid INS, deliberately absent from patients.csv
        assert len(ins) == 1 and ins[0] not in known.values()
    elif row["patient"] == "U2":  # no INS at all: one local id under an unknown OID
        assert ins == [] and len(ids) == 1 and not ids[0][0].startswith("1.2.250.1.213.1.4.")


def test_production_and_test_ins_oids_both_present() -> None:
    oids = {i.get("root") for name in GOOD
            for i in parse(name).findall("v:recordTarget/v:patientRole/v:id", NS)}
    assert INS_OIDS <= oids


def test_confidentiality_codes_match_the_masking_column() -> None:
    for r in rows():
        if r["file"] not in GOOD:
            continue
        code = parse(r["file"]).find("v:confidentialityCode", NS).get("code")
        assert {"none": "N", "masked (R)": "R", "masked (V)": "V"}[r["masking"]] == code


# --------------------------------------------------------------------------------------------
# Particular documents
# --------------------------------------------------------------------------------------------


def results_of(root: etree._Element) -> list[tuple[str, str, str, str]]:
    """(LOINC, value, unit, effectiveTime) of every lab result observation."""
    out = []
    for obs in root.iterfind(".//v:organizer/v:component/v:observation", NS):
        value = obs.find("v:value", NS)
        if value.get("value") is None:  # '<' result: IVL_PQ with a high bound
            value = value.find("v:high", NS)
        out.append((obs.find("v:code", NS).get("code"), value.get("value"), value.get("unit"),
                    obs.find("v:effectiveTime", NS).get("value")))
    return out


def test_big_cr_bio_has_100_results() -> None:
    name = "04_crbio_chu_cumulatif_100.xml"
    results = results_of(parse(name))
    assert len(results) == 100
    for obs in parse(name).iterfind(".//v:organizer/v:component/v:observation", NS):
        assert [t.get("root") for t in obs.findall("v:templateId", NS)] == [
            "1.3.6.1.4.1.19376.1.3.1.6", "1.2.250.1.213.1.1.3.80"]
        assert obs.find("v:code", NS).get("codeSystem") == "2.16.840.1.113883.6.1"
        assert obs.find("v:interpretationCode", NS).get("code") in {"H", "L", "N"}
    # About 1.3 KB per result with the full CI-SIS structure (not 50 KB: see README).
    size = (CDA / name).stat().st_size
    assert 100_000 <= size <= 170_000, size


@pytest.mark.parametrize("n", [1, 7, 37, 100, 250])
def test_cr_bio_function_gives_exactly_n_results(n: int) -> None:
    data = generate_cda.cr_bio(n, seed=11)
    assert len(results_of(etree.fromstring(data, hardened()))) == n
    assert data == generate_cda.cr_bio(n, seed=11)


def test_cr_bio_seeds_differ_and_name_their_patient() -> None:
    a, b = generate_cda.cr_bio(100, seed=1), generate_cda.cr_bio(100, seed=2)
    assert a != b
    ra, rb = etree.fromstring(a, hardened()), etree.fromstring(b, hardened())
    ida, idb = (r.find("v:id", NS).get("extension") for r in (ra, rb))
    assert ida != idb
    nir = ra.find("v:recordTarget/v:patientRole/v:id", NS).get("extension")
    assert nir_valid(nir)


def test_write_big_writes_files_and_their_patients(tmp_path: Path) -> None:
    paths = generate_cda.write_big(tmp_path, 3, seed=5, results=20)
    assert [p.name for p in paths] == ["cr-bio-big-000005.xml", "cr-bio-big-000006.xml",
                                       "cr-bio-big-000007.xml", "patients.csv"]
    with (tmp_path / "patients.csv").open(encoding="utf-8", newline="") as fh:
        people = list(csv.DictReader(fh))
    assert len({p["ins"] for p in people}) == 3
    for path, person in zip(paths[:3], people, strict=True):
        root = etree.fromstring(path.read_bytes(), hardened())
        assert len(results_of(root)) == 20
        assert root.find("v:recordTarget/v:patientRole/v:id", NS).get("extension") == \
            person["ins"]


def hl7_message_results(path: Path) -> set[tuple[str, str, str, str]]:
    """(LOINC, value, UCUM unit, OBX-14) of the result OBX of an HL7v2 sample message, local
    codes mapped with the sender's table and units with the project's UCUM table."""
    with (SAMPLES / "mappings" / "LABM__CERBALLIANCE_LYON.csv").open(encoding="utf-8") as fh:
        local = {(r["coding_system"], r["local_code"]): r["loinc"] for r in csv.DictReader(fh)}
    with (ROOT / "normalizers" / "tables" / "ucum_units.csv").open(encoding="utf-8") as fh:
        units = {r["sent"]: r["ucum"] for r in csv.DictReader(fh)}
    out = set()
    for seg in path.read_bytes().decode("utf-8").split("\r"):
        f = seg.split("|")
        if f[0] != "OBX" or f[3].endswith("^MetaDMPMSS"):
            continue
        code, _, system = f[3].split("^")[:3]
        loinc = code if system == "LN" else local[(system, code)]
        out.add((loinc, f[5], units.get(f[6], f[6]), f[14]))
    return out


def test_cross_channel_cr_bio_matches_its_hl7v2_message() -> None:
    cda = set(results_of(parse("01_crbio_labm_lipides_glycemie.xml")))
    hl7 = hl7_message_results(SAMPLES / "hl7v2" / "02_labm_lipides_glycemie.hl7")
    assert len(hl7) == 5
    assert cda == hl7
    assert "1558-6" in {c for c, *_ in cda}  # the lab's local GLY, sent as LOINC in the CDA
    root = parse("01_crbio_labm_lipides_glycemie.xml")
    ids = {(i.get("root"), i.get("extension"))
           for i in root.findall("v:recordTarget/v:patientRole/v:id", NS)}
    pid3 = [s for s in (SAMPLES / "hl7v2" / "02_labm_lipides_glycemie.hl7").read_bytes()
            .decode("utf-8").split("\r") if s.startswith("PID|")][0].split("|")[3]
    for rep in pid3.split("~"):
        value, authority = rep.split("^")[0], rep.split("^")[3]
        assert (authority.split("&")[1], value) in ids  # PID-3 == patientRole/id


def test_replacement_points_at_the_first_version() -> None:
    v1 = parse("02_crbio_synlab_bilan_renal_v1.xml")
    v2 = parse("03_crbio_synlab_bilan_renal_v2_rplc.xml")

    def key(el: etree._Element) -> tuple[str, str]:
        return el.get("root"), el.get("extension")

    assert key(v1.find("v:setId", NS)) == key(v2.find("v:setId", NS))
    assert key(v1.find("v:id", NS)) != key(v2.find("v:id", NS))
    assert v1.find("v:versionNumber", NS).get("value") == "1"
    assert v2.find("v:versionNumber", NS).get("value") == "2"
    assert v1.find("v:relatedDocument", NS) is None
    related = v2.find("v:relatedDocument", NS)
    assert related.get("typeCode") == "RPLC"
    assert key(related.find("v:parentDocument/v:id", NS)) == key(v1.find("v:id", NS))
    changed = set(results_of(v1)) ^ set(results_of(v2))
    assert {c for c, *_ in changed} == {"2823-3"}  # only the potassium differs


def test_resent_summary_is_the_same_document_in_other_bytes() -> None:
    a = (CDA / "06_vsm_medecin_traitant.xml").read_bytes()
    b = (CDA / "07_vsm_medecin_traitant_renvoi.xml").read_bytes()
    assert a != b
    assert etree.tostring(etree.fromstring(a), method="c14n") == \
        etree.tostring(etree.fromstring(b), method="c14n")


def test_discharge_letter_entries() -> None:
    root = parse("05_ldl_ses_chu_bordeaux.xml")
    problems = root.xpath(
        ".//v:observation[v:templateId/@root='1.2.250.1.213.1.1.3.37']/v:value", namespaces=NS)
    assert [v.get("code") for v in problems] == ["J18.9", "E03.9", "I10"]
    assert {v.get("codeSystem") for v in problems} == {"2.16.840.1.113883.6.3"}
    meds = root.findall(".//v:substanceAdministration", NS)
    assert len(meds) == 5
    for med in meds:
        code = med.find("v:consumable/v:manufacturedProduct/v:manufacturedMaterial/v:code", NS)
        assert code.get("codeSystem") in {"2.16.840.1.113883.6.73", "1.2.250.1.213.2.3.1"}
        assert med.find("v:routeCode", NS).get("codeSystem") == "0.4.0.127.0.16.1.1.2.1"
        assert med.find("v:doseQuantity/v:low", NS).get("value")
        assert med.find("v:effectiveTime[@operator='A']/v:period", NS).get("unit")
    agent = root.find(".//v:participant[@typeCode='CSM']//v:playingEntity/v:code", NS)
    assert agent.get("code") == "J01EE01"
    vitals = {o.find("v:code", NS).get("code"): o.find("v:value", NS).get("unit")
              for o in root.xpath(".//v:organizer[v:code/@code='85353-1']//v:observation",
                                  namespaces=NS)}
    assert vitals["8480-6"] == vitals["8462-4"] == "mm[Hg]"
    assert len(vitals) == 6


def test_level1_document_carries_a_readable_pdf() -> None:
    root = parse("09_crbio_niveau1_pdf.xml")
    assert "1.3.6.1.4.1.19376.1.2.20" in [t.get("root") for t in root.findall("v:templateId",
                                                                              NS)]
    text = root.find("v:component/v:nonXMLBody/v:text", NS)
    assert (text.get("mediaType"), text.get("representation")) == ("application/pdf", "B64")
    pdf = base64.b64decode("".join(text.text.split()), validate=True)
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    pdfplumber = pytest.importorskip("pdfplumber")
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        page = doc.pages[0].extract_text()
    assert "Ferritine : 18 µg/L" in page and "Zoé MÜLLER" in page


# --------------------------------------------------------------------------------------------
# Broken documents: each broken in the one way it claims
# --------------------------------------------------------------------------------------------


def test_truncated_document_is_not_well_formed() -> None:
    data = (CDA / "14_casse_xml_tronque.xml").read_bytes()
    assert data.startswith(b"<?xml") and b"<ClinicalDocument" in data
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(data, hardened())


def test_wrong_root_is_well_formed_v3_but_not_a_clinical_document() -> None:
    root = parse("15_casse_racine.xml")
    assert etree.QName(root).namespace == V3
    assert etree.QName(root).localname == "Document"


def test_missing_record_target() -> None:
    root = parse("16_casse_sans_record_target.xml")
    assert root.tag == f"{{{V3}}}ClinicalDocument"
    assert root.find("v:recordTarget", NS) is None
    assert root.find("v:author", NS) is not None


@pytest.mark.parametrize("name", ["17_casse_xxe.xml", "18_casse_billion_laughs.xml"])
def test_dtd_documents_declare_entities_and_stay_inert(name: str) -> None:
    data = (CDA / name).read_bytes()
    assert b"<!DOCTYPE ClinicalDocument [" in data and b"<!ENTITY" in data
    tree = etree.fromstring(data, hardened()).getroottree()
    assert tree.docinfo.internalDTD is not None
    title = tree.getroot().find("v:title", NS)
    text = "".join(title.itertext())  # an unexpanded reference reads as '&name;'
    assert "root:" not in text and "lollol" not in text and len(text) < 80
    if name == "17_casse_xxe.xml":
        assert b'SYSTEM "file:///etc/passwd"' in data


def test_billion_laughs_stays_small() -> None:
    data = (CDA / "18_casse_billion_laughs.xml").read_bytes()
    levels = re.findall(rb"<!ENTITY lol(\d*) ", data)
    assert len(levels) == 5  # lol, lol1..lol4: 10**4 copies if expanded
    assert len(data) < 30_000


def test_every_broken_file_has_its_code() -> None:
    assert BROKEN == {
        "14_casse_xml_tronque.xml": "CDA_NOT_XML",
        "15_casse_racine.xml": "CDA_NOT_CDA",
        "16_casse_sans_record_target.xml": "CDA_NO_RECORD_TARGET",
        "17_casse_xxe.xml": "CDA_DTD_FORBIDDEN",
        "18_casse_billion_laughs.xml": "CDA_DTD_FORBIDDEN",
    }
