"""Identity round 4: birth names, INS-NIA and INS-NIR, corrections whose original lies in
another dossier. Invented patients; INS with made-up digits and valid keys; real LOINC codes."""

from __future__ import annotations

import pytest

from dossiers.patients import add_identifier, create_patient, update_demographics
from normalizers.identity import extract_identity
from parsers.hl7v2.er7 import parse_text
from pipelines.identity import resolve_identity

MSH = "MSH|^~\\&|DXCARE|CHU-RENNES|DMP|DMP|20261120093000+0100||ORU^R01^ORU_R01|77|P|2.5"
INS_NIR = "1.2.250.1.213.1.4.8"
INS_NIA = "1.2.250.1.213.1.4.9"
CHU = "1.2.250.1.71.4.2.2.350000001"  # the hospital's IPP domain


def nir(base13: str) -> str:
    digits = base13[:5] + {"2A": "19", "2B": "18"}.get(base13[5:7], base13[5:7]) + base13[7:]
    return f"{base13}{97 - int(digits) % 97:02d}"


def pid(ids: str, names: str = "MARTIN^Maëlle^^^^^L", birth: str = "19840612",
        sex: str = "F", status: str = "PROV") -> str:
    return f"PID|||{ids}||{names}||{birth}|{sex}" + "|" * 24 + status


@pytest.fixture
def engine(sqlite_engine):  # noqa: ANN001, ANN201
    """A store of the test's own (tests/conftest.py)."""
    return sqlite_engine


def identity(segment: str):  # noqa: ANN201
    return extract_identity(parse_text(f"{MSH}\r{segment}\r"))


def dossier(engine, *, family: str = "Le Bihan", given: str = "Maëlle",  # noqa: ANN001
            birth_date: str = "1984-06-12", sex: str = "F", ins: str | None = None,
            ins_oid: str | None = None, birth_family: str | None = "Martin",
            ids: tuple[tuple[str, str, str], ...] = ()) -> int:
    with engine.begin() as conn:
        pid_ = create_patient(conn, family=family, given=given, birth_date=birth_date, sex=sex,
                              ins=ins, ins_oid=ins_oid, birth_family=birth_family)
        for authority, value, type_code in ids:
            add_identifier(conn, pid_, authority, value, type_code)
    return pid_


def resolve(engine, segment: str, auto_create: bool = False):  # noqa: ANN001, ANN201
    with engine.begin() as conn:
        return resolve_identity(conn, identity(segment), auto_create=auto_create)


# -- the birth name alone finds the dossier made under the used name ----------------------------
@pytest.mark.parametrize("names", [
    "MARTIN^Maëlle^^^^^L",  # the INS traits: the birth name, typed L
    "MARTIN^MAELLE",  # one name, no type
    "Martin^Maëlle Anne^^^^^L",  # the list of given names
])
def test_birth_name_alone_finds_the_dossier_made_under_the_used_name(engine, names):  # noqa: ANN001
    """Mme Le Bihan née Martin's dossier; a laboratory knows her by her birth name only. It
    was matched on the used name alone: no dossier, quarantined (a second dossier with
    auto-creation and an INS)."""
    hers = dossier(engine)
    found = resolve(engine, pid("", names))
    assert (found.patient_id, found.via) == (hers, "demographics")


def test_birth_name_of_one_dossier_and_used_name_of_another_is_ambiguous(engine):  # noqa: ANN001
    """Maëlle Le Bihan née Martin, and Maëlle Martin (unmarried), born the same day: a
    message naming 'MARTIN' may be either: quarantined, never filed on a guess."""
    dossier(engine)
    dossier(engine, family="Martin", birth_family=None)
    found = resolve(engine, pid("", "MARTIN^Maëlle^^^^^L"))
    assert (found.patient_id, found.code) == (None, "IDENTITY_AMBIGUOUS")


