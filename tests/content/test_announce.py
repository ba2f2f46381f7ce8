"""The updater's own thread (announcements, retries, a prompt close) and the retained announcement over real MQTT."""

from __future__ import annotations

import json
import logging

import pytest

from kiosk.sync import schema
from kiosk.sync.content import ContentUpdater
from tests.content.site import VIDEO, content_config, content_store, new_bytes
from tests.scenarios.harness import wait_for
from tests.sync.fleet import ROOT_TOPIC, FleetCase, Watcher, mqtt_section, publish

CONTENT_TOPIC = ROOT_TOPIC + "central/content"


def test_announce_hands_over_and_returns_at_once(library, tmp_path, caplog):
    library.publish(100)
    cfg = content_config(tmp_path / "bc", [library.public], None)        # announcements only, no polling
    store = content_store(cfg)
    up = ContentUpdater(cfg, store)
    library.server.faults.delay_ms = 300      # every answer waits: an announce that fetched would wait too
    caplog.set_level(logging.INFO, logger="kiosk.sync.content")
    try:
        up.start()
        up.announce({"v": 1, "version": 100, "url": library.server.url})
        assert library.server.served == []    # returned before the server answered anything
        library.server.faults.delay_ms = 0
        wait_for(lambda: store.current_version() == 100, 20, "the announced content installed")
        served = len(library.server.served)
        up.announce({"v": 1, "version": 100, "url": library.server.url})     # what we have: nothing to fetch
        wait_for(lambda: any("announced; already have version 100" in r.getMessage() for r in caplog.records), 20,
                 "the announcement of what is installed")
        assert len(library.server.served) == served
    finally:
        up.close()


def test_the_thread_retries_and_resumes_until_installed(library, tmp_path):
    size = 500_000
    new = library.publish(100, **{VIDEO: new_bytes(size, 11)})
    cfg = content_config(tmp_path / "bc", [library.public], library.server.url, check_interval_s=10)
    store = content_store(cfg)
    library.server.faults.drop_after = 150_000            # every body stops short: only resuming gets there
    up = ContentUpdater(cfg, store, retry_min_s=0.05)
    try:
        up.start()
        wait_for(lambda: store.current_version() == 100, 30, "the content installed through dropped connections")
    finally:
        up.close()
    ranges = [s.range for s in library.asset_requests() if s.path == VIDEO]
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges if r]
    assert ranges[0] is None and len(starts) >= 3 and starts == sorted(set(starts))
    assert sum(s.sent for s in library.asset_requests() if s.path == VIDEO) < 2 * size
    assert store.has(new.assets[VIDEO].sha256)


def test_close_stops_a_download_and_keeps_its_part(library, tmp_path, caplog):
    new = library.publish(100, **{VIDEO: new_bytes(3_000_000, 12)})
    library.server.faults.rate_kbps = 200
    cfg = content_config(tmp_path / "bc", [library.public], library.server.url)
    store = content_store(cfg)
    part = store.part_path(new.assets[VIDEO].sha256)
    up = ContentUpdater(cfg, store)
    caplog.set_level(logging.INFO, logger="kiosk.sync.content")
    up.start()
    try:
        wait_for(lambda: part.exists() and part.stat().st_size > 0, 20, "the download under way")
    finally:
        up.close()
    assert not up._thread.is_alive()
    assert 0 < part.stat().st_size < 3_000_000 and store.current() is None
    assert any("content download stopped" in r.getMessage() for r in caplog.records)


BAD = [("not_json", b'{"v": 1, "version": '), ("invalid", {"v": 1, "version": "newest"}),
       ("unknown_version", {"v": 2, "version": 300}), ("invalid", {"v": 1, "version": 300, "url": "ftp://x/"}),
       ("invalid", {"v": 1}), ("not_object", b"[300]")]


