"""Identity resolution against real-world PID shapes: PID-32 statuses and attributes (RNIV
and PAM France), INS and local ids naming different dossiers, an INS arriving for a dossier
known by its local id, traits that disagree with the dossier an INS names. Invented patients;
test INS (OID 1.2.250.1.213.1.4.10) with valid keys."""

from __future__ import annotations

from normalizers.identity import extract_identity, read_identity_status
from parsers.hl7v2.er7 import parse_text
from pipelines.identity import resolve_identity
from pipelines.report import show_import
from tests.test_pipeline import INS_OID, NIR, ingest, make_patient, oru

MSH = "MSH|^~\\&|SIL|LABO|DMP|DMP|20240315101500||ORU^R01^ORU_R01|1|P|2.5"
LOCAL = "1.2.250.1.999.1"


def nir(base13: str) -> str:
    digits = base13[:5] + {"2A": "19", "2B": "18"}.get(base13[5:7], base13[5:7]) + base13[7:]
    return f"{base13}{97 - int(digits) % 97:02d}"


GAELLE = nir("2900756260248")  # Gaëlle Le Bihan, born July 1990


def pid(*, ins: str = GAELLE, ipp: str = "IPP-77", family: str = "LE BIHAN",
        given: str = "Gaëlle", birth: str = "19900704", sex: str = "F",
        status: str = "VALI") -> str:
    ids = "~".join(x for x in (
        f"{ins}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS" if ins else "",
        f"{ipp}^^^LABO&{LOCAL}&ISO^PI" if ipp else "") if x)
    return f"PID|||{ids}||{family}^{given}^^^^^L||{birth}|{sex}" + "|" * 24 + status


def identity(**kw):  # noqa: ANN003, ANN201
    return extract_identity(parse_text(f"{MSH}\r{pid(**kw)}\r"))


def resolve(engine, ident, auto_create: bool = False):  # noqa: ANN001, ANN201
    with engine.begin() as conn:
        return resolve_identity(conn, ident, auto_create=auto_create)


def gaelle(ctx, **kw) -> int:  # noqa: ANN001
    fields = dict(family="Le Bihan", given="Gaëlle", birth_date="1990-07-04", sex="F")
    fields.update(kw)
    return make_patient(ctx, kw.pop("ins", GAELLE), **{k: v for k, v in fields.items()
                                                       if k != "ins"})


# -- PID-32 --------------------------------------------------------------------------------------
def test_status_table_reading():
    assert read_identity_status("VALI").ins_trusted
    assert read_identity_status("QUAL").ins_trusted  # RNIV: the qualified identity
    for unqualified in ("PROV", "RECUP", "VIDE", "", "VALI~DOUTE", "QUAL~FICTI", "DOUTE~VALI",
                        "VALI~USUR", "PROV~VALI", "VALI~ZZZ"):
        assert not read_identity_status(unqualified).ins_trusted, unqualified
    assert read_identity_status("VALI~ZZZ").unknown == ("ZZZ",)
    assert read_identity_status("QUAL~CACH").ins_trusted  # hidden identity: still qualified
    assert not read_identity_status("PROV~FICTI").demographics
    assert not read_identity_status("VALI~HOMD").demographics  # homonym: no look-alike match
    assert read_identity_status("RECUP").demographics


def test_every_pid32_repetition_is_kept():
    assert identity(status="vali~DOUTE").identity_status == "VALI~DOUTE"
    assert identity(status="QUAL").identity_status == "QUAL"


def test_qualified_identity_qual_files_by_its_ins(sqlite_ctx):  # noqa: ANN001
    pid_ = gaelle(sqlite_ctx, family="Le Bihan-Kerhervé")  # used name: no demographic match
    found = resolve(sqlite_ctx.engine, identity(status="QUAL"))
    assert (found.patient_id, found.via) == (pid_, "ins")


def test_retrieved_but_unchecked_identity_recup_does_not_trust_its_ins(sqlite_ctx):  # noqa: ANN001
    gaelle(sqlite_ctx, family="Le Bihan-Kerhervé")
    found = resolve(sqlite_ctx.engine, identity(status="RECUP"))
    assert found.patient_id is None
    assert any("RECUP" in w for w in found.warnings)