def test_birth_name_written_otherwise_still_matches(engine):  # noqa: ANN001
    """The key of the birth name is the family name's: accents, apostrophes, blanks and
    decomposed (NFD) letters fold alike."""
    hers = dossier(engine, family="Dupont", birth_family="D’Hérouville")
    nfd = "D'HE\u0301ROUVILLE"
    found = resolve(engine, pid("", f"{nfd}^Maëlle^^^^^L"))
    assert (found.patient_id, found.via) == (hers, "demographics")
    found = resolve(engine, pid("", "DHEROUVILLE^MAELLE"))
    assert found.patient_id == hers


@pytest.mark.parametrize(("family", "given", "sent"), [
    ("Wałęsa", "Łucja", "WALESA^LUCJA"),  # Polish Ł: no decomposition in Unicode
    ("Østergård", "Sørine", "OSTERGARD^SORINE"),  # Danish Ø
    ("Đorđević", "Ana", "DORDEVIC^ANA"),  # Croatian Đ
])
def test_letters_without_decomposition_fold_to_their_plain_letter(engine, family, given,  # noqa: ANN001
                                                                  sent):
    """The INS traits are written in plain capitals; a dossier made with the letters as the
    hospital typed them was not matched by them (ŁUCJA is not LUCJA to NFKD)."""
    theirs = dossier(engine, family=family, given=given, birth_family=None)
    found = resolve(engine, pid("", sent))
    assert (found.patient_id, found.via) == (theirs, "demographics")


def test_birth_name_given_later_is_keyed(engine):  # noqa: ANN001
    """A dossier made with one name, its birth name set later (an A31, an admin): the key
    follows, and the birth name finds it."""
    hers = dossier(engine, birth_family=None)
    assert resolve(engine, pid("", "MARTIN^Maëlle^^^^^L")).patient_id is None
    with engine.begin() as conn:
        assert update_demographics(conn, hers, birth_family="Martin") == ["birth_family"]
    assert resolve(engine, pid("", "MARTIN^Maëlle^^^^^L")).patient_id == hers


def test_new_ins_under_the_birth_name_of_a_dossier_without_ins_makes_no_second(engine):  # noqa: ANN001
    """A qualified INS no dossier holds, sent with the birth name of a dossier created
    under the used name without INS: a look-alike, assigned by an admin, not a second
    dossier made by auto-creation."""
    dossier(engine)
    ins = nir("2840635238123")
    ids = f"{ins}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
    found = resolve(engine, pid(ids, status="VALI"), auto_create=True)
    assert (found.patient_id, found.code) == (None, "IDENTITY_AMBIGUOUS")


# -- a cancel or correction whose original another dossier holds --------------------------------
# The laboratory's original result for Hélène (INS, IPP LD-778); the cancel of the same order
# sent under the IPP of another dossier (its PID points elsewhere: a duplicate, a mix-up).
LAB_MSH = ("MSH|^~\\&|SIL-BIO|LABO-DEMO|DMP-INTAKE|GHT|{t}||ORU^R01^ORU_R01|{id}|P|2.5|||||FRA|"
           "UNICODE UTF-8")
OTHER_PID = ("PID|||LD-900^^^LABO-DEMO&1.2.250.1.999.42&ISO^PI||DUPONT^Jean^^^^^L||19881002|M"
             + "|" * 24 + "PROV")
POTASSIUM = ("OBX|1|NM|2823-3^Potassium [Moles/volume] in Serum or Plasma^LN||{v}|mmol/L|"
             "3.5-5.1|{flag}|||{status}|||202403150810")


def lab_message(control: str, status: str, *, pid_segment: str | None = None,
                value: str = "6.4", flag: str = "H") -> bytes:
    from tests.test_lab_normalizer import PID, oru

    header = LAB_MSH.format(t=f"2024031{5 + len(control) % 3}1045", id=control)
    return oru(POTASSIUM.format(v=value, flag=flag, status=status), header=header,
               pid=pid_segment or PID).encode()


def two_dossiers(ctx) -> tuple[int, int]:  # noqa: ANN001
    """Hélène's dossier (the laboratory's INS), and Jean Dupont's, known by IPP LD-900."""
    from tests.test_pipeline import make_patient

    helene = make_patient(ctx)
    with ctx.engine.begin() as conn:
        jean = create_patient(conn, family="Dupont", given="Jean", birth_date="1988-10-02",
                              sex="M", identifiers=[("1.2.250.1.999.42", "LD-900", "PI")])
    return helene, jean


