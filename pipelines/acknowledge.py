"""Acknowledged intake: a group of received HL7v2 frames -> stored -> their ACKs.

The MLLP listener hands us every frame that arrived while the previous group was being
stored (group commit: one archive sync and one ledger commit for many connections), and sends
back what we return. The rules:

- AA (CA in enhanced mode) only once the frame's bytes are in the archive and its ledger row
  is committed. If storing fails, the whole group gets AR (CE) with HL7 error 207: the sender
  keeps the message and sends it again later. No AA, ever, for what is not stored.
- A frame we refuse (no readable MSH or unusable encoding characters, sender not declared,
  peer not allowed for that sender, frame over the size limit, a message type (MSH-9) that
  no normalizer reads: HL7 v2.5 2.9.2 has the receiver check MSH-9 before accepting; no
  control id in MSH-10, which every message is filed and acknowledged by; a CDA document
  or a PDF pushed without the HL7 message that carries it, MLLP_BARE_DOCUMENT) is
  still archived and recorded as a failed import, then answered AR (CR in enhanced mode)
  with an ERR saying why: AE or AR as its code's row of tables/ack_codes.csv says, as for a
  processed message. Table 0008: AR when MSH-9/11/12 is not accepted or the sender is
  refused (sending it again unchanged may work elsewhere or later), AE when the message
  itself is wrong (a malformed MSH, unusable encoding characters: sent again unchanged, it
  would fail again).
- In application mode the stored messages are processed before answering: AE with an ERR
  (segment, field, HL7 error code, our code and text) for a malformed or invalid message, AR
  for a type refused from its content (an ADT^A43 identifier move); AA once filed, quarantined
  (held for an admin) or a duplicate; AA with a warning ERR for a draft held back until
  signed (ledger 'held'), and with one warning ERR per document it carried that was filed
  unread (a CDA or PDF in an OBX ED that could not be read: ``pipelines.unread_documents``).
  A batch whose envelope is wrong (BTS-1 or FTS-1 count not reached, a BHS without its BTS)
  is answered AE even when every message it holds was filed: some are missing.
- Enhanced mode (MSH-15/16 valued, as CI-SIS senders do with AL/NE): the commit ACK (CA, CE,
  CR) is sent as MSH-15 asks (AL always, NE never, ER only on error, SU only on success). If
  MSH-16 asks for an application ACK (AL, ER, SU), the message is processed before answering,
  in either mode: MSH-16 is the sender's request, not ours to ignore, and a sender asking
  NE/AL got no answer at all in accept mode. Where that ACK goes (``pipelines.app_acks``):
  the source's return route when declared; with none, on the connection when it is the one
  reply (no commit ACK sent), else held (a sender reads one reply per message), or both on
  the connection for a source declared to read both. With MSH-16 NE the message is left to
  the background worker; NE/NE gets no answer, as table 0155 says.

- MLLP release 2: a source declared so (``Source.mllp_release``) is sent the commit
  acknowledgement block (content 0x06) once its frame is stored, before its HL7 ACKs, or
  the NAK block (0x15) alone when the frame could not be stored: it sends the frame again
  on a NAK, and would take an AR 207 after it for the block answering that resend.

- An acknowledgement received (MSH-9.1 ACK: an engine routing its ACKs here, a peer
  acknowledging our ACK) is stored and recorded as refused, and never answered: answered
  AR, it was acknowledged again by such a peer, in a loop. A batch of ACKs alone gets no
  answer either, nor an empty batch whose BHS-12 names the batch it answers.

A sender that retransmits after a lost ACK gets AA again; the repeat is recorded as a
duplicate (dedupe level 1) and files nothing twice.

Batches (HL7 v2.5 2.10.3). A frame whose first segment is FHS or BHS is a batch, and its
sender waits for one MLLP answer holding a batch (2.10.3.3 "Acknowledging batches", option
a: "all messages are acknowledged in the response batch", whose "format is a batch of
individual messages"); NextGen/Mirth dropped one frame per message as a bug for that reason
(connect issue #3161: "the client is only expecting one MLLP payload"). So the answer is one
frame: for each received batch a BHS (BHS-3..6 the received ones swapped, BHS-7 now, BHS-11
a new control id, BHS-12 the received BHS-11, the reference batch control id), the ACKs of
its messages, a BTS whose BTS-1 counts the ACK messages in it. No FHS/FTS around them, even
when the frame had an FHS: the response is "a batch" in 2.10.3.3 and FHS is optional
(2.10.3.1), while node-hl7-client 4.0.0, the one client we test that sends files, cannot
read a reply that starts with FHS (its reply reader makes a Batch of it, which must begin
with BHS or MSH: the handler is never called). Its delimiters and charset are the first
message's, as its ACK's are.
A batch nested in another (BHS inside BHS, both closed by their BTS: HL7_BATCH_NESTED)
is answered within the outermost one (``parsers.hl7v2.framing.outline``): one BHS naming
the outer batch, every message's ACK, one BTS. v2.5's batch grammar has no BHS in a BHS, and
a response of one batch per BHS answered the outer batch with BHS BTS|0 (option c: "all
accepted"), which python-hl7 cannot even read ("more than one BHS segment").

- Each message is answered as if it had come alone, in its own terms: MSA-2 its MSH-10,
  AA (CA) in accept mode, only once the whole frame is stored (one sync, one commit: the
  rule above); in application mode its own verdict after processing, AE/AR with an ERR
  located in that message for the failed ones only. Its MSH-15/16 choose its ACKs, so a
  sender asking ER gets ACKs for the messages in error only: option c of 2.10.3.3, where an
  empty response batch (BTS-1 = 0) means every message was accepted.
- A refused frame (unknown sender...) is archived whole, as before: every message in it is
  answered AR (CR) with the reason. A message after the first whose own MSH would refuse
  it alone (unreadable, unusable MSH-2, MSH-9 no normalizer reads) is answered AR (CR)
  too. A frame that could not be stored: every message AR (CE) 207, send again. A frame
  over the size limit is answered as before, one AR answering its first MSH-10: only its
  head was kept, its batch is not known.
- Envelope problems (BTS-1 or FTS-1 not reached, a BHS without BTS, a count that is no
  number, bytes outside any message) are no message's: they are written as "code: text" in
  the batch comment of the batch they were found in (BHS-10 and BTS-2; an FTS's on the last
  batch), while each message that arrived keeps its own ACK. A message lost on the way
  has no ACK in the response, which is how a sender of option a learns it is missing; the
  ledger records the problem on the batch's row as before ('failed' with its code).
- An empty batch (BHS BTS|0) is legal (2.10.3: a batch may hold zero messages to meet a
  periodic submission): it is answered with an empty batch (BHS, BTS|0). The ledger records
  it as the folder intake records the same bytes: its frame archived, one batch row 'split'
  into nothing, with the note HL7_EMPTY_BATCH (no failure for an admin to look at).
- Messages plainly concatenated in one frame, without FHS/BHS, keep the one ACK described
  above (answering the first MSH-10, reporting the first failure): MLLP carries one message
  per frame, a sender that concatenates is not batch-aware, and the clients we test read
  the first MSA of the answer (@medplum/hl7 resolves on the first MSA-2), so an ACK per
  message would hide a later message's AE behind the first one's AA.
- What the real clients do with it: node-hl7-client 4.0.0 reads a reply that starts with
  BHS or holds several MSH as a batch and calls its handler once per ACK in it; its own
  server (node-hl7-server) answers each message of a batch with a frame of its own, which
  that client reads the same way. @medplum/hl7 resolves on the first MSA-2 of the frame.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from sqlalchemy import Row, select

from dossiers.schema import imports
from normalizers.fields import logical_id
from normalizers.lab import handles_message_type, normalize_message
from normalizers.model import NormalizationError
from parsers.detect import CDA, PDF, bare_document, xml_root
from parsers.hl7v2.ack import AckError, build_ack, build_batch_ack
from parsers.hl7v2.framing import (
    BatchProblem,
    Outline,
    outline,
    split_batch,
    starts_with_envelope,
)
from parsers.hl7v2.header import Header, occurrence_location, read_header
from pipelines.app_acks import AckOutbox, place_application_acks
from pipelines.faults import fault_point
from pipelines.intake import IntakeResult, Received, Staged, stage, store_staged
from pipelines.ledger import (
    DEPOSITED,
    DUPLICATE,
    FAILED,
    HELD,
    PROCESSING,
    RECEIVED,
    release_claims,
)
from pipelines.logs import Throttle
from pipelines.process import Context, process_claimed
from pipelines.settings import Source
from pipelines.unread_documents import unread_document_errors

log = logging.getLogger("dmp.acknowledge")

ACCEPT, APPLICATION = "accept", "application"
UNKNOWN_SOURCE = "unknown"
STORE_UNAVAILABLE = "DMP_STORE_UNAVAILABLE"
PROCESSING_DEFERRED = "DMP_PROCESSING_DEFERRED"
FIRST_COPY_IN_PROGRESS = "DMP_FIRST_COPY_IN_PROGRESS"  # a repeat of a message being processed
NOTIFICATION_ONLY = "MDM_NOTIFICATION_ONLY"  # accepted, nothing filed (pipelines/ledger.py)
# A message type (200) or a trigger of a type we read (201) this intake does not file
UNSUPPORTED_CODES = frozenset({"HL7_UNSUPPORTED_TYPE", "HL7_UNSUPPORTED_EVENT"})

# MLLP release 2 acknowledgement blocks: the whole content of a frame that says its
# content was committed (ACK) or not (NAK). Sent to the sources declared mllp_release = 2
# (``Source.mllp_release``) before their HL7 ACKs; received from a release 2 peer about our
# ACKs, they are no message and are never answered (the listener drops them).
COMMIT_ACK, COMMIT_NAK = b"\x06", b"\x15"
ACK_BLOCKS = frozenset({COMMIT_ACK, COMMIT_NAK})

_TABLE = Path(__file__).with_name("tables") / "ack_codes.csv"
_PROCESSING_IDS = Path(__file__).with_name("tables") / "processing_ids.csv"


@dataclass(slots=True)
class Frame:
    """One MLLP frame as received (VT and FS CR removed)."""

    data: bytes
    peer: str | None
    received_at: datetime
    size: int | None = None  # set when the frame was over the limit: ``data`` is its head


@dataclass(frozen=True, slots=True)
class AckRule:
    ack: str  # AE or AR (original mode); CE/CR derived for enhanced mode
    hl7_code: str  # HL7 table 0357


@cache
def ack_rules(path: Path = _TABLE) -> dict[str, AckRule]:
    """Our error codes -> (AE/AR, HL7 table 0357 code): a data file, not an if chain."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["error_code"]: AckRule(r["ack"], r["hl7_code"]) for r in rows}


