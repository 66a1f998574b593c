"""CDA R2 documents from senders we have not seen (round 23). Each test builds a small
document the way a French hospital, laboratory or an EHR abroad writes it, and checks what
is filed against what a clinician reading it understands.

Found wrong and fixed here: who keyed the document in (dataEnterer) and the consents it
states (authorization/consent: the ANS BIO-TROD and SDM-MR examples state one) were parsed
and dropped: not in the entry's details, the dossier shown nor the FHIR export; so were the
document's authenticators (a CR-BIO's validating biologist). CIP13 codes under
1.2.250.1.213.2.3.3 (the ANS VAC example) were filed under the bare OID. A
FR-Simple-Observation said in its text alone stays CDA_NOT_FILED (its text may be the row's
label, not what was observed). A PQ of nullFlavor said in
words, and an MO amount, were filed without a value and without a word; a result whose
value is an ST of blanks was filed without a value."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_cda_real_world import HEAD, TAIL, _section
from tests.test_fhir_export import check_bundle

PATIENT = {"id": 1, "family": "GAUTHIER", "given": "Benoît", "birth_date": "1962-04-15",
           "sex": "M", "ins": None}


def _normalized(*sections: str, head: str = HEAD):  # noqa: ANN202
    data = (head + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


# -- who entered the document, the consent it states -------------------------------------------
ENTERER = """<dataEnterer><time value="20240312113000+0100"/><assignedEntity>
  <id root="1.2.250.1.999.13.3.1" extension="SEC-0217"/>
  <id root="1.2.250.1.71.4.2.1" extension="810002345678"/>
  <assignedPerson><name><given>Élodie</given><family>Marchand</family></name></assignedPerson>
  <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1750300037"/>
    <name>Hôpital Saint-Joseph</name></representedOrganization>