def test_doubtful_attribute_withdraws_the_ins_and_the_demographic_match(sqlite_ctx):  # noqa: ANN001
    gaelle(sqlite_ctx)  # same INS and the very same traits
    found = resolve(sqlite_ctx.engine, identity(status="VALI~DOUTE"))
    assert found.patient_id is None and found.code == "IDENTITY_UNKNOWN_PATIENT"
    assert "DOUTE" in found.reason and "demographic" in found.reason
    assert GAELLE not in found.reason + " ".join(found.warnings)


def test_fictitious_identity_never_matches_a_look_alike(sqlite_ctx):  # noqa: ANN001
    gaelle(sqlite_ctx, ins=None)
    found = resolve(sqlite_ctx.engine, identity(ins="", ipp="", status="PROV~FICTI"))
    assert found.patient_id is None
    assert resolve(sqlite_ctx.engine, identity(ins="", ipp="", status="PROV")).via == \
        "demographics"


def test_unknown_status_code_is_not_trusted_and_not_quoted(sqlite_ctx):  # noqa: ANN001
    gaelle(sqlite_ctx, family="Le Bihan-Kerhervé")
    found = resolve(sqlite_ctx.engine, identity(status="VALI~Le Bihan"))
    assert found.patient_id is None
    text = found.reason + " ".join(found.warnings)
    assert "Bihan" not in text and "unknown code" in text


def test_pipeline_doubtful_identity_is_quarantined(ctx):  # noqa: ANN001
    make_patient(ctx)
    ids = ingest(ctx, oru("MSG-1", pid32="VALI~DOUTE"))
    info = show_import(ctx.engine, ids[0])
    assert (info["status"], info["error_code"]) == ("quarantined", "IDENTITY_UNKNOWN_PATIENT")
    assert NIR not in (info["error_message"] or "")


# -- strict demographic match ------------------------------------------------------------------
def test_compound_first_given_name_is_one_name(sqlite_ctx):  # noqa: ANN001
    # Twins: same family, birth date and sex; 'Jean-Marc' and 'Jean-Pierre' are two first
    # names, not 'Jean' twice. 'Jean-Pierre Marie' (the list) still names Jean-Pierre.
    jean_marc = make_patient(sqlite_ctx, None, family="Lefèvre", given="Jean-Marc",
                             birth_date="2001-05-17", sex="M")
    twin = identity(ins="", ipp="", family="LEFEVRE", given="Jean-Pierre", birth="20010517",
                    sex="M", status="PROV")
    assert resolve(sqlite_ctx.engine, twin).patient_id is None
    same = identity(ins="", ipp="", family="LEFÈVRE", given="Jean-Marc Émile",
                    birth="20010517", sex="M", status="PROV")
    assert resolve(sqlite_ctx.engine, same).patient_id == jean_marc


def test_name_keys_drop_separators_keep_spelling():
    from dossiers.names import fold_name, name_key
    from dossiers.patients import first_given_key

    assert fold_name("Lefèvre-Ünal") == "LEFEVRE UNAL"  # readable fold unchanged
    for typed, sent in (("D'Artagnan", "DARTAGNAN"), ("Le Goff", "LEGOFF"),
                        ("N’Diaye", "N DIAYE"), ("Martin-Dupont", "MARTIN DUPONT"),
                        ("Lœuillet", "L`OEUILLET"), ("St. Pierre", "ST-PIERRE")):
        assert name_key(typed) == name_key(sent) != "", typed
    assert name_key("Lefèvre") != name_key("Lefebvre")  # spelling is never guessed
    assert name_key("-'. ") == ""
    # the first given name: one name keyed the same way, a blank still separates the list
    assert first_given_key("Jean-Pierre Marie") == first_given_key("JEANPIERRE") \
        == "JEANPIERRE"
    assert first_given_key("JEAN PIERRE") == "JEAN" != first_given_key("Jean-Pierre")