def _rule(code: str | None) -> AckRule:
    rules = ack_rules()
    return rules.get(code or "") or rules["*"]


def match_source(sources: tuple[Source, ...], header: Header, peer: str | None,
                 accept_unknown: bool) -> tuple[str, tuple[str, str] | None]:
    """(source id, rejection or None) for a message's MSH-3/MSH-4 and the peer address."""
    return match_sender(sources, *header.sender, peer, accept_unknown)


def envelope_sender(data: bytes) -> tuple[str, str]:
    """(sending application, facility) that the first FHS/BHS of ``data`` names (fields 3
    and 4, each HD's namespace id, else its universal id): who sends a batch without any
    message, which has no MSH to say it."""
    start = min((i for i in (data.find(b"FHS"), data.find(b"BHS")) if i >= 0), default=0)
    text = data[start:].split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1")
    if len(text) < 5:
        return "", ""
    fields, comp = text.split(text[3]), text[4]

    def name(n: int) -> str:
        hd = (fields[n] if len(fields) > n else "").split(comp)
        return (hd[0] or (hd[1] if len(hd) > 1 else "")).strip()

    return name(2), name(3)


def match_sender(sources: tuple[Source, ...], application: str, facility: str,
                 peer: str | None, accept_unknown: bool,
                 fields: str = "MSH-3, MSH-4") -> tuple[str, tuple[str, str] | None]:
    """(source id, rejection or None) for a sender's names (read from ``fields``) and the
    peer address."""
    named = [s for s in sources if s.names(application, facility)]
    shown_app, shown_facility = application[:40], facility[:40]  # a malformed MSH shifts fields
    for source in named:
        if source.allows_peer(peer):
            return source.id, None
    if named:
        return named[0].id, ("MLLP_PEER_NOT_ALLOWED",
                             f"sender {shown_app}/{shown_facility} (source {named[0].id}) is not "
                             f"allowed to connect from this address")
    if accept_unknown:
        return "mllp", None
    return UNKNOWN_SOURCE, ("MLLP_UNKNOWN_SENDER",
                            f"sending application {shown_app!r}, facility {shown_facility!r} "
                            f"({fields}) is not a declared source")


def _refusal(frame: Frame, header: Header | None,
             limit: int | None) -> tuple[str, str, str] | None:
    """(code, text, HL7 location) when the frame cannot be taken whatever its sender."""
    if header is None and (kind := bare_document(frame.data)) is not None:
        return _bare_document(kind, frame, limit)
    if frame.size is not None:
        return _too_large(frame, limit)
    if header is None:
        return ("HL7_NO_MSH", "the frame holds no readable MSH segment", "")
    return header.invalid


