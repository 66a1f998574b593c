"""The patient's death as a message states it: HL7 PID-29 / PID-30, CDA sdtc:deceasedInd /
sdtc:deceasedTime.

Why a module of its own: a death recorded on a dossier ends the patient's own access to it
(dossiers/access.py) and makes every later entry doubtful (pipelines/death.py), so what a
message says is read strictly, the same way for every format:
- PID-30 holds a code of tables/death_indicators.csv (Y, N); anything else is refused
  (ADT_DEATH_UNKNOWN_CODE) rather than guessed. PID-29 without PID-30 states a death (HL7
  v2.5 3.4.2.29: the date and time "at which the patient death occurred"), with a warning.
- PID-30 = N beside a PID-29 contradicts itself (ADT_DEATH_CONTRADICTORY).
- The HL7 null "" in PID-30 (or in PID-29 with PID-30 empty) erases a death: the patient is
  stated alive, as PID-30 = N does (HL7 v2.5 2.5.3: "" deletes the value held).
- A death dated before the birth date of the same PID (ADT_DEATH_BEFORE_BIRTH) or after the
  message itself was stated, or after now (ADT_DEATH_IN_FUTURE), is no death: refused. Dates
  are compared at the precision sent (a death in '2024-03' is not before a birth on
  2024-03-10). Errors name the field, never the date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from normalizers.dates import hl7_ts_to_iso
from normalizers.fields import first_rep, loc, text, ts_field
from normalizers.model import DeathStatement, NormalizationError
from normalizers.tabledata import table
from parsers.hl7v2.er7 import Message, Segment

DEATH_TIME, DEATH_INDICATOR = 29, 30
HL7_NULL = '""'
# A clock a few minutes ahead at the sender (EVN-2 stamped by another machine than the one
# that typed the death) is no death in the future.
CLOCK_SKEW = timedelta(minutes=15)
_PARIS = ZoneInfo("Europe/Paris")  # what a French sender means by a time without offset


@cache
def death_indicators() -> dict[str, bool]:
    """{PID-30 code: deceased} (tables/death_indicators.csv)."""
    return {row["code"].upper(): row["deceased"].lower() == "yes"
            for row in table("death_indicators")}


def pid_death(msg: Message, pid: Segment, warnings: list[str]) -> DeathStatement | None:
    """What PID-29 / PID-30 say; None when both are empty.

    Raises NormalizationError ADT_DEATH_UNKNOWN_CODE (PID-30), ADT_DEATH_CONTRADICTORY
    (PID-30 N with a PID-29), HL7_BAD_DATE (PID-29)."""
    raw_indicator = first_rep(msg, pid, DEATH_INDICATOR).strip()
    raw_time = first_rep(msg, pid, DEATH_TIME).strip()
    where_ind, where_time = loc(pid, DEATH_INDICATOR), loc(pid, DEATH_TIME)
    if raw_indicator == HL7_NULL or (raw_time == HL7_NULL and not raw_indicator):
        return DeathStatement(False, None, where_ind if raw_indicator else where_time)
    indicator = text(msg, raw_indicator.split(msg.delimiters.component)[0]).strip().upper()
    time = ts_field(msg, pid, DEATH_TIME) if raw_time and raw_time != HL7_NULL else None
    if not indicator and time is None:
        return None
    if not indicator:
        warnings.append(f"{where_time}: death date and time without the death indicator "
                        "(PID-30): read as a death")
        return DeathStatement(True, time, where_time)
    deceased = death_indicators().get(indicator)
    if deceased is None:
        raise NormalizationError(
            "ADT_DEATH_UNKNOWN_CODE", f"{where_ind}: unknown death indicator "
            f"{indicator[:4]!r} (expected {', '.join(sorted(death_indicators()))})",
            where_ind)
    if not deceased and time is not None:
        raise NormalizationError(
            "ADT_DEATH_CONTRADICTORY", f"{where_ind}: says the patient is not deceased (N) "
            f"while {where_time} dates a death: which is true is not guessed", where_ind)
    return DeathStatement(deceased, time, where_ind)


def cda_death(indicator: str, time: str | None, path: str,
              warnings: list[str]) -> DeathStatement | None:
    """A CDA recordTarget's ``sdtc:deceasedInd/@value`` ('true', 'false') and
    ``sdtc:deceasedTime`` (ISO already); None when neither is sent. A value that is no
    boolean is said and read as nothing said (a document is not refused for it)."""
    said = indicator.strip().lower()
    if said not in ("", "true", "false"):
        warnings.append(f"{path}/sdtc:deceasedInd: value is not a boolean: ignored")
        said = ""
    if not said and time is None:
        return None
    if said == "false":
        if time is not None:
            warnings.append(f"{path}/sdtc:deceasedInd: false beside a sdtc:deceasedTime: "
                            "no death read")
        return DeathStatement(False, None, f"{path}/sdtc:deceasedInd")
    return DeathStatement(True, time, f"{path}/sdtc:deceasedInd" if said
                          else f"{path}/sdtc:deceasedTime")


def check_death(death: DeathStatement, birth_date: str, stated_at: str | None,
                now: datetime | None = None) -> None:
    """NormalizationError ADT_DEATH_BEFORE_BIRTH / ADT_DEATH_IN_FUTURE when the death's date
    cannot be true: before the birth date, after the statement's own time (EVN-2, MSH-7) or
    after now (beyond ``CLOCK_SKEW``)."""
    if not death.deceased or not death.time:
        return
    if birth_date and _before(death.time, birth_date):
        raise NormalizationError(
            "ADT_DEATH_BEFORE_BIRTH", f"{death.location}: the death is dated before the "
            "patient's birth date (PID-7): not recorded", death.location)
    start = period_start(death.time)
    latest = datetime.now(UTC) if now is None else now
    if stated_at:
        try:
            latest = min(latest, period_start(stated_at))
        except ValueError:
            pass
    if start is not None and start > latest + CLOCK_SKEW:
        raise NormalizationError(
            "ADT_DEATH_IN_FUTURE", f"{death.location}: the death is dated after the message "
            "that states it (EVN-2/MSH-7) or after now: not recorded", death.location)


def _before(death: str, birth: str) -> bool:
    """The death's date is before the birth date, at the precision both have."""
    n = min(len(death[:10]), len(birth[:10]))
    return death[:n] < birth[:n]


