"""The fleet's example ACL (config/mosquitto/citybook.acl) on a real Mosquitto, with passwords and with TLS
client certificates: a bookcase publishes under its own id only and reads only what it needs."""

from __future__ import annotations

import secrets
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.fleet.broker import Broker, BrokerTls, add_password, free_port
from tests.scenarios.harness import ADULT, ROOT, wait_for
from tests.support import require_binary
from tests.sync.fleet import ROOT_TOPIC, FleetCase, Watcher, mqtt_section, publish
from tests.sync.pki import Pki
from tests.sync.test_bad_input import loan

ACL = ROOT / "config" / "mosquitto" / "citybook.acl"
EXAMPLE_CONF = ROOT / "config" / "mosquitto" / "mosquitto.conf"
NOT_AUTHORIZED = 0x87


def subscribe_codes(port: int, topics: list[str], **login) -> list[int]:
    """SUBACK reason codes for ``topics``, for a client logged in with ``login`` (username/password or tls)."""
    done, codes = threading.Event(), []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    if login.get("username"):
        client.username_pw_set(login["username"], login["password"])
    if login.get("tls"):
        client.tls_set_context(login["tls"])
    client.on_subscribe = lambda c, u, mid, rcs, props: (codes.extend(rc.value for rc in rcs), done.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_for(client.is_connected, 10, "the client to connect")
        client.subscribe([(t, 1) for t in topics])
        assert done.wait(10), "no SUBACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes


def connect_code(port: int, **login) -> int | None:
    """The CONNACK reason code (None: the connection failed before one came)."""
    got: dict = {}
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"c-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    if login.get("username"):
        client.username_pw_set(login["username"], login["password"])
    if login.get("tls"):
        client.tls_set_context(login["tls"])
    client.on_connect = lambda c, u, f, rc, p: (got.setdefault("rc", rc.value), done.set())
    client.on_disconnect = lambda *args: done.set()
    try:
        client.connect("127.0.0.1", port)
    except OSError:
        return None
    client.loop_start()
    try:
        done.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    return got.get("rc")


@pytest.fixture
def passwords(tmp_path):
    binary = require_binary("mosquitto_passwd")
    users = {name: secrets.token_urlsafe(16) for name in ("MH-A", "MH-B", "gateway")}
    pwfile = tmp_path / "citybook.passwd"
    for name, password in users.items():
        add_password(pwfile, name, password, binary)
    return pwfile, users


def test_acl_example_with_passwords(tmp_path, passwords):
    pwfile, users = passwords
    secret_file = tmp_path / "mh-a.password"
    secret_file.write_text(users["MH-A"] + "\n")
    secret_file.chmod(0o600)
    broker = Broker(tmp_path / "broker", acl_file=ACL, password_file=pwfile, binary=require_binary("mosquitto"))
    broker.start()
    # The gateway reads through a shared subscription, as several gateway processes would (docs/design.md §6).
    gateway = Watcher(broker.port, ("$share/gateway/" + ROOT_TOPIC + "bookcase/#",), username="gateway",
                      password=users["gateway"])
    a = FleetCase(tmp_path / "a", "MH-A", mqtt_section(broker.port, username="MH-A",
                                                       password_file=str(secret_file)), first_item=1)
    try:
        gateway.wait_connected()
        a.start()
        wait_for(lambda: a.app.sync.online, 20, "MH-A online under the ACL")
        # The daemon can do all it needs: publish events, state and holdings under its id, read the fleet.
        a.session(ADULT, 1, take=[a.items(1)[0]])
        wait_for(lambda: a.depth() == 0 and any(e["type"] == "loan" for e in gateway.events("MH-A")), 20,
                 "A's loan at the gateway")
        wait_for(lambda: gateway.last("bookcase/MH-A/state") and gateway.last("bookcase/MH-A/holdings"), 20,
                 "A's state and holdings")
        assert a.counters().get("broker_refused", 0) == 0

        as_a = {"username": "MH-A", "password": users["MH-A"]}
        # MH-A may not speak for MH-B, nor for the library.
        assert publish(broker.port, ROOT_TOPIC + "bookcase/MH-B/event", loan("MH-B"), **as_a).value == NOT_AUTHORIZED
        assert publish(broker.port, ROOT_TOPIC + "bookcase/MH-B/state", b"{}", **as_a).value == NOT_AUTHORIZED
        assert publish(broker.port, ROOT_TOPIC + "central/patron/" + "a" * 32, b"{}", **as_a).value == NOT_AUTHORIZED
        assert publish(broker.port, ROOT_TOPIC + "central/content", b"{}", **as_a).value == NOT_AUTHORIZED
        assert publish(broker.port, ROOT_TOPIC + "bookcase/MH-A/event", loan("MH-A"), **as_a).value < 0x80
        # ... and reads what it needs, not B's acks or state (Mosquitto 2.0 grants the subscription and then
        # delivers nothing the ACL does not let it read).
        ok = [ROOT_TOPIC + t for t in ("bookcase/+/event", "bookcase/+/holdings", "central/patron/+",
                                       "central/ack/MH-A", "central/content")]
        assert all(c < 0x80 for c in subscribe_codes(broker.port, ok, **as_a))
        nosy = Watcher(broker.port, (ROOT_TOPIC + "central/ack/MH-B", ROOT_TOPIC + "bookcase/MH-B/state",
                                     ROOT_TOPIC + "central/ack/MH-A", ROOT_TOPIC + "central/content"), **as_a)
        try:
            nosy.wait_connected()
            as_b = {"username": "MH-B", "password": users["MH-B"]}
            as_gateway = {"username": "gateway", "password": users["gateway"]}
            assert publish(broker.port, ROOT_TOPIC + "bookcase/MH-B/state", b"{}", **as_b).value < 0x80
            assert publish(broker.port, ROOT_TOPIC + "central/ack/MH-B", b"{}", **as_gateway).value < 0x80
            assert publish(broker.port, ROOT_TOPIC + "central/ack/MH-A", b"{}", **as_gateway).value < 0x80
            assert publish(broker.port, ROOT_TOPIC + "central/content", b'{"v": 1, "version": 5}',
                           **as_gateway).value < 0x80
            wait_for(lambda: nosy.on("central/ack/MH-A") and nosy.on("central/content"), 10,
                     "A's own ack and the library's content announcement")
            assert nosy.on("central/ack/MH-B") == [] and nosy.on("bookcase/MH-B/state") == []
        finally:
            nosy.close()
        # Nothing published in B's name by A got through to the gateway; a wrong password gets nowhere.
        wait_for(lambda: len(gateway.events("MH-A")) >= 2, 10, "the gateway")
        assert gateway.events("MH-B") == []
        assert connect_code(broker.port, username="MH-A", password="guess") in (0x86, 0x87)
        assert connect_code(broker.port) in (0x86, 0x87)        # no anonymous clients
    finally:
        a.stop()
        gateway.close()
        broker.stop()


def test_tls_client_certificates_and_the_acl(tmp_path):
    pki = Pki(tmp_path / "pki")
    server_cert, server_key = pki.issue("localhost", server=True)
    cert, key = pki.issue("MH-A")
    broker = Broker(tmp_path / "broker", acl_file=ACL, tls=BrokerTls(pki.ca, server_cert, server_key),
                    binary=require_binary("mosquitto"))
    broker.start()
    monitor = Watcher(broker.port, (ROOT_TOPIC + "#",), tls=pki.context("monitor"))
    a = FleetCase(tmp_path / "a", "MH-A", mqtt_section(broker.port, tls_ca=str(pki.ca), tls_cert=str(cert),
                                                       tls_key=str(key)), first_item=1)
    assert a.cfg.mqtt.tls
    try:
        monitor.wait_connected()
        a.start()
        wait_for(lambda: a.app.sync.online, 20, "MH-A online over TLS")
        wait_for(lambda: monitor.last("bookcase/MH-A/state"), 20, "A's state at the monitor")
        a.session(ADULT, 2, take=[a.items(2)[0]])
        wait_for(lambda: any(e["type"] == "loan" for e in monitor.events("MH-A")), 20, "A's loan")
        # B's certificate does not let it publish as A; no certificate, no connection.
        as_b = pki.context("MH-B")
        assert publish(broker.port, ROOT_TOPIC + "bookcase/MH-A/event", loan("MH-A"), tls=as_b).value == NOT_AUTHORIZED
        assert connect_code(broker.port, tls=pki.context(None)) is None
    finally:
        a.stop()
        monitor.close()
        broker.stop()


def local_copy(conf: str, values: dict[str, str]) -> str:
    """The example broker config with the value of each ``key value`` line in ``values`` replaced (a key that
    is not in the file fails the test: the example and this test must not drift apart)."""
    seen: set[str] = set()
    lines = []
    for line in conf.splitlines():
        key, _, value = line.partition(" ")
        wanted = values.get(f"{key} {value}", values.get(key))
        if wanted is not None and not line.startswith("#"):
            seen.add(f"{key} {value}" if f"{key} {value}" in values else key)
            line = f"{key} {wanted}"
        lines.append(line)
    assert seen == set(values), f"not in config/mosquitto/mosquitto.conf: {sorted(set(values) - seen)}"
    return "\n".join(lines) + "\n"


def test_the_example_broker_config_runs_as_documented(tmp_path, passwords):
    """config/mosquitto/mosquitto.conf itself (paths and ports made local): a bookcase with its certificate
    on the certificate listener, the gateway with its password on the password listener, the ACL on both."""
    pwfile, users = passwords
    pki = Pki(tmp_path / "pki")
    server_cert, server_key = pki.issue("localhost", server=True)
    cert, key = pki.issue("MH-A")
    cert_port, password_port = free_port(), free_port()
    while password_port == cert_port:
        password_port = free_port()
    folder = tmp_path / "broker"
    conf = local_copy(EXAMPLE_CONF.read_text(encoding="utf-8"), {
        "acl_file": str(ACL), "persistence_location": f"{folder}/", "password_file": str(pwfile),
        "cafile": str(pki.ca), "certfile": str(server_cert), "keyfile": str(server_key),
        "listener 8883": f"{cert_port} 127.0.0.1", "listener 8884": f"{password_port} 127.0.0.1"})
    broker = Broker(folder, port=cert_port, conf=conf, binary=require_binary("mosquitto")).start()
    gateway = Watcher(password_port, (ROOT_TOPIC + "bookcase/#",), username="gateway", password=users["gateway"],
                      tls=pki.context(None))
    a = FleetCase(tmp_path / "a", "MH-A", mqtt_section(cert_port, tls_ca=str(pki.ca), tls_cert=str(cert),
                                                       tls_key=str(key)), first_item=1)
    try:
        gateway.wait_connected()
        a.start()
        wait_for(lambda: a.app.sync.online, 20, "MH-A online with its certificate")
        a.session(ADULT, 1, take=[a.items(1)[0]])
        wait_for(lambda: a.depth() == 0 and any(e["type"] == "loan" for e in gateway.events("MH-A")), 20,
                 "A's loan at the gateway, across the two listeners")
        wait_for(lambda: gateway.last("bookcase/MH-A/holdings"), 20, "A's holdings at the gateway")
        assert a.counters().get("broker_refused", 0) == 0

        # The certificate is the identity: A's certificate cannot speak for B, B's password cannot speak for A.
        as_a = {"tls": pki.context("MH-A")}
        assert publish(cert_port, ROOT_TOPIC + "bookcase/MH-B/event", loan("MH-B"), **as_a).value == NOT_AUTHORIZED
        as_b = {"username": "MH-B", "password": users["MH-B"], "tls": pki.context(None)}
        assert publish(password_port, ROOT_TOPIC + "bookcase/MH-A/event", loan("MH-A"),
                       **as_b).value == NOT_AUTHORIZED
        assert publish(password_port, ROOT_TOPIC + "bookcase/MH-B/event", loan("MH-B"), **as_b).value < 0x80
        wait_for(lambda: gateway.events("MH-B"), 10, "B's own event at the gateway")
        assert all(e["bookcase"] == "MH-A" for e in gateway.events("MH-A"))
        # No certificate, no connection on the certificate listener; no password, none on the other.
        assert connect_code(cert_port, tls=pki.context(None)) is None
        assert connect_code(password_port, tls=pki.context(None)) in (0x86, 0x87)
        assert connect_code(password_port, username="MH-B", password="guess", tls=pki.context(None)) in (0x86, 0x87)
    finally:
        a.stop()
        gateway.close()
        broker.stop()