BARE_DOCUMENT = "MLLP_BARE_DOCUMENT"
_BARE = {CDA: "a CDA document", PDF: "a PDF"}


def _bare_document(kind: str, frame: Frame, limit: int | None) -> tuple[str, str, str]:
    """MLLP_BARE_DOCUMENT: a CDA document or a PDF pushed over MLLP as it is, without the
    HL7 message that carries it (a document server's or a scanner's MLLP output pointed at
    us). It was refused HL7_NO_MSH, as broken HL7, and the sender's integrator looked for
    the fault in a message it never meant to send. Said first (MSA-3 keeps 80 characters):
    what was sent and what to send instead, the CI-SIS way (an MDM^T02 whose OBX of type ED
    carries it) or the documents folder. Over the size limit too, the note says so: the
    archive keeps its head only. Refused AR (table 0008: not a message we could read as
    wrong, a content this channel does not take), as ack_codes.csv says."""
    what = _BARE.get(kind) or (f"an XML document that is no CDA (root element "
                               f"{xml_root(frame.data)!r})")
    text = (f"{what} was sent without an HL7 message: wrap it in an MDM^T02 OBX of type ED, "
            "or drop it in the documents folder")
    if frame.size is not None:  # ERR-8 keeps 250 characters: short
        text += (f"; frame of {frame.size} bytes, over the limit of {limit}: only its first "
                 f"{len(frame.data)} bytes kept")
    return BARE_DOCUMENT, text, ""


# An OBX whose value type is ED (a document), and its ED's encoding component, in the kept head
_SEGMENT_END = b"\r"
_ED_OBX = re.compile(rb"OBX\|[^|\r\n]*\|ED\|(?:[^|\r\n]*\|){2}([^|\r\n]*)")


def _too_large(frame: Frame, limit: int | None) -> tuple[str, str, str]:
    """MLLP_FRAME_TOO_LARGE naming the limit and the setting that sets it, first (ERR-8 is
    cut at 250 characters), and, when the kept head shows an OBX carrying a document in
    base64 (an MDM or ORU with a scanned report), the largest document that limit takes:
    base64 makes a document 4/3 its size, so a 10 MB frame takes about 7.5 MB of PDF. It
    said the sizes alone, and integration engineers looked for the cause in the PDF."""
    text = (f"frame of {frame.size} bytes is over the listener's limit of {limit} bytes "
            "(setting mllp_max_frame_bytes, environment DMP_MLLP_MAX_FRAME_BYTES)")
    where = ""
    if limit and (found := _ED_OBX.search(frame.data)) is not None \
            and b"base64" in b"^".join(found.group(1).split(b"^", 4)[:4]).lower():
        before = frame.data[:found.start()].replace(b"\r\n", b"\r").replace(b"\n", b"\r")
        where = f"OBX[{before.count(_SEGMENT_END) + 1}]-5"
        text += (f"; {where} carries a document in base64 (4/3 of its size): documents over "
                 f"about {_mib(limit * 3 // 4)} do not fit; raise the limit above "
                 f"{frame.size} bytes to take this one")
    return ("MLLP_FRAME_TOO_LARGE",
            f"{text}; only its first {len(frame.data)} bytes were kept", where)


def _mib(size: int) -> str:
    """A size as an integration engineer reads it: '7.5 MiB', '15 KiB'."""
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"


def _unsupported(header: Header) -> tuple[str, str, str] | None:
    """A message type (MSH-9) no normalizer reads is refused from its header, in accept
    mode too (v2.5 2.9.2: the receiver checks MSH-9 before accepting; AR, CR in enhanced
    mode): accepted, it was answered AA/CA and failed later, unseen by its sender.

    The dispatch table answers at once for the types read; for the others the normalizer
    itself is asked, on the MSH alone, so that the refusal is its own (its code and words)
    and is made only where it refuses at MSH-9 too."""
    if handles_message_type(header.get(9), header.get(9, comp=2)):
        return None
    try:
        normalize_message(header.msh, UNKNOWN_SOURCE)
    except NormalizationError as exc:
        if exc.code in UNSUPPORTED_CODES and exc.location == "MSH-9":
            return exc.code, str(exc), "MSH[1]-9"
    except Exception:  # noqa: BLE001 - read, but not from a lone MSH: processing decides
        pass
    return None


def _no_control_id(header: Header) -> tuple[str, str, str] | None:
    """A message without its control id (MSH-10 empty or blank) is refused from its header,
    in accept mode too: it identifies the message (dedupe level 2, the ACK's MSA-2), and
    processing fails every such message. Accepted, it was answered AA with an empty MSA-2
    and failed later, unseen by its sender (an engine that matches ACKs on MSA-2 took the
    AA for its message, whatever it was). The refusal is the normalizer's own (its code
    and words: ``normalizers.fields.logical_id``), at MSH-10: AE 101 as ack_codes.csv says,
    CR in enhanced mode. In a batch, the message alone is answered so (``_batch_answer``)."""
    try:
        logical_id(header.msh)
    except NormalizationError as exc:
        return exc.code, str(exc), "MSH[1]-10"
    return None


