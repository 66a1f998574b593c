"""HL7v2 lab results, round 12: what senders we have not seen send that earlier rounds refused
or filed wrong (point-of-care results without any order number, two laboratories giving the
same order number), each written as such a sender writes it (French lab traffic, invented
patients) and checked against what must be filed, through the store where dedupe decides."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dossiers.deposit import unscoped_order_key
from dossiers.schema import entries, imports
from normalizers.model import NormalizationError
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_lab_normalizer import PID, norm

GLU = "2345-7"  # Glucose [Mass or Moles/volume] in Serum or Plasma
K = "2823-3"  # Potassium [Moles/volume] in Serum or Plasma


def _header(app: str, facility: str, control_id: str, sent: str, trigger: str = "R01",
            version: str = "2.5") -> str:
    return (f"MSH|^~\\&|{app}|{facility}|DMP-INTAKE|GHT|{sent}||ORU^{trigger}^ORU_{trigger}|"
            f"{control_id}|P|{version}|||||FRA|UNICODE UTF-8")


def _file(ctx, *messages: tuple[str, str]) -> list[int]:  # noqa: ANN001
    """Intake and process each (message, intake source) in turn: the import ids."""
    ctx.settings = replace(ctx.settings, auto_create=True)
    ids: list[int] = []
    for n, (text, source) in enumerate(messages):
        ids += intake(ctx.engine, ctx.archive, [Received(text.encode(), source, "file",
                                                         file_name=f"{n}.hl7")])[0].message_ids
        drain(ctx)
    return ids


def _results(ctx, code: str) -> list[tuple[str, bool, str]]:  # noqa: ANN001
    """(value, current, status) of every stored version of ``code``'s results, in filing order."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries.c.value, entries.c.current, entries.c.status)
                            .where(entries.c.code == code, entries.c.type == "lab_result")
                            .order_by(entries.c.id)).all()
    return [tuple(r) for r in rows]


def _states(ctx, ids: list[int]) -> list[str]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        by_id = dict(conn.execute(select(imports.c.id, imports.c.status)
                                  .where(imports.c.id.in_(ids))).all())
    return [by_id[i] for i in ids]


# -- point-of-care results without an order number (ORU^R30/R31/R32, IHE LPOCT) -------------

def _poct(control_id: str, observed: str, value: str, status: str = "F",
          device: str = "GLU-0042^ACCUCHEK-INFORM^1.2.250.1.999.7.1^ISO", obr7: bool = True,
          trigger: str = "R30") -> str:
    """A capillary glucose read on a ward's meter, sent by the point-of-care data manager as
    IHE LPOCT's LAB-32 does: ORC-1 NW, no placer nor filler number."""
    return "\r".join([
        _header("POCDM", "CHU-DEMO-POC", control_id, "20240315101500", trigger),
        PID, "PV1|1|I|CARDIO^204^1",
        "ORC|NW|||||||||||||||||||||||||||",
        f"OBR|1|||{GLU}^Glucose capillaire^LN|||{observed if obr7 else ''}",
        f"OBX|1|NM|{GLU}^Glucose capillaire^LN||{value}|mmol/L|3.9-6.1||||{status}|||"
        f"{observed}||^DURAND^Claire^^^IDE||{device}",
    ]) + "\r"


@pytest.mark.parametrize("trigger", ["R30", "R31", "R32"])
def test_a_point_of_care_result_without_order_number_is_read(trigger):
    """A device reading sent before any order exists (v2.5 7.3.4-7.3.6): no OBR-2, OBR-3 nor
    ORC number. It was refused whole (HL7_NO_ORDER_NUMBER); it is the reading, identified by
    its observation time and the device that made it, and said."""
    nm = norm(_poct("POC-1", "202403150742", "6,8", trigger=trigger))
    report, result = nm.entries
    assert (result.code, result.value_num, result.unit, result.effective) == (
        GLU, 6.8, "mmol/L", "2024-03-15T07:42+01:00")
    assert result.key.startswith("result|POC-2024-03-15T07:42+01:00|GLU-0042^")
    assert result.parent_key == report.key
    assert any("point-of-care result without order number" in w and "OBX-18" in w
               for w in nm.warnings)