def ledger(ctx, import_id: int):  # noqa: ANN001, ANN201
    from sqlalchemy import select

    from dossiers.schema import imports

    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id == import_id)).one()


def potassium(ctx) -> list[tuple[int, str, str, bool]]:  # noqa: ANN001
    from sqlalchemy import select

    from dossiers.schema import entries

    with ctx.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(entries.c.patient_id, entries.c.status, entries.c.value, entries.c.current)
            .where(entries.c.code == "2823-3").order_by(entries.c.id))]


@pytest.mark.parametrize(("status", "together"), [("D", False), ("W", False), ("C", False),
                                                  ("D", True), ("C", True)])
def test_cancel_of_a_result_another_dossier_holds_is_quarantined(sqlite_ctx, status,  # noqa: ANN001
                                                                  together):
    """The potassium was filed in Hélène's dossier; its deletion (D), its 'entered in error'
    (W) or its correction (C) comes under Jean Dupont's IPP. It was filed in Jean's dossier (a
    tombstone, or a lone corrected value) while Hélène's result stayed current. Quarantined
    now, naming the import that filed the original, at the OBX; nothing changes in either
    dossier. In one batch too (the original filed first, then the cancel checked)."""
    from tests.test_pipeline import ingest

    helene, jean = two_dossiers(sqlite_ctx)
    original = lab_message("K-1", "F")
    cancel = lab_message("K-2", status, pid_segment=OTHER_PID, value="4.2", flag="N")
    if together:
        first, second = ingest(sqlite_ctx, original, cancel)
    else:
        [first], [second] = ingest(sqlite_ctx, original), ingest(sqlite_ctx, cancel)
    row = ledger(sqlite_ctx, second)
    assert ledger(sqlite_ctx, first).status == "deposited"
    assert (row.status, row.stage, row.error_code, row.error_location) == (
        "quarantined", "identity", "CORRECTION_OTHER_DOSSIER", "OBX[5]")
    assert f"import {first} filed in dossier {helene}" in row.error_message
    assert f"dossier {jean}" in row.error_message and "DUPONT" not in row.error_message.upper()
    assert potassium(sqlite_ctx) == [(helene, "final", "6.4", True)]


def test_cancel_assigned_by_an_admin_to_the_originals_dossier_is_applied(sqlite_ctx):  # noqa: ANN001
    """The operator reads the quarantine and assigns the cancel to Hélène's dossier: the
    rerun withdraws her result there."""
    from pipelines.admin import assign
    from pipelines.audit import Actor
    from pipelines.process import drain
    from tests.test_pipeline import ingest

    helene, _ = two_dossiers(sqlite_ctx)
    ingest(sqlite_ctx, lab_message("K-1", "F"))
    [cancel] = ingest(sqlite_ctx, lab_message("K-2", "D", pid_segment=OTHER_PID))
    assign(sqlite_ctx.engine, cancel, str(helene), Actor("opérateur"),
           "annulation du laboratoire, IPP erroné")
    drain(sqlite_ctx)
    assert ledger(sqlite_ctx, cancel).status == "deposited"
    assert [(p, s, c) for p, s, _, c in potassium(sqlite_ctx)] == [
        (helene, "final", False), (helene, "withdrawn", True)]


def test_cancel_in_the_originals_own_dossier_is_applied(sqlite_ctx):  # noqa: ANN001
    """The usual case, unchanged: the cancel names the same patient, the result is
    withdrawn, nothing quarantined."""
    from tests.test_pipeline import ingest

    helene, _ = two_dossiers(sqlite_ctx)
    ingest(sqlite_ctx, lab_message("K-1", "F"))
    [cancel] = ingest(sqlite_ctx, lab_message("K-2", "D"))
    assert ledger(sqlite_ctx, cancel).status == "deposited"
    assert [(p, s, c) for p, s, _, c in potassium(sqlite_ctx)] == [
        (helene, "final", False), (helene, "withdrawn", True)]