@cache
def processing_id_meanings(path: Path = _PROCESSING_IDS) -> dict[str, str]:
    """HL7 table 0103: MSH-11.1 value -> its meaning (for the refusal's text)."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        return {r["processing_id"]: r["meaning"] for r in rows}


def _processing_refused(header: Header,
                        accepted: tuple[str, ...]) -> tuple[str, str, str] | None:
    """MSH-11 (its processing id, 11.1; 11.2 is the processing mode, archive or initial
    load of the same data) outside what this listener files: refused, AR 202 at MSH-11
    (v2.5 2.9.2 has the receiver check MSH-11 with MSH-9 and MSH-12 before accepting). A
    training or debugging message from an engine's test channel was answered AA and filed
    in a real patient's dossier. An empty MSH-11 is taken (leniency for a required field
    some senders leave empty; the ACK then says P)."""
    value = header.get(11).strip().upper()
    if not value or value in accepted:
        return None
    meaning = processing_id_meanings().get(value)
    shown = f"{value[:3]!r} ({meaning})" if meaning else f"{value[:3]!r} (not in HL7 table 0103)"
    return ("HL7_UNSUPPORTED_PROCESSING_ID",
            f"processing id (MSH-11) {shown} is not filed by this intake; accepted here: "
            f"{', '.join(accepted)}", "MSH[1]-11")


@dataclass(slots=True)
class BatchFrame:
    """A frame whose first segment is FHS or BHS, answered with a batch: its envelope, its
    messages (as intake cut them), each one's MSH and the envelope's problems."""

    shape: Outline
    messages: list[bytes]
    headers: list[Header | None]
    problems: list[BatchProblem]


def batch_frame(data: bytes) -> BatchFrame | None:
    """The batch a frame holds, or None when it does not open with FHS or BHS (one message,
    or messages plainly concatenated: answered with one ACK, as before)."""
    if not starts_with_envelope(data):
        return None
    cut = split_batch(data)
    return BatchFrame(outline(data), cut.messages, [read_header(m) for m in cut.messages],
                      cut.problems)


@dataclass(slots=True)
class Prepared:
    """A frame made ready for its group as soon as it arrived (``prepare_frame``): its
    header read, its sender checked, its bytes split, hashed and written to the archive
    (not yet durable). ``error``: the archive write failed (the group is then refused)."""

    frame: Frame
    header: Header | None
    item: Received
    staged: Staged | None
    error: Exception | None = None
    where: str = ""  # the refusal's location (ERR-2), when the frame is refused
    batch: BatchFrame | None = None  # a frame opening with FHS/BHS: answered with a batch
    refused_part: int = 1  # the message of the frame the refusal was found in
    release2: bool = False  # its sender is a source declared MLLP release 2 (``_release2``)


def prepare_frame(ctx: Context, frame: Frame, channel: str = "mllp") -> Prepared:
    """The work of one frame that needs no other frame: done by the listener as each frame
    arrives, while the previous group is being synced and committed (``acknowledge_prepared``
    then has one sync, one commit and the answers left to do)."""
    listener = ctx.settings.listener
    header = read_header(frame.data)
    refusal = _refusal(frame, header, listener.max_frame_bytes)
    source = UNKNOWN_SOURCE
    batch = batch_frame(frame.data) if frame.size is None else None
    if header is not None and frame.size is None:  # a refused message of a declared sender
        source, refused = match_source(ctx.settings.sources, header, frame.peer,  # is its
                                       listener.accept_unknown_senders)          # source's
        if refusal is None and refused is not None:
            refusal = (*refused, "")
        refusal = (refusal or _unsupported(header)
                   or _processing_refused(header, listener.processing_ids)
                   or (_no_control_id(header) if batch is None else None))
    elif batch is not None and not batch.messages and not batch.problems:
        # an empty batch (no MSH to read): taken from the sender its FHS/BHS names, and
        # recorded as intake records one (a batch row, nothing to file)
        source, refused = match_sender(ctx.settings.sources, *envelope_sender(frame.data),
                                       frame.peer, listener.accept_unknown_senders,
                                       "BHS-3, BHS-4")
        refusal = (*refused, "") if refused is not None else None
    part = 1
    if refusal is None and header is not None and frame.size is None:
        part, refusal = _later_processing_refusal(frame.data, batch, listener.processing_ids)
    rejection, where = (refusal[:2], refusal[2]) if refusal else (None, "")
    item = Received(frame.data, source, channel, peer=frame.peer,
                    received_at=frame.received_at, rejection=rejection)
    try:
        staged = stage(ctx.archive, item)
    except Exception as exc:  # archive full or unreachable: the group gets AR/CE 207
        return Prepared(frame, header, item, None, exc, where, batch, part,
                        _release2(ctx, frame, header, source))
    fault_point("mllp.staged")  # written to the archive, not synced, in no group yet
    return Prepared(frame, header, item, staged, where=where, batch=batch, refused_part=part,
                    release2=_release2(ctx, frame, header, source))


def _later_processing_refusal(data: bytes, batch: BatchFrame | None, accepted: tuple[str, ...]
                              ) -> tuple[int, tuple[str, str, str] | None]:
    """(n, refusal) for the first message after the first of a frame (a batch, or messages
    plainly concatenated) whose processing id (MSH-11) is not filed here. Such a message is
    not refused alone, as a later message whose MSH-9 no normalizer reads is: processing
    would not fail it, it would file it. The frame is refused whole instead, as a frame of
    an undeclared sender is (archived, one failed row, nothing filed); (1, None) when no
    message is refused so."""
    if batch is not None:
        headers, kind = batch.headers, "batch"
    elif _more_than_one_message(data):
        headers, kind = [read_header(m) for m in split_batch(data).messages], "frame"
    elif (glued := _glued_messages(data)) is not None:
        headers, kind = [read_header(m) for m in glued], "frame"
    else:
        return 1, None
    for n, header in enumerate(headers[1:], start=2):
        refusal = _processing_refused(header, accepted) if header is not None else None
        if refusal is not None:
            code, text, where = refusal
            return n, (code, f"message {n} of the {kind}: {text}",
                       where if kind == "batch" else "")
    return 1, None


def _more_than_one_message(data: bytes) -> bool:
    """Whether an MSH starts a line after the first (messages plainly concatenated in one
    frame). Two substring searches, not the regex ``[\r\n]MSH``: a pattern opening with a
    character class is tried at every byte of the frame, 60 us of the listener's CPU per
    2.8 KB message, where ``bytes.find`` skips ahead (the answer is the same)."""
    return b"\rMSH" in data or b"\nMSH" in data


def _glued_messages(data: bytes) -> list[bytes] | None:
    """The messages of a frame whose later MSH are glued to the text before them (no CR:
    split_batch cuts them, HL7_GLUED_MESSAGE), None when it holds one message. A line-start
    search never saw them: a glued training message (MSH-11 T) behind a production one was
    filed as one. split_batch runs only when 'MSH' appears after the frame's start."""
    if data.find(b"MSH", 1) == -1:
        return None
    messages = split_batch(data).messages
    return messages if len(messages) > 1 else None


def acknowledge(ctx: Context, frames: list[Frame], *, mode: str = ACCEPT,
                channel: str = "mllp",
                ledger_turn: AbstractContextManager | None = None) -> list[list[bytes]]:
    """Store a group of frames; return for each the ACK messages to send back, in order
    (none, one, or a commit ACK then an application ACK). See ``acknowledge_prepared``."""
    return acknowledge_prepared(ctx, [prepare_frame(ctx, f, channel) for f in frames],
                                mode=mode, ledger_turn=ledger_turn)


def acknowledge_prepared(ctx: Context, prepared: list[Prepared], *, mode: str = ACCEPT,
                         ledger_turn: AbstractContextManager | None = None
                         ) -> list[list[bytes]]:
    """Store a group of prepared frames and process what is to be processed before its
    answer; return for each frame the ACK messages to send back, in order (``store_group``
    then its ``then``, in one go)."""
    answered = store_group(ctx, prepared, mode=mode, ledger_turn=ledger_turn)
    if answered.then is None:
        return answered.now
    later = answered.then()
    return [now + after for now, after in zip(answered.now, later, strict=True)]


