"""Units to UCUM and observation codes to LOINC: tables, lookups, per-source mappings."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from normalizers.codes import CodeMappings, load_mappings, resolve_code
from normalizers.tabledata import TABLES_DIR, table
from normalizers.units import to_ucum


@pytest.mark.parametrize(("sent", "ucum"), [
    ("mmol/L", "mmol/L"), ("mmol/l", "mmol/L"), ("MMOL/L", "mmol/L"),
    ("µmol/l", "umol/L"), ("μmol/L", "umol/L"), ("umol/L", "umol/L"), ("µmol / L", "umol/L"),
    ("g/L", "g/L"), ("g/l", "g/L"), ("G/L", "10*9/L"), ("G/l", "10*9/L"), ("giga/l", "10*9/L"),
    ("T/L", "10*12/L"), ("tera.l-1", "10*12/L"), ("10^9/L", "10*9/L"),
    ("mg/dL", "mg/dL"), ("mg/dl", "mg/dL"), ("UI/L", "[IU]/L"), ("U/L", "U/L"),
    ("UI/mL", "[IU]/mL"), ("mUI/L", "m[IU]/L"), ("mUI/mL", "m[IU]/mL"),
    ("/mm3", "/mm3"), ("/mm³", "/mm3"), ("%", "%"), ("fL", "fL"), ("pg", "pg"),
    ("g/dL", "g/dL"), ("mL/min/1.73m2", "mL/min/{1.73_m2}"),
    ("mL/min/1,73m2", "mL/min/{1.73_m2}"), ("ml/min/1.73m²", "mL/min/{1.73_m2}"),
    ("sec", "s"), ("s", "s"), ("mm/h", "mm/h"), ("ng/mL", "ng/mL"), ("pmol/L", "pmol/L"),
    ("µg/L", "ug/L"), (" mmol/L ", "mmol/L"),
    # per-microlitre counts as US senders (and analysers) write them
    ("10^3/uL", "10*3/uL"), ("10*3/µL", "10*3/uL"), ("K/uL", "10*3/uL"),
    ("10^6/uL", "10*6/uL"), ("M/uL", "10*6/uL"),
    ("THOUS/MCL", "10*3/uL"), ("K/mcL", "10*3/uL"), ("MIL/MCL", "10*6/uL"),
    ("mcg/dL", "ug/dL"), ("MCG/L", "ug/L"),
    # French haematology per mm3 (= per µL, but kept as sent in UCUM)
    ("10^3/mm3", "10*3/mm3"), ("milliers/mm3", "10*3/mm3"), ("Millions/mm³", "10*6/mm3"),
    ("mL/min/1.73 sq.m.", "mL/min/{1.73_m2}"), ("mL/min/{1.73_m2}", "mL/min/{1.73_m2}"),
    # a French urine culture's colony count (unité formant colonie) and clearance per minute
    # written 'mn' (they were unmapped, out of every trend)
    ("UFC/mL", "{CFU}/mL"), ("UFC/ml", "{CFU}/mL"), ("CFU/mL", "{CFU}/mL"),
    ("UFC/L", "{CFU}/L"), ("ml/mn/1,73m2", "mL/min/{1.73_m2}"),
    ("mL/mn/1,73 m²", "mL/min/{1.73_m2}"), ("ml/mn/1.73m2", "mL/min/{1.73_m2}"),
    ("ml/mn", "mL/min"),
    # allergen-specific IgE (ImmunoCAP kUA/L: WHO-calibrated IgE units, LOINC's k[IU]/L),
    # French daily outputs ('j' for jour) and viral loads in log of IU
    ("kUA/L", "k[IU]/L"), ("kUA/l", "k[IU]/L"), ("mg/j", "mg/d"), ("g/j", "g/d"),
    ("mmol/j", "mmol/d"), ("µmol/j", "umol/d"), ("Log UI/mL", "{log_IU}/mL"),
    ("log UI/ml", "{log_IU}/mL"),
])
def test_known_units(sent, ucum):
    assert to_ucum(sent) == (ucum, True)


def test_unknown_unit_kept_as_sent():
    assert to_ucum("bidules/champ") == ("bidules/champ", False)


def test_giga_and_gram_never_confused():
    # 'g/L' and 'G/L' fold to the same spelling: a variant the table does not list stays
    # unmapped rather than risk reading grams as cells.
    assert to_ucum("G / L") == ("G / L", False)
    assert to_ucum("g/L").unit != to_ucum("G/L").unit


def test_unit_table_is_well_formed():
    with (TABLES_DIR / "ucum_units.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["sent", "ucum"]
    seen: dict[str, str] = {}
    for row in rows[1:]:
        assert len(row) == 2 and all(row), row
        assert seen.setdefault(row[0], row[1]) == row[1], f"{row[0]} mapped twice"


def test_all_tables_load():
    for name in ("ins_oids", "ucum_units", "local_to_loinc", "result_status", "report_status",
                 "metadmpmss", "cisis_actions", "ed_media_types", "order_control_status",
                 "adt_not_applied"):
        assert table(name), name


# -- codes ------------------------------------------------------------------------------------
def test_loinc_taken_as_is():
    for system in ("LN", "LOINC", "2.16.840.1.113883.6.1", "ln"):
        r = resolve_code("2345-7", "Glucose", system)
        assert (r.code, r.system, r.mapped) == ("2345-7", "LN", True)


def test_alternate_triplet_loinc():
    r = resolve_code("GLY", "Glycémie", "L", "2345-7", "Glucose SerPl-mCnc", "LN")
    assert (r.code, r.system, r.mapped) == ("2345-7", "LN", True)
    assert r.local == ("GLY", "L", "Glycémie")


def test_mapping_table_per_source_then_star(tmp_path):
    maps = load_mappings(None)
    r = resolve_code("GLY", "Glycémie", "L", source="demo-lab", mappings=maps)
    assert (r.code, r.system, r.mapped, r.local) == ("2345-7", "LN", True, ("GLY", "L",
                                                                            "Glycémie"))
    other = resolve_code("GLY", "Glycémie", "L", source="another-lab", mappings=maps)
    assert (other.code, other.system, other.mapped) == ("GLY", "L", False)

    (tmp_path / "all.csv").write_text(
        "source,coding_system,local_code,loinc,display\n*,99LAB,K+,2823-3,Potassium\n",
        encoding="utf-8")
    (tmp_path / "labo-sud.csv").write_text(
        "coding_system,local_code,loinc,display\n99LAB,K+,6298-4,Potassium [Moles/volume] "
        "in Blood\n", encoding="utf-8")
    maps = load_mappings(tmp_path)
    assert resolve_code("K+", "", "99LAB", source="x", mappings=maps).code == "2823-3"
    assert resolve_code("K+", "", "99LAB", source="labo-sud", mappings=maps).code == "6298-4"
    # the shipped table is still there, and the base object was not modified
    assert resolve_code("GLY", "", "L", source="demo-lab", mappings=maps).mapped
    assert not resolve_code("K+", "", "99LAB", source="x", mappings=load_mappings(None)).mapped


def test_mapping_file_missing_columns(tmp_path):
    (tmp_path / "bad.csv").write_text("code,loinc\nGLY,2345-7\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.csv"):
        load_mappings(tmp_path)


def test_local_code_without_system():
    r = resolve_code("XYZ", "Examen maison", "")
    assert (r.code, r.system, r.display, r.mapped) == ("XYZ", "L", "Examen maison", False)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
       .filter(lambda c: c not in {"GLY", "GLYM", "CREA", "HB", "GB", "GR", "PLAQ", "K", "NA",
                                   "ALAT", "ASAT", "HBA1C", "TSH", "CHOL", "CRP", "INR",
                                   "DFGCKD"}),
       st.sampled_from(["L", "99FR", ""]))
def test_unknown_local_codes_are_kept(code, system):
    r = resolve_code(code, "x", system, source="demo-lab", mappings=load_mappings(None))
    assert r.code == code and not r.mapped and r.system == (system or "L")


def test_code_mappings_object_is_plain_data():
    maps = CodeMappings()
    assert maps.lookup("s", "L", "X") is None


def test_every_code_system_a_document_names_has_a_fhir_uri() -> None:
    """A CDA codeSystem OID becomes our short name (normalizers/tables/code_systems.csv); the
    FHIR export must know that name's URI (dossiers/tables/fhir_code_systems.csv), else it
    would export a vaccine's CVX code as a local code system of ours."""
    from dossiers.fhir import system_uri

    for row in table("code_systems"):
        uri = system_uri(row["name"])
        assert uri and not uri.startswith("urn:dmp"), row["name"]
    assert system_uri("CVX") == "http://hl7.org/fhir/sid/cvx"
    assert system_uri("EDQM") == "http://standardterms.edqm.eu"