def test_cda_replacing_a_document_another_dossier_holds_is_quarantined(sqlite_ctx):  # noqa: ANN001
    """Version 1 of the renal panel (CR-BIO) filed in M. Santoni's dossier; version 2 (RPLC
    naming version 1) names him by an IPP of a duplicate dossier only. It was filed there as
    a new document, version 1 left current in the first. Quarantined at relatedDocument."""
    from sqlalchemy import select

    from dossiers.schema import entries
    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from tests.conftest import SAMPLES

    v1 = (SAMPLES / "cda" / "02_crbio_synlab_bilan_renal_v1.xml").read_bytes()
    v2 = (SAMPLES / "cda" / "03_crbio_synlab_bilan_renal_v2_rplc.xml").read_bytes()
    ins_line = b'<id extension="149122A00482863" root="1.2.250.1.213.1.4.10"/>'
    assert ins_line in v2
    v2 = v2.replace(ins_line, b"").replace(b'extension="SB20000531"', b'extension="SB20000999"')
    with sqlite_ctx.engine.begin() as conn:
        santoni = create_patient(conn, family="Santoni", given="Noël", birth_date="1949-12-25",
                                 sex="M", ins="149122A00482863", ins_oid="1.2.250.1.213.1.4.10")
        duplicate = create_patient(conn, family="Santoni", given="Noël",
                                   birth_date="1949-12-25", sex="M",
                                   identifiers=[("2.999.250.1.2", "SB20000999", "PI")])
    ids = []
    for n, data in enumerate((v1, v2)):
        ids += intake(sqlite_ctx.engine, sqlite_ctx.archive,
                      [Received(data, "hospital", "file", file_name=f"{n}.xml")])[0].message_ids
        drain(sqlite_ctx)
    first, second = ledger(sqlite_ctx, ids[0]), ledger(sqlite_ctx, ids[1])
    assert (first.status, first.patient_id) == ("deposited", santoni)
    assert (second.status, second.error_code, second.error_location) == (
        "quarantined", "CORRECTION_OTHER_DOSSIER", "/ClinicalDocument/relatedDocument")
    assert f"import {ids[0]} filed in dossier {santoni}" in second.error_message
    assert f"dossier {duplicate}" in second.error_message
    with sqlite_ctx.engine.connect() as conn:
        docs = conn.execute(select(entries.c.patient_id, entries.c.current)
                            .where(entries.c.type == "document")).all()
    assert [tuple(d) for d in docs] == [(santoni, True)]


def test_cda_replacing_a_document_withdrawn_in_another_dossier_is_filed(sqlite_ctx):  # noqa: ANN001
    """Version 1 was sent to the wrong patient and deleted there (withdrawn); version 2,
    naming it, comes for the right patient: nothing to act on elsewhere, filed in its own
    dossier."""
    from sqlalchemy import update

    from dossiers.schema import entries
    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from tests.conftest import SAMPLES

    v1 = (SAMPLES / "cda" / "02_crbio_synlab_bilan_renal_v1.xml").read_bytes()
    v2 = (SAMPLES / "cda" / "03_crbio_synlab_bilan_renal_v2_rplc.xml").read_bytes()
    v2 = v2.replace(b'<id extension="149122A00482863" root="1.2.250.1.213.1.4.10"/>', b"") \
        .replace(b'extension="SB20000531"', b'extension="SB20000999"')
    with sqlite_ctx.engine.begin() as conn:
        create_patient(conn, family="Santoni", given="Noël", birth_date="1949-12-25", sex="M",
                       ins="149122A00482863", ins_oid="1.2.250.1.213.1.4.10")
        right = create_patient(conn, family="Santoni", given="Noël", birth_date="1949-12-25",
                               sex="M", identifiers=[("2.999.250.1.2", "SB20000999", "PI")])
    ids = intake(sqlite_ctx.engine, sqlite_ctx.archive,
                 [Received(v1, "hospital", "file", file_name="0.xml")])[0].message_ids
    drain(sqlite_ctx)
    with sqlite_ctx.engine.begin() as conn:
        conn.execute(update(entries).where(entries.c.type == "document")
                     .values(status="withdrawn"))
    ids += intake(sqlite_ctx.engine, sqlite_ctx.archive,
                  [Received(v2, "hospital", "file", file_name="1.xml")])[0].message_ids
    drain(sqlite_ctx)
    second = ledger(sqlite_ctx, ids[1])
    assert (second.status, second.patient_id) == ("deposited", right)