@dataclass(slots=True)
class Answered:
    """A stored group's answers in two steps. ``now``: for each frame, what can be sent as
    soon as the group is stored (accept ACKs, refusals, the commit ACK of an enhanced message
    still to be processed). ``then``: None, or the processing of the frames ``pending`` marks,
    returning for each frame what follows (its application ACK; [] for the others). The
    listener runs ``then`` apart from the storing, so that a slow processing holds back its
    own senders' answers only, not every connection's (an engine gives up after its
    response timeout and sends again)."""

    now: list[list[bytes]]
    pending: list[bool]
    then: Callable[[], list[list[bytes]]] | None = None


def store_group(ctx: Context, prepared: list[Prepared], *, mode: str = ACCEPT,
                ledger_turn: AbstractContextManager | None = None,
                outbox: AckOutbox | None = None) -> Answered:
    """Store a group of prepared frames (their archive sync, then their ledger rows in one
    committed transaction); answer what needs no processing, and leave the rest to ``then``.

    ``outbox`` (the listener's): the application ACKs that follow a commit ACK go where
    their source says (``pipelines.app_acks``: its return route, held, or the connection);
    without it (``acknowledge``), every answer goes on the connection.

    ``ledger_turn`` (a lock), when groups are stored by several threads: they store in
    turn. SQLite would serialize the ledger writes anyway, but with its busy handler's
    sleeps, not a wake-up."""
    application = mode == APPLICATION
    wanted = [_processed_here(p, application) for p in prepared]
    try:
        for p in prepared:
            if p.error is not None:
                raise p.error
        with ledger_turn or nullcontext():
            results = store_staged(ctx.engine, ctx.archive, [p.staged for p in prepared],
                                   claim_for=ctx.worker if any(wanted) else None)
        fault_point("mllp.committed")  # stored, not acknowledged: the sender sends it again
    except Exception as exc:  # archive or store down: nothing stored, nothing acknowledged
        log.error("intake of %d frame(s) failed: %s", len(prepared), type(exc).__name__)
        error = AckError("207", f"{STORE_UNAVAILABLE}: the message could not be stored; "
                         "send it again later")
        return Answered([[COMMIT_NAK] if p.release2  # it sends the frame again
                         else [_batch_ack(p.batch, [_answers(h, "AR", error, stored=False)
                                                    for h in p.batch.headers])]
                         if p.batch is not None and not _acknowledgements_only(p.batch)
                         else [] if p.batch is not None
                         else _answers(p.header, "AR", error, stored=False)
                         for p in prepared], [False] * len(prepared))
    for p, r in zip(prepared, results, strict=True):
        if p.item.rejection is not None:
            _log_refusal(p, r)
    if any(wanted):  # the others go to the background worker
        release_claims(ctx.engine, ids=[i for r, w in zip(results, wanted, strict=True)
                                        if not w for i in r.claimed_ids])
    pending = [w and p.item.rejection is None for p, w in zip(prepared, wanted, strict=True)]
    now = [_answer_stored(p, r, {}, application) if not waits
           else [] if p.batch is not None else _commit_answer(p)
           for p, r, waits in zip(prepared, results, pending, strict=True)]
    now = [[COMMIT_ACK, *answers] if p.release2 else answers
           for p, answers in zip(prepared, now, strict=True)]
    if not any(pending):
        return Answered(now, pending)

    def then() -> list[list[bytes]]:
        later = _process_and_answer(ctx, prepared, results, wanted, pending, application)
        if outbox is None:
            return later
        # an original-mode message's one ACK, a batch's one frame: on the connection
        frames = [(p.item.source, (r.message_ids or [r.batch_id])[0],
                   p.batch is not None or p.header is None or not p.header.enhanced)
                  for p, r in zip(prepared, results, strict=True)]
        return place_application_acks(ctx.settings.sources, outbox, frames, now, later,
                                      ACK_BLOCKS)
    return Answered(now, pending, then)


def _release2(ctx: Context, frame: Frame, header: Header | None, source: str) -> bool:
    """Whether the frame's sender is a source declared MLLP release 2: it is sent the
    commit acknowledgement block (ACK once stored, NAK when not) before any HL7 ACK, and
    only the NAK when its frame could not be stored (it sends the frame again on a NAK; an
    HL7 AR after it would be read as the block answering that resend). Such a sender
    takes any other first answer for an invalid block and sends its frame again (NextGen
    Connect does so without end by default), so a frame over the size limit, recorded
    under no source, is matched on the MSH of its head for this. A frame refused for its
    sender's name (undeclared) or without a readable MSH has no source to say so:
    release 1."""
    if source == UNKNOWN_SOURCE and frame.size is not None and header is not None:
        source, _ = match_source(ctx.settings.sources, header, frame.peer, False)
    return any(s.id == source and s.mllp_release == 2 for s in ctx.settings.sources)


_SHOWN_ID = re.compile(r"[\w.:/#@+-]{1,40}", re.ASCII)


_refusals = Throttle(window_seconds=60.0)


def _log_refusal(p: Prepared, result: IntakeResult) -> None:
    """A warning per refused frame, for the operator (the sender's integrator calls about
    its AR): who (peer, source), which message (its control id as the sender's engine
    shows it), why (our code) and the import to open (`dmp-ingest imports show`). Nothing
    else of the message: a malformed header can shift patient data into any field, so a
    control id that is not a plain identifier is not shown. One a minute per peer and code
    at most, with the count of those held back (an engine resending its refused message
    every second); the ledger has every one."""
    code = (p.item.rejection or ("", ""))[0]
    now, held = _refusals.allow((p.frame.peer, code))
    if not now:
        return
    control = p.header.raw(10) if p.header is not None else ""
    shown = control if _SHOWN_ID.fullmatch(control) else "(none)" if not control else "(not shown)"
    row = result.batch_id or (result.message_ids[0] if result.message_ids else None)
    more = f" ({held} more from this peer refused {code} since the last such line)" \
        if held else ""
    log.warning("MLLP frame from %s refused, %s: source %s, control id %s, import %s%s",
                p.frame.peer, code, p.item.source, shown, row, more)


def _process_and_answer(ctx: Context, prepared: list[Prepared], results: list[IntakeResult],
                        wanted: list[bool], pending: list[bool],
                        application: bool) -> list[list[bytes]]:
    """Process the claimed rows of the frames processed here; the answers that follow the
    ``now`` ones for each frame (its application ACK, or its batch of ACKs)."""
    todo = [i for r, w in zip(results, wanted, strict=True) if w for i in r.claimed_ids]
    if todo:
        try:
            process_claimed(ctx, todo)
        except Exception as exc:  # stored and leased: a worker finishes it later
            log.error("processing %d stored message(s) for their ACK failed: %s",
                      len(todo), type(exc).__name__)
        fault_point("mllp.processed")  # filed and committed, not acknowledged
    # the processed rows, and the repeats of earlier messages (answered as those were)
    answered = [i for r, w in zip(results, wanted, strict=True) if w for i in r.message_ids]
    outcomes = _outcomes(ctx, answered) if answered else {}
    return [_answer_stored(p, r, outcomes, application, after_commit=True) if waits else []
            for p, r, waits in zip(prepared, results, pending, strict=True)]


