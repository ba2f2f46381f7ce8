"""The bookcase's content updates against a real HTTP server on loopback: what is installed, refused, resumed."""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.content.authoring import sign
from kiosk.content.manifest import (
    MANIFEST,
    SIGNATURE,
)
from kiosk.content.manifest import sign as sign_bytes
from kiosk.content.store import sha256_file
from kiosk.sync.content import (
    CHUNK,
    CURRENT,
    FAILED,
    INSTALLED,
    REFUSED,
    SETTLE_S,
    STALE,
    ContentUpdater,
    TokenBucket,
)
from tests.content.site import VIDEO, Library, content_config, content_store, new_bytes


@pytest.fixture
def config(tmp_path, library):
    return content_config(tmp_path / "bc", [library.public], library.server.url)


@pytest.fixture
def store(config):
    return content_store(config)


@pytest.fixture
def updater(config, store):
    up = ContentUpdater(config, store, retry_min_s=0.05, settle_s=0.05)
    try:
        yield up
    finally:
        up.close()


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "kiosk.sync.content"]


def test_a_good_update_swaps_in(library, store, updater):
    first = library.publish(100)
    assert store.current() is None
    assert updater.update() == INSTALLED
    installed = store.current()
    assert installed.version == 100 and installed.manifest.raw == (library.folder / MANIFEST).read_bytes()
    for asset in first.assets.values():
        assert sha256_file(installed.path(asset.path)) == asset.sha256
    # A new video, the rest unchanged: only the video is downloaded.
    second = library.publish(200, **{VIDEO: new_bytes(120_000, 7)})
    assert updater.update() == INSTALLED and store.current().version == 200
    assert all(store.has(a.sha256) for a in second.assets.values())
    fetched = [s.path for s in library.asset_requests()]
    assert sorted(fetched) == sorted([*first.assets, VIDEO])
    assert updater.update() == CURRENT and len(library.asset_requests()) == len(fetched)
    st = updater.status()
    assert st["installed_version"] == 200 and st["last_result"] == CURRENT and st["refused"] == 0
    assert st["bytes_downloaded"] == sum(a.size for a in first.assets.values()) + 120_000


def test_a_tampered_asset_leaves_the_old_content(library, store, updater, caplog):
    library.publish(100)
    assert updater.update() == INSTALLED
    new = library.publish(200, **{VIDEO: new_bytes(200_000, 3)})
    library.server.faults.corrupt = {VIDEO}
    caplog.set_level(logging.INFO, logger="kiosk")
    assert updater.update() == REFUSED
    assert store.current().version == 100
    sha = new.assets[VIDEO].sha256
    assert not store.has(sha) and not store.part_path(sha).exists()
    assert sorted(p.name for p in store.versions.iterdir()) == ["100"]
    [line] = warnings(caplog)
    assert "refused" in line and VIDEO in line and "altered" in line and "version 100 keeps playing" in line
    assert updater.status()["refused"] == 1 and VIDEO in updater.status()["last_error"]
    library.server.faults.corrupt = set()
    assert updater.update() == INSTALLED and store.current().version == 200


def _other_key(library: Library) -> None:
    sign(library.folder, Ed25519PrivateKey.generate(), 200)


def _sig_altered(library: Library) -> None:
    sign(library.folder, library.key, 200)
    sig = bytearray(base64.b64decode((library.folder / SIGNATURE).read_bytes()))
    sig[10] ^= 0x01
    (library.folder / SIGNATURE).write_bytes(base64.b64encode(bytes(sig)) + b"\n")


def _manifest_altered(library: Library) -> None:
    sign(library.folder, library.key, 200)
    raw = (library.folder / MANIFEST).read_bytes()
    (library.folder / MANIFEST).write_bytes(raw.replace(b'"version": 200', b'"version": 300'))


def _malformed(library: Library) -> None:
    raw = b'{"format": 1, "library": "minhang", "version": 200, "items": "everything"}'
    (library.folder / MANIFEST).write_bytes(raw)
    (library.folder / SIGNATURE).write_bytes(sign_bytes(raw, library.key))


def _other_library(library: Library) -> None:
    source = (library.folder / "content.toml").read_text(encoding="utf-8")
    (library.folder / "content.toml").write_text(source.replace('"minhang"', '"xuhui"'), encoding="utf-8")
    sign(library.folder, library.key, 200)


@pytest.mark.parametrize("spoil, why", [
    (_other_key, "does not match any of the library's public keys"),
    (_sig_altered, "does not match any of the library's public keys"),
    (_manifest_altered, "does not match any of the library's public keys"),
    (_malformed, "does not match format 1"),
    (_other_library, "is for library 'xuhui'")], ids=["other-key", "sig-altered", "manifest-altered", "malformed",
                                                      "other-library"])