# Invented dossiers (no INS) and how a laboratory system types their family name.
SEPARATED = [("D'Artagnan", "Anne", "DARTAGNAN"), ("Le Goff", "Maëlle", "LEGOFF"),
             ("N'Diaye", "Awa", "NDIAYE"), ("Martin-Dupont", "Claire", "MARTIN DUPONT"),
             ("DARTAGNAN", "Louise", "D’ARTAGNAN")]


def test_family_name_sent_without_its_separators_matches(ctx):  # noqa: ANN001
    for family, given, sent in SEPARATED:
        dossier = make_patient(ctx, None, family=family, given=given, birth_date="1985-11-02",
                               sex="F")
        found = resolve(ctx.engine, identity(ins="", ipp="", family=sent, given=given,
                                             birth="19851102", status="PROV"))
        assert (found.patient_id, found.via) == (dossier, "demographics"), sent


def test_family_name_without_separators_is_no_match_for_another_person(ctx):  # noqa: ANN001
    make_patient(ctx, None, family="Le Goff", given="Maëlle", birth_date="1985-11-02", sex="F")
    for kw in (dict(given="Morgane"), dict(birth="19851103"), dict(sex="M"),
               dict(family="LEGOF")):
        fields = dict(ins="", ipp="", family="LEGOFF", given="Maëlle", birth="19851102",
                      status="PROV")
        found = resolve(ctx.engine, identity(**{**fields, **kw}))
        assert (found.patient_id, found.code) == (None, "IDENTITY_UNKNOWN_PATIENT"), kw


def test_first_given_name_with_a_blank_for_its_hyphen_is_not_matched(ctx):  # noqa: ANN001
    # 'JEAN PIERRE' is the list Jean, Pierre (a blank separates given names): it may be the
    # twin Jean, so it does not match Jean-Pierre; 'JEANPIERRE' (hyphen dropped) does.
    dossier = make_patient(ctx, None, family="Martin-Dupont", given="Jean-Pierre",
                           birth_date="2001-05-17", sex="M")
    fields = dict(ins="", ipp="", family="MARTINDUPONT", birth="20010517", sex="M",
                  status="PROV")
    assert resolve(ctx.engine, identity(given="JEANPIERRE", **fields)).patient_id == dossier
    found = resolve(ctx.engine, identity(given="JEAN PIERRE", **fields))
    assert (found.patient_id, found.code) == (None, "IDENTITY_UNKNOWN_PATIENT")


def test_a_given_name_list_that_may_be_either_twin_is_ambiguous(ctx):  # noqa: ANN001
    # Twins Jean (second name Pierre) and Jean-Pierre: 'JEAN PIERRE' is Jean's list, or
    # Jean-Pierre's name with its hyphen lost. It named Jean: Jean-Pierre's results were
    # filed in his brother's dossier. Now neither is chosen.
    fields = dict(family="Martin-Dupont", birth_date="2001-05-17", sex="M")
    jean = make_patient(ctx, None, given="Jean Pierre", **fields)
    sent = dict(ins="", ipp="", family="MARTINDUPONT", birth="20010517", sex="M",
                status="PROV")
    assert resolve(ctx.engine, identity(given="JEAN PIERRE", **sent)).patient_id == jean
    jean_pierre = make_patient(ctx, None, given="Jean-Pierre", **fields)
    found = resolve(ctx.engine, identity(given="JEAN PIERRE", **sent))
    assert (found.patient_id, found.code) == (None, "IDENTITY_AMBIGUOUS")
    assert resolve(ctx.engine, identity(given="JEAN", **sent)).patient_id == jean
    assert resolve(ctx.engine, identity(given="JEAN-PIERRE", **sent)).patient_id == jean_pierre
    for three in ("JEAN PIERRE MARIE", "Jean, Pierre, Marie"):
        found = resolve(ctx.engine, identity(given=three, **sent))
        assert found.code == "IDENTITY_AMBIGUOUS", three