def test_a_point_of_care_time_comes_from_the_result_when_obr7_is_empty():
    """OBR-7 left empty, the time only in OBX-14: the reading keeps its identity; the same
    instant written with its offset too (the key holds the instant, not the text)."""
    without = norm(_poct("POC-1", "202403150742", "6,8", obr7=False)).entries[1]
    assert without.key == norm(_poct("POC-2", "202403150742", "6,8")).entries[1].key
    assert without.key == norm(_poct("POC-3", "202403150742+0100", "6,8")).entries[1].key


def test_a_point_of_care_result_without_any_time_is_still_refused():
    """Neither order number nor time: nothing tells this reading from the next one on the
    same meter; refused, saying why and where."""
    with pytest.raises(NormalizationError) as exc:
        norm(_poct("POC-1", "", "6,8"))
    assert (exc.value.code, exc.value.location) == ("HL7_NO_ORDER_NUMBER", "OBR[5]-3")
    assert "nor observation time" in str(exc.value)
    # an ORU^R01 without order number is refused as before: a lab order always has one
    text = _poct("POC-1", "202403150742", "6,8").replace("ORU^R30^ORU_R30", "ORU^R01^ORU_R01")
    with pytest.raises(NormalizationError) as exc:
        norm(text)
    assert str(exc.value) == "OBR[5]-3: no filler or placer order number (OBR-3, OBR-2, ORC)"


def test_point_of_care_readings_resent_corrected_and_repeated(sqlite_ctx):  # noqa: ANN001
    """The data manager sends the 07:42 reading, sends it again after a lost ACK (another
    MSH-10), corrects it (OBX-11 C: the strip was read on the wrong patient's meter profile),
    then the 11:30 reading of the same meter: one reading corrected, one other reading, none
    overwriting the other."""
    ids = _file(sqlite_ctx,
                (_poct("POC-1", "202403150742", "6,8"), "poc-dm"),
                (_poct("POC-2", "202403150742", "6,8"), "poc-dm"),
                (_poct("POC-3", "202403150742", "7,1", status="C"), "poc-dm"),
                (_poct("POC-4", "202403151130", "9,4"), "poc-dm"))
    assert _states(sqlite_ctx, ids) == ["deposited", "duplicate", "deposited", "deposited"]
    assert _results(sqlite_ctx, GLU) == [("6,8", False, "final"), ("7,1", True, "corrected"),
                                         ("9,4", True, "final")]


# -- two laboratories giving the same order number (EI compared with its authority) ----------

def _lab(app: str, facility: str, control_id: str, obr3: str, day: str, value: str,
         status: str = "F") -> str:
    """A potassium of order ``obr3`` (OBR-3 as the lab writes it), sampled that day."""
    return "\r".join([
        _header(app, facility, control_id, f"202403{day}110000"), PID,
        f"OBR|1||{obr3}|IONO^Ionogramme^L|||202403{day}0810|||||||||||||||"
        f"202403{day}1030|||{status}",
        f"OBX|1|NM|{K}^Potassium^LN||{value}|mmol/L|3.5-5.1||||{status}",
    ]) + "\r"


@pytest.mark.parametrize(("obr3", "scope"), [
    ("24031500123", "&SIL-A^LABO-A"),  # a bare number: scoped by who sent it
    ("777^LAB^1.2.250.1.999.1^ISO", "LAB&1.2.250.1.999.1"),  # namespace and universal id
    ("777^LAB", "LAB"),  # either alone: as before
    ("777^^1.2.250.1.999.1^ISO", "1.2.250.1.999.1"),
])
def test_an_order_number_is_keyed_with_its_assigning_authority(obr3, scope):
    """EI (v2.5 2.A.28): a number is unique only within the authority that assigned it."""
    report, result = norm(_lab("SIL-A", "LABO-A", "A-1", obr3, "10", "4,1")).entries
    number = obr3.split("^")[0]
    assert report.key == f"report|{number}|{scope}|IONO"
    assert result.key == f"result|{number}|{scope}|{K}|LN|"
    assert result.parent_key == report.key


