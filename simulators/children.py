"""Child processes of the demo that never outlive it, and a record to find those of a demo that was killed.

``die_with_parent`` is a ``preexec_fn``: the kernel sends the child SIGTERM when the demo's process ends, however
it ends (Ctrl-C, SIGTERM, SIGKILL, a crash), so no daemon, peer bookcase or broker is left holding the ptys.
A child must not change its credentials, or the kernel forgets the request (prctl(2)): the demo's broker stays
the user that started it. The kernel ties the signal to the *thread* that started the child, not the process:
``tied_to_process()`` gives the ``preexec_fn`` only on the main thread (whose end is the process's end); a child
started from another thread (a test restarting its broker) is not tied, and the pid file finds it instead.

``PidFile`` writes the demo's pid and its children's pids and command lines to ``var/demo/demo.pids``; the next
demo reads it to tell a demo still running from the leftovers of one that was killed, and to stop either.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 5.0


def die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM when the parent dies; exit at once if it already has."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return                      # not Linux: the pid file still finds leftovers
    if os.getppid() != parent:      # the parent died before prctl took effect
        os._exit(1)


def tied_to_process() -> dict:
    """Popen keywords that make a child die with this process: only when called on the main thread."""
    return {"preexec_fn": die_with_parent} if threading.current_thread() is threading.main_thread() else {}


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


@dataclass
class Running:
    """What a pid file says is alive: the demo itself (None if it is gone) and its children still running."""
    demo: int | None
    children: list[tuple[int, str]]

    @property
    def anything(self) -> bool:
        return self.demo is not None or bool(self.children)


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, children: list[int]) -> None:
        """Record this process and ``children`` (with their command lines, so a reused pid is not mistaken)."""
        entries = [{"pid": pid, "cmdline": _cmdline(pid) or ""} for pid in children]
        me = {"pid": os.getpid(), "cmdline": _cmdline(os.getpid()) or ""}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"demo": me, "children": entries}), encoding="utf-8")
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def running(self) -> Running:
        """What is still alive of the demo recorded here (a pid whose command line changed is not it)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Running(None, [])
        alive = [(e["pid"], e["cmdline"]) for e in data.get("children", [])
                 if e.get("cmdline") and _cmdline(e["pid"]) == e["cmdline"]]
        demo = data.get("demo") or {}
        demo_pid = demo.get("pid") if demo.get("cmdline") and _cmdline(demo.get("pid", 0)) == demo["cmdline"] \
            and demo.get("pid") != os.getpid() else None
        return Running(demo_pid, alive)

    def stop(self, running: Running) -> None:
        """SIGTERM the recorded demo and children, then SIGKILL what is left after a grace period."""
        pids = ([running.demo] if running.demo else []) + [pid for pid, _ in running.children]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + STOP_GRACE_S
            while time.monotonic() < deadline and any(_cmdline(pid) is not None for pid in pids):
                time.sleep(0.1)
        self.remove()