def test_ins_for_a_dossier_without_it_typed_without_separators_is_not_duplicated(ctx):  # noqa: ANN001
    # The dossier was created without an INS as 'Le Goff'; a lab sends the INS and 'LEGOFF':
    # no second dossier for the same person, the admin assigns it.
    make_patient(ctx, None, family="Le Goff", given="Gaëlle", birth_date="1990-07-04",
                 sex="F")
    found = resolve(ctx.engine, identity(ipp="", family="LEGOFF"), auto_create=True)
    assert (found.patient_id, found.code) == (None, "IDENTITY_AMBIGUOUS")
    assert "assign" in found.reason


def test_traits_check_compares_family_names_without_separators(ctx):  # noqa: ANN001
    # The INS names a dossier 'Le Bihan' / Gaëlle: 'LEBIHAN' is its family name, so another
    # first given name alone is no contradiction (as for 'LE BIHAN'); a family name and a
    # first given name both another person's are.
    pid_ = gaelle(ctx)
    for family in ("LEBIHAN", "LE-BIHAN", "LE BIHAN"):
        found = resolve(ctx.engine, identity(family=family, given="Anne"))
        assert (found.patient_id, found.via) == (pid_, "ins"), family
    found = resolve(ctx.engine, identity(family="LE BIHANE", given="Anne"))
    assert (found.patient_id, found.code) == (None, "IDENTITY_TRAITS_MISMATCH")


# -- a trusted INS against the rest of what the sender says ------------------------------------
def learn_ipp(engine, patient_id: int, ipp: str = "IPP-77") -> None:  # noqa: ANN001
    from dossiers.patients import add_identifier

    with engine.begin() as conn:
        add_identifier(conn, patient_id, LOCAL, ipp, "PI")


def test_ins_and_local_id_naming_two_dossiers_is_a_conflict(sqlite_ctx):  # noqa: ANN001
    gaelle(sqlite_ctx)
    other = make_patient(sqlite_ctx, None, family="Le Bihan", given="Gaëlle",
                         birth_date="1990-07-04", sex="F")  # a duplicate, or another person
    learn_ipp(sqlite_ctx.engine, other)
    found = resolve(sqlite_ctx.engine, identity())
    assert (found.patient_id, found.code) == (None, "IDENTITY_CONFLICT")


def test_same_ins_with_another_birth_date_or_sex_is_not_filed(sqlite_ctx):  # noqa: ANN001
    gaelle(sqlite_ctx)
    for kw, trait in ((dict(birth="19900407"), "birth date"), (dict(sex="M"), "sex"),
                      (dict(family="KERGUELEN", given="Soizic"), "names")):
        found = resolve(sqlite_ctx.engine, identity(**kw))
        assert (found.patient_id, found.code) == (None, "IDENTITY_TRAITS_MISMATCH"), kw
        assert trait in found.reason and "1990" not in found.reason


def test_same_ins_after_a_marriage_or_with_a_partial_date_is_filed(sqlite_ctx):  # noqa: ANN001
    pid_ = gaelle(sqlite_ctx)
    married = extract_identity(parse_text(
        f"{MSH}\rPID|||{GAELLE}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS||"
        "KERGUELEN^Gaëlle^^^^^D~LE BIHAN^Gaëlle^Gaëlle Anne^^^^L||19900704|F" + "|" * 24
        + "QUAL\r"))
    assert resolve(sqlite_ctx.engine, married).patient_id == pid_
    assert resolve(sqlite_ctx.engine, identity(birth="1990", sex="U")).patient_id == pid_
    # a used name alone differing, same first given name: the same person
    assert resolve(sqlite_ctx.engine, identity(family="KERGUELEN")).patient_id == pid_


def test_test_ins_is_not_a_production_ins(sqlite_ctx):  # noqa: ANN001
    from pipelines.dossier_admin import DossierInput, create_dossiers

    create_dossiers(sqlite_ctx.engine, [DossierInput(
        ins=GAELLE, ins_oid="1.2.250.1.213.1.4.8", family="Le Bihan", given="Gaëlle",
        birth_date="1990-07-04", sex="F")])
    found = resolve(sqlite_ctx.engine, identity())  # the same number under the test OID
    assert (found.patient_id, found.code) == (None, "IDENTITY_CONFLICT")
    assert "INS-NIR-TEST" in found.reason


