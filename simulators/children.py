"""Child processes of the demo that never outlive it, and a record to find those of a demo that was killed.

``die_with_parent`` is a ``preexec_fn``: the kernel sends the child SIGTERM when the demo's process ends, however
it ends (Ctrl-C, SIGTERM, SIGKILL, a crash), so no daemon, peer bookcase or broker is left holding the ptys.
A child must not change its credentials, or the kernel forgets the request (prctl(2)): the demo's broker stays
the user that started it. The kernel ties the signal to the *thread* that started the child, not the process:
``tied_to_process()`` gives the ``preexec_fn`` only on the main thread (whose end is the process's end); a child
started from another thread (a test restarting its broker) is not tied, and the pid file finds it instead.

``PidFile`` writes the demo's pid and its children's pids to ``var/demo/demo.pids``, each with the time the
process started (a pid given again to another process is not taken for it) and its command line (for people);
the next demo reads it to tell a demo still running from the leftovers of one that was killed, and to stop either.

``Supervisor`` keeps the demo's children in one place: each one is recorded in the pid file as soon as it is
added, and ``stop()`` stops them last first, whatever one of them raises. A new child of the demo (a gateway, a
simulated ILS) is one ``popen`` or ``add`` call.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from kiosk import proc

LOGGER = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 5.0
CHILD_STOP_S = 20.0          # a daemon settles what it is doing and closes its database


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


def _entry(pid: int) -> dict:
    return {"pid": pid, "start": proc.started(pid), "cmdline": _cmdline(pid) or ""}


def _alive(entry: object) -> str | None:
    """The command line of the recorded process if that very process still runs, else None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("pid"), int) or entry.get("start") is None:
        return None
    pid = entry["pid"]
    if proc.started(pid) != entry["start"]:
        return None
    return _cmdline(pid) or str(entry.get("cmdline") or "?")


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
        """Record this process and ``children`` (with their start times, so a reused pid is not mistaken)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"demo": _entry(os.getpid()), "children": [_entry(pid) for pid in children]}),
                       encoding="utf-8")
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def running(self) -> Running:
        """What is still alive of the demo recorded here (a pid now held by another process is not it)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Running(None, [])
        if not isinstance(data, dict):
            return Running(None, [])
        children = data.get("children") if isinstance(data.get("children"), list) else []
        alive = [(entry["pid"], cmd) for entry in children if (cmd := _alive(entry)) is not None]
        demo = data.get("demo")
        demo_pid = demo["pid"] if _alive(demo) is not None and demo["pid"] != os.getpid() else None
        return Running(demo_pid, alive)

    def stop(self, running: Running) -> None:
        """SIGTERM the recorded demo and children, then SIGKILL what is left after a grace period."""
        procs = {pid: proc.started(pid) for pid in ([running.demo] if running.demo else []) +
                 [pid for pid, _ in running.children]}
        procs = {pid: start for pid, start in procs.items() if start is not None}
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in procs:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + STOP_GRACE_S
            while time.monotonic() < deadline and any(proc.started(pid) == start for pid, start in procs.items()):
                time.sleep(0.1)
        self.remove()


def terminate(proc: subprocess.Popen, timeout_s: float = CHILD_STOP_S) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not ended within ``timeout_s``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Child:
    name: str
    stop: Callable[[], None]
    procs: Callable[[], Iterable[subprocess.Popen | None]]


class Supervisor:
    """The demo's children, in the order they started: recorded in ``pid_file`` as each one is added, stopped
    last first. ``add`` takes anything with a stop (simulators in this process, a server thread, a file to
    remove) and the processes it runs, if any; ``popen`` starts a process that dies with this one."""

    def __init__(self, pid_file: PidFile) -> None:
        self.pid_file = pid_file
        self._children: list[Child] = []

    def add(self, name: str, stop: Callable[[], None],
            procs: Callable[[], Iterable[subprocess.Popen | None]] = lambda: ()) -> None:
        self._children.append(Child(name, stop, procs))
        self.record()

    def popen(self, name: str, argv: list[str], stop_timeout_s: float = CHILD_STOP_S,
              **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, **tied_to_process(), **kwargs)
        self.add(name, lambda: terminate(proc, stop_timeout_s), lambda: (proc,))
        return proc

    def names(self) -> list[str]:
        return [child.name for child in self._children]

    def _running(self, children: list[Child]) -> list[int]:
        return [proc.pid for child in children for proc in child.procs() if proc is not None and proc.poll() is None]

    def record(self) -> None:
        """Write the pid file again (a child restarted one of its processes)."""
        self.pid_file.write(self._running(self._children))

    def stop(self) -> None:
        """Stop every child, last first; one that raises is logged and the others are still stopped. The pid
        file goes, unless a child failed to stop its processes: then it keeps them for the next demo."""
        failed: list[Child] = []
        while self._children:
            child = self._children.pop()
            try:
                child.stop()
            except Exception:  # noqa: BLE001 - one stuck child must not keep the others running
                LOGGER.exception("demo: stopping %s failed", child.name)
                failed.append(child)
        left = self._running(failed)
        if left:
            self.pid_file.write(left)
        else:
            self.pid_file.remove()
