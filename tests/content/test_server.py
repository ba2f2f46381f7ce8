"""`kiosk content serve` on loopback: byte ranges (206/416), nothing outside the folder, and its faults."""

from __future__ import annotations

import http.client
import os

import pytest
import requests

from kiosk.content.server import CORRUPT_EVERY, ContentServer, Faults, parse_range
from tests.scenarios.harness import wait_for

DATA = bytes(range(256)) * 40            # 10,240 bytes


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "site"
    (root / "video").mkdir(parents=True)
    (root / "video" / "clip.mp4").write_bytes(DATA)
    (root / "empty.txt").write_bytes(b"")
    (root / ".hidden").write_bytes(b"secret")
    (root / "library-content.key").write_bytes(b"private")
    (tmp_path / "outside.txt").write_bytes(b"outside the folder")
    os.symlink(tmp_path / "outside.txt", root / "link.txt")
    return root


@pytest.fixture
def server(folder):
    with ContentServer(folder) as srv:
        yield srv


def raw_get(server: ContentServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """A request with the path exactly as given (no client-side normalisation of "..")."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_whole_files_and_ranges(server):
    with requests.Session() as s:
        whole = s.get(server.url + "video/clip.mp4", timeout=10)
        assert whole.status_code == 200 and whole.content == DATA and whole.headers["Accept-Ranges"] == "bytes"
        assert whole.headers["Content-Type"] == "video/mp4"
        tail = s.get(server.url + "video/clip.mp4", headers={"Range": "bytes=10000-"}, timeout=10)
        assert tail.status_code == 206 and tail.content == DATA[10000:]
        assert tail.headers["Content-Range"] == f"bytes 10000-{len(DATA) - 1}/{len(DATA)}"
        middle = s.get(server.url + "video/clip.mp4", headers={"Range": "bytes=100-199"}, timeout=10)
        assert middle.status_code == 206 and middle.content == DATA[100:200]
        assert middle.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
        beyond = s.get(server.url + "video/clip.mp4", headers={"Range": f"bytes={len(DATA)}-"}, timeout=10)
        assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(DATA)}"
        assert beyond.content == b""
        last = s.get(server.url + "video/clip.mp4", headers={"Range": "bytes=-10"}, timeout=10)
        assert last.status_code == 206 and last.content == DATA[-10:]
        assert s.get(server.url + "empty.txt", headers={"Range": "bytes=0-"}, timeout=10).status_code == 416
        head = s.head(server.url + "video/clip.mp4", timeout=10)
        assert head.status_code == 200 and head.headers["Content-Length"] == str(len(DATA))
    assert [(r.path, r.range, r.status) for r in server.requests_for("video/clip.mp4")][:3] == [
        ("video/clip.mp4", None, 200), ("video/clip.mp4", "bytes=10000-", 206), ("video/clip.mp4", "bytes=100-199", 206)]


@pytest.mark.parametrize("header, expected", [
    (None, None), ("bytes=0-", (0, 99)), ("bytes=5-9", (5, 9)), ("bytes=90-500", (90, 99)), ("bytes=-5", (95, 99)),
    ("bytes=-500", (0, 99)), ("bytes=100-", "unsatisfiable"), ("bytes=-0", "unsatisfiable"),
    ("bytes=9-5", None), ("bytes=0-1,5-6", None), ("items=0-5", None), ("bytes=-", None)])
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("path", ["/../outside.txt", "/%2e%2e/outside.txt", "/video/../../outside.txt",
                                  "/video/%2E%2E/%2E%2E/outside.txt", "/link.txt", "/.hidden",
                                  "/library-content.key", "/video", "/", "/nothing.mp4", "/video/clip.mp4%00"])
def test_nothing_outside_the_folder(server, path):
    status, _, body = raw_get(server, path)
    assert status == 404 and body == b""
    assert b"outside the folder" not in body and b"secret" not in body


def test_a_corrupted_file_is_altered_the_same_way_in_every_range(server):
    server.faults.corrupt = {"video/clip.mp4"}
    status, _, bad = raw_get(server, "/video/clip.mp4")
    assert status == 200 and len(bad) == len(DATA) and bad != DATA
    diffs = [i for i in range(len(DATA)) if bad[i] != DATA[i]]
    assert diffs == list(range(0, len(DATA), CORRUPT_EVERY))
    status, _, part = raw_get(server, "/video/clip.mp4", {"Range": "bytes=1000-"})
    assert status == 206 and part == bad[1000:]         # a resumed download stays as corrupt


def test_drop_after_cuts_the_body(server):
    server.faults.drop_after = 3000
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = requests.get(server.url + "video/clip.mp4", timeout=10).content
    served = wait_for(lambda: server.requests_for("video/clip.mp4"), 10, "the server's record")[-1]
    assert served.sent == 3000 and served.dropped
    # A body shorter than the limit goes whole; a resumed request gets the next 3000 bytes.
    assert requests.get(server.url + "video/clip.mp4", headers={"Range": "bytes=9000-"}, timeout=10).content \
        == DATA[9000:]
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = requests.get(server.url + "video/clip.mp4", headers={"Range": "bytes=3000-"}, timeout=10).content
    served = wait_for(lambda: len(server.requests_for("video/clip.mp4")) == 3 and server.requests_for("video/clip.mp4"),
                      10, "the server's record")
    assert [(s.range, s.sent, s.dropped) for s in served] == [
        (None, 3000, True), ("bytes=9000-", len(DATA) - 9000, False), ("bytes=3000-", 3000, True)]


def test_rate_limit_and_delay_still_deliver_every_byte(server):
    server.faults = Faults(rate_kbps=200, delay_ms=50)
    resp = requests.get(server.url + "video/clip.mp4", timeout=10)
    assert resp.status_code == 200 and resp.content == DATA
    assert str(server.faults) == "rate 200 KB/s; delay 50 ms"


def test_close_ends_idle_keep_alive_connections(folder):
    server = ContentServer(folder).start()
    session = requests.Session()
    try:
        assert session.get(server.url + "video/clip.mp4", timeout=10).content == DATA   # the connection stays open
    finally:
        server.close()                   # returns although the client keeps its connection
        session.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "video/clip.mp4", timeout=2)


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(NotADirectoryError):
        ContentServer(tmp_path / "nope")