def test_a_retained_announcement_over_mqtt(library, broker, tmp_path, caplog):
    first = library.publish(100)
    # Published before the bookcase is even up: retained, so it comes with the subscription.
    publish(broker.port, CONTENT_TOPIC, {"v": 1, "version": 100, "url": library.server.url}, retain=True)
    b = FleetCase(tmp_path / "b", "MH-B", mqtt_section(broker.port), first_item=101, doors=1, books_per_door=2)
    b.cfg = content_config(tmp_path / "b", [library.public], None, mqtt=mqtt_section(broker.port), bookcase="MH-B")
    watcher = Watcher(broker.port, (ROOT_TOPIC + "bookcase/MH-B/state",))
    caplog.set_level(logging.INFO, logger="kiosk")
    try:
        watcher.wait_connected()
        b.start()
        store = b.app.content_store
        wait_for(lambda: store.current_version() == 100, 30, "the retained announcement's content installed")
        assert all(store.has(a.sha256) for a in first.assets.values())
        # Malformed announcements are refused and counted like any bad message, and start no download.
        for _, payload in BAD:
            publish(broker.port, CONTENT_TOPIC, payload)
        second = library.publish(200, **{VIDEO: new_bytes(80_000, 13)})
        publish(broker.port, CONTENT_TOPIC, {"v": 1, "version": 200, "url": library.server.url}, retain=True)
        wait_for(lambda: store.current_version() == 200, 30, "the second announcement's content installed")
        assert store.has(second.assets[VIDEO].sha256)
        # The staff diagnostics screen shows it too.
        diag = wait_for(lambda: (d := b.app.snapshot.diagnostics) and d.content_version == 200 and d, 20,
                        "the content version on the diagnostics screen")
        assert diag.content_result == "installed"
        counters = b.app.sync.counters
        expected: dict[str, int] = {}
        for reason, _ in BAD:
            expected["bad_" + reason] = expected.get("bad_" + reason, 0) + 1
        assert {k: counters[k] for k in expected} == expected and counters["content_announcements"] == 2
        refusals = [r.getMessage() for r in caplog.records if "refused a message on" in r.getMessage()]
        assert len(refusals) == len(BAD)
        assert all(CONTENT_TOPIC in line and "not applied" in line for line in refusals)
        for (reason, _), line in zip(BAD, refusals):
            assert schema.REASONS[reason] in line
        assert [s.path for s in library.server.served].count("manifest.json") == 2     # one per good announcement
        # The retained state tells the library which content each bookcase plays.
        state = wait_for(lambda: (s := watcher.last("bookcase/MH-B/state")) and s.get("content", {}).get("version")
                         == 200 and s, 20, "the content version in the bookcase's state")
        assert state["content"]["last_result"] == "installed" and state["counters"]["bad_invalid"] == 3
        assert not [r for r in caplog.records if r.exc_info], "a bad announcement raised instead of being refused"
    finally:
        b.stop()
        watcher.close()
    assert json.loads((b.cfg.content_dir / "status.json").read_text())["installed_version"] == 200


@pytest.mark.parametrize("payload", [{"v": 1, "version": 5}, {"v": 1, "version": 5, "url": "https://x.example/c/"}])
def test_announcement_schema_accepts(payload):
    assert schema.check_content(payload) == payload


def test_the_content_topic():
    from kiosk.sync.topics import CONTENT, Topics
    topics = Topics(ROOT_TOPIC, "MH-B")
    assert topics.content() == CONTENT_TOPIC and topics.parse(CONTENT_TOPIC) == (CONTENT, "")
    assert topics.parse(CONTENT_TOPIC + "/x") is None and topics.parse("citybook/v1/xuhui/central/content") is None


def test_an_announcement_ahead_of_the_server_is_retried(library, tmp_path, caplog):
    """The announcement says 200 while the server (a cache, say) still has 100: try again until it has 200."""
    library.publish(100)
    cfg = content_config(tmp_path / "bc", [library.public], None, check_interval_s=10)
    store = content_store(cfg)
    up = ContentUpdater(cfg, store, retry_min_s=0.05)
    caplog.set_level(logging.INFO, logger="kiosk.sync.content")
    try:
        up.start()
        up.announce({"v": 1, "version": 100, "url": library.server.url})
        wait_for(lambda: store.current_version() == 100, 20, "version 100")
        up.announce({"v": 1, "version": 200, "url": library.server.url})
        wait_for(lambda: any("version 200 was announced but" in r.getMessage() for r in caplog.records), 20,
                 "the updater to notice the server is behind")
        library.publish(200, **{VIDEO: new_bytes(30_000, 14)})
        wait_for(lambda: store.current_version() == 200, 20, "version 200 once the server has it")
    finally:
        up.close()
