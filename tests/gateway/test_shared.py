"""Two gateways on one shared subscription and one PostgreSQL journal (here in one process, with the in-memory ILS
shared): the broker splits the events between them, and each item's events still reach the ILS once, in order."""

from __future__ import annotations

import threading

from gateway.patrons import import_export
from gateway.service import Gateway
from tests.gateway.fakes import FakeIls, FakePool
from tests.gateway.support import ROOT, T0, Bookcase, Publisher, load, write_gateway_config
from tests.scenarios.harness import wait_for
from tests.sync.fleet import Watcher

CARDS = ["3101120000018", "3101120000026", "3101120000042"]


def test_two_gateways_split_the_stream_and_apply_each_event_once_in_item_order(tmp_path, broker, postgres_server):
    url = postgres_server.new_database()
    ils = FakeIls(items={f"MH2020{n:04d}": None for n in range(1, 41)})
    export = tmp_path / "patrons.csv"
    export.write_text("card,class,status\n" + "".join(f"{c},adult,active\n" for c in CARDS))
    gateways, stops, threads = [], [], []
    watcher = Watcher(broker.port, (ROOT + "central/ack/#",))
    watcher.wait_connected()
    for n in (1, 2):
        cfg = load(write_gateway_config(tmp_path / f"gw{n}", mqtt_port=broker.port, journal=url, gateway_id=f"gw-{n}",
                                         hold_s=120))
        g = Gateway(cfg, pool=FakePool(ils))
        if n == 1:
            import_export(g.journal, export, cfg.patrons.secret, snapshot=None)
        stop = threading.Event()
        t = threading.Thread(target=g.run, args=(stop,), name=f"gateway-{n}")
        t.start()
        gateways.append(g), stops.append(stop), threads.append(t)
    pub = Publisher(broker.port)
    try:
        wait_for(lambda: all(g.consumer.online for g in gateways), 10, "both gateways online")
        clock = [T0]
        cases = [Bookcase(f"MH-{c}", clock=clock) for c in "ABC"]
        events = []

        def acked() -> int:
            return len({r["event"] for c in cases for m in watcher.on(f"central/ack/{c.name}") for r in m["results"]})
        for round_ in range(5):                   # each item: lent at one bookcase, returned at the next
            batch = []
            for n in range(1, 41):
                lender, returner = cases[(n + round_) % 3], cases[(n + round_ + 1) % 3]
                batch += [lender.loan(f"MH2020{n:04d}", CARDS[n % 3], minutes=0.01),
                          returner.ret(f"MH2020{n:04d}", minutes=0.02)]
            events += batch
            # Events go out in time order per bookcase; across bookcases the broker interleaves them, so a return
            # may reach the journal before its loan (it waits for it). A round goes out once the last one is
            # done: an item's events from a round before that arrived late would be a late bookcase's, which
            # the gateway applies in its own way (superseded returns: tests/gateway/test_apply.py).
            for case in cases:
                pub.send(*[e for e in batch if e["bookcase"] == case.name], wait=False)
            wait_for(lambda: acked() == len(events), 90, f"acks for all {len(events)} events of rounds 1-{round_ + 1}")
        assert all(g.consumer.stats.new > 0 for g in gateways), "the broker gave one gateway everything"
        assert sum(g.applier.applied for g in gateways) == len(events)
        for n in range(1, 41):
            item = f"MH2020{n:04d}"
            assert [c for c, i, _, _ in ils.applied if i == item] == ["checkout", "checkin"] * 5, item
        rows = gateways[0].journal.events()
        odd = [(r["type"], r["item"], r["bookcase"], r["ts"], r["state"], r.get("reason"), r.get("note"))
               for r in rows if r["state"] != "applied"]
        assert not odd, "events not applied:\n" + "\n".join(map(str, odd))
        assert len(rows) == len(events)
    finally:
        pub.close()
        for s in stops:
            s.set()
        for t in threads:
            t.join(60)
        watcher.close()