_ID = st.text(st.characters(codec="utf-8", exclude_characters="|^~\\&\r\n"), max_size=12)


@settings(max_examples=60, deadline=None)
@given(number=_ID.filter(str.strip), namespace=_ID, universal=_ID)
def test_property_a_scoped_key_unscopes_to_the_key_filed_before(number, namespace, universal):
    """Whatever EI a sender writes, the scoped key's unscoped form is the key earlier versions
    filed (namespace, else universal id): what deposit follows for results filed then."""
    obr3 = "^".join([number, namespace, universal, "ISO" if universal else ""]).rstrip("^")
    try:
        report, result = norm(_lab("SIL-A", "LABO-A", "A-1", obr3, "10", "4,1")).entries
    except NormalizationError:
        return  # an identifier that escapes or blanks to nothing: refused, not this property
    sent = [p.strip() for p in (number, namespace, universal)]
    legacy = sent[1] or sent[2]
    for entry in (report, result):
        parts = entry.key.split("|")
        if "&" in parts[2]:  # scoped by both ids, or by the sender
            assert unscoped_order_key(entry.key).split("|")[2] == legacy
        else:  # one authority alone (or both the same): keyed as before
            assert parts[2] == legacy


@pytest.mark.parametrize(("lab_a", "lab_b"), [
    ("24031500123", "24031500123"),
    ("777^LAB^1.2.250.1.999.1^ISO", "777^LAB^1.2.250.1.999.2^ISO"),
])
def test_two_laboratories_giving_one_order_number_keep_both_results(sqlite_ctx, lab_a, lab_b):  # noqa: ANN001
    """Lab A's potassium of 10 March and lab B's of 15 March, both under order number
    24031500123 (two LIS numbering by date) or both '777' under a namespace both call 'LAB':
    lab B's was filed as a new version of lab A's, whose result vanished from the dossier's
    current view. They are two results now, each current; and lab B's correction corrects
    its own."""
    _file(sqlite_ctx, (_lab("SIL-A", "LABO-A", "A-1", lab_a, "10", "4,1"), "lab-a"),
          (_lab("SIL-B", "LABO-B", "B-1", lab_b, "15", "5,0"), "lab-b"),
          (_lab("SIL-B", "LABO-B", "B-2", lab_b, "15", "5,3", status="C"), "lab-b"))
    assert _results(sqlite_ctx, K) == [("4,1", True, "final"), ("5,0", False, "final"),
                                       ("5,3", True, "corrected")]


def _unscope(ctx) -> None:  # noqa: ANN001
    """Rewrite every stored result and report key as it was before numbers were scoped by
    their authority (what a dossier filed by an earlier version holds)."""
    with ctx.engine.begin() as conn:
        for row in conn.execute(select(entries.c.id, entries.c.key)).all():
            old = unscoped_order_key(row.key)
            if old is not None:
                conn.execute(entries.update().where(entries.c.id == row.id).values(key=old))


def test_results_filed_before_numbers_were_scoped_are_followed(sqlite_ctx):  # noqa: ANN001
    """A preliminary filed under the unscoped key, then its final from the same lab (through
    its new MLLP channel): the final replaces it (one current potassium, not two), and a
    correction after that too. Another lab's order of the same bare number, filed after, is
    not taken for it."""
    ctx = sqlite_ctx
    _file(ctx, (_lab("SIL-A", "LABO-A", "A-1", "24031500123", "10", "4,1", status="P"),
                "lab-a"))
    _unscope(ctx)
    _file(ctx, (_lab("SIL-A", "LABO-A", "A-2", "24031500123", "10", "4,2"), "lab-a-mllp"),
          (_lab("SIL-A", "LABO-A", "A-3", "24031500123", "10", "4,4", status="C"), "lab-a"),
          (_lab("SIL-B", "LABO-B", "B-1", "24031500123", "15", "5,0"), "lab-b"))
    assert _results(ctx, K) == [("4,1", False, "preliminary"), ("4,2", False, "final"),
                                ("4,4", True, "corrected"), ("5,0", True, "final")]
    with ctx.engine.connect() as conn:
        keys = conn.execute(select(entries.c.key).where(entries.c.type == "lab_result")
                            .order_by(entries.c.id)).scalars().all()
    assert keys == [f"result|24031500123||{K}|LN|"] * 3 + [
        f"result|24031500123|&SIL-B^LABO-B|{K}|LN|"]


