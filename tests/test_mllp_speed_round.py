"""The MLLP speed round: the listener's cheaper checks answer as before, and the worker
processes run below the listener's CPU priority (``worker_nice``)."""

from __future__ import annotations

import os
import re

import pytest

from pipelines.acknowledge import _more_than_one_message
from pipelines.settings import load_settings
from pipelines.worker import lower_priority

# the pattern the listener used before: a line after the first that starts with MSH
OLD_PATTERN = re.compile(rb"[\r\n]MSH")

MSH = b"MSH|^~\\&|LAB|FAC|DMP|DMP|20240101120000||ORU^R01^ORU_R01|C1|P|2.5\r"
OBX = b"OBX|1|NM|2345-7^GLUCOSE^LN||5.2|mmol/L\r"


@pytest.mark.parametrize("frame", [
    b"", b"MSH", MSH, MSH + OBX * 30,
    MSH + OBX + MSH,  # plainly concatenated, CR
    MSH.replace(b"\r", b"\n") + OBX.replace(b"\r", b"\n") + b"MSH|^~\\&|X",  # LF line ends
    MSH + b"\r\nMSH|",  # CR LF before the second
    MSH + OBX + b"NTE|1||MSH in a note\r",  # MSH inside a line: not a message start
    MSH + b"\rMS", MSH + b"\rmsh|",  # cut short, lower case: no second message
    b"\x0bMSH|" + MSH, b"BHS|^~\\&\rMSH|x\rBTS|1\r",  # a VT before, a batch
])
def test_second_message_found_as_the_pattern_found_it(frame: bytes) -> None:
    assert _more_than_one_message(frame) == bool(OLD_PATTERN.search(frame))


def _nice_after(increment: int) -> int:
    """The niceness a child process has after ``lower_priority(increment)``, read through
    a pipe (a forked child: the test's own priority is left alone)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: lower, report, leave without running the parent's cleanup
        try:
            lower_priority(increment)
            os.write(write, str(os.getpriority(os.PRIO_PROCESS, 0)).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as fh:
            got = fh.read()
    finally:
        os.waitpid(pid, 0)
    return int(got)


def test_lower_priority_nices_the_process_by_the_increment() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert _nice_after(3) == min(19, base + 3)
    assert _nice_after(0) == base  # 0: left as it is
    assert os.getpriority(os.PRIO_PROCESS, 0) == base


def test_worker_nice_setting_defaults_to_0_and_is_bounded(tmp_path) -> None:  # noqa: ANN001
    env = {"DMP_HOME": str(tmp_path)}
    assert load_settings(env=env).worker_nice == 0
    assert load_settings(env={**env, "DMP_WORKER_NICE": "5"}).worker_nice == 5
    assert load_settings(env={**env, "DMP_WORKER_NICE": "40"}).worker_nice == 19
    assert load_settings(env={**env, "DMP_WORKER_NICE": "-5"}).worker_nice == 0