def test_qualified_ins_for_a_dossier_known_by_its_local_id(sqlite_ctx):  # noqa: ANN001
    # The dossier was made from a provisional identity (no INS); the hospital now sends the
    # qualified identity with the same IPP: that dossier, which receives the INS.
    known = gaelle(sqlite_ctx, ins=None)
    learn_ipp(sqlite_ctx.engine, known)
    for auto_create in (False, True):
        found = resolve(sqlite_ctx.engine, identity(), auto_create=auto_create)
        assert (found.patient_id, found.via) == (known, "ins" if auto_create else "local-id")
    with sqlite_ctx.engine.begin() as conn:
        from dossiers.patients import get_patient

        assert get_patient(conn, known).ins == GAELLE


def test_local_id_of_a_dossier_with_another_ins_is_a_conflict(sqlite_ctx):  # noqa: ANN001
    known = gaelle(sqlite_ctx, ins=nir("2900756260249"))
    learn_ipp(sqlite_ctx.engine, known)
    found = resolve(sqlite_ctx.engine, identity())
    assert (found.patient_id, found.code) == (None, "IDENTITY_CONFLICT")


def test_unknown_ins_with_a_look_alike_dossier_is_not_auto_created(sqlite_ctx):  # noqa: ANN001
    gaelle(sqlite_ctx, ins=None)
    found = resolve(sqlite_ctx.engine, identity(ipp=""), auto_create=True)
    assert (found.patient_id, found.code) == (None, "IDENTITY_AMBIGUOUS")
    assert "assign" in found.reason


def test_two_different_ins_in_one_pid_are_ambiguous(sqlite_ctx):  # noqa: ANN001
    gaelle(sqlite_ctx)
    two = extract_identity(parse_text(
        f"{MSH}\rPID|||{GAELLE}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS~"
        f"{nir('2900756260111')}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS||LE BIHAN^Gaëlle||"
        "19900704|F" + "|" * 24 + "VALI\r"))
    found = resolve(sqlite_ctx.engine, two)
    assert (found.patient_id, found.code) == (None, "IDENTITY_AMBIGUOUS")


def test_pipeline_qualified_ins_reaches_the_dossier_of_its_local_id(ctx):  # noqa: ANN001
    known = make_patient(ctx, None)  # Lefèvre Hélène, no INS yet
    first = ingest(ctx, oru("MSG-1", pid32="PROV", nir="299999999999999"))
    assert show_import(ctx.engine, first[0])["patient_id"] == known  # demographics, IPP learnt
    later = ingest(ctx, oru("MSG-2", value="4.9"), oru("MSG-3", value="5.0"))
    assert [show_import(ctx.engine, i)["patient_id"] for i in later] == [known, known]
    from pipelines.report import show_dossier

    assert show_dossier(ctx.engine, NIR)["patient"]["id"] == known


def test_pipeline_same_ins_other_birth_date_is_quarantined(ctx):  # noqa: ANN001
    make_patient(ctx)
    ids = ingest(ctx, oru("MSG-1", birth="19790823"))
    info = show_import(ctx.engine, ids[0])
    assert (info["status"], info["error_code"]) == ("quarantined", "IDENTITY_TRAITS_MISMATCH")


# -- traits against the dossier a local identifier names; ADT corrections ----------------------
def test_local_id_match_with_another_birth_date_is_not_filed(ctx):  # noqa: ANN001
    pid_ = make_patient(ctx)
    ingest(ctx, oru("MSG-1"))  # qualified: the lab's IPP is learnt for this dossier
    ids = ingest(ctx, oru("MSG-2", pid32="PROV", nir="299999999999999", birth="19790823",
                          value="4.9"))
    info = show_import(ctx.engine, ids[0])
    assert (info["status"], info["error_code"]) == ("quarantined", "IDENTITY_TRAITS_MISMATCH")
    assert "local identifier" in info["error_message"]
    same = ingest(ctx, oru("MSG-3", pid32="PROV", nir="299999999999999", value="5.1"))
    assert show_import(ctx.engine, same[0])["patient_id"] == pid_