def _commit_answer(p: Prepared) -> list[bytes]:
    """The commit ACK (CA, filtered by MSH-15) of an enhanced-mode message stored and still
    to be processed: sent at once, its application ACK follows. An original-mode message
    has one ACK, after processing: nothing now."""
    if p.header is None or not p.header.enhanced:
        return []
    return _answers(p.header, "AA", None)  # not processed: the commit ACK alone


def _answer_stored(p: Prepared, result: IntakeResult, outcomes: dict[int, tuple], application: bool,
                   *, after_commit: bool = False) -> list[bytes]:
    """The answers of one stored frame: its batch of ACKs, its refusal, its accept ACK, or
    (``outcomes`` known) its verdict. ``after_commit``: processed, and a single message's
    commit ACK already sent by ``_commit_answer`` (a batch's answer is one frame: all its
    ACKs come once it is processed)."""
    header, item = p.header, p.item
    if p.batch is not None:
        if _acknowledgements_only(p.batch):
            return []
        return [_batch_answer(p, p.batch, result.message_ids, outcomes,
                              application or after_commit)]
    if item.rejection is not None:
        return _refused(header, *item.rejection, p.where)
    if not after_commit:
        return _answers(header, "AA", None)
    outcome = _frame_outcome(item.data, result.message_ids, outcomes)
    if (outcome is None or outcome[0] != FAILED) and p.staged is not None:
        # the envelope's, from split_batch; its notes (a glued MSH) are no failure
        problems = [q for q in p.staged.part[3] if not q.warning]
        outcome = _batch_outcome(item.data, problems) or outcome
    return _answers(header, *_verdict(outcome), processed=True, commit=False,
                    warnings=_filed_unread(outcome))


def _processed_here(p: Prepared, application: bool) -> bool:
    """Whether a frame is processed before it is answered: when one of its messages (one,
    or each of a batch) wants it (``_wants_processing``)."""
    if p.error is not None:
        return False
    headers = p.batch.headers if p.batch is not None else [p.header]
    return any(_wants_processing(h, application) for h in headers)


def _wants_processing(header: Header | None, application: bool) -> bool:
    """Application mode: every message except the enhanced ones whose MSH-16 asks for no
    application ACK (NE, or empty), left to the background worker. Accept mode: only the
    enhanced messages whose MSH-16 asks for an application ACK (AL, ER, SU): v2.5 2.9.3 has
    the receiver return the application ACK that MSH-16 requires, whatever it does itself,
    and with MSH-15 NE (no commit ACK) such a sender got no answer at all and waited."""
    if header is None:
        return False
    if not header.enhanced:
        return application
    return _app_ack_wanted(header)


def _frame_outcome(data: bytes, ids: list[int], outcomes: dict[int, tuple]) -> tuple | None:
    """The outcome one frame's ACK reports, its location in the HL7 sense (ERR-2).

    MLLP carries one message per frame and the sender waits for one ACK, but some senders
    put several messages in one frame (plainly concatenated, or a whole FHS/BHS batch):
    all are stored and processed, and the ACK, which answers the first MSH-10, reports
    the first message that failed, naming its place in the frame, rather than an AA that
    hid it (the sender sends the frame again; what was filed comes back as duplicates)."""
    known = [outcomes[i] for i in ids if i in outcomes]
    if not known:
        return None
    failed = sorted((o for o in known if o[0] == FAILED), key=lambda o: o[4] or 0)
    if len(ids) == 1 or not failed:
        status, code, message, location, part, warnings = known[0]
        # the frame is split again only when the first message has warnings to place
        first = split_batch(data).messages[0] if warnings and len(ids) > 1 else data
        return (status, code, message, occurrence_location(data, location or ""),
                unread_document_errors(warnings, first))
    status, code, message, location, part, _ = failed[0]
    messages = split_batch(data).messages
    if part and part <= len(messages):
        location = occurrence_location(messages[part - 1], location or "")
        message = f"{message} (message {part} of {len(messages)} in the frame)"
    return status, code, message, location


def _batch_outcome(data: bytes, problems: list[BatchProblem]) -> tuple | None:
    """The first problem of a batch envelope (a BTS-1 count that the messages do not reach,
    a BHS without its BTS...), as a failed outcome with its segment for ERR-2. Every message
    of the frame may have been filed and still some are missing: the sender must be told,
    not answered AA (v2.5 2.10.3: BTS-1 and FTS-1 are there to detect lost messages)."""
    if not problems:
        return None
    problem = problems[0]
    return FAILED, problem.code, problem.message, _envelope_location(data, problem.offset)


def _envelope_location(data: bytes, offset: int | None) -> str:
    """'BTS[1]-1' for a problem at the start of the first BTS segment (its count, field 1),
    'BHS[2]' for the second BHS; '' when the offset is not at an envelope segment."""
    if offset is None:
        return ""
    name = data[offset:offset + 3]
    if name not in (b"BHS", b"BTS", b"FHS", b"FTS"):
        return ""
    before = data[:offset]
    occurrence = 1 + sum(before.count(sep + name) for sep in (b"\r", b"\n", b"\x0b"))
    occurrence += before.startswith(name)
    field = "-1" if name in (b"BTS", b"FTS") else ""
    return f"{name.decode()}[{occurrence}]{field}"


def _batch_answer(p: Prepared, batch: BatchFrame, ids: list[int], outcomes: dict[int, tuple],
                  application: bool) -> bytes:
    """The response batch to a batch frame: each message answered in its own terms (its
    MSH-10 in MSA-2, its MSH-15/16 choosing its ACKs), as if it had come alone, in a batch
    that mirrors the received one (module doc)."""
    parts = {(outcomes[i][4] or 1): outcomes[i] for i in ids if i in outcomes}
    acks = []
    for n, (message, header) in enumerate(zip(batch.messages, batch.headers, strict=True),
                                          start=1):
        refusal = _frame_refusal(p, n) if p.item.rejection is not None else (
            _no_control_id(header) if n == 1 and header is not None  # else the frame's
            else None if n == 1 else _message_refusal(header))
        if refusal is not None:
            acks.append(_refused(header, *refusal))
        elif not application:
            acks.append(_answers(header, "AA", None))
        else:
            outcome = parts.get(n)
            if outcome is not None:
                outcome = (*outcome[:3], occurrence_location(message, outcome[3] or ""),
                           unread_document_errors(outcome[5], message))
            acks.append(_answers(header, *_verdict(outcome), processed=True,
                                 warnings=_filed_unread(outcome)))
    # a refused empty batch has no message to carry the AR: its comment says it
    refused = "{}: {}".format(*p.item.rejection) if p.item.rejection and not acks else None
    return _batch_ack(batch, acks, refused)