def test_a_bad_manifest_is_refused_before_any_download(library, store, updater, caplog, spoil, why):
    library.publish(100)
    assert updater.update() == INSTALLED
    before = len(library.asset_requests())
    (library.folder / VIDEO).write_bytes(new_bytes(50_000, 9))
    spoil(library)
    caplog.set_level(logging.INFO, logger="kiosk")
    assert updater.update() == REFUSED
    assert store.current().version == 100 and len(library.asset_requests()) == before
    assert not store.has(sha256_file(library.folder / VIDEO)) and not list(store.objects.glob("*.part"))
    [line] = warnings(caplog)
    assert why in line and "version 100 keeps playing" in line


def test_a_manifest_caught_mid_publish_is_read_again(library, config, store, caplog):
    # `kiosk content sign` renames the new manifest.json in, then the new manifest.sig: a check in between
    # gets the new manifest with the old signature. It looks again instead of calling the content bad.
    library.publish(100)
    old_sig = (library.folder / SIGNATURE).read_bytes()
    library.publish(200, **{VIDEO: new_bytes(50_000, 3)})
    new_sig = (library.folder / SIGNATURE).read_bytes()
    (library.folder / SIGNATURE).write_bytes(old_sig)
    caplog.set_level(logging.INFO, logger="kiosk")
    up = ContentUpdater(config, store, settle_s=SETTLE_S)
    outcome: list[str] = []
    attempt = threading.Thread(target=lambda: outcome.append(up.update()))
    try:
        attempt.start()
        deadline = time.monotonic() + 30
        while not library.server.requests_for(SIGNATURE) and time.monotonic() < deadline:
            time.sleep(0.005)
        (library.folder / SIGNATURE).write_bytes(new_sig)          # the publisher's second rename
        attempt.join(30)
    finally:
        up.close()
    assert outcome == [INSTALLED] and store.current().version == 200
    assert len(library.server.requests_for(SIGNATURE)) == 2 and len(library.server.requests_for(MANIFEST)) == 2
    assert warnings(caplog) == [] and up.status()["refused"] == 0
    assert any("changed while it was read" in r.getMessage() for r in caplog.records)


def test_a_bad_signature_read_twice_the_same_is_refused(library, store, updater):
    library.publish(100)
    assert updater.update() == INSTALLED
    _sig_altered(library)
    sigs = len(library.server.requests_for(SIGNATURE))
    assert updater.update() == REFUSED and store.current().version == 100
    assert len(library.server.requests_for(SIGNATURE)) == sigs + 2      # looked again once, found the same
    assert updater.status()["refused"] == 1


def test_an_interrupted_download_resumes(library, store, updater, caplog):
    library.publish(100)
    assert updater.update() == INSTALLED
    size = 600_000
    new = library.publish(200, **{VIDEO: new_bytes(size, 5)})
    library.server.faults.drop_after = 250_000
    caplog.set_level(logging.INFO, logger="kiosk")
    assert updater.update() == FAILED
    assert store.current().version == 100
    part = store.part_path(new.assets[VIDEO].sha256)
    kept = part.stat().st_size
    assert 0 < kept <= 250_000
    [line] = warnings(caplog)
    assert f"the connection broke after {kept} of {size} bytes of {VIDEO}" in line and "kept" in line
    library.server.faults.drop_after = None
    # The server loses the file for a while: the attempt fails, and what was downloaded stays.
    (library.folder / VIDEO).rename(library.folder / "away.mp4")
    assert updater.update() == FAILED and "HTTP 404" in updater.status()["last_error"]
    assert part.stat().st_size == kept
    (library.folder / "away.mp4").rename(library.folder / VIDEO)
    assert updater.update() == INSTALLED and store.current().version == 200 and not part.exists()
    first, second = [s for s in library.asset_requests() if s.path == VIDEO and s.status != 404][-2:]
    assert (first.range, first.dropped) == (None, True)
    assert (second.range, second.status) == (f"bytes={kept}-", 206)
    assert first.sent + second.sent < 2 * size


def test_a_part_longer_than_the_file_starts_over(library, store, updater):
    manifest = library.publish(100)
    store.prepare()
    asset = manifest.assets[VIDEO]
    store.part_path(asset.sha256).write_bytes(b"x" * (asset.size + 10))
    assert updater.update() == INSTALLED
    assert [s.range for s in library.asset_requests() if s.path == VIDEO] == [None]


def test_a_server_without_ranges_starts_over(library, store, updater):
    """Python's own SimpleHTTPRequestHandler ignores Range and answers 200: the part is rewritten, not appended."""
    import functools
    import http.server
    import threading
    manifest = library.publish(100)
    store.prepare()
    asset = manifest.assets[VIDEO]
    store.part_path(asset.sha256).write_bytes((library.folder / VIDEO).read_bytes()[:1000])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(library.folder))
    handler.log_message = lambda *args: None
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=plain.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        assert updater.update(f"http://127.0.0.1:{plain.server_address[1]}/") == INSTALLED
    finally:
        plain.shutdown()
        plain.server_close()
        thread.join()
    assert sha256_file(store.current().path(VIDEO)) == asset.sha256