# -- statuses written as coded elements --------------------------------------------------------

@pytest.mark.parametrize(("obx11", "status", "action"), [
    ("F^Final results^HL70085", "final", "new"),
    ("C^Record coming over is a correction^HL70085", "corrected", "replace"),
    ("D^Deletes the OBX record^HL70085", "entered-in-error", "delete"),
    ("P^Preliminary^HL70085", "preliminary", "new"),
])
def test_a_result_status_written_as_a_coded_element_is_its_code(obx11, status, action):
    """OBX-11 and OBR-25 are ID fields up to v2.9 (tables 0085, 0123), but a v2.7+ engine
    writing every coded field as a CWE sends 'C^Record coming over is a correction^HL70085':
    read whole it was an unknown status, the correction filed as a new result of unknown
    status beside the value it corrects. The first component is the code, with a warning."""
    text = _lab("SIL-A", "LABO-A", "A-1", "24C0315-07^LABO-A", "10", "4,1", status="F")
    text = text.replace("||||F\r", f"||||{obx11}\r").replace(
        "|||F\rOBX", "|||C^Correction^HL70123\rOBX")
    nm = norm(text)
    report, result = nm.entries
    assert (result.status, result.action) == (status, action)
    assert (report.status, report.action) == ("corrected", "replace")
    assert sorted(w.split(":")[0] for w in nm.warnings if "sent with components" in w) == [
        "OBR[3]-25", "OBX[4]-11"]


# -- v2.7+ participations ----------------------------------------------------------------------

RPPS = "^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS"


@pytest.mark.parametrize("where", ["after the ORC", "after the OBR"])
def test_the_ordering_provider_named_by_a_prt_is_the_reports(where):
    """v2.7 deprecates OBR-16 for a PRT in role OP (table 0912), after the ORC (COMMON_ORDER)
    or the OBR; the report did not say who ordered the tests. Read as OBR-16 is, RPPS kept;
    an OBR-16 sent beside it keeps winning."""
    prt = f"PRT||AD||OP^Ordering Provider^HL70912|10003791976^MARTIN^Paul^^^DR{RPPS}"
    orc = "ORC|RE|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-A"
    obr = ("OBR|1|CMD-1^SERVICE-NEPHRO|24C0315-07^LABO-A|IONO^Ionogramme^L|||202403100810"
           "|||||||||||||||202403101030|||F")
    obx = f"OBX|1|NM|{K}^Potassium^LN||4,1|mmol/L|3.5-5.1||||F"
    order = [orc, prt, obr] if where == "after the ORC" else [orc, obr, prt]
    header = _header("SIL-A", "LABO-A", "A-1", "20240310110000", version="2.8")
    report = norm("\r".join([header, PID, *order, obx]) + "\r").entries[0]
    assert report.details["ordering_provider"] == "DR Paul MARTIN"
    assert report.details["ordering_provider_id"] == {
        "id": "10003791976", "authority": "1.2.250.1.71.4.2.1", "type": "RPPS"}
    obr16 = obr.replace("||||||||||||||", "|||||||||^DUBOIS^Anne^^^DR|||||", 1)
    order = [orc, prt, obr16]
    report = norm("\r".join([header, PID, *order, obx]) + "\r").entries[0]
    assert report.details["ordering_provider"] == "DR Anne DUBOIS"