def _frame_refusal(p: Prepared, n: int) -> tuple[str, str, str]:
    """A refused frame (unknown sender, peer not allowed, unusable first MSH, type refused
    from the first MSH-9) is archived whole and not cut: every message of it is refused for
    that reason, the location (ERR-2) given for the message it was found in."""
    code, text = p.item.rejection or ("", "")
    if n == p.refused_part:
        return code, text, p.where
    if p.refused_part != 1:  # the text names that message
        return code, f"the batch is refused whole: {text}", ""
    return code, f"the batch is refused whole, for its first message: {text}", ""


def _message_refusal(header: Header | None) -> tuple[str, str, str] | None:
    """What refuses a message after the first of a batch from its own MSH, as it would be
    refused alone in a frame: no readable MSH, unusable encoding characters, a type (MSH-9)
    no normalizer reads, no control id (MSH-10). Stored all the same (the frame was);
    processing fails it later.
    (Not MSH-11: processing would file such a message all the same; a batch is refused for
    its processing id from its first message, as a lone message is.)"""
    if header is None:
        return "HL7_NO_MSH", "the message holds no readable MSH segment", ""
    return header.invalid or _unsupported(header) or _no_control_id(header)


def _batch_ack(batch: BatchFrame, acks: list[list[bytes]], refused: str | None = None) -> bytes:
    """``build_batch_ack`` with the envelope problems as comments (BHS-10, BTS-2) of the
    batch they were found in (the last one before their offset: an FTS's goes to the last
    batch of the file). The problems are not ACKs: an ACK answers a message, and a lost
    message has none to carry it; the sender matches its messages with the ACKs (2.10.3.3
    a), and BTS-1 counts them."""
    comments: dict[int, str] = {0: refused} if refused else {}
    starts = [g.start for g in batch.shape.groups]
    for problem in batch.problems:
        at = problem.offset or 0
        group = max((n for n, start in enumerate(starts) if start <= at), default=0)
        comments.setdefault(group, f"{problem.code}: {problem.message}")
    first = next((h for h in batch.headers if h is not None), None)
    return build_batch_ack(batch.shape, acks, first, comments=comments)


def _refused(header: Header | None, code: str, text: str, where: str) -> list[bytes]:
    """The answers to a message refused before processing, for our ``code``: AE or AR and
    the table 0357 code as ack_codes.csv says (the listener wrote AR whatever it said), CR
    at the commit level in enhanced mode."""
    rule = _rule(code)
    return _answers(header, rule.ack, AckError(rule.hl7_code, f"{code}: {text}", where))


def _answers(header: Header | None, code: str, error: AckError | None, *,
             processed: bool = False, stored: bool = True, commit: bool = True,
             warnings: list[AckError] | None = None) -> list[bytes]:
    """Original mode: the one ACK. Enhanced mode (MSH-15/16 valued): a commit ACK (CA once
    stored, CE when storing failed, CR when refused) filtered by MSH-15, then, if the message
    was processed here, the application ACK filtered by MSH-16. CE only when not stored (the
    sender is to send again), never for a refusal whose ERR code happens to be 207.
    ``commit=False``: the application ACK alone (the commit ACK was sent already).
    ``warnings``: ERRs of severity W that the application ACK carries after ``error``'s (the
    documents filed unread, ``_filed_unread``); never the commit ACK's (v2.5 2.9.3: the
    commit ACK says the message was stored, nothing of its processing).

    A message refused or not stored is never processed: when MSH-15 keeps its CR/CE back
    (NE, SU) while MSH-16 asks for an application ACK on error (AL, ER), that ACK is sent,
    AR (a refusal: AE or AR as its code's row says) with the same ERR: an engine asking
    NE/AL got no answer at all, and waited for an application ACK that could never come."""
    if _is_acknowledgement(header):
        return []
    if header is None or not header.enhanced:
        return [build_ack(header, code, error=error, warnings=warnings or ())]
    out = []
    if not stored:
        code_, commit_error = "CE", error  # not stored: ours to fix, the sender retries
    elif code in ("AR", "AE") and not processed:  # refused (``_refused``)
        code_, commit_error = "CR", error
    else:
        code_, commit_error = "CA", None
    if commit and _condition(header.get(15), code_ == "CA"):
        out.append(build_ack(header, code_, error=commit_error))
    elif commit and code_ != "CA" and _app_ack_wanted(header) and _condition(header.get(16),
                                                                             False):
        out.append(build_ack(header, code, error=commit_error))
    if processed and _condition(header.get(16), code == "AA"):
        out.append(build_ack(header, code, error=error, warnings=warnings or ()))
    return out


def _is_acknowledgement(header: Header | None) -> bool:
    """Whether the message is itself an acknowledgement (MSH-9.1 ACK): never answered, in
    any mode (HL7 v2's ACK choreography has no acknowledgement of an ACK; "acknowledging
    ACKs results in an infinite loop"). An engine that routes its ACKs, or a peer's own
    ACKs of our answers, to this listener got an AR 200 for each, which such a peer
    acknowledged in turn: a loop. It is still stored and recorded as refused
    (HL7_UNSUPPORTED_TYPE, logged), for the operator to find the misrouting."""
    return header is not None and header.get(9).strip().upper() == "ACK"


def _acknowledgements_only(batch: BatchFrame) -> bool:
    """A batch holding acknowledgements alone (a response batch sent back to us), or an
    empty answering batch: no answer at all, not even an empty batch, which its sender
    would answer again.

    An empty batch whose BHS-12 (reference batch control id) is valued answers a batch:
    v2.5 BHS-11 is "echoed back in BHS-12 ... if an answering batch is needed", and
    2.10.3.3 (option c) has an empty response batch mean that every message was accepted.
    Such a batch holds no ACK for ``_is_acknowledgement`` to see, and was answered with an
    empty batch of ours naming it in BHS-12: an engine routing responses back to this
    listener (or echoing them) answered that one too, and the two batches went back and
    forth without end. A periodic empty batch (BHS-12 empty) is still answered."""
    if not batch.headers:
        heads = [g.header for g in batch.shape.groups]
        return (not batch.problems and bool(heads)
                and all(_envelope_field(h, 12) for h in heads))
    return all(_is_acknowledgement(h) for h in batch.headers)


def _envelope_field(line: bytes | None, n: int) -> str:
    """Field ``n`` of a BHS (or FHS) line as sent, stripped; '' when absent."""
    if not line or len(line) < 4:
        return ""
    parts = line.decode("latin-1").split(line[3:4].decode("latin-1"))
    return parts[n - 1].strip() if len(parts) >= n else ""


TABLE_0155 = frozenset({"AL", "NE", "ER", "SU"})