</assignedEntity></dataEnterer>"""
CONSENT = """<authorization><consent>
  <id root="1.2.250.1.999.13.7" extension="CONS-2024-118"/>
  <code code="INFA" codeSystem="1.2.250.1.213.1.1.4.6" displayName="Information du patient"/>
  <statusCode code="completed"/></consent></authorization>"""


def _entered_and_consented(enterer: str = ENTERER, consent: str = CONSENT) -> str:
    return HEAD.replace("<custodian>", enterer + "<custodian>").replace(
        "<component><structuredBody>", consent + "<component><structuredBody>")


def test_the_data_enterer_and_the_consent_are_kept_on_the_document() -> None:
    """A dictated letter keyed in by the secretary (dataEnterer: the hospital's user id and
    her idNatPS) stating the patient was informed (authorization/consent): both were parsed
    and dropped; they are on the document's details now, ids and organization only (no
    name of hers), the consent with its id, code and status."""
    document = _normalized(_section("11450-4", "Néant", ""),
                           head=_entered_and_consented()).entries[0]
    assert document.details["data_enterer"] == {
        "ids": ["1.2.250.1.999.13.3.1^SEC-0217", "1.2.250.1.71.4.2.1^810002345678"],
        "organization": ["1.2.250.1.71.4.2.2^1750300037"],
        "organization_name": "Hôpital Saint-Joseph", "time": "2024-03-12T11:30:00+01:00"}
    assert "Marchand" not in str(document.details)
    assert document.details["consents"] == [{
        "ids": ["1.2.250.1.999.13.7^CONS-2024-118"],
        "code": {"code": "INFA", "system": "1.2.250.1.213.1.1.4.6",
                 "display": "Information du patient"}, "status": "completed"}]


def test_a_document_without_them_says_nothing_of_them() -> None:
    """What the rule is not about: no dataEnterer nor authorization, or ones that name no
    one (a name alone) and state nothing (an empty consent): no key."""
    named_only = ("<dataEnterer><assignedEntity><assignedPerson><name><family>Marchand"
                  "</family></name></assignedPerson></assignedEntity></dataEnterer>")
    for head in (HEAD, _entered_and_consented(named_only, "<authorization><consent/>"
                                              "</authorization>")):
        details = _normalized(_section("11450-4", "Néant", ""), head=head).entries[0].details
        assert "data_enterer" not in details and "consents" not in details


def test_the_fhir_export_names_the_enterer_and_the_consent() -> None:
    """The DocumentReference's Provenance has an agent typed 'enterer' (R4 has no
    DocumentReference element for it), her idNatPS as a Practitioner; the consent is a
    reference typed Consent in context.related, by its id, in words."""
    document = _normalized(_section("11450-4", "Néant", ""),
                           head=_entered_and_consented()).entries[0]
    bundle = to_bundle(PATIENT, [{**asdict(document), "id": 1}])
    check_bundle(bundle)
    resources = [r["resource"] for r in bundle["entry"]]
    (reference,) = [r for r in resources if r["resourceType"] == "DocumentReference"]
    assert reference["context"]["related"] == [{
        "type": "Consent",
        "identifier": {"system": "urn:oid:1.2.250.1.999.13.7", "value": "CONS-2024-118"},
        "display": "Information du patient (completed)"}]
    (entered,) = [r for r in resources if r["resourceType"] == "Provenance"]
    assert entered["agent"][0]["type"]["coding"][0]["code"] == "enterer"
    assert entered["agent"][0]["who"]["identifier"]["value"] == "810002345678"
    assert entered["recorded"] == "2024-03-12T11:30:00+01:00"
    (url,) = [e["fullUrl"] for e in bundle["entry"]
              if e["resource"]["resourceType"] == "DocumentReference"]
    assert entered["target"] == [{"reference": url}]


def test_the_dossier_shows_the_enterer_and_the_consent(sqlite_ctx) -> None:  # noqa: ANN001
    """Through the pipeline (SQLite): the document shown in the dossier carries them."""
    from pipelines.dossier_admin import DossierInput, create_dossiers
    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from pipelines.report import show_dossier, show_import

    create_dossiers(sqlite_ctx.engine, [DossierInput("Essai", "Jeanne", "1962-04-15", "F")])
    head = _entered_and_consented()
    data = (head + _section("11450-4", "Néant", "") + TAIL).encode()
    ids = intake(sqlite_ctx.engine, sqlite_ctx.archive,
                 [Received(data=data, source="hopital-st-joseph", channel="file")])[0].message_ids
    drain(sqlite_ctx)
    shown = show_import(sqlite_ctx.engine, ids[0])
    assert shown["status"] == "deposited", shown
    (document,) = show_dossier(sqlite_ctx.engine, str(shown["patient_id"]))["entries"]
    assert document["data_enterer"]["ids"][1] == "1.2.250.1.71.4.2.1^810002345678"
    assert document["consents"][0]["code"]["code"] == "INFA"


# -- CIP13 codes under 1.2.250.1.213.2.3.3 -----------------------------------------------------
def test_cip13_codes_under_the_oid_of_the_ans_vaccination_example_are_cip() -> None:
    """The ANS's VAC 2023.01 example codes each vaccine's presentation (CIP13, 34009...)
    under 1.2.250.1.213.2.3.3 (codeSystemName 'CIP'): the OID was in no row of our table
    and the substance was filed under the bare OID, not the CIP that the same presentation
    has under 1.2.250.1.213.2.3.2 from other senders."""
    data = corpus_path("cda", "VAC_2023.01.xml").read_bytes()
    msg = normalize_cda(parse_cda(data), data, "test")
    bcg = next(e for e in msg.entries if e.type == "immunization")
    assert {"code": "3400936466425", "system": "CIP"} in bcg.details["substance"]
    assert not any(s["system"].startswith("1.2.250.1.213.2.3") for e in msg.entries
                   for s in e.details.get("substance", ()))


# -- a FR-Simple-Observation said in its text alone --------------------------------------------
def _simple(text: str) -> str:
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
      <id root="1.2.250.1.999.13.9" extension="OBS-AUTONOMIE"/>
      <code code="46008-9" codeSystem="2.16.840.1.113883.6.1"
        displayName="Capacité à se laver"/>{text}<statusCode code="completed"/>
      <effectiveTime value="20240311"/></observation></entry>"""


AUTONOMY = ('<paragraph ID="auto-1">Patiente autonome pour la toilette, aide à '
            "l'habillage.</paragraph>")


@pytest.mark.parametrize("text", [
    '<text><reference value="#auto-1"/></text>',
    "<text>Toilette seule, habillage avec aide</text>",
    '<text><reference value="#auto-9"/></text>',
    "<text>(texte libre)</text>",
    ""])
def test_a_simple_observation_in_words_alone_stays_not_filed(text: str) -> None:
    """A FR-Simple-Observation with no value, only its text: not filed, CDA_NOT_FILED. Its
    text cannot be taken for the value: in the ANS imaging examples (IMG-DA TEP and
    mammography) the reference points at the table row's label ('Autres informations
    transmises au patient'), not at what was observed (a round that filed the text was
    reverted at its merge, stop 32)."""
    msg = _normalized(_section("47420-5", AUTONOMY, _simple(text)))
    assert msg.entries[1:] == []
    assert any(w.startswith("CDA_NOT_FILED") and "1.4.13 code 46008-9" in w
               for w in msg.warnings)