# -- SN ratios and ranges typed whole ----------------------------------------------------------

def _serology(value: str) -> str:
    return "\r".join([
        _header("SIL-A", "LABO-A", "A-1", "20240310110000", version="2.3.1"), PID,
        "OBR|1||24C0310-11^LABO-A|SERO^Sérologie^L|||202403100810|||||||||||||||"
        "202403101030|||F",
        f"OBX|1|SN|22496-4^Rubella virus Ab [Titer] in Serum^LN||{value}||<1:8||||F",
    ]) + "\r"


@pytest.mark.parametrize(("sent", "comparator", "num1", "separator", "num2"), [
    ("1:128", "", "1", ":", "128"),  # no component at all
    ("1/64", "", "1", "/", "64"),
    ("10-20", "", "10", "-", "20"),  # a range
    ("^1:128", "", "1", ":", "128"),  # whole in num1
    ("<^1:8", "<", "1", ":", "8"),  # below the first dilution
])
def test_an_sn_ratio_typed_as_one_text_is_the_ratio(sent, comparator, num1, separator, num2):
    """SN is comparator ^ num1 ^ separator ^ num2 (v2.5 2.A.71); a serology titre typed whole
    ('1:128', '^1:128') failed the whole message (OBX_BAD_NUMBER) where '<0.5' typed whole
    was read. It is the ratio it spells, said; a signed or worded value still fails."""
    nm = norm(_serology(sent))
    result = nm.entries[1]
    assert result.details["sn"] == {"comparator": comparator, "num1": num1,
                                    "separator": separator, "num2": num2}
    assert (result.value, result.value_num) == (f"{comparator}{num1}{separator}{num2}", None)
    assert any("SN ratio or range written" in w for w in nm.warnings)
    for refused in ("-1:128", "1:", "positif 1:128"):
        with pytest.raises(NormalizationError) as exc:
            norm(_serology(refused))
        assert exc.value.code == "OBX_BAD_NUMBER"


def test_two_laboratories_in_one_batch_each_follow_their_own(sqlite_ctx):  # noqa: ANN001
    """Lab A's final and lab B's result of the same bare number drained in one batch, lab A's
    preliminary filed before numbers were scoped: lab A's final replaces its preliminary,
    lab B's stands apart (one batch may name one old key for two laboratories)."""
    ctx = sqlite_ctx
    _file(ctx, (_lab("SIL-A", "LABO-A", "A-1", "24031500123", "10", "4,1", status="P"),
                "lab-a"))
    _unscope(ctx)
    intake(ctx.engine, ctx.archive, [
        Received(_lab("SIL-A", "LABO-A", "A-2", "24031500123", "10", "4,2").encode(), "lab-a",
                 "file", file_name="a2.hl7"),
        Received(_lab("SIL-B", "LABO-B", "B-1", "24031500123", "15", "5,0").encode(), "lab-b",
                 "file", file_name="b1.hl7")])
    drain(ctx)
    assert _results(ctx, K) == [("4,1", False, "preliminary"), ("4,2", True, "final"),
                                ("5,0", True, "final")]


# -- the original text of a test's identifier --------------------------------------------------

def test_a_test_named_only_by_its_original_text_keeps_that_name():
    """CWE.9 (original text) is how v2.7+ and LRI senders name a test they code without its
    text ('2823-3^^LN^^^^2.74^^Kaliémie'): it was dropped, the result shown by its number
    alone. It is the display when CWE.2 is empty, for OBX-3 and OBR-4; a CWE.2 sent wins."""
    text = "\r".join([
        _header("SIL-A", "LABO-A", "A-1", "20240310110000", version="2.8"), PID,
        "OBR|1||24C0310-11^LABO-A|24326-1^^LN^IONO^^L^2.74^^Ionogramme sanguin|||"
        "202403100810|||||||||||||||202403101030|||F",
        f"OBX|1|NM|{K}^^LN^^^^2.74^^Kaliémie||4,1|mmol/L|3.5-5.1||||F",
        "OBX|2|NM|SIL-NA^^L^^^^^^Natrémie||139|mmol/L|136-145||||F",
        "OBX|3|NM|2075-0^Chlorure^LN^^^^2.74^^Chlore sanguin||101|mmol/L|98-107||||F",
    ]) + "\r"
    report, k, na, cl = norm(text).entries
    assert report.display == "Ionogramme sanguin"
    assert (k.display, na.display, cl.display) == ("Kaliémie", "Natrémie", "Chlorure")


