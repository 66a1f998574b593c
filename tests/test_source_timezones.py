"""A source's declared time zone: the times it sends without offset are read in it.

Why: HL7 v2.5 2.A.22 says a time without offset is the sender's local time. French labs
almost never write an offset; for a lab in La Réunion (UTC+4, no summer time) or in
Guadeloupe (UTC-4), reading them at Paris's offset files every result hours off, and a CDA
of the same lab (whose times carry the offset, as CI-SIS asks) no longer meets its HL7v2
twin (dedupe level 4). MSH-7's offset is read when nothing is declared, but it is an offset
at one instant: a US lab's winter times came out an hour off in summer.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from parsers.hl7v2 import parse_message
from pipelines.settings import SettingsError, load_settings
from tests.test_lab_normalizer import MAPS, MSH, oru

OBX = "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F|||{t}|||||{t}"


def normalized(text: str, zone: str | None):
    from normalizers.lab import normalize_message

    msg = parse_message(text.encode())
    msg.zone = zone
    return normalize_message(msg, "demo-lab", MAPS)


def test_declared_zone_reads_times_without_offset_in_it():
    text = oru(OBX.format(t="202407150930"))  # MSH-7 without offset, as French labs send
    report, gly = normalized(text, "Indian/Reunion").entries
    assert report.effective == "2024-03-15T08:10+04:00"  # OBR-7
    assert (gly.effective, gly.issued) == ("2024-07-15T09:30+04:00", "2024-07-15T09:30+04:00")
    report, gly = normalized(text, None).entries  # undeclared: Paris's, summer time included
    assert (report.effective, gly.effective) == ("2024-03-15T08:10+01:00",
                                                 "2024-07-15T09:30+02:00")


def test_declared_zone_keeps_summer_time_that_msh7_cannot_give():
    """A US lab whose MSH-7 says -0400 in July: its January result is at -05:00 when its
    zone is declared (a fixed offset from MSH-7 alone would say -04:00)."""
    header = MSH.replace("|20240315104500|", "|20240715104500-0400|")
    text = oru(OBX.format(t="202401150930"), header=header)
    assert normalized(text, None).entries[1].effective == "2024-01-15T09:30-04:00"
    assert normalized(text, "America/New_York").entries[1].effective == \
        "2024-01-15T09:30-05:00"


def test_offsets_sent_are_kept_whatever_the_zone():
    text = oru(OBX.format(t="202407150930+0200"))
    assert normalized(text, "Indian/Reunion").entries[1].effective == "2024-07-15T09:30+02:00"


def test_settings_read_zones_from_sources_table_and_environment(tmp_path):
    (tmp_path / "dmp.toml").write_text(
        '[sources.labo-reunion]\nsending_application = "SIL"\ntimezone = "Indian/Reunion"\n'
        '[source_timezones]\nlabo-cayenne = "America/Cayenne"\n', encoding="utf-8")
    settings = load_settings(env={"DMP_HOME": str(tmp_path)})
    assert settings.source_zone("labo-reunion") == "Indian/Reunion"
    assert settings.source_zone("labo-cayenne") == "America/Cayenne"
    assert settings.source_zone("labo-lyon") is None
    settings = load_settings(env={"DMP_HOME": str(tmp_path),
                                  "DMP_SOURCE_TIMEZONES": "labo-cayenne=Europe/Paris,"
                                                          "*=America/Guadeloupe"})
    assert settings.source_zone("labo-cayenne") == "Europe/Paris"
    assert settings.source_zone("labo-lyon") == "America/Guadeloupe"


@pytest.mark.parametrize("conf, where", [
    ('[sources.labo-reunion]\ntimezone = "Reunion"\n', r"\[sources.labo-reunion\] timezone"),
    ('[source_timezones]\nlabo-x = "+04:00"\n', "source_timezones 'labo-x'"),
    ('[source_timezones]\nlabo-x = "../../etc/passwd"\n', "source_timezones 'labo-x'"),
    ('source_timezones = "Indian/Reunion"\n', "source_timezones must be a table"),
])
def test_a_zone_that_is_not_iana_is_refused_at_start(tmp_path, conf, where):
    """A typo would file every time of that source hours off: refused when settings load,
    naming the setting."""
    (tmp_path / "dmp.toml").write_text(conf, encoding="utf-8")
    with pytest.raises(SettingsError, match=where):
        load_settings(env={"DMP_HOME": str(tmp_path)})


def test_processing_applies_the_zone_of_the_source_it_came_through(ctx):  # noqa: ANN001
    """Through the store (SQLite and PostgreSQL): the same message from a declared source
    and from an undeclared one is filed at the declared zone's offset and at Paris's."""
    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from pipelines.report import show_dossier, show_import

    ctx.settings = replace(ctx.settings, auto_create=True,
                           source_timezones={"labo-reunion": "Indian/Reunion"})
    ids = []
    for n, source in enumerate(("labo-reunion", "labo-lyon"), 1):
        text = oru(OBX.format(t="202407150930"), header=MSH.replace("MSG-0001", f"MSG-{n}"))
        ids += intake(ctx.engine, ctx.archive, [Received(data=text.encode(), source=source,
                                                         channel="file")])[0].message_ids
        drain(ctx)
    assert [show_import(ctx.engine, i)["status"] for i in ids] == ["deposited", "deposited"]
    patient = show_import(ctx.engine, ids[0])["patient_id"]
    times = {e["import_id"]: e["effective"] for e in show_dossier(
        ctx.engine, str(patient), history=True)["entries"] if e["type"] == "lab_result"}
    assert times == {ids[0]: "2024-07-15T09:30+04:00", ids[1]: "2024-07-15T09:30+02:00"}


def test_every_patient_of_a_message_gets_the_zone_of_its_source():
    """An ORU of several patients is normalized per patient: each part keeps the zone."""
    from tests.test_lab_normalizer import OBR_2, ORC_2, PID_2

    obx = OBX.format(t="202407150930")
    nm = normalized(oru(obx, tail=(PID_2, ORC_2, OBR_2, obx)), "Indian/Reunion")
    times = [e.effective for e in nm.entries if e.type == "lab_result"]
    assert times == ["2024-07-15T09:30+04:00"] * 2
