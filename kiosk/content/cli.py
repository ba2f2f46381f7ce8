"""`kiosk content ...`: make a signing key, sign a content folder, check, serve and announce it, fetch it now.

Exit codes: 0 done; 1 refused (a check that fails, an update refused, an announcement the broker refused);
2 cannot start (a missing or wrong key file, a folder without content.toml, bad arguments, no network).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiosk.content.manifest import Manifest

LOGGER = logging.getLogger(__name__)

EXAMPLES = """  kiosk content keygen --out library-content.pem      (keep it offline; prints the public key for [content])
  kiosk content sign ./content --key library-content.pem
  kiosk content check ./content --public-key <B64>      (or a URL: http://content.example/minhang/)
  kiosk content serve ./content --port 8080 --rate-kbps 200 --drop-after 500000   (faults for testers)
  kiosk content announce --config F --url http://content.example/minhang/ --version 1764500000
  kiosk content fetch --config F                        (one update now: 0 installed, 1 refused, 2 error)
"""


def register(sub: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    content = sub.add_parser("content", help="the large screen's signed content: keys, signing, serving, fetching",
                             epilog="examples:\n" + EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = content.add_subparsers(dest="content_command", required=True)
    keygen = csub.add_parser("keygen", help="make the library's content signing key (Ed25519)")
    keygen.add_argument("--out", required=True, type=Path, help="the private key file to write (mode 0600)")
    sign = csub.add_parser("sign", help="hash a content folder's assets and sign its manifest")
    sign.add_argument("folder", type=Path, help="a folder with content.toml and the assets it names")
    sign.add_argument("--key", required=True, type=Path, help="the private key file (kiosk content keygen)")
    sign.add_argument("--version", type=int, help="the manifest version (default: now in unix seconds, always "
                      "above the folder's previous one)")
    check = csub.add_parser("check", help="verify a signed folder or URL: signature, every file's hash, schedule")
    check.add_argument("source", help="a content folder, or its http(s):// URL")
    check.add_argument("--public-key", required=True, action="append", help="the library's public key (base64); "
                       "may be given more than once")
    serve = csub.add_parser("serve", help="serve a content folder over HTTP (Range requests; test faults)")
    serve.add_argument("folder", type=Path)
    serve.add_argument("--port", type=int, default=8080, help="0: any free port (default 8080)")
    serve.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--rate-kbps", type=float, default=0, help="fault: at most this many KB/s per download")
    serve.add_argument("--drop-after", type=int, metavar="BYTES", help="fault: drop the connection after this many "
                       "bytes of each body")
    serve.add_argument("--corrupt", action="append", default=[], metavar="PATH",
                       help="fault: serve this file (path in the folder) with altered bytes; repeatable")
    serve.add_argument("--delay-ms", type=int, default=0, help="fault: wait this long before each answer")
    announce = csub.add_parser("announce", help="publish the retained content announcement to the fleet's broker")
    announce.add_argument("--config", type=Path, help="take broker, TLS and topic root from this config's [mqtt]")
    announce.add_argument("--broker", help="HOST:PORT (overrides the config's)")
    announce.add_argument("--topic-root", help="e.g. citybook/v1/minhang/ (default: the config's)")
    announce.add_argument("--username", help="e.g. gateway: only the library's accounts may write central/")
    announce.add_argument("--password-file", type=Path)
    announce.add_argument("--url", help="the content folder's URL (default: each bookcase's [content] url)")
    announce.add_argument("--version", type=int, required=True, help="the signed manifest's version")
    fetch = csub.add_parser("fetch", help="one content update now, as the daemon would, with progress")
    fetch.add_argument("--config", required=True, type=Path)
    fetch.add_argument("--url", help="fetch from here instead of [content] url")
    status = csub.add_parser("status", help="the content installed and the last update attempt")
    status.add_argument("--config", required=True, type=Path)
    status.add_argument("--json", action="store_true")
    commands["content"] = _content


def _content(args: argparse.Namespace) -> int:
    handlers = {"keygen": _keygen, "sign": _sign, "check": _check, "serve": _serve, "announce": _announce,
                "fetch": _fetch, "status": _status}
    return handlers[args.content_command](args)


def _error(message: str, code: int = 2) -> int:
    print(f"kiosk content: {message}", file=sys.stderr)
    return code


def _log_to_stdout() -> None:
    from kiosk import logtext          # request paths and servers' answers are remote text: escaped
    logtext.configure(logging.INFO, "%(asctime)s %(message)s", "%H:%M:%S", stream=sys.stdout)


def _keygen(args: argparse.Namespace) -> int:
    from kiosk.content.authoring import KeyFileError, keygen
    from kiosk.content.manifest import public_text
    try:
        key = keygen(args.out)
    except KeyFileError as exc:
        return _error(str(exc))
    print(f"wrote the private key to {args.out} (mode 0600): keep it offline, never in the content folder")
    print("the bookcases' config takes the public key:")
    print(f'[content]\npublic_keys = ["{public_text(key)}"]')
    return 0


def _sign(args: argparse.Namespace) -> int:
    from kiosk.content.authoring import (
        SOURCE,
        AuthoringError,
        KeyFileError,
        load_private_key,
        sign,
    )
    try:
        key = load_private_key(args.key)
    except KeyFileError as exc:
        return _error(str(exc))
    if not (args.folder / SOURCE).is_file():
        return _error(f"{args.folder}: no {SOURCE} here; a content folder holds {SOURCE} and the assets it names")
    if args.key.resolve().is_relative_to(args.folder.resolve()):
        return _error(f"{args.key} is inside the content folder, which is published: move the private key out")
    try:
        manifest = sign(args.folder, key, args.version)
    except AuthoringError as exc:
        return _error(str(exc), 1)
    total = sum(a.size for a in manifest.assets.values())
    print(f"signed version {manifest.version} of {args.folder}: {len(manifest.items)} items, "
          f"{len(manifest.assets)} assets, {total} bytes ({total / 1e6:.1f} MB)")
    return 0


def _check(args: argparse.Namespace) -> int:
    from kiosk.content import ContentError
    from kiosk.content.authoring import check_folder, describe
    from kiosk.content.manifest import public_key
    try:
        keys = tuple(public_key(k) for k in args.public_key)
    except ValueError as exc:
        return _error(f"--public-key: {exc}")
    source = args.source
    try:
        if source.startswith(("http://", "https://")):
            manifest = _check_url(source if source.endswith("/") else source + "/", keys)
        elif Path(source).is_dir():
            manifest = check_folder(Path(source), keys)
        else:
            return _error(f"{source}: neither a folder nor an http(s):// URL")
    except ContentError as exc:
        return _error(f"{source}: refused: {exc}", 1)
    except OSError as exc:          # requests' errors are OSErrors too
        return _error(f"{source}: cannot read it: {exc}")
    total = sum(a.size for a in manifest.assets.values())
    print(f"{source}: ok — version {manifest.version} for library {manifest.library}, signed; "
          f"{len(manifest.assets)} files ({total} bytes) match their hashes")
    for item in manifest.items:
        print(f"  {describe(item)}")
    print(f"  fallback: {', '.join(manifest.fallback) or '(none: the built-in cards)'}")
    return 0


def _check_url(base: str, keys: tuple) -> Manifest:
    import hashlib

    import requests

    from kiosk.content import ContentError
    from kiosk.content.manifest import MANIFEST, SIGNATURE, verify
    from kiosk.sync.content import asset_url
    with requests.Session() as session:
        def get(url: str) -> requests.Response:
            resp = session.get(url, stream=True, timeout=(10, 30))
            if resp.status_code != 200:
                resp.close()
                raise ContentError(f"HTTP {resp.status_code} for {url}")
            return resp
        with get(base + MANIFEST) as r1, get(base + SIGNATURE) as r2:
            manifest = verify(r1.content, r2.content, keys)
        for asset in manifest.assets.values():
            digest, size = hashlib.sha256(), 0
            with get(asset_url(base, asset.path)) as resp:
                for chunk in resp.iter_content(1 << 16):
                    digest.update(chunk)
                    size += len(chunk)
            if size != asset.size or digest.hexdigest() != asset.sha256:
                raise ContentError(f"{asset.path}: does not match the manifest's hash")
    return manifest


def _serve(args: argparse.Namespace) -> int:
    from kiosk.content.server import ContentServer, Faults
    if not args.folder.is_dir():
        return _error(f"{args.folder}: not a folder")
    _log_to_stdout()
    faults = Faults(rate_kbps=args.rate_kbps, drop_after=args.drop_after, corrupt=set(args.corrupt),
                    delay_ms=args.delay_ms)
    try:
        server = ContentServer(args.folder, port=args.port, bind=args.bind, faults=faults)
    except OSError as exc:
        return _error(f"cannot listen on {args.bind}:{args.port} ({exc.strerror or exc})")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(f"serving {args.folder} at {server.url} (faults: {faults}); Ctrl-C stops", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _announce(args: argparse.Namespace) -> int:
    from kiosk.sync import schema
    from kiosk.sync.topics import Topics
    root, host, port, tls, ca = args.topic_root, None, None, False, None
    if args.config:
        config, code = _config(args.config)
        if config is None:
            return code
        if config.mqtt is not None:
            m = config.mqtt
            root, host, port, tls, ca = root or m.topic_root, m.host, m.port, m.tls, m.tls_ca
    if args.broker:
        host, _, port_text = args.broker.rpartition(":")
        if not host or not port_text.isdigit():
            return _error(f"--broker {args.broker!r} is not HOST:PORT")
        port = int(port_text)
    if host is None or root is None:
        return _error("say where to announce: --config (with an [mqtt] section), or --broker and --topic-root")
    password = None
    if args.password_file:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            return _error(f"{args.password_file}: {exc.strerror or exc}")
    msg = {"v": schema.VERSION, "version": args.version}
    if args.url:
        msg["url"] = args.url if args.url.endswith("/") else args.url + "/"
    try:
        schema.check_content(msg)
    except schema.MessageError as exc:
        return _error(f"not a valid announcement: {exc}")
    topic = Topics(root if root.endswith("/") else root + "/", "").content()
    code, said = _publish_retained(host, port, topic, schema.encode(msg), args.username, password, tls, ca)
    if code:
        return _error(said, code)
    print(f"announced content version {args.version} on {topic} at {host}:{port} (retained){': ' + said if said else ''}")
    return 0


def _publish_retained(host: str, port: int, topic: str, body: bytes, username: str | None, password: str | None,
                      tls: bool, ca: Path | None) -> tuple[int, str]:
    """Publish one retained QoS 1 message; (0, "") once the broker took it, else (exit code, why)."""
    import uuid

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"content-announce-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set(ca_certs=str(ca) if ca else None)
    done, result = threading.Event(), {}

    def on_connect(c, u, flags, rc, props) -> None:
        if rc.is_failure:
            result["error"] = (2, f"the broker at {host}:{port} refused the connection: {rc}")
            done.set()
        else:
            c.publish(topic, body, qos=1, retain=True)

    def on_publish(c, u, mid, rc, props) -> None:
        if rc.is_failure:
            result["error"] = (1, (f"the broker refused the announcement on {topic}: {rc} (only the library's "
                                  "accounts may write under central/)"))
        done.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    try:
        client.connect(host, port, keepalive=10)
    except OSError as exc:
        return 2, f"cannot reach the broker at {host}:{port} ({exc.strerror or exc})"
    client.loop_start()
    try:
        if not done.wait(15):
            return 2, f"no answer from the broker at {host}:{port} within 15 s"
    finally:
        client.disconnect()
        client.loop_stop()
    return result.get("error", (0, ""))


def _config(path: Path):
    from kiosk.cli import _running
    from kiosk.config import ConfigError, load_config
    try:
        return load_config(_running(path)), 0
    except ConfigError as exc:
        return None, _error(f"config error: {exc}")


def _fetch(args: argparse.Namespace) -> int:
    from kiosk.content.manifest import public_key
    from kiosk.content.store import ContentStore
    from kiosk.sync.content import CURRENT, INSTALLED, REFUSED, STALE, ContentUpdater
    config, code = _config(args.config)
    if config is None:
        return code
    if not config.content.public_keys:
        return _error(f"{args.config}: [content] public_keys is not set: no content can be accepted")
    if not (args.url or config.content.url):
        return _error(f"{args.config}: [content] url is not set; give --url")
    _log_to_stdout()
    store = ContentStore(config.content_dir, tuple(public_key(k) for k in config.content.public_keys))
    updater = ContentUpdater(config, store)
    try:
        outcome = updater.update(args.url)
    finally:
        updater.close()
    st = updater.status()
    print(f"content: {outcome}; version {st['installed_version'] or 'none'} installed in {config.content_dir}"
          f"{'; ' + st['last_error'] if st['last_error'] else ''}")
    if outcome in (INSTALLED, CURRENT):
        return 0
    return 1 if outcome in (STALE, REFUSED) else 2


def _status(args: argparse.Namespace) -> int:
    from kiosk.content.manifest import public_key
    from kiosk.content.store import ContentStore
    from kiosk.sync.content import STATUS_FILE
    config, code = _config(args.config)
    if config is None:
        return code
    store = ContentStore(config.content_dir, tuple(public_key(k) for k in config.content.public_keys))
    try:
        last = json.loads((config.content_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last = {}
    found = {"installed_version": store.current_version(), "dir": str(config.content_dir),
             "url": config.content.url, "last_attempt": last or None}
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    print(f"bookcase {config.bookcase.id}: content version {found['installed_version'] or 'none'} installed in "
          f"{found['dir']}; updates from {found['url'] or 'announcements only'}")
    if last:
        from kiosk.logtext import shown        # the error may quote a remote manifest: escaped on the terminal
        print(f"  last attempt {last.get('last_check')}: {last.get('last_result')}"
              f"{' — ' + shown(last['last_error'], 300) if last.get('last_error') else ''}; "
              f"{last.get('refused', 0)} refused")
    return 0