# -- INS-NIA (temporary) and the INS-NIR that replaces it -----------------------------------------
NIA = nir("2840699352012")  # born abroad (99), number attributed while awaiting her NIR
NIR_LATER = nir("2840699352045")
NIA_PID3 = f"{NIA}^^^ASIP-SANTE-INS-NIA&{INS_NIA}&ISO^INS"
NIR_PID3 = f"{NIR_LATER}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
IPP = f"800123^^^CHU-RENNES&{CHU}&ISO^PI"
MAELLE = "LE BIHAN^Maëlle^^^^^D~MARTIN^Maëlle^^^^^L"


def test_nir_replaces_the_dossiers_nia_when_the_ipp_names_it(engine):  # noqa: ANN001
    """The dossier was made under Maëlle's INS-NIA; the hospital's next message, qualified
    (VALI), sends her INS-NIR with the same IPP. It was IDENTITY_CONFLICT forever (the dossier
    'holds another INS'); the NIR replaces the NIA now, and a message still carrying the
    NIA (sent before, rerun) finds the dossier by it."""
    hers = dossier(engine, ins=NIA, ins_oid=INS_NIA, ids=((CHU, "800123", "PI"),))
    found = resolve(engine, pid(f"{IPP}~{NIR_PID3}", MAELLE, status="VALI"))
    assert (found.patient_id, found.via) == (hers, "local-id")
    assert any("INS-NIA (temporary) is replaced by the INS-NIR" in w for w in found.warnings)
    assert NIA not in " ".join(found.warnings) and NIR_LATER not in " ".join(found.warnings)
    with engine.connect() as conn:
        from dossiers.patients import get_patient

        held = get_patient(conn, hers)
    assert (held.ins, held.ins_oid) == (NIR_LATER, INS_NIR)
    for ids in (NIR_PID3, NIA_PID3, f"{IPP}~{NIA_PID3}"):
        found = resolve(engine, pid(ids, MAELLE, status="VALI"))
        assert found.patient_id == hers, ids


def test_unqualified_message_with_the_replaced_nia_still_files(engine):  # noqa: ANN001
    """After the NIR replaced the NIA, a message of the same hospital still carrying the NIA
    without qualifying it (PID-32 PROV), with the IPP: the NIA is the dossier's former INS,
    not another person's; filed, as it was before the replacement."""
    hers = dossier(engine, ins=NIA, ins_oid=INS_NIA, ids=((CHU, "800123", "PI"),))
    assert resolve(engine, pid(f"{IPP}~{NIR_PID3}", MAELLE, status="VALI")).patient_id == hers
    found = resolve(engine, pid(f"{IPP}~{NIA_PID3}", MAELLE, status="PROV"))
    assert (found.patient_id, found.code) == (hers, None)
    other = nir("2840699352078")  # a NIA this dossier never held: still a conflict
    found = resolve(engine, pid(f"{IPP}~{other}^^^ASIP-SANTE-INS-NIA&{INS_NIA}&ISO^INS",
                                MAELLE, status="PROV"))
    assert (found.patient_id, found.code) == (None, "IDENTITY_CONFLICT")


def test_nir_whose_digits_contradict_the_dossier_does_not_replace_its_nia(engine):  # noqa: ANN001
    """A NIR of a man (first digit 1) for Maëlle's dossier: another person's number,
    quarantined; the dossier keeps its NIA."""
    hers = dossier(engine, ins=NIA, ins_oid=INS_NIA, ids=((CHU, "800123", "PI"),))
    his = nir("1840699352045")
    ids = f"{IPP}~{his}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
    found = resolve(engine, pid(ids, MAELLE, status="VALI"))
    assert (found.patient_id, found.code) == (None, "IDENTITY_TRAITS_MISMATCH")
    with engine.connect() as conn:
        from dossiers.patients import get_patient

        assert get_patient(conn, hers).ins == NIA


