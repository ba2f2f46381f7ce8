"""Which process a recorded pid names: a pid alone can be reused after its process ends, its start time cannot."""

from __future__ import annotations

from pathlib import Path


def started(pid: int, proc_root: Path | str = "/proc") -> int | None:
    """When process ``pid`` started (clock ticks since boot, proc(5) stat field 22); None when no such process
    runs (a zombie has ended). Known from the fork on, before the child's exec."""
    try:
        stat = (Path(proc_root) / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()          # field 3 (state) on; the name may hold spaces and ')'
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None