def test_a_simple_observation_with_a_value_keeps_its_value() -> None:
    """What the rule is not about: a value, when there is one, is the value; the text is
    not read in its place."""
    msg = _normalized(_section("47420-5", AUTONOMY, _simple(
        '<text><reference value="#auto-1"/></text>').replace(
        "</observation>", '<value xsi:type="CD" code="LA6568-5" displayName="Non" '
        'codeSystem="2.16.840.1.113883.6.1"/></observation>')))
    (observation,) = msg.entries[1:]
    assert observation.value == "Non" and "value_from_text" not in observation.details


# -- a quantity said in words, a monetary amount -----------------------------------------------
def _result(value: str, code: str = "2345-7", narrative: str = "") -> str:
    return _section("30954-2", narrative or "Glycémie à jeun", f"""<entry>
      <observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <id root="1.2.250.1.999.13.4" extension="RES-{code}"/>
      <code code="{code}" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <effectiveTime value="20240311080000+0100"/>{value}</observation></entry>""")


SEUIL = '<content ID="glu-1">inférieur au seuil de détection</content>'


@pytest.mark.parametrize(("value", "narrative", "filed", "warning"), [
    # the words inline, or in the narrative the originalText points at
    ('<value xsi:type="PQ" nullFlavor="OTH"><originalText>traces</originalText></value>',
     "", "traces", "CDA_PQ_IN_WORDS"),
    ('<value xsi:type="PQ" nullFlavor="OTH"><originalText><reference value="#glu-1"/>'
     "</originalText></value>", SEUIL, "inférieur au seuil de détection", "CDA_PQ_IN_WORDS"),
    # a translation with neither value nor words: said, not silently dropped
    ('<value xsi:type="PQ" nullFlavor="OTH"><translation code="mmol/L" '
     'codeSystem="2.16.840.1.113883.6.8"/></value>', "", None, "CDA_PQ_NO_QUANTITY"),
    ('<value xsi:type="PQ" nullFlavor="OTH"><originalText><reference value="#glu-9"/>'
     '</originalText><translation code="mmol/L" codeSystem="2.16.840.1.113883.6.8"/></value>',
     SEUIL, None, "CDA_PQ_NO_QUANTITY")])
def test_a_null_quantity_in_words_is_filed_as_its_words(value: str, narrative: str,
                                                        filed: str | None,
                                                        warning: str) -> None:
    """A laboratory's PQ of nullFlavor OTH saying the glucose in words (originalText, as
    data types R2 write it) was filed without a value; its words are the value now, said
    as CDA_PQ_IN_WORDS. One whose translation gives no value either is said
    (CDA_PQ_NO_QUANTITY) and filed with its nullFlavor."""
    msg = _normalized(_result(value, narrative=narrative))
    (result,) = msg.entries[1:]
    assert (result.value, result.value_num, result.value_type) == (filed, None, "PQ")
    assert [w.split(":")[0] for w in msg.warnings if w.startswith("CDA_PQ")] == [warning]
    assert ("value_in_words" in result.details) is (filed is not None)
    assert ("value_null_flavor" in result.details) is (filed is None)
    check_bundle(to_bundle(PATIENT, [{**asdict(e), "id": n}
                                     for n, e in enumerate(msg.entries, 1)]))


@pytest.mark.parametrize("value", [
    '<value xsi:type="PQ" value="5.4" unit="mmol/L"/>',
    '<value xsi:type="PQ" nullFlavor="OTH"><translation value="97" code="mg/dL" '
    'codeSystem="2.16.840.1.113883.6.8"/></value>',
    '<value xsi:type="PQ" nullFlavor="NA"/>'])
def test_quantities_and_bare_null_quantities_are_unchanged(value: str) -> None:
    """What the rule is not about: a quantity, one in a translation (C-CDA non-UCUM units),
    a pending one (nullFlavor NA alone): no new warning, no words."""
    msg = _normalized(_result(value))
    (result,) = msg.entries[1:]
    assert not any(w.startswith("CDA_PQ") for w in msg.warnings)
    assert "value_in_words" not in result.details


