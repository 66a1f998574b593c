"""Identity and dedupe round 5: what real senders still got wrong. Invented patients, INS
with made-up digits and valid keys, real LOINC codes and realistic values."""

from __future__ import annotations

from dossiers.deposit import fact_of
from normalizers.model import Entry
from tests.test_dedup_channels import cholesterol, cr_bio, file, links, oru

GLUCOSE = "2345-7"  # Glucose [Mass/volume] in Serum or Plasma


def result(effective: str) -> Entry:
    return Entry(type="lab_result", key="k", source_ref="OBX[1]", system="LN", code=GLUCOSE,
                 value="0.92", value_num=0.92, unit="g/L", effective=effective)


# -- dedupe: a time to the hour is not the same instant as a time to the minute --------------
def test_a_result_to_the_hour_is_another_fact_than_one_to_the_minute() -> None:
    """OBX-14 '2024031508+0100' (to the hour) was read as 08:00: the same fact as a result
    taken at 08:00 to the minute. A precision is part of what was stated (as to the day)."""
    hour = fact_of(result("2024-03-15T08+01:00"))
    assert hour != fact_of(result("2024-03-15T08:00+01:00"))
    assert hour == fact_of(result("2024-03-15T07Z"))  # the same hour, in UTC
    assert hour != fact_of(result("2024-03-15T09+01:00"))
    assert fact_of(result("2024-03-15T08+05:30")) != fact_of(result("2024-03-15T02:30Z"))
    # minutes stay what they were: seconds dropped, offsets folded to UTC
    assert fact_of(result("2024-03-15T08:00:42+01:00")) == fact_of(result("2024-03-15T07:00Z"))


def test_oru_to_the_hour_and_cr_bio_to_the_minute_stay_two_entries(sqlite_ctx) -> None:  # noqa: ANN001
    lab = file(sqlite_ctx, oru(obx14="2025020310+0100"), "LABM")
    hospital = file(sqlite_ctx, cr_bio(when="202502031000+0100"), "chu")
    first, second = cholesterol(sqlite_ctx)
    assert links(sqlite_ctx, first.id) == [(lab.id, "created")]
    assert links(sqlite_ctx, second.id) == [(hospital.id, "created")]


def test_oru_and_cr_bio_both_to_the_hour_are_one_entry(sqlite_ctx) -> None:  # noqa: ANN001
    lab = file(sqlite_ctx, oru(obx14="2025020310+0100"), "LABM")
    hospital = file(sqlite_ctx, cr_bio(when="2025020310+0100"), "chu")
    (entry,) = cholesterol(sqlite_ctx)
    assert links(sqlite_ctx, entry.id) == [(lab.id, "created"), (hospital.id, "confirmed")]
