"""The fleet simulator's select() for paho: descriptors past 1023, where select.select() gives up."""

from __future__ import annotations

import os
import resource
import select
import socket
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.fleet.broker import Broker
from simulators.scale import pollselect
from tests.support import require_binary


@pytest.fixture
def many_fds():
    """1,100 descriptors held open, so the next socket's number is past select()'s 1023."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_socket_past_1023_is_seen_ready_where_select_gives_up(many_fds):
    a, b = socket.socketpair()
    try:
        assert b.fileno() > 1023
        with pytest.raises(ValueError):
            select.select([b], [], [], 0)
        assert pollselect.select([b], [b], [], 0) == ([], [b], [])       # writable, nothing to read yet
        a.send(b"x")
        assert pollselect.select([b], [], [], 1.0) == ([b], [], [])
        assert b.recv(1) == b"x"
        assert pollselect.select([b], [], [], 0.05) == ([], [], [])      # the timeout, nothing ready
    finally:
        a.close()
        b.close()
    with pytest.raises(ValueError):                                      # a closed socket, as select() says
        pollselect.select([b], [], [], 0)


def test_paho_connects_on_a_descriptor_past_1023_once_installed(many_fds, tmp_path):
    broker = Broker(tmp_path / "broker", binary=require_binary("mosquitto")).start()
    previous = pollselect.install()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="past-1023", protocol=mqtt.MQTTv5)
    connected, got = threading.Event(), []
    client.on_connect = lambda c, u, flags, rc, props: connected.set()
    client.on_message = lambda c, u, msg: got.append(msg.payload)
    try:
        client.connect("127.0.0.1", broker.port, keepalive=10)
        assert client.socket().fileno() > 1023
        client.loop_start()
        assert connected.wait(10), "CONNACK never read"
        client.subscribe("t/#", qos=1)
        client.publish("t/x", b"hello", qos=1).wait_for_publish(10)
        for _ in range(100):
            if got:
                break
            threading.Event().wait(0.05)
        assert got == [b"hello"]
    finally:
        client.disconnect()
        client.loop_stop()
        pollselect.uninstall(previous)
        broker.stop()
    import paho.mqtt.client as paho_client
    assert paho_client.select is select                                  # paho's own select is back
