"""Child processes that die with the process they work for (Linux), so that no orphan outlives
a crash.

A process killed by SIGKILL (OOM killer, an operator, a supervisor's timeout) runs no clean-up:
its children live on. The service's worker processes would go on filing beside a restarted
service's new ones; an OCR pool's processes would wait forever for pages nobody sends.

- ``die_with_parent``: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, the kernel kills the calling
  process when its parent dies. Enough for the service's workers (their parent is the
  service).
- ``die_with(owner_pid)``: for a process whose parent is not the one it works for. The OCR
  pool's workers are the children of multiprocessing's forkserver, and the forkserver does not
  die with the pool's owner: every child it forks holds a copy of its 'alive' pipe, so it lives
  as long as they do, and they as long as it does. A thread of the worker waits on a pidfd of
  the owner (no polling; once a second where pidfd_open is missing) and, when the owner is
  gone, kills the worker's own children (a tesseract in flight) and the worker.

Kept in this small module (the lowest layer, no dependency) because both the service's
workers (pipelines/worker.py) and the OCR pool (parsers/pdf) use it.
"""

from __future__ import annotations

import ctypes
import glob
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel kills this process when its parent dies.
    No-op off Linux or when prctl is unavailable."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def die_with(owner_pid: int) -> None:
    """End this process (and its children) as soon as process ``owner_pid`` has ended, whoever
    this process's parent is; at once if it is already gone. Also die_with_parent."""
    die_with_parent()
    try:
        fd: int | None = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        _end()
        return
    except (AttributeError, OSError):  # no pidfd_open (kernel < 5.3, not Linux): poll
        fd = None
    threading.Thread(target=_watch, args=(owner_pid, fd), name="die-with-owner",
                     daemon=True).start()


def _watch(owner_pid: int, fd: int | None) -> None:
    if fd is not None:
        # a pidfd is readable once its process has ended; poll(), not select(), which
        # refuses a descriptor numbered past 1,024 (a process holding many files)
        watch = select.poll()
        watch.register(fd, select.POLLIN)
        watch.poll()
    else:
        while process_alive(owner_pid):
            time.sleep(1.0)
    _end()


def process_alive(pid: int) -> bool:
    """The process exists and has not exited: a zombie (ended, not yet reaped by its parent,
    as a detached server is while the command that started it still runs) is not alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _end() -> None:
    """Kill this process's children (a tesseract in flight would finish its page for nobody,
    or never, if stuck), then this process."""
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        try:
            with open(path) as fh:
                children = [int(pid) for pid in fh.read().split()]
        except OSError:
            continue
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
    os._exit(1)
