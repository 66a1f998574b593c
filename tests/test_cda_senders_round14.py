"""CDA R2 documents the way other senders write them (round 14: value types, nested
sections, narrative revisions, encodings and the header's participants). Each test builds a
small invented document with one structure CDA R2 / CI-SIS / C-CDA allows, or runs an ANS
example when ../shared/corpus is there, and checks what is filed against what a clinician
reading the document understands."""

from __future__ import annotations

import pytest

from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_cda_real_world import HEAD, TAIL, _entries, _section
from tests.test_fhir_export import PATIENT, _rows_read, check_bundle

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'


def _bundle(entries: list) -> dict:  # noqa: ANN001
    """The FHIR Bundle of a document's body entries, checked against R4 (the rows with their
    value type, as the store keeps it: tests.test_fhir_export's rows leave it out)."""
    rows = _rows_read(entries)
    for row, entry in zip(rows, entries, strict=True):
        row["value_type"] = entry.value_type
        row["comparator"] = entry.comparator
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    return bundle


def _resources(bundle: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == resource_type]


def _filed(ctx, data: bytes, code: str) -> tuple:  # noqa: ANN001
    """``data`` received from a file and drained: its ledger row, and the values filed
    under ``code``."""
    from sqlalchemy import select

    from dossiers.schema import entries, imports
    from pipelines.intake import Received, intake
    from pipelines.process import drain

    intake(ctx.engine, ctx.archive, [Received(data, "hopital-x", "file")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(imports)).one()
        values = conn.execute(select(entries.c.value).where(entries.c.code == code)).all()
    return row, values


# -- a date typed with a specialization of TS ---------------------------------------------------
def _dated(xsi_type: str) -> str:
    """A CI-SIS FR-Simple-Observation of a PPS (programme personnalisé de soins): the date
    of the multidisciplinary meeting (RCP), typed as the ANS example types it."""
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
      <templateId root="1.2.250.1.213.1.1.3.48"/>
      <id root="1.2.250.1.999.14" extension="RCP-DATE"/>
      <code code="ORG-189" displayName="Date de la RCP" codeSystem="1.2.250.1.213.1.1.4.322"
        codeSystemName="TA_ASIP"/>
      <statusCode code="completed"/><effectiveTime value="20240209"/>
      <value xsi:type="{xsi_type}" value="20240209"/></observation></entry>"""


@pytest.mark.parametrize("xsi_type", ["EIVL_TS", "PIVL_TS"])
def test_a_date_typed_as_a_ts_specialization_is_that_date(xsi_type: str) -> None:
    """EIVL_TS and PIVL_TS extend TS and so carry its value: the ANS PPS example dates its
    RCP with '<value xsi:type="EIVL_TS" value="20210110"/>'. The parser read only their
    event, period and phase: the date was filed as no value at all. It is the date (a TS,
    valueDateTime in the export), the type as sent in details."""
    (rcp,) = _entries(_section("33557-0", "RCP du 9 février 2024", _dated(xsi_type)))
    assert (rcp.value, rcp.value_type) == ("2024-02-09", "TS")
    assert rcp.details["xsi_type"] == xsi_type
    (obs,) = _resources(_bundle([rcp]), "Observation")
    assert obs["valueDateTime"] == "2024-02-09"


def test_a_plain_ts_value_is_unchanged() -> None:
    """The same date typed TS reads as before, with no type note."""
    (rcp,) = _entries(_section("33557-0", "RCP", _dated("TS")))
    assert (rcp.value, rcp.value_type) == ("2024-02-09", "TS")
    assert "xsi_type" not in rcp.details


def test_corpus_pps_keeps_the_date_of_its_rcp() -> None:
    data = corpus_path("cda", "CANCER-PPS_2022.01_Autopresentable.xml").read_bytes()
    msg = normalize_cda(parse_cda(data), data, "corpus")
    dates = {e.code: e.value for e in msg.entries if e.code in ("ORG-189", "GEN-178")}
    assert dates == {"ORG-189": "2021-01-10", "GEN-178": "2021-01-13"}


# -- form: UTF-16 with blanks before the declaration ------------------------------------------
def test_a_utf16_document_with_a_line_break_first_is_filed(sqlite_ctx) -> None:  # noqa: ANN001
    """A Windows export in UTF-16 (BOM, then a line break, then '<?xml ...
    encoding="UTF-16"?>'): detection called it a CDA, the parser refused it as CDA_NOT_XML
    (nothing may precede the declaration), as it did UTF-8 before round 9, whose blanks
    alone were skipped. The blanks are skipped in UTF-16 too, and said on the ledger."""
    from dataclasses import replace

    from tests.test_cda_senders_round9 import _battery, _result

    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    head = HEAD.replace('encoding="UTF-8"', 'encoding="UTF-16"').replace(
        '<id root="1.2.250.1.999.1.1" extension="IPP-4242"/>',
        '<id root="1.2.250.1.213.1.4.8" extension="268036912354128"/>'
    ).replace('<birthTime value="19620415"/>', '<birthTime value="19680314"/>')
    text = "\ufeff\r\n" + head + _section("11502-2", "Créatinine", _battery(_result(
        "2160-0", "Créatinine", '<value xsi:type="PQ" value="72" unit="umol/L"/>'))) + TAIL
    row, values = _filed(sqlite_ctx, text.encode("utf-16-le"), "2160-0")
    assert (row.status, row.error_code) == ("deposited", None)
    assert [w for w in row.warnings if w.startswith("CDA_BLANKS_BEFORE_DECLARATION")]
    assert [v for (v,) in values] == ["72"]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_blanks_before_a_utf16_declaration_are_skipped_in_either_byte_order(codec: str) -> None:
    text = "\ufeff\n \t" + (HEAD + TAIL).replace('encoding="UTF-8"', 'encoding="UTF-16"')
    doc = parse_cda(text.encode(codec))
    assert doc.header.title == "Synthèse"
    assert [w.code for w in doc.warnings] == ["CDA_BLANKS_BEFORE_DECLARATION"]


def test_a_utf16_document_starting_with_its_declaration_reads_as_before() -> None:
    text = "\ufeff" + (HEAD + TAIL).replace('encoding="UTF-8"', 'encoding="UTF-16"')
    doc = parse_cda(text.encode("utf-16-le"))
    assert doc.header.title == "Synthèse"
    assert not any(w.code == "CDA_BLANKS_BEFORE_DECLARATION" for w in doc.warnings)


# -- a results section nested in another section ----------------------------------------------
def _simple_result(ident: str, code: str, name: str, value: str, unit: str) -> str:
    """An IHE PCC simple observation (the CCD result template beneath it): a result only
    where the document says it is among results."""
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.1.31"/>
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
      <id root="1.2.250.1.999.14.2" extension="{ident}"/>
      <code code="{code}" {LOINC} displayName="{name}"/>
      <statusCode code="completed"/><effectiveTime value="20240305083000+0100"/>
      <value xsi:type="PQ" value="{value}" unit="{unit}"/></observation></entry>"""


def _letter_with_nested_results() -> str:
    """A discharge letter whose 'Synthèse du séjour' holds its 'Résultats d'examens'
    (30954-2), which holds a result of its own and a 'Biochimie' subsection coded
    locally."""
    biochemistry = ('<component><section><code code="BIOCH" codeSystem="1.2.250.1.999.14.9" '
                    'displayName="Biochimie"/><title>Biochimie</title><text>Créatinine '
                    '72 µmol/L</text>' +
                    _simple_result("CREA", "2160-0", "Créatinine", "72", "umol/L") +
                    "</section></component>")
    results = ('<component><section><code code="30954-2" ' + LOINC + '/><title>Résultats '
               "d'examens</title><text>Hémoglobine 13,2 g/dL</text>" +
               _simple_result("HB", "718-7", "Hémoglobine", "13.2", "g/dL") + biochemistry +
               "</section></component>")
    return ('<component><section><code code="8648-8" ' + LOINC + '/><title>Synthèse du '
            "séjour</title><text>Séjour sans complication.</text>" + results +
            "</section></component>")


def test_the_subsections_of_a_nested_results_section_hold_results() -> None:
    """Results-ness was the top section's or the section's own: the haemoglobin of the
    nested 'Résultats' was a lab result, the creatinine of its 'Biochimie' subsection a
    plain observation (a results section at the top made its subsections' results
    results). Both are lab results now."""
    got = {e.code: e.type for e in _entries(_letter_with_nested_results())}
    assert got == {"718-7": "lab_result", "2160-0": "lab_result"}


def test_a_section_outside_any_results_section_still_holds_observations() -> None:
    """The same observation in a letter's section that no results section encloses stays
    an observation."""
    got = _entries(_section("8648-8", "Séjour", _simple_result("CREA", "2160-0",
                                                                 "Créatinine", "72",
                                                                 "umol/L")))
    assert [e.type for e in got] == ["observation"]


# -- narrative revised since the previous version ----------------------------------------------
REVISED_PROBLEM = """<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.1"/>
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.2"/>
  <id root="1.2.250.1.999.14.3" extension="PB-CONC-1"/>
  <code nullFlavor="NA"/><statusCode code="active"/>
  <effectiveTime><low value="20240301"/></effectiveTime>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
    <id root="1.2.250.1.999.14.3" extension="PB-1"/>
    <code code="75326-9" codeSystem="2.16.840.1.113883.6.1" displayName="Problème"/>
    <text><reference value="#pb1"/></text>
    <statusCode code="completed"/><effectiveTime><low value="20240301"/></effectiveTime>
    <value xsi:type="CD" nullFlavor="OTH"><originalText><reference value="#pb1"/>
    </originalText></value></observation></entryRelationship></act></entry>"""
REVISED_NARRATIVE = ('<paragraph><content ID="pb1">Pneumopathie <content revised="delete">'
                     'bactérienne</content><content revised="insert">virale'
                     '</content></content> depuis le 1er mars.</paragraph>')


def test_words_a_new_version_deletes_are_not_read() -> None:
    """Version 2 of a letter marks what it changed in the narrative (content
    revised="delete"/"insert", CDA R2: receivers suppress or mark deleted narrative): the
    uncoded problem read 'Pneumopathie bactérienne virale', the narrative kept both words.
    What is deleted is no longer said."""
    data = (HEAD + _section("11450-4", REVISED_NARRATIVE, REVISED_PROBLEM) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    (problem,) = msg.entries[1:]
    assert problem.value == "Pneumopathie virale"
    (section,) = msg.entries[0].details["sections"]
    assert section["text"] == "Pneumopathie virale depuis le 1er mars."


def test_inserted_and_unrevised_narrative_reads_as_before() -> None:
    from lxml import etree

    from parsers.cda.narrative import flatten
    from parsers.cda.reader import hardened_parser

    el = etree.fromstring('<text xmlns="urn:hl7-org:v3"><content ID="a">Toux <content '
                          'revised="insert">sèche</content></content></text>',
                          hardened_parser())
    assert flatten(el) == ("Toux sèche", {"a": "Toux sèche"})


# -- the header's participants --------------------------------------------------------------------
PARTICIPANTS = """
  <participant typeCode="INF">
    <functionCode code="PCP" displayName="Médecin Traitant" codeSystem="2.16.840.1.113883.5.88"/>
    <time nullFlavor="NA"/>
    <associatedEntity classCode="PROV">
      <id root="1.2.250.1.71.4.2.1" extension="801984758437"/>
      <code code="G15_10/SM26" displayName="Médecin - Qualifié en Médecine Générale (SM)"
        codeSystem="1.2.250.1.213.1.1.4.5"/>
      <associatedPerson><name><given>Hélène</given><family>Lefèvre</family></name>
      </associatedPerson></associatedEntity></participant>
  <participant typeCode="PRF">
    <functionCode code="PRELV" displayName="Préleveur" codeSystem="1.2.250.1.213.1.1.4.2.280"/>
    <time xsi:type="IVL_TS"><high value="202403120735+0100"/></time>
    <associatedEntity classCode="PROV">
      <id root="1.2.250.1.71.4.2.1" extension="801234567893"/>
      <code code="G15_60" displayName="Infirmier" codeSystem="1.2.250.1.213.1.1.4.5"/>
      <scopingOrganization><id root="1.2.250.1.71.4.2.2" extension="1120452948"/>
        <name>Cabinet infirmier des Tilleuls</name></scopingOrganization>
    </associatedEntity></participant>
  <participant typeCode="CON">
    <functionCode code="CORRE" displayName="Correspondant" codeSystem="1.2.250.1.213.1.1.4.2.280"/>
    <associatedEntity classCode="PROV"><associatedPerson><name><given>Paul</given>
      <family>Garnier</family></name></associatedPerson></associatedEntity></participant>
  <participant typeCode="REF"><time value="20240311"/><associatedEntity classCode="PROV">
    <id root="1.2.250.1.71.4.2.1" extension="810000000002"/></associatedEntity></participant>
  <component>"""


def test_the_medecin_traitant_and_the_preleveur_of_the_header_are_kept() -> None:
    """A CR-BIO names the patient's médecin traitant (participant INF, function PCP) and
    the nurse who took the specimen and when (PRF, PRELV); only the prescriber (REF) was
    read, the others were in the archived XML alone. They are the document's
    details.participants, by RPPS and organization; one named only by a name (a
    correspondent without id) is not kept, and the prescriber stays in ordered_by."""
    head = HEAD.replace("\n  <component>", PARTICIPANTS, 1)
    data = (head + _section("18719-5", "Résultats", "") + TAIL).encode()
    document = normalize_cda(parse_cda(data), data, "test").entries[0]
    assert document.details["participants"] == [
        {"type": "INF", "function": {"code": "PCP", "system": "HL7-PARTICIPATIONFUNCTION",
                                     "display": "Médecin Traitant"},
         "role": "G15_10/SM26", "ids": ["1.2.250.1.71.4.2.1^801984758437"]},
        {"type": "PRF", "function": {"code": "PRELV", "system": "1.2.250.1.213.1.1.4.2.280",
                                     "display": "Préleveur"},
         "role": "G15_60", "time": "2024-03-12T07:35+01:00",
         "ids": ["1.2.250.1.71.4.2.1^801234567893"],
         "organization": ["1.2.250.1.71.4.2.2^1120452948"],
         "organization_name": "Cabinet infirmier des Tilleuls"}]
    assert document.details["ordered_by"] == [{"ids": ["1.2.250.1.71.4.2.1^810000000002"],
                                               "time": "2024-03-11"}]
    assert "Garnier" not in repr(document.details)


# -- a dose timed by an event and an offset from it ---------------------------------------------
LEVOTHYROX = """<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7.1"/>
  <id root="1.2.250.1.999.14.5" extension="MED-LEVO"/>
  <text><reference value="#med1"/></text><statusCode code="active"/>
  <effectiveTime xsi:type="IVL_TS"><low value="20240101"/></effectiveTime>
  <effectiveTime xsi:type="EIVL_TS" operator="A">
    <event code="ACM" codeSystem="2.16.840.1.113883.5.139"/>
    <offset><low value="30" unit="min"/></offset></effectiveTime>
  <routeCode code="20053000" codeSystem="0.4.0.127.0.16.1.1.2.1" displayName="Voie orale"/>
  <doseQuantity value="1" unit="1"/>
  <consumable><manufacturedProduct><manufacturedMaterial>
    <code code="3400936575592" codeSystem="1.2.250.1.213.2.3.1"
      displayName="LEVOTHYROX 75 microgrammes, comprimé sécable"/>
  </manufacturedMaterial></manufacturedProduct></consumable></substanceAdministration></entry>"""


def test_thirty_minutes_before_breakfast_keeps_its_thirty_minutes() -> None:
    """Lévothyrox, 1 tablet 30 min before breakfast: EIVL_TS event ACM with an offset of
    30 min. The event was read, its offset dropped: 'before breakfast', when the half
    hour is the point of the instruction. It is details.event_offset, in the dosage text
    and Timing.repeat.offset (minutes from the event) of the export."""
    (med,) = _entries(_section("10160-0", '<content ID="med1">LEVOTHYROX 75 µg : 1 cp 30 '
                                          'min avant le petit-déjeuner</content>', LEVOTHYROX))
    assert (med.details["event"], med.details["event_offset"]) == ("ACM", "30 min")
    (statement,) = _resources(_bundle([med]), "MedicationStatement")
    (dosage,) = statement["dosage"]
    assert dosage["timing"]["repeat"]["when"] == ["ACM"]
    assert dosage["timing"]["repeat"]["offset"] == 30
    assert "offset 30 min" in dosage["text"]


@pytest.mark.parametrize(("offset", "said", "minutes"), [
    ('<offset><low value="1" unit="h"/></offset>', "1 h", 60),
    ('<offset><low value="-1" unit="h"/><width value="10" unit="min"/></offset>', "-1 h", 60),
    ('<offset><low value="15" unit="min"/><high value="30" unit="min"/></offset>',
     "15-30 min", None),
    ("", None, None)])
def test_an_event_offset_is_kept_as_sent(offset: str, said: str | None,
                                         minutes: int | None) -> None:
    """An hour, one hour before (the V3 data types' own example, signed), a range: as
    sent; a range has no single FHIR offset; no offset, none."""
    dosing = LEVOTHYROX.replace('<offset><low value="30" unit="min"/></offset>', offset)
    (med,) = _entries(_section("10160-0", "Lévothyrox", dosing))
    assert med.details.get("event_offset") == said
    (statement,) = _resources(_bundle([med]), "MedicationStatement")
    assert statement["dosage"][0]["timing"]["repeat"].get("offset") == minutes


# -- a time interval as a value -----------------------------------------------------------------
def _exposure(value: str) -> str:
    """An occupational history observation (CI-SIS FR-Simple-Observation): the years the
    patient was exposed to asbestos."""
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
      <id root="1.2.250.1.999.14.6" extension="EXPO-1"/>
      <code code="EXPO-AMIANTE" codeSystem="1.2.250.1.999.14.7"
        displayName="Période d'exposition à l'amiante"/>
      <statusCode code="completed"/><effectiveTime value="20240312"/>
      {value}</observation></entry>"""


@pytest.mark.parametrize(("value", "read", "fhir"), [
    ('<value xsi:type="IVL_TS"><low value="1975"/><high value="1990"/></value>',
     "1975/1990", {"valuePeriod": {"start": "1975", "end": "1990"}}),
    ('<value xsi:type="IVL_TS"><low value="197509"/></value>', "1975-09/",
     {"valuePeriod": {"start": "1975-09"}}),
    ('<value xsi:type="IVL_TS" value="19750915"/>', "1975-09-15",
     {"valueDateTime": "1975-09-15"}),
    ('<value xsi:type="IVL_TS"><low value="1990"/><high value="1975"/></value>',
     "1990/1975", {"valueString": "1990/1975"})])
def test_a_period_value_is_exported_as_a_period(value: str, read: str, fhir: dict) -> None:
    """An IVL_TS value (a period of exposure; the IPS-FR estimated date of delivery is one
    given as a point) was filed as '1975/1990' and exported as that string: FHIR has
    valuePeriod and valueDateTime for them. A period ending before it starts stays text."""
    (exposure,) = _entries(_section("29762-2", "Exposition à l'amiante", _exposure(value)))
    assert (exposure.value, exposure.value_type) == (read, "IVL_TS")
    (obs,) = _resources(_bundle([exposure]), "Observation")
    assert {k: v for k, v in obs.items() if k.startswith("value")} == fhir


# -- when each reaction of an allergy happened ---------------------------------------------------
def _reaction(ident: str, code: str, name: str, when: str) -> str:
    return f"""<entryRelationship typeCode="MFST" inversionInd="true">
      <observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.9" extension="2014-06-09"/>
      <id root="1.2.250.1.999.14.8" extension="{ident}"/>
      <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
      {when}
      <value xsi:type="CD" code="{code}" codeSystem="2.16.840.1.113883.6.96"
        displayName="{name}"/></observation></entryRelationship>"""


PENICILLIN_ALLERGY = f"""<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.30" extension="2015-08-01"/>
  <id root="1.2.250.1.999.14.8" extension="CONC-1"/>
  <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
  <effectiveTime><low value="20100301"/></effectiveTime>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="2.16.840.1.113883.10.20.22.4.7" extension="2014-06-09"/>
    <id root="1.2.250.1.999.14.8" extension="ALL-1"/>
    <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
    <effectiveTime><low value="20100301"/></effectiveTime>
    <value xsi:type="CD" code="416098002" codeSystem="2.16.840.1.113883.6.96"
      displayName="Allergie médicamenteuse"/>
    <participant typeCode="CSM"><participantRole classCode="MANU">
      <playingEntity classCode="MMAT"><code code="J01CE01" codeSystem="2.16.840.1.113883.6.73"
        displayName="benzylpénicilline"/></playingEntity></participantRole></participant>
    {_reaction("R-1", "247472004", "Urticaire",
               '<effectiveTime><low value="20100301"/></effectiveTime>')}
    {_reaction("R-2", "39579001", "Réaction anaphylactique",
               '<effectiveTime value="20190614"/>')}
    {_reaction("R-3", "271807003", "Éruption cutanée", "")}
  </observation></entryRelationship></act></entry>"""


def test_each_reaction_of_an_allergy_keeps_when_it_happened() -> None:
    """Hives in 2010, anaphylaxis in 2019 to the same penicillin: the reactions were kept
    with their codes and severity but not their dates, so the allergy read as if both had
    happened at its onset. Each reaction's time is its onset, in the store and in
    AllergyIntolerance.reaction.onset; a reaction without time has none."""
    (allergy,) = _entries(_section("48765-2", "Pénicilline : urticaire 2010, choc 2019",
                                   PENICILLIN_ALLERGY))
    assert [(r["code"], r.get("onset")) for r in allergy.details["reactions"]] == [
        ("247472004", "2010-03-01"), ("39579001", "2019-06-14"), ("271807003", None)]
    (resource,) = _resources(_bundle([allergy]), "AllergyIntolerance")
    assert [r.get("onset") for r in resource["reaction"]] == ["2010-03-01", "2019-06-14", None]


@pytest.mark.parametrize("reference", [" #pb1", "#pb1 ", "\n  #pb1\n  "])
def test_a_reference_with_blanks_around_it_points_at_its_element(reference: str) -> None:
    """reference/@value is an xs:anyURI: blanks around it are no part of it. ' #pb1' (a
    template engine's indentation) pointed at no element: the uncoded problem was filed
    without its words (not at all: nothing named it)."""
    problem = REVISED_PROBLEM.replace('value="#pb1"', f'value="{reference}"')
    got = _entries(_section("11450-4", '<content ID="pb1">Lombalgie commune</content>',
                            problem))
    assert [e.value for e in got] == ["Lombalgie commune"]


# -- a medication taken until a date, since an unknown one ---------------------------------------
def _amlodipine(period: str) -> str:
    """A C-CDA Medication Activity of a medication history."""
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
      <id root="1.2.250.1.999.14.10" extension="MED-AML"/><statusCode code="completed"/>
      <effectiveTime xsi:type="IVL_TS">{period}</effectiveTime>
      <effectiveTime xsi:type="PIVL_TS" institutionSpecified="true" operator="A">
        <period value="24" unit="h"/></effectiveTime>
      <doseQuantity value="5" unit="mg"/>
      <consumable><manufacturedProduct classCode="MANU">
        <templateId root="2.16.840.1.113883.10.20.22.4.23" extension="2014-06-09"/>
        <manufacturedMaterial><code code="329528" codeSystem="2.16.840.1.113883.6.88"
          displayName="amlodipine 5 MG Oral Tablet"/></manufacturedMaterial>
      </manufacturedProduct></consumable></substanceAdministration></entry>"""


@pytest.mark.parametrize(("period", "effective", "high"), [
    ('<low nullFlavor="UNK"/><high value="20231201"/>', None, "2023-12-01"),
    ('<high value="20231201"/>', None, "2023-12-01"),
    ('<low value="20220315"/><high value="20231201"/>', "2022-03-15", "2023-12-01"),
    ('<low value="20220315"/>', "2022-03-15", None)])
def test_a_medication_stopped_on_a_date_did_not_start_on_it(
        period: str, effective: str | None, high: str | None) -> None:
    """Amlodipine taken until 1 December 2023, since a date the EHR does not know (low
    UNK): the stop date was filed as the medication's date, as if started that day. It
    stays the period's end (details.period_high, effectivePeriod.end of the export) and
    the medication has no date of its own, as a problem with only its resolution."""
    (med,) = _entries(_section("10160-0", "Amlodipine 5 mg", _amlodipine(period)))
    assert (med.effective, med.details.get("period_high")) == (effective, high)
    (statement,) = _resources(_bundle([med]), "MedicationStatement")
    assert statement["effectivePeriod"].get("end") == high


# -- a frequency as the value of an observation ---------------------------------------------------
@pytest.mark.parametrize(("value", "read"), [
    ('<value xsi:type="PIVL_TS"><period value="2" unit="wk"/></value>', "every 2 wk"),
    ('<value xsi:type="PIVL_TS" institutionSpecified="true"><period value="8" unit="h"/>'
     "</value>", "3 times a day"),
    ('<value xsi:type="EIVL_TS"><event code="HS" codeSystem="2.16.840.1.113883.5.139"/>'
     "</value>", "HS")])
def test_a_frequency_observed_is_the_value(value: str, read: str) -> None:
    """How often the patient's epileptic seizures come (a PIVL_TS value: every 2 weeks),
    when they come (an EIVL_TS: at bedtime): filed with no value at all. The value says
    it as a medication's timing does."""
    seizures = _dated("PIVL_TS").replace(
        '<value xsi:type="PIVL_TS" value="20240209"/>', value).replace(
        'code="ORG-189" displayName="Date de la RCP" codeSystem="1.2.250.1.213.1.1.4.322"\n'
        '        codeSystemName="TA_ASIP"',
        'code="CRISES" displayName="Fréquence des crises" codeSystem="1.2.250.1.999.14.11"')
    (obs,) = _entries(_section("29762-2", "Crises toutes les deux semaines", seizures))
    assert (obs.code, obs.value) == ("CRISES", read)