def test_a_monetary_amount_is_a_value_with_its_currency() -> None:
    """A device's cost left to the patient (MO 'reste à charge', 45.90 EUR) was filed with
    no value at all; its number and currency are kept, the currency as its unit; an MO
    written with a comma is said (CDA_BAD_NUMBER) and kept as text."""
    msg = _normalized(_result('<value xsi:type="MO" value="45.90" currency="EUR"/>',
                              code="80398-1"))
    (cost,) = msg.entries[1:]
    assert (cost.value, cost.value_num, cost.unit, cost.value_type) == (
        "45.90", 45.9, "EUR", "MO")
    assert cost.details["currency"] == "EUR"
    bundle = to_bundle(PATIENT, [{**asdict(e), "id": n} for n, e in enumerate(msg.entries, 1)])
    check_bundle(bundle)
    (observation,) = [r["resource"] for r in bundle["entry"]
                      if r["resource"]["resourceType"] == "Observation"]
    assert observation["valueQuantity"]["value"] == 45.9
    assert observation["valueQuantity"]["unit"] == "EUR"
    comma = _normalized(_result('<value xsi:type="MO" value="45,90" currency="EUR"/>'))
    assert comma.entries[1].value == "45,90" and comma.entries[1].value_num is None
    assert any(w.startswith("CDA_BAD_NUMBER") for w in comma.warnings)


# -- a string value of blanks ------------------------------------------------------------------
@pytest.mark.parametrize("value", ['<value xsi:type="ST">   </value>',
                                   '<value xsi:type="ST">\n\t\t</value>',
                                   '<value xsi:type="ST"/>'])
def test_a_string_value_of_blanks_is_no_value(value: str) -> None:
    """A lab's middleware sending the result it has not got as blanks ('<value
    xsi:type="ST">   </value>', or empty): it was filed as a result without a value, beside
    the real one to come. It is no value: not filed, said (CDA_NOT_FILED)."""
    msg = _normalized(_result(value, code="5778-6"))
    assert msg.entries[1:] == []
    assert any(w.startswith("CDA_NOT_FILED") and "value is an empty string" in w
               for w in msg.warnings)


@pytest.mark.parametrize(("value", "text", "filed"), [
    ('<value xsi:type="ST"> jaune clair </value>', "", "jaune clair"),
    # the ANS's CR-GM form: an empty ST, the answer in the statement's text: as before
    ('<value xsi:type="ST"/>', '<text><reference value="#glu-1"/></text>', None),
    ('<value xsi:type="ST" nullFlavor="NA"/>', "", None)])
def test_strings_with_words_or_a_reason_are_unchanged(value: str, text: str,
                                                      filed: str | None) -> None:
    """What the rule is not about: words, an empty ST whose statement's text says something
    (filed without a value, as before), a nullFlavor (why there is no value)."""
    msg = _normalized(_result(value.replace("<value", text + "<value", 1), code="5778-6",
                              narrative=SEUIL))
    (result,) = msg.entries[1:]
    assert result.value == filed
    assert not any("empty string" in w for w in msg.warnings)


# -- the biologist who validated the results (authenticator) -----------------------------------
VALIDATOR = """<authenticator><templateId root="1.3.6.1.4.1.19376.1.3.3.1.5"/>
  <time value="20240312094500+0100"/><signatureCode code="S"/><assignedEntity>
    <id root="1.2.250.1.71.4.2.1" extension="810003456789"/>
    <assignedPerson><name><given>Josée</given><family>Lemaître</family></name></assignedPerson>
    <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1690012345"/>
      <name>Laboratoire Biologie Rhône-Saône</name></representedOrganization>
  </assignedEntity></authenticator>"""


def test_the_validating_biologist_is_kept_beside_the_signatory() -> None:
    """A CR-BIO names the biologist who validated the results as an authenticator (IHE
    XD-LAB Laboratory Results Validator, as the ANS CR-BIO microbiology example does),
    beside the legalAuthenticator who signed: the authenticator was parsed and dropped.
    Kept as ids, organization and time (no name); a document without one has no key."""
    head = HEAD.replace("<custodian>", VALIDATOR + "<custodian>")
    document = _normalized(_section("11502-2", "Résultats", ""), head=head).entries[0]
    assert document.details["authenticators"] == [{
        "ids": ["1.2.250.1.71.4.2.1^810003456789"], "organization": [
            "1.2.250.1.71.4.2.2^1690012345"],
        "organization_name": "Laboratoire Biologie Rhône-Saône",
        "time": "2024-03-12T09:45:00+01:00"}]
    assert "Lemaître" not in str(document.details)
    plain = _normalized(_section("11502-2", "Résultats", "")).entries[0]
    assert "authenticators" not in plain.details
