"""Message-wide checks said as warnings: times ahead of the message, orders without request, empty
documents, free text cut to fit."""

from __future__ import annotations

from datetime import datetime, timedelta

from normalizers.dates import hl7_ts_to_iso
from normalizers.fields import comps, first_rep, loc, part, text
from normalizers.lab.common import Ctx
from normalizers.lab.groups import NULL, Group
from normalizers.model import LAB_RESULT, Entry, NormalizationError, shorten_prose
from parsers.hl7v2.er7 import Message


def message_time(msg: Message, zone: str) -> tuple[str, datetime | None]:
    """MSH-7 as ISO 8601 and as an instant, for ``after_message``; ('', None) when it is
    no HL7 date/time with a time to the minute (said by ``header_warnings``; a message
    dated to the day or the hour may have been sent at its end)."""
    sent = text(msg, part(comps(msg, first_rep(msg, msg.msh, 7)), 1))
    try:
        iso = hl7_ts_to_iso(sent, zone) if sent else ""
        at = datetime.fromisoformat(iso) if iso[13:14] == ":" else None
    except ValueError:
        return "", None
    return (iso, at) if at is not None and at.tzinfo is not None else ("", None)


# How far ahead of the message a time may be without a word: an instrument's or a LIS's
# clock a few minutes off is common and tells nothing
_AHEAD = timedelta(minutes=10)


def after_message(ctx: Ctx, when: str, where: str) -> None:
    """Say a collection or observation time later than the message itself (MSH-7): a
    result is observed before it is sent. A typo in a year ('2042'), an instrument left on
    summer time, times in UTC beside times in Paris time were filed as sent, a result on
    top of every trend, without a word. Filed as sent all the same (nothing tells the true
    time). A date is compared with the message's day, a time with its instant (a time to
    the hour by the hour's start)."""
    if "T" in when:
        try:
            late = datetime.fromisoformat(when) - ctx.sent_at > _AHEAD  # type: ignore[operator]
        except (ValueError, TypeError):  # no offset to compare with: nothing said
            return
    else:  # '2024-03-16', '2042-03', '2042': the day, month or year the message was sent
        late = when > ctx.sent_iso[:len(when)]
    if late:
        ctx.warnings.append(f"{where}: later than the message itself (MSH-7): a typo, or a "
                            "clock or time zone of the sender's that is wrong? filed as sent")


def no_order(msg: Message, warnings: list[str]) -> None:
    """A results message without any OBR (v2.5 7.3.1 requires one per patient; a LIS
    sending 'Résultats à suivre' as an NTE after the PID, or a PID alone) files nothing:
    it was 'deposited, 0 entries' without a word, its comments dropped. Said, with how many
    comments are not filed (never their text); an ORC alone is said by
    ``orders_without_request``."""
    if any(s.name == "ORC" for s in msg.segments):
        return
    pid = msg.first("PID")
    notes = sum(1 for s in msg.segments if s.name == "NTE")
    lost = f"; its {notes} comment(s) (NTE) are not filed" if notes else ""
    warnings.append(f"{loc(pid) if pid is not None else 'MSH'}: no OBR (observation "
                    f"request) in the message: no order, no result, nothing filed{lost}")


def orders_without_request(msg: Message, groups: list[Group], warnings: list[str]) -> None:
    """An ORC that is no order's own (no OBR follows it before the next ORC, PID or the end:
    v2.5 7.3.1 requires one) has nothing to file: said in a warning, with its ORC-1 (a
    cancellation 'CA' sent that way is not applied). It was dropped without a word."""
    own = {g.orc.index for g in groups if g.own_orc and g.orc is not None}
    for seg in msg.segments:
        if seg.name == "ORC" and seg.index not in own:
            code = text(msg, first_rep(msg, seg, 1))[:2]
            warnings.append(f"{loc(seg)}: order control{f' {code!r}' if code else ''} without "
                            "an OBR (observation request) after it: nothing filed for it")


def empty_request(g: Group, warnings: list[str]) -> bool:
    """An OBR that says nothing (no field valued beyond its set id: 'OBR|', 'OBR|2', as a
    sender's template leaves a last order group unfilled) with nothing under it (no OBX,
    SPM nor NTE): no order to file, said in a warning. It was filed as a report of no test,
    no date and unknown status, under the order number of the ORC before it."""
    if g.observations or g.specimens or g.notes:
        return False
    if any(value.strip() and value != NULL for value in g.obr.fields[2:]):
        return False
    warnings.append(f"{loc(g.obr)}: observation request with no field valued (no test, no "
                    "order number) and no result: nothing filed for it")
    return True


def empty_documents(empty: list[NormalizationError], entries: list[Entry],
                    warnings: list[str]) -> None:
    """An empty ED (ED_EMPTY) fails the message when the message is about that document;
    beside results, the results are filed and the empty document is not, with a warning.
    Why: filed, an empty document was a blank current version (a replacement hid the report);
    failing the whole ORU for it kept a validated potassium out of the dossier."""
    if not empty:
        return
    if not any(e.type == LAB_RESULT for e in entries):
        raise empty[0]
    for exc in empty:
        warnings.append(f"{exc.location}: the document is empty (no data in the ED): not "
                        "filed; the results of the message are")


# Free text the sender writes as it likes, stored in bounded columns (normalizers/model.py).
# Only those two are prose in practice; an over-long unit, code or name is refused
# (FIELD_TOO_LONG), never shortened: it is no unit or code any more.
_FREE_TEXT = ("reference_range", "interpretation")


def fit_range_text(entry: Entry, warnings: list[str]) -> None:
    """A reference range written out in words ('Phase folliculaire : 2,5 à 10,2 UI/L ; ...')
    is shortened (``shorten_prose``) rather than failing the whole message as
    FIELD_TOO_LONG. Called only once the message's sizes were found too long
    (NormalizedMessage checks them), so that the common case pays nothing."""
    shorten_prose(entry, _FREE_TEXT, warnings)
