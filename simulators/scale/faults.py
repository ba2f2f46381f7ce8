"""Faults on a schedule, as a street fleet meets them: bookcases offline for hours to days, broker restarts, gateway
SIGKILLs, ILS outages, bookcase daemons SIGKILLed mid-session, a bookcase whose SD card is replaced by a blank one.

Times and durations are simulated seconds. A restart that takes real time (the broker's, the gateway's) takes it:
the simulated clock goes on meanwhile, as the street's does. A daemon is killed the moment a patron has taken
books and not yet closed the door; a database is replaced once its bookcase is idle and its outbox empty (the
technician checks the console before swapping the card: unsent events on the old card would be lost).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from simulators.scale.model import DAY_S

if TYPE_CHECKING:
    from simulators.scale.bookcase import SimBookcase
    from simulators.scale.fleet import FleetRun

LOGGER = logging.getLogger(__name__)

KINDS = ("offline", "broker_restart", "gateway_kill", "ils_down", "core_kill", "replace")
HOUR_S = 3600.0


@dataclass(frozen=True)
class Fault:
    at: float                    # simulated second
    kind: str
    bookcase: int | None = None
    duration_s: float = 0.0      # how long it lasts (offline, ILS down, a killed daemon or gateway down)


def default_schedule(days: float, bookcases: int) -> list[Fault]:
    """Every kind at least once, spread over the run (a week's worth, squeezed into shorter runs): one bookcase
    offline for hours, another for days, the gateway killed in an evening peak, the broker restarted in another,
    the ILS down for an evening, a daemon killed mid-session, a bookcase's database replaced."""
    span = days * DAY_S
    f = span / (7 * DAY_S)

    def at(day: float, hour: float) -> float:
        return min(span * 0.9, (day * DAY_S + hour * HOUR_S) * f if f < 1 else day * DAY_S + hour * HOUR_S)

    def pick(n: int) -> int:
        return n % bookcases
    short = min(8 * HOUR_S, span * 0.15)
    long = min(2.5 * DAY_S, span * 0.35)
    return sorted([
        Fault(at(0, 10), "offline", pick(1), short),
        Fault(at(1, 9), "offline", pick(4), long),
        Fault(at(1, 19.5), "gateway_kill", None, min(10 * 60, span * 0.01)),
        Fault(at(2, 20), "broker_restart", None, min(2 * 60, span * 0.005)),
        Fault(at(3, 17), "ils_down", None, min(4 * HOUR_S, span * 0.08)),
        Fault(at(4, 19), "core_kill", pick(7), min(10 * 60, span * 0.01)),
        Fault(at(5, 11), "replace", pick(10)),
    ], key=lambda x: x.at)


class Faults:
    def __init__(self, run: FleetRun, schedule: list[Fault]) -> None:
        self.run = run
        self.schedule = schedule
        self.log: list[dict] = []
        self.kill_any: float | None = None        # a daemon to kill at the next hands done (its downtime)
        self.done: dict[str, int] = {k: 0 for k in KINDS}

    def arm(self) -> None:
        for fault in self.schedule:
            self.run.scheduler.at(fault.at, self._begin, fault)

    def _note(self, fault: Fault, what: str) -> None:
        entry = {**asdict(fault), "what": what, "t": round(self.run.clock.t, 1), "real": round(time.time(), 3),
                 "when": self.run.clock.now().isoformat(timespec="seconds")}
        self.log.append(entry)
        LOGGER.warning("fault at %s: %s", entry["when"], what)

    def _begin(self, fault: Fault) -> None:
        run, sched = self.run, self.run.scheduler
        if fault.kind == "offline":
            bc = run.bookcases[fault.bookcase]
            bc.go_offline()
            self._note(fault, f"bookcase {bc.id} offline for {fault.duration_s / HOUR_S:.1f} h")
            sched.after(fault.duration_s, self._online, fault)
        elif fault.kind == "broker_restart":
            run.centre.stop_broker()
            self._note(fault, f"broker stopped for {fault.duration_s:.0f} s, then started again")
            sched.after(fault.duration_s, self._broker_up, fault)
        elif fault.kind == "gateway_kill":
            run.centre.gateway.kill()
            self._note(fault, f"gateway SIGKILLed; restarted {fault.duration_s:.0f} s later")
            sched.after(fault.duration_s, self._gateway_up, fault)
        elif fault.kind == "ils_down":
            run.centre.ils.control("down")
            self._note(fault, f"ILS down for {fault.duration_s / HOUR_S:.1f} h")
            sched.after(fault.duration_s, self._ils_up, fault)
        elif fault.kind == "core_kill":
            self.kill_any = fault.duration_s
            self._pending_kill = fault
        elif fault.kind == "replace":
            self._replace(fault)
        else:
            raise ValueError(f"unknown fault kind {fault.kind!r}")

    def _online(self, fault: Fault) -> None:
        self.run.bookcases[fault.bookcase].come_online()
        self.done["offline"] += 1
        self._note(fault, f"bookcase {self.run.bookcases[fault.bookcase].id} back online")

    def _broker_up(self, fault: Fault) -> None:
        self.run.centre.start_broker()
        if not self.run.options.broker_race:
            # Nothing moves (the driver waits) until the gateway's session is back: Mosquitto 2.0.11 does not restore
            # a shared subscription from its persistence file until its client reconnects, and drops (while
            # acknowledging them) the events published in between (docs/fleet-scale.md, findings).
            self.run.centre.wait_gateway_online(live=True)
        self.done["broker_restart"] += 1
        self._note(fault, "broker running again")

    def _gateway_up(self, fault: Fault) -> None:
        self.run.centre.gateway.start()
        self.done["gateway_kill"] += 1
        self._note(fault, "gateway restarted")

    def _ils_up(self, fault: Fault) -> None:
        self.run.centre.ils.control("up")
        self.done["ils_down"] += 1
        self._note(fault, "ILS up again")

    def hands_done(self, bc: SimBookcase) -> None:
        """A patron has just taken books behind an open door: a daemon due to be killed dies now."""
        if self.kill_any is None or not bc.alive:
            return
        downtime, fault = self.kill_any, self._pending_kill
        self.kill_any = None
        bc.kill()
        self._note(fault, f"bookcase {bc.id}'s daemon SIGKILLed mid-session (door open, books taken); "
                          f"restarted {downtime:.0f} s later")
        self.run.scheduler.after(downtime, self._restart, bc)

    def _restart(self, bc: SimBookcase) -> None:
        bc.open()
        self.run.ticking(bc)
        self.done["core_kill"] += 1
        self.log.append({"kind": "core_kill", "what": f"bookcase {bc.id}'s daemon started again",
                         "t": round(self.run.clock.t, 1), "when": self.run.clock.now().isoformat(timespec="seconds")})

    def _replace(self, fault: Fault, tries: int = 0) -> None:
        bc = self.run.bookcases[fault.bookcase]
        idle = bc.alive and not bc.offline and bc.visit is None and not bc.flow.live and \
            bc.store.outbox_depth() == 0 and not bc.sync.relay.inflight
        if not idle:
            self.run.scheduler.after(60.0, self._replace, fault, tries + 1)
            return
        old = bc.replace_database()
        self.run.replaced.append((bc.id, old, time.time()))
        bc.open()
        self.run.ticking(bc)
        self.done["replace"] += 1
        self._note(fault, f"bookcase {bc.id}'s SD card replaced by a blank one (the old database kept as "
                          f"{old.name}); a stocktake counts what is inside")

    def heal(self) -> None:
        """The end of the run: whatever is still broken is mended, so the fleet can go quiet."""
        run = self.run
        for bc in run.bookcases:
            if bc.offline:
                bc.come_online()
            if not bc.alive:
                bc.open()
        if not run.centre.broker.running:
            run.centre.start_broker()
        if not run.centre.gateway.running:
            run.centre.gateway.start()
        run.centre.ils.control("up")
        self.kill_any = None