def _ack_type(value: str) -> str:
    """MSH-15 or MSH-16 as a table 0155 code, '' when empty; spaces around it are dropped
    (' AL'). A value outside the table ('Y', 'XX') is read as AL: the sender asked for
    something, and read as no condition met it got no ACK at all and waited for one."""
    value = (value or "").strip().upper()
    return value if not value or value in TABLE_0155 else "AL"


def _condition(value: str, success: bool) -> bool:
    """MSH-15/MSH-16 (HL7 table 0155): AL always, NE never, ER on error, SU on success;
    empty means always for the commit ACK (v2.5 2.9.2.1)."""
    value = _ack_type(value) or "AL"
    return value == "AL" or (value == "ER" and not success) or (value == "SU" and success)


def _app_ack_wanted(header: Header) -> bool:
    return _ack_type(header.get(16)) in ("AL", "ER", "SU")


def _verdict(outcome: tuple | None) -> tuple[str, AckError | None]:
    """Application ACK code for a processed message (AA when not processed here: accept
    mode, or the message was filed, quarantined for an admin, or a duplicate). A message
    left unprocessed by a transient failure (the store or the archive unavailable midway:
    back in the queue) was answered AA as if filed: AR 207, send again later."""
    if outcome is None:
        return "AA", None
    status, code, message, location = outcome[:4]
    if status in (RECEIVED, PROCESSING) and code == FIRST_COPY_IN_PROGRESS:
        return "AR", AckError("207", f"{PROCESSING_DEFERRED}: an earlier copy of this message "
                              "is still being processed; send it again later for its verdict")
    if status in (RECEIVED, PROCESSING):  # stored, not processed: a transient failure
        return "AR", AckError("207", f"{PROCESSING_DEFERRED}: the message is stored but could "
                              f"not be processed now ({code or 'interrupted'}); send it again "
                              "later")
    if status == HELD:
        # A draft not for patient care yet (MDM_NOT_AVAILABLE): accepted and kept, filed when
        # signed. Table 0008 AA with a warning ERR (severity W, 0357 code 0 'message
        # accepted'): AR said 'refused', inviting the sender to resend it unchanged, or to
        # stop sending drafts whose signature (MDM^T03) then had nothing to sign.
        return "AA", AckError("0", f"{code}: {message}" if message else str(code),
                              location or "", severity="W")
    if status == DEPOSITED and code == NOTIFICATION_ONLY:
        # An MDM notification without its document: accepted, nothing filed. AA with a
        # warning ERR saying so: it was AR 201, and a sender stopping its queue on AR blocked.
        return "AA", AckError("0", f"{code}: {message}" if message else str(code),
                              location or "", severity="W")
    if status != FAILED:
        return "AA", None
    rule = _rule(code)
    text = f"{code}: {message}" if message else str(code)
    return rule.ack, AckError(rule.hl7_code, text, location or "")


def _filed_unread(outcome: tuple | None) -> list[AckError]:
    """The warning ERRs of the documents a filed message carried that could not be read
    (``pipelines.unread_documents``): the fifth item of a ``_frame_outcome``, kept for a
    message filed ('deposited') only. A failed one is answered for its failure, and a
    quarantined one is read again when it is filed."""
    if outcome is None or len(outcome) < 5 or outcome[0] != DEPOSITED:
        return []
    return outcome[4]


def _outcomes(ctx: Context, ids: list[int]) -> dict[int, tuple]:
    """(status, code, message, location, part, warnings) of each row. A repeat of an earlier message
    (the same bytes sent again, recorded as a duplicate at intake) takes the outcome of that
    message when it failed: a sender that lost our AE and sends again was answered AA, as
    if its message had been filed. The repeat of a message still waiting for a worker (a
    restarted listener's backlog) is answered AA: stored, it will be processed.

    The repeat of a message being processed right now (an engine whose response timeout
    passed while the first copy was processed sends it again on a new connection) has no
    verdict to take yet: answered AA, it told the engine the message was filed while the
    first copy could still fail, its AE going to a connection the engine had given up. It
    is answered AR 207 instead (send it again later), and its next resend gets the first
    copy's verdict.

    A byte-identical repeat (level 1, recorded at intake) of a message filed with documents
    it could not read takes that message's warnings: answered AA with the same warning ERRs
    (``_filed_unread``), its OBX at the same places since the bytes are the same. A plain AA
    told a sender that lost the first ACK nothing. So does the level-1 repeat of a draft
    held until signed ('held') and of an MDM notification without its document: the first
    copy's AA carried a warning ERR of its own (``_verdict``), the repeat got a plain AA. A
    level-2 repeat (the same logical message in other bytes) keeps its own row: its OBX may
    be elsewhere."""
    columns = (imports.c.id, imports.c.status, imports.c.error_code, imports.c.error_message,
               imports.c.error_location, imports.c.part, imports.c.duplicate_of,
               imports.c.warnings, imports.c.stage)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(*columns).where(imports.c.id.in_(ids))).all()
        earlier = {r.duplicate_of for r in rows
                   if r.status == DUPLICATE and r.duplicate_of is not None}
        told = {r.id: r for r in conn.execute(select(*columns).where(
            imports.c.id.in_(earlier),
            imports.c.status.in_((FAILED, PROCESSING, DEPOSITED, HELD))))} if earlier else {}
    out = {}
    for r in rows:
        source = told.get(r.duplicate_of, r) if r.status == DUPLICATE else r
        if source.status == PROCESSING and source is not r:
            out[r.id] = (PROCESSING, FIRST_COPY_IN_PROGRESS, None, None, r.part, None)
            continue
        if source.status in (DEPOSITED, HELD) and source is not r:
            out[r.id] = _repeat_of_accepted(r, source)
            continue
        out[r.id] = (source.status, source.error_code, source.error_message,
                     source.error_location, r.part, source.warnings)
    return out


def _repeat_of_accepted(row: Row, first: Row) -> tuple:
    """The outcome a repeat of ``first`` (accepted: filed, or held until signed) is answered
    with. A level-1 (byte-identical) repeat is answered as the first copy was: its warnings,
    so that its unread documents are reported again, and, when the first copy's own outcome
    was answered with a warning ERR (a draft held, an MDM notification only: ``_verdict``),
    that outcome, its code, text and location (the same bytes: the same segment). Any other
    code of a filed message stays unreported, as before. A level-2 repeat is answered for
    its own row, as before."""
    if row.stage != "intake":
        return (row.status, row.error_code, row.error_message, row.error_location, row.part,
                row.warnings)
    if first.status == HELD or first.error_code == NOTIFICATION_ONLY:
        return (first.status, first.error_code, first.error_message, first.error_location,
                row.part, first.warnings)
    return DEPOSITED, None, None, None, row.part, first.warnings