# -- the order's priority ----------------------------------------------------------------------

@pytest.mark.parametrize(("version", "where", "priority"), [
    ("2.5.1", "TQ1-9", {"code": "S", "meaning": "Stat"}),  # IHE LAB-3, LRI
    ("2.3.1", "ORC-7.6", {"code": "S", "meaning": "Stat"}),  # a TQ's priority component
    ("2.3", "OBR-5", {"code": "A", "meaning": "ASAP"}),
    ("2.5", "TQ1-9", {"code": "TS300"}),  # timing critical within 300 s: kept as sent
])
def test_the_priority_of_an_order_is_kept_on_its_report(version, where, priority):
    """A potassium asked stat from the emergency ward: TQ1-9 (table 0485, after the OBR of an
    ORU, after the ORC of an OUL), the priority component of ORC-7/OBR-27 in v2.3-2.4, OBR-5
    in v2.3. None was read: the report did not say the result was urgent."""
    orc = "ORC|RE|CMD-1^URGENCES|24C0315-07^LABO-A"
    obr = ("OBR|1|CMD-1^URGENCES|24C0315-07^LABO-A|IONO^Ionogramme^L|||202403100810"
           "|||||||||||||||202403101030|||F")
    order = [orc, obr]
    if where == "TQ1-9":
        order.append(f"TQ1|||||||||{priority['code']}^^HL70485")
    elif where == "ORC-7.6":
        order[0] = orc + "||||^^^^^S"
    else:
        order[1] = obr.replace("IONO^Ionogramme^L|", "IONO^Ionogramme^L|A")
    header = _header("SIL-A", "LABO-A", "A-1", "20240310110000", version=version)
    obx = f"OBX|1|NM|{K}^Potassium^LN||6,1|mmol/L|3.5-5.1|H|||F"
    report = norm("\r".join([header, PID, *order, obx]) + "\r").entries[0]
    assert report.details["priority"] == priority
    assert "priority" not in norm("\r".join([header, PID, orc, obr, obx]) + "\r"
                                  ).entries[0].details


def test_the_priority_of_an_oul_order_follows_its_orc():
    """OUL^R22 (IHE LAB-3): SPM, OBR, ORC, TQ1: the TQ1 after the ORC is that order's."""
    text = "\r".join([
        _header("SIL-A", "LABO-A", "A-1", "20240310110000", "R22", "2.5.1")
        .replace("ORU^R22^ORU_R22", "OUL^R22^OUL_R22"), PID,
        "SPM|1|SP-0310-42^LABO-A||SER^Sérum^HL70487|||||||||||||20240310080500",
        "OBR|1|CMD-1^URGENCES|24C0310-07^LABO-A|IONO^Ionogramme^L|||20240310080500",
        "ORC|SC|CMD-1^URGENCES|24C0310-07^LABO-A||CM", "TQ1|||||||||S^Stat^HL70485",
        f"OBX|1|NM|{K}^Potassium^LN||6,1|mmol/L|3.5-5.1|H|||F",
        "OBR|2|CMD-2^URGENCES|24C0310-08^LABO-A|CREA^Créatinine^L|||20240310080500",
        "ORC|SC|CMD-2^URGENCES|24C0310-08^LABO-A||CM",
        "OBX|1|NM|2160-0^Créatinine^LN||78|umol/L|45-84|N|||F",
    ]) + "\r"
    reports = [e for e in norm(text).entries if e.type == "lab_report"]
    assert [r.details.get("priority") for r in reports] == [{"code": "S", "meaning": "Stat"},
                                                            None]
