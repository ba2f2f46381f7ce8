"""`kiosk content ...` through the real command line: keygen, sign, check, serve, announce, fetch, and their errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kiosk.cli import main
from kiosk.content.manifest import MANIFEST, SIGNATURE
from kiosk.content.server import ContentServer
from tests.content.site import VIDEO, content_config, content_store, new_bytes
from tests.content.test_authoring import write_folder
from tests.scenarios.harness import wait_for
from tests.sync.fleet import ROOT_TOPIC, Watcher

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def signed(tmp_path, capsys):
    """A content folder signed with a key made by `kiosk content keygen`: (folder, key file, public key)."""
    key = tmp_path / "keys" / "library-content.key"
    key.parent.mkdir()
    code, out, _ = run(capsys, "content", "keygen", "--out", str(key))
    assert code == 0
    public = out.split('public_keys = ["')[1].split('"')[0]
    folder = write_folder(tmp_path / "site")
    code, out, _ = run(capsys, "content", "sign", str(folder), "--key", str(key), "--version", "100")
    assert code == 0
    return folder, key, public


def test_keygen_sign_check(signed, capsys, tmp_path):
    folder, key, public = signed
    assert key.stat().st_mode & 0o777 == 0o600
    code, _, err = run(capsys, "content", "keygen", "--out", str(key))
    assert code == 2 and "exists already; not overwritten" in err
    code, out, _ = run(capsys, "content", "sign", str(folder), "--key", str(key))
    assert code == 0
    version = json.loads((folder / MANIFEST).read_bytes())["version"]
    total = sum(f.stat().st_size for f in (folder / "video").iterdir()) + \
        sum(f.stat().st_size for f in (folder / "img").iterdir())
    assert out.strip() == f"signed version {version} of {folder}: 4 items, 3 assets, {total} bytes " \
                          f"({total / 1e6:.1f} MB)"
    code, out, _ = run(capsys, "content", "check", str(folder), "--public-key", public)
    assert code == 0 and f"version {version} for library minhang, signed; 3 files" in out
    assert "  winter (image, priority 10) img/winter.png: 2026-12-01 to 2026-12-31, sat,sun, 09:00-12:00 " \
           "13:00-24:00" in out and "  intro (video) video/intro.mp4: always" in out and "fallback: intro" in out
    # Another key, or a file changed after signing: refused (1).
    other = tmp_path / "other.key"
    run(capsys, "content", "keygen", "--out", str(other))
    code, out, _ = run(capsys, "content", "sign", str(folder), "--key", str(other))
    code, _, err = run(capsys, "content", "check", str(folder), "--public-key", public)
    assert code == 1 and "refused" in err and "does not match any of the library's public keys" in err
    run(capsys, "content", "sign", str(folder), "--key", str(key))
    (folder / VIDEO).write_bytes(b"something else")
    code, _, err = run(capsys, "content", "check", str(folder), "--public-key", public)
    assert code == 1 and f"{VIDEO}: does not match the manifest's hash" in err


def test_sign_errors(tmp_path, capsys, signed):
    folder, key, _ = signed
    code, _, err = run(capsys, "content", "sign", str(folder), "--key", str(tmp_path / "nope.key"))
    assert code == 2 and "no such key file" in err
    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    code, _, err = run(capsys, "content", "sign", str(folder), "--key", str(rsa_key))
    assert code == 2 and "not an Ed25519 key" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "content", "sign", str(tmp_path / "empty"), "--key", str(key))
    assert code == 2 and "no content.toml here" in err
    inside = folder / "signing.key"
    inside.write_bytes(key.read_bytes())
    code, _, err = run(capsys, "content", "sign", str(folder), "--key", str(inside))
    assert code == 2 and "inside the content folder" in err
    (folder / "img" / "cover.jpg").unlink()
    code, _, err = run(capsys, "content", "sign", str(folder), "--key", str(key))
    assert code == 1 and "item 3 ('book-1'): cover 'img/cover.jpg': missing asset file" in err
    code, _, err = run(capsys, "content", "check", str(folder), "--public-key", "not-a-key")
    assert code == 2 and "not an Ed25519 public key" in err


def test_serve_from_the_command_line(signed, capsys):
    folder, _, public = signed
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "content", "serve", str(folder), "--port", "0",
                             "--drop-after", "1000", "--delay-ms", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = proc.stdout.readline()
        assert "(faults: drop after 1000 bytes; delay 1 ms)" in first, first
        url = first.split(" at ")[1].split(" ")[0]
        resp = requests.get(url + MANIFEST, headers={"Range": "bytes=0-99"}, timeout=10)
        assert resp.status_code == 206 and resp.content == (folder / MANIFEST).read_bytes()[:100]
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            _ = requests.get(url + VIDEO, timeout=10).content
        assert requests.get(url + "../" + SIGNATURE, timeout=10).status_code in (200, 404)   # client-normalised
        line = proc.stdout.readline()
        assert "GET /manifest.json (bytes=0-99) -> 206, 100 bytes" in line, line
        line = proc.stdout.readline()
        assert f"GET /{VIDEO} -> 200, 1000 bytes (connection dropped: fault)" in line, line
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    code, _, err = run(capsys, "content", "serve", str(folder / "nope"))
    assert code == 2 and "not a folder" in err
    assert public


def test_check_a_url(signed, capsys):
    folder, _, public = signed
    with ContentServer(folder) as server:
        code, out, _ = run(capsys, "content", "check", server.url, "--public-key", public)
        assert code == 0 and "version 100 for library minhang" in out
        server.faults.corrupt = {VIDEO}
        code, _, err = run(capsys, "content", "check", server.url, "--public-key", public)
        assert code == 1 and f"{VIDEO}: does not match" in err


def test_fetch_installs_refuses_and_fails(signed, capsys, tmp_path):
    folder, key, public = signed
    with ContentServer(folder) as server:
        cfg = content_config(tmp_path / "bc", [public], server.url)
        code, out, _ = run(capsys, "content", "fetch", "--config", str(cfg.path))
        assert code == 0 and "content: installed; version 100 installed" in out
        assert content_store(cfg).current_version() == 100
        code, out, _ = run(capsys, "content", "fetch", "--config", str(cfg.path))
        assert code == 0 and "content: current; version 100" in out
        code, out, _ = run(capsys, "content", "status", "--config", str(cfg.path))
        assert code == 0 and "content version 100 installed" in out and "current; 0 refused" in out
        (folder / VIDEO).write_bytes(new_bytes(20_000, 3))
        run(capsys, "content", "sign", str(folder), "--key", str(key), "--version", "200")
        server.faults.corrupt = {VIDEO}
        code, out, _ = run(capsys, "content", "fetch", "--config", str(cfg.path))
        assert code == 1 and "content: refused; version 100 installed" in out and VIDEO in out
        url = server.url
    code, out, _ = run(capsys, "content", "fetch", "--config", str(cfg.path), "--url", url)
    assert code == 2 and "content: failed" in out and "cannot reach the server" in out
    bare = content_config(tmp_path / "bare", [], None)
    code, _, err = run(capsys, "content", "fetch", "--config", str(bare.path))
    assert code == 2 and "public_keys is not set" in err
    code, _, err = run(capsys, "content", "fetch", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "config error" in err


def test_announce_through_mosquitto(broker, capsys, tmp_path):
    watcher = Watcher(broker.port, (ROOT_TOPIC + "central/content",))
    try:
        watcher.wait_connected()
        code, out, _ = run(capsys, "content", "announce", "--broker", f"127.0.0.1:{broker.port}", "--topic-root",
                           ROOT_TOPIC, "--url", "http://content.example/minhang", "--version", "1764500000")
        assert code == 0 and "announced content version 1764500000 on citybook/v1/minhang/central/content" in out
        wait_for(lambda: watcher.on("central/content"), 10, "the announcement")
        assert watcher.on("central/content") == [{"v": 1, "version": 1764500000,
                                                  "url": "http://content.example/minhang/"}]
        assert [retain for t, _, retain in watcher.messages] == [False]    # live delivery; the broker keeps it
    finally:
        watcher.close()
    late = Watcher(broker.port, (ROOT_TOPIC + "central/content",))
    try:
        wait_for(lambda: late.messages, 10, "the retained announcement for a late subscriber")
        assert late.messages[0][2] is True
    finally:
        late.close()
    cfg = content_config(tmp_path / "bc", [], None, mqtt={"host": "127.0.0.1", "port": broker.port})
    code, out, _ = run(capsys, "content", "announce", "--config", str(cfg.path), "--version", "7")
    assert code == 0 and f"at 127.0.0.1:{broker.port}" in out
    code, _, err = run(capsys, "content", "announce", "--broker", "nowhere", "--topic-root", ROOT_TOPIC,
                       "--version", "7")
    assert code == 2 and "is not HOST:PORT" in err
    code, _, err = run(capsys, "content", "announce", "--broker", f"127.0.0.1:{broker.port}", "--version", "7")
    assert code == 2 and "--topic-root" in err
    code, _, err = run(capsys, "content", "announce", "--broker", f"127.0.0.1:{broker.port}", "--topic-root",
                       ROOT_TOPIC, "--version", "0")
    assert code == 2 and "not a valid announcement" in err