def test_adt_a08_correcting_a_birth_date_is_applied_with_a_warning(ctx):  # noqa: ANN001
    from tests.test_adt_consent import SOURCE, adt, patient_row

    pid_ = make_patient(ctx, birth_date="1979-03-18")  # created with a typing error
    ids = ingest(ctx, adt("C1", "A08", birth="19790328"), source=SOURCE)
    info = show_import(ctx.engine, ids[0])
    assert (info["status"], info["patient_id"]) == ("deposited", pid_)
    assert any("another birth date" in w for w in info["warnings"])
    assert patient_row(ctx, pid_).birth_date == "1979-03-28"
    later = ingest(ctx, oru("MSG-1"))  # the results now match the corrected dossier
    assert show_import(ctx.engine, later[0])["patient_id"] == pid_


def test_ins_without_its_key_says_so(sqlite_ctx):  # noqa: ANN001
    found = resolve(sqlite_ctx.engine, identity(ins=GAELLE[:13]), auto_create=True)
    assert found.code == "IDENTITY_INS_INVALID_KEY"
    assert "has no key (13 characters)" in found.reason and GAELLE[:13] not in found.reason


def test_no_dossier_is_auto_created_on_an_ins_contradicting_its_traits(sqlite_ctx):  # noqa: ANN001
    # GAELLE's INS says: a woman born in July 1990
    for kw in (dict(sex="M"), dict(birth="20050101"), dict(birth="19900104")):
        found = resolve(sqlite_ctx.engine, identity(ipp="", **kw), auto_create=True)
        assert (found.patient_id, found.code) == (None, "IDENTITY_TRAITS_MISMATCH"), kw
        assert "digits" in found.reason and GAELLE[:5] not in found.reason
    assert resolve(sqlite_ctx.engine, identity(ipp=""), auto_create=True).via == "auto-create"


def test_obsolete_ins_c_beside_the_ins_nir_is_ignored_with_a_warning(sqlite_ctx):  # noqa: ANN001
    # A hospital still sending the INS-C (22 digits) before the INS-NIR in PID-3.
    pid_ = gaelle(sqlite_ctx)
    ident = extract_identity(parse_text(
        f"{MSH}\rPID|||IPP-9^^^LABO&{LOCAL}&ISO^PI~1121717802492545833548^^^ASIP-SANTE-INS-C&"
        f"1.2.250.1.213.1.4.2&ISO^INS-C^^20170215~{GAELLE}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^"
        "INS||LE BIHAN^Gaëlle||19900704|F" + "|" * 24 + "VALI\r"))
    found = resolve(sqlite_ctx.engine, ident)
    assert (found.patient_id, found.via) == (pid_, "ins")
    assert any("INS-C ignored" in w for w in found.warnings)
    only_c = extract_identity(parse_text(
        f"{MSH}\rPID|||1121717802492545833548^^^ASIP-SANTE-INS-C&1.2.250.1.213.1.4.2&ISO^INS-C"
        "||LE BIHAN^Gaëlle||19900704|F" + "|" * 24 + "VALI\r"))
    found = resolve(sqlite_ctx.engine, only_c)
    assert found.via == "demographics" and any("obsolete" in w for w in found.warnings)


def test_provisional_identity_does_not_overwrite_a_qualified_dossier(ctx):  # noqa: ANN001
    from tests.test_adt_consent import SOURCE, adt, patient_row

    pid_ = make_patient(ctx)  # holds the qualified INS and its traits
    ingest(ctx, adt("C1", "A01"), source=SOURCE)  # VALI: the hospital's IPP is learnt
    ids = ingest(ctx, adt("C2", "A08", family="MARTIN", pid32="PROV"), source=SOURCE)
    info = show_import(ctx.engine, ids[0])
    assert (info["status"], info["patient_id"]) == ("deposited", pid_)
    assert patient_row(ctx, pid_).family == "Lefèvre"
    assert any("not qualified" in w for w in info["warnings"])
    ids = ingest(ctx, adt("C3", "A08", family="MARTIN"), source=SOURCE)  # qualified: applied
    assert patient_row(ctx, pid_).family == "MARTIN"
