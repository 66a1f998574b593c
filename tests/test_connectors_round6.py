"""Connectors round 6: drop folders written by Windows hosts over SMB, versioned and
S3-compatible buckets, `ingest` of inputs too large to hold. Real moto server on loopback,
real folders."""

from __future__ import annotations

import os

from connectors.folder import FolderPoller
from tests.test_folder_connector import files_under, ledger
from tests.test_folder_connector import source as folder_source
from tests.test_s3_connector import HL7


# -- folders: a Windows copy over SMB fills a file of its final size --------------------------
def test_a_file_filled_in_place_at_its_final_size_is_not_taken_cut(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """Explorer's copy to an SMB share sets the file's end first (Samba: a sparse file of
    its final size), then writes it chunk by chunk; a copy that keeps the original's
    modification time (robocopy /COPY:T, a sync tool) leaves mtime where it was. Size and
    mtime stood still while the bytes came in: the file was settled and claimed with zeros
    for its tail. Now ctime and allocated blocks count too: any write moves ctime."""
    drop = tmp_path / "drop"
    drop.mkdir()
    data = (HL7 / "01_labm_nfs.hl7").read_bytes()
    note = "NTE|1||Résultat contrôlé sur second prélèvement\r".encode()
    data += note * ((20000 - len(data)) // len(note))
    path = drop / "CR biologie Hélène.hl7"
    old = 1_700_000_000_000_000_000  # the original's mtime, kept by the copy
    quarter = len(data) // 4

    def write(start: int, end: int) -> None:
        with open(path, "r+b" if path.exists() else "wb") as fh:
            fh.truncate(len(data))  # the final size, set before any byte
            fh.seek(start)
            fh.write(data[start:end])
        os.utime(path, ns=(old, old))

    now = [0.0]
    poller = FolderPoller(folder_source(drop, settle_seconds=5), sqlite_ctx.engine,
                          sqlite_ctx.archive, clock=lambda: now[0])
    write(0, quarter)
    poller.scan()
    write(quarter, 3 * quarter)
    now[0] += 10
    assert poller.poll().taken == 0  # changed since the last scan: not settled
    write(3 * quarter, len(data))
    now[0] += 10
    assert poller.poll().taken == 0
    now[0] += 10
    result = poller.poll()
    assert result.error is None and result.taken == 1
    assert files_under(drop) == {"done/CR biologie Hélène.hl7": data}
    [row] = ledger(sqlite_ctx.engine)
    assert row["size"] == len(data)
    assert sqlite_ctx.archive.get(row["sha256"]) == data
