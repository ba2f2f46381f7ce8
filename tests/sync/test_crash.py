"""SIGKILL the daemon again and again while it publishes its outbox: no event lost, a repeat only under its id."""

from __future__ import annotations

from kiosk.store.ledger import Store
from tests.scenarios.harness import wait_for
from tests.sync.fleet import FleetCase, Watcher, mqtt_section
from tests.sync.test_outage import assert_stream_complete

EVENTS = 6000
KILLS = 8


def test_sigkill_while_publishing_loses_nothing(tmp_path, broker):
    watcher = Watcher(broker.port, ("citybook/v1/minhang/bookcase/MH-A/#",), client_id="library-watcher",
                      persistent=True)
    watcher.wait_connected()
    a = FleetCase(tmp_path / "a", "MH-A", mqtt_section(broker.port, inflight=16), first_item=1)
    # A backlog, as after a long outage: thousands of events queued before the daemon starts.
    store = Store(a.cfg.db_path, a.id)
    store.record_events([{"type": "alarm", "alarm": "test_backlog", "door": None, "n": i} for i in range(EVENTS)])
    store.close()
    a.sim.start()
    kills = 0
    try:
        while kills < KILLS:
            before = a.depth()
            a.start_process()
            # Kill it in the middle of publishing: as soon as the broker has acknowledged some of it.
            wait_for(lambda: a.depth() < before, 60, "the daemon to publish")
            a.kill_process()
            if a.depth() == 0:
                break
            kills += 1
        a.start_process()
        wait_for(lambda: a.depth() == 0, 120, "the outbox to drain")
        assert kills >= 5, f"only {kills} kills landed while events were unsent; raise EVENTS"
        assert_stream_complete(a, watcher)
        assert len({e["id"] for e in watcher.events("MH-A")}) == len(a.view.outbox()) >= EVENTS
        # The broker told everyone when A vanished: its last will says offline.
        wills = [s for s in watcher.on("bookcase/MH-A/state") if not s["online"]]
        assert any(s.get("reason") == "connection lost" for s in wills)
    finally:
        a.stop()
        watcher.close()
