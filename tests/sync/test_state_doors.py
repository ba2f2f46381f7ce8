"""The retained state tells the operators' console which doors serve and how old the oldest unsent event is."""

from __future__ import annotations

from tests.scenarios.harness import wait_for
from tests.sync.fleet import ROOT_TOPIC, FleetCase, Watcher, mqtt_section


def test_the_state_says_which_doors_are_out_of_service(tmp_path, broker):
    case = FleetCase(tmp_path / "b", "MH-B", mqtt_section(broker.port), first_item=101)
    watcher = Watcher(broker.port, (ROOT_TOPIC + "bookcase/MH-B/state",))
    try:
        case.start()
        state = wait_for(lambda: (s := watcher.last("MH-B/state")) and s["online"]
                         and s.get("doors", {}).get("in_service") == [1, 2, 3] and s, 30, "a state with every door")
        assert state["doors"]["out_of_service"] == []
        # The outbox's two figures agree. No gateway acks anything here, so an event recorded at start (an alarm
        # for a device slow to answer on a loaded machine) stays counted, with its time.
        assert (state["outbox_oldest"] is None) == (state["outbox_depth"] == 0), state
        case.sim.unplug("lockboard")
        state = wait_for(lambda: (s := watcher.last("MH-B/state")) and s["doors"]["out_of_service"] == [1, 2, 3]
                         and s, 30, "a state with the doors out of service")
        assert state["doors"]["in_service"] == []
        case.sim.replug("lockboard")
        wait_for(lambda: watcher.last("MH-B/state")["doors"]["in_service"] == [1, 2, 3], 30, "the doors back")
    finally:
        case.stop()
        watcher.close()