def test_older_and_equal_versions_are_refused(library, store, updater, caplog):
    library.publish(200)
    assert updater.update() == INSTALLED
    requested = len(library.asset_requests())
    caplog.set_level(logging.INFO, logger="kiosk")
    assert updater.update() == CURRENT
    (library.folder / MANIFEST).unlink()          # the library re-signs an old version: a replay, in effect
    library.publish(150, **{VIDEO: new_bytes(10_000, 4)})
    assert updater.update() == STALE and updater.update() == STALE
    assert store.current().version == 200 and len(library.asset_requests()) == requested
    said = [r.getMessage() for r in caplog.records]
    assert sum("already have version 200" in m for m in said) == 1
    assert sum("version 150" in m and "older than installed version 200: refused" in m for m in said) == 1
    assert updater.status()["refused"] == 1


def test_a_full_disk_keeps_the_old_content(library, store, updater, caplog):
    library.publish(100)
    assert updater.update() == INSTALLED
    new = library.publish(200, **{VIDEO: new_bytes(300_000, 6)})
    part = store.part_path(new.assets[VIDEO].sha256)
    os.symlink("/dev/full", part)                 # every write to it fails with ENOSPC, as on a full card
    caplog.set_level(logging.INFO, logger="kiosk")
    assert updater.update() == FAILED
    [line] = warnings(caplog)
    assert "no space left on the disk" in line and "version 100 keeps playing" in line
    assert store.current().version == 100
    part.unlink()
    assert updater.update() == INSTALLED and store.current().version == 200


def test_not_enough_room_downloads_nothing(library, config, store):
    library.publish(100)
    tight = dataclasses.replace(config, session=dataclasses.replace(config.session, disk_low_mb=10 ** 9))
    up = ContentUpdater(tight, store)
    try:
        assert up.update() == FAILED
    finally:
        up.close()
    assert "not enough disk space" in up.status()["last_error"] and library.asset_requests() == []


def test_http_errors_fail_and_are_retried(library, config, store, tmp_path):
    up = ContentUpdater(config, store)
    try:
        assert up.update(library.server.url + "nowhere/") == FAILED
        assert f"HTTP 404 for {library.server.url}nowhere/manifest.json" in up.status()["last_error"]
        library.publish(100)
        (library.folder / "img" / "cover.jpg").unlink()
        assert up.update() == FAILED and "HTTP 404" in up.status()["last_error"]
        assert store.current() is None
    finally:
        up.close()


class FakeClock:
    """Time that passes only when the updater waits: the cap is checked by its own accounting, not a stopwatch."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.now += seconds
        return False


def worst_excess(transfers: list[tuple[float, int]], rate: float, burst: int) -> float:
    """The most bytes that went through in any window beyond what a bucket of ``rate`` and ``burst`` allows:
    the chunks from the i-th up to (not including) the j-th took place in the window [t_i, t_j]."""
    worst = float("-inf")
    for i in range(len(transfers)):
        sent = 0
        for j in range(i + 1, len(transfers)):
            sent += transfers[j - 1][1]
            worst = max(worst, sent - (burst + rate * (transfers[j][0] - transfers[i][0])))
    return worst


@pytest.mark.parametrize("burst", [4096, 65536])
def test_token_bucket(burst):
    clock = FakeClock()
    bucket = TokenBucket(10_000, burst, clock)
    assert bucket.take(burst) == 0                    # a full bucket lets one burst through at once
    assert bucket.take(5_000) == pytest.approx(0.5)   # then 10,000 bytes a second
    clock.sleep(0.5)
    assert bucket.take(10_000) == pytest.approx(1.0)
    clock.sleep(100)                                  # a long pause fills the bucket to ``burst``, no more
    assert bucket.take(burst) == 0 and bucket.take(1000) == pytest.approx(0.1)


def test_the_bandwidth_cap_holds_in_the_updaters_accounting(library, config, tmp_path):
    size = 400_000
    library.publish(100, **{VIDEO: new_bytes(size, 8)})
    rate, burst = 64 * 1024, CHUNK                    # 64 KB/s; no burst is larger than a chunk
    results = {}
    for kbps in (64, 0):                              # capped, and not: the measure must tell them apart
        cfg = content_config(tmp_path / f"bc-{kbps}", [library.public], library.server.url, max_kbps=kbps)
        clock = FakeClock()
        up = ContentUpdater(cfg, content_store(cfg), clock=clock, sleep=clock.sleep)
        try:
            assert up.update() == INSTALLED
        finally:
            up.close()
        transfers = list(up.transfers)
        assert sum(n for _, n in transfers) == sum(a.size for a in content_store(cfg).current().manifest.assets
                                                   .values())
        results[kbps] = (worst_excess(transfers, rate, burst), clock.now - 1000.0, sum(n for _, n in transfers))
    excess, waited, total = results[64]
    assert excess <= 0
    assert waited >= (total - burst) / rate          # it waited as long as the cap needs, by its own clock
    assert results[0][0] > 0 and results[0][1] == 0   # uncapped, the same measure shows the excess