def test_nir_replacing_a_nia_needs_the_dossiers_traits(engine):  # noqa: ANN001
    """The IPP names the NIA dossier of another person (names, first name differ): not a
    replacement, IDENTITY_TRAITS_MISMATCH."""
    dossier(engine, family="Nguyen", birth_family=None, given="Thi", ins=NIA,
            ins_oid=INS_NIA, ids=((CHU, "800123", "PI"),))
    found = resolve(engine, pid(f"{IPP}~{NIR_PID3}", MAELLE, status="VALI"))
    assert (found.patient_id, found.code) == (None, "IDENTITY_TRAITS_MISMATCH")


def test_nir_without_ipp_for_a_nia_dossier_is_not_a_second_dossier(engine):  # noqa: ANN001
    """The NIR alone, traits matching the NIA dossier: auto-creation would make a second
    dossier for one person; quarantined for an admin (the traits alone do not replace an
    INS)."""
    dossier(engine, ins=NIA, ins_oid=INS_NIA)
    found = resolve(engine, pid(NIR_PID3, MAELLE, status="VALI"), auto_create=True)
    assert (found.patient_id, found.code) == (None, "IDENTITY_AMBIGUOUS")


def test_nia_for_a_dossier_holding_another_nir_is_a_conflict(engine):  # noqa: ANN001
    """A NIA the dossier never held, its IPP naming a dossier with a NIR: a conflict, not a
    second dossier."""
    dossier(engine, ins=NIR_LATER, ins_oid=INS_NIR, ids=((CHU, "800123", "PI"),))
    found = resolve(engine, pid(f"{IPP}~{NIA_PID3}", MAELLE, status="VALI"), auto_create=True)
    assert (found.patient_id, found.code) == (None, "IDENTITY_CONFLICT")


def test_pipeline_nir_replacing_a_nia_in_a_batch(sqlite_ctx):  # noqa: ANN001
    """Through the batch path (BatchLookup: the replacement is done one by one), then a
    result still sent under the NIA: both in the one dossier."""
    from tests.test_pipeline import ingest

    with sqlite_ctx.engine.begin() as conn:
        hers = create_patient(conn, family="Le Bihan", birth_family="Martin", given="Maëlle",
                              birth_date="1984-06-12", sex="F", ins=NIA, ins_oid=INS_NIA,
                              identifiers=[(CHU, "800123", "PI")])
    obx = ("OBX|1|NM|2345-7^Glucose [Mass/volume] in Serum or Plasma^LN||0.92|g/L|0.70-1.10|N"
           "|||F|||20261120080000+0100")

    def message(control: str, ids: str) -> bytes:
        return "\r".join((MSH.replace("|77|", f"|{control}|"), pid(ids, MAELLE, status="VALI"),
                          f"ORC|RE|P-{control}|CMD-{control}^CHU-RENNES",
                          f"OBR|1|P-{control}|CMD-{control}^CHU-RENNES|2345-7^Glucose^LN|||"
                          "20261120080000+0100", obx)).encode() + b"\r"

    first, second = ingest(sqlite_ctx, message("G-1", f"{IPP}~{NIR_PID3}"),
                           message("G-2", NIA_PID3))
    for import_id in (first, second):
        row = ledger(sqlite_ctx, import_id)
        assert (row.status, row.patient_id) == ("deposited", hers), row.error_message
    from sqlalchemy import select

    from dossiers.schema import audit_log

    with sqlite_ctx.engine.connect() as conn:
        trail = conn.execute(select(audit_log.c.action, audit_log.c.import_id,
                                    audit_log.c.details)
                             .where(audit_log.c.patient_id == hers)).all()
    assert [tuple(t) for t in trail if t.action.startswith("identity.")] == [
        ("identity.ins_replaced", first, {"from": "INS-NIA", "to": "INS-NIR"})]


def test_the_operator_is_told_what_to_do_about_a_correction_elsewhere():
    from pipelines.advice import advice

    assert "assign the import to the dossier holding the original" in advice(
        "CORRECTION_OTHER_DOSSIER")
