"""Files given on the command line (or found in folders): raw bytes plus where they came from.

A connector only reads and hands bytes over; the format is detected from the content later,
never from the file name. Hidden files and temporary upload names are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from pipelines.intake import Received

# Names a sender's tool gives a file still being written (SFTP/WinSCP, browsers, editors):
# also SFTP servers' '.incomplete', Safari's '.download' bundle folder (the partial file inside
# has its final name), Opera's '.opdownload', Chrome's '.crswap', Resilio Sync's '.!sync'
SKIPPED_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", "~",
                    ".incomplete", ".download", ".opdownload", ".crswap", ".!sync")
# Microsoft Office's owner file beside a document someone has open on the share
SKIPPED_PREFIXES = (".", "~$")
# Files Windows Explorer writes by itself into a shared folder (thumbnails, folder settings)
SKIPPED_NAMES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini"})
# A Windows file's alternate data streams, stored as files of their own beside it: by WSL and
# Linux tools copying from Windows ('x.pdf:Zone.Identifier', the "downloaded from the
# Internet" mark), by Samba's streams_depot/catia mapping (':' written as U+F022), by macOS
# over SMB (AFP_AfpInfo, AFP_Resource, com.apple.* extended attributes). Only these stream
# names: ':' is a legal character in a Linux or SFTP sender's file name ('CR 12:30.hl7').
STREAM_SEPARATORS = (":", "\uf022")
SKIPPED_STREAMS = ("zone.identifier", "smartscreen", "afp_afpinfo", "afp_resource",
                   "com.apple.", "com.dropbox.", "encryptable", "$data")
# Folders a NAS or an operating system keeps inside a shared folder: recycle bins (what a
# sender deleted), snapshots (every file again), indexers' thumbnails and streams, a volume's
# lost+found. Synology: #recycle, #snapshot, @eaDir; QNAP: @Recycle, @Recently-Snapshot;
# NetApp over SMB: ~snapshot (.snapshot over NFS is hidden); Windows: $RECYCLE.BIN, System
# Volume Information
SYSTEM_FOLDERS = frozenset({"#recycle", "#snapshot", "@eadir", "@recycle", "@recently-snapshot",
                            "~snapshot", "$recycle.bin", "system volume information",
                            "lost+found"})


def is_temporary(name: str) -> bool:
    """A name never taken: hidden files, temporary upload names, Office owner files,
    Explorer's own files, Windows streams kept as files and the system folders of a NAS.
    They are not what a sender meant to send (an upload in progress, an editor's lock, a
    thumbnail cache, a download mark, a recycle bin or a snapshot); taking one would archive
    a cut file, move a lock from under the program holding it, file what a sender withdrew,
    or fill the failures list with what nobody sent."""
    lower = name.lower()
    return (name.startswith(SKIPPED_PREFIXES) or lower.endswith(SKIPPED_SUFFIXES)
            or lower in SKIPPED_NAMES or lower in SYSTEM_FOLDERS or _is_stream(lower))


def _is_stream(lower: str) -> bool:
    """A Windows alternate data stream kept as a file ('x.pdf:Zone.Identifier'): taken, each
    was a failed import of no known format ('[ZoneTransfer] ZoneId=3') beside the report."""
    for separator in STREAM_SEPARATORS:
        _, found, stream = lower.rpartition(separator)
        if found and stream.startswith(SKIPPED_STREAMS):
            return True
    return False


PEER_MAX, FILE_NAME_MAX = 200, 500  # the ledger's column sizes
WIRE_HEX = "hex:"  # a path sent over JSON as the hex of its bytes (to_wire)


def shown(text: str, limit: int) -> str:
    """A name for the ledger: bytes that are not UTF-8 as \\xNN, cut to the column's size."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def to_wire(path: str | Path) -> str:
    """A path as a flow parameter (Prefect sends them as JSON, in UTF-8). A name that is not
    UTF-8 (a Windows host's CP1252 'Résultat.hl7' on an NFS or SMB share without charset
    mapping) holds surrogates that UTF-8 cannot encode: `ingest` of its folder stopped
    with a traceback before anything was taken. Such a path (and one that begins with the
    marker) goes as ``hex:`` and the hex of its bytes; any other as it is."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return WIRE_HEX + os.fsencode(text).hex()
    return WIRE_HEX + os.fsencode(text).hex() if text.startswith(WIRE_HEX) else text


def from_wire(text: str) -> str:
    """The path ``to_wire`` sent."""
    return os.fsdecode(bytes.fromhex(text[len(WIRE_HEX):])) if text.startswith(WIRE_HEX) \
        else text


class InputPathError(ValueError):
    """A path given by the user does not exist or cannot be read."""


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not is_temporary(d))
                for name in sorted(files):
                    if not is_temporary(name):
                        yield Path(root) / name
        elif path.is_file():
            yield path
        else:
            raise InputPathError(f"no such file or folder: {raw}")


def read_files(paths: Iterable[str | Path], source: str,
               channel: str = "file") -> Iterator[Received]:
    for path in iter_files(paths):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputPathError(f"cannot read {path}: {exc.strerror}") from exc
        yield Received(data=data, source=source, channel=channel,
                       peer=shown(str(path.parent), PEER_MAX),
                       file_name=shown(path.name, FILE_NAME_MAX), received_at=datetime.now(UTC))


def grouped(items: Iterable[Received], count: int, size: int) -> Iterator[list[Received]]:
    """Items in groups of at most ``count``, a group closed once it holds ``size`` bytes:
    each group is one intake call (one archive sync, one commit) and is held in memory
    whole, so a count alone let 200 files of 15 MB each (an `ingest` of a lab's folder)
    sit in memory at once."""
    group: list[Received] = []
    held = 0
    for item in items:
        group.append(item)
        held += len(item.data)
        if len(group) >= count or held >= size:
            yield group
            group, held = [], 0
    if group:
        yield group