def period_start(iso: str) -> datetime | None:
    """The first instant of an ISO value of any precision, in UTC (a date alone is its
    midnight in Paris); None when it is no date."""
    value = iso.strip()
    if len(value) == 4:
        value += "-01-01"
    elif len(value) == 7:
        value += "-01"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_PARIS)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


def period_end(iso: str) -> datetime | None:
    """The first instant after an ISO value's period ('2024-03-15': midnight the 16th in
    Paris; to the minute: the next minute); None when it is no date."""
    start = period_start(iso)
    if start is None:
        return None
    value = iso.strip()
    if len(value) <= 10:  # a year, a month, a day: the next one's midnight in Paris
        y, m, d = int(value[:4]), int(value[5:7] or 1), int(value[8:10] or 1)
        if len(value) == 4:
            nxt = datetime(min(y + 1, 9999), 1, 1, tzinfo=_PARIS)
        elif len(value) == 7:
            nxt = datetime(y + m // 12, m % 12 + 1, 1, tzinfo=_PARIS)
        else:
            nxt = datetime(y, m, d, tzinfo=_PARIS) + timedelta(days=1)
        return nxt.astimezone(UTC)
    clock = value[11:].replace("Z", "+").split("+")[0].split("-")[0]
    step = {2: timedelta(hours=1), 5: timedelta(minutes=1)}.get(len(clock),
                                                                 timedelta(seconds=1))
    return start + step


def feeding_pid_death(msg: Message, pid: Segment, birth_date: str,
                      warnings: list[str]) -> DeathStatement | None:
    """``pid_death`` for a message that feeds the dossier (ORU, MDM): never applied from
    there (pipelines/death.py compares it with the dossier's), so a field that cannot be
    read or a death that cannot be true is a warning (its code and field), not a failure of
    the results it carries."""
    try:
        death = pid_death(msg, pid, warnings)
        if death is not None:
            check_death(death, birth_date, None)
    except NormalizationError as exc:
        warnings.append(f"{exc.code}: {exc}; the death it states is not read")
        return None
    return death


def feeding_cda_death(indicator: str, raw_time: str | None, birth_date: str, path: str,
                      warnings: list[str]) -> DeathStatement | None:
    """``cda_death`` of a CDA recordTarget, its sdtc:deceasedTime read (``raw_time``, the TS
    value) and checked as ``feeding_pid_death`` does: a warning, never a failure."""
    time = None
    if raw_time:
        try:
            time = hl7_ts_to_iso(raw_time)
        except ValueError:
            warnings.append(f"CDA_BAD_DATE: {path}/sdtc:deceasedTime: not a date, ignored")
    death = cda_death(indicator, time, path, warnings)
    if death is None:
        return None
    try:
        check_death(death, birth_date, None)
    except NormalizationError as exc:
        warnings.append(f"{exc.code}: {exc}; the death it states is not read")
        return None
    return death
