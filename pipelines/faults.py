"""Fault injection for the crash tests: ``fault_point(name)`` kills this process (SIGKILL, no
cleanup, no flush: a power cut as far as the process is concerned) when ``DMP_FAULT`` says so.

Why here and not in the tests: a crash must happen *inside* the real code path (between the
archive write and its sync, between filing and the outcome's commit...) to prove that every
such point is recoverable. ``DMP_FAULT=name:n[,name2:m]`` kills on the n-th time ``name`` is
reached (n defaults to 1); with ``DMP_FAULT_ONCE=path`` only the first process to reach it
dies. The variable is read once at import; unset (production), the hook is a function that
returns at once.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "DMP_FAULT"


def _parse(spec: str) -> dict[str, int]:
    plan: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, n = part.partition(":")
        plan[name] = int(n or 1)
    return plan


_plan = _parse(os.environ.get(ENV, ""))
_hits: dict[str, int] = {}
_lock = threading.Lock()


def _off(name: str) -> None:  # noqa: ARG001 - the production hook: nothing to do
    return None


def _armed(name: str) -> None:
    if name not in _plan:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] == _plan[name] and _first_time():
            os.kill(os.getpid(), signal.SIGKILL)


def _first_time() -> bool:
    """With DMP_FAULT_ONCE=path, only the first process to get here is killed (a service
    restarts a dead worker with the same environment: it must not die again)."""
    once = os.environ.get("DMP_FAULT_ONCE")
    if not once:
        return True
    try:
        os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


fault_point = _armed if _plan else _off
