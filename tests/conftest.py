"""Suite-wide guard: a test must not leave threads, child processes or pseudo-terminals behind."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.pcsc_support import SESSION_CHILDREN, pcscd_service, vpcd  # noqa: F401 - the pcscd/vpcd fixtures

GRACE_S = 3.0


def _children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                found.add(int(entry))
    return found


def _pty_fds() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/dev/pts/") or target == "/dev/ptmx":
            found.add(f"{fd}->{target}")
    return found


@pytest.fixture(autouse=True)
def nothing_left_behind():
    threads, children, ptys = set(threading.enumerate()), _children(), _pty_fds()
    yield
    deadline = time.monotonic() + GRACE_S
    while True:
        extra_threads = [t.name for t in threading.enumerate() if t not in threads and t.is_alive()]
        extra_children = _children() - children - SESSION_CHILDREN  # e.g. the session's pcscd, restarted
        extra_ptys = _pty_fds() - ptys
        if not (extra_threads or extra_children or extra_ptys) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra_threads, f"threads left behind: {extra_threads}"
    assert not extra_children, f"child processes left behind: {sorted(extra_children)}"
    assert not extra_ptys, f"pseudo-terminals left open: {sorted(extra_ptys)}"
