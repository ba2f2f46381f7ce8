"""The control socket: JSON lines in, results or clear errors out, and the ``call`` client."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from simulators.control import ControlServer, call
from simulators.errors import SimError


def test_commands_over_the_socket(make_sim, tmp_path: Path) -> None:
    sim = make_sim(control=True)
    link_dir = tmp_path / "sim"
    assert (link_dir / "control.sock").exists()
    assert call(link_dir, "ping") == "pong"
    with pytest.raises(SimError, match="^door 2 is closed — unlock it first$"):
        call(link_dir, "take", door=2, item="MH20200006")
    assert call(link_dir, "force", door=2)["open"] is True
    assert call(link_dir, "take", door=2, item="MH20200006")["item"] == "MH20200006"
    uid = call(link_dir, "put_junk", door=2)
    assert call(link_dir, "flaky", item="MH20200007")["flaky"] is True
    assert call(link_dir, "garble", device="rfid")["faults"] == ["garble"]
    status = call(link_dir, "status")
    door2 = status["doors"][1]
    assert door2["open"] and door2["forced"] and "MH20200006" not in door2["items"]
    assert f"JUNK-{uid}" in door2["items"]
    assert status["outside"] == ["MH20200006"] and status["flaky"] == ["MH20200007"]
    assert set(status["stats"]) == {"lockboard", "rfid", "scanner"}
    assert status["devices"]["rfid"]["faults"] == ["garble"]
    assert call(link_dir, "close", door=2)["open"] is False
    assert sim.world.door_state(2)["open"] is False


def test_bad_requests_get_clear_errors(make_sim, tmp_path: Path) -> None:
    make_sim(control=True)
    link_dir = tmp_path / "sim"
    with pytest.raises(SimError, match="unknown command 'dance'"):
        call(link_dir, "dance")
    with pytest.raises(SimError, match="take: missing a required argument: 'item'"):
        call(link_dir, "take", door=1)
    with pytest.raises(SimError, match="door must be a number"):
        call(link_dir, "close", door="left")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(link_dir / "control.sock"))
        sock.sendall(b"not json\n[1]\n{\"cmd\": \"ping\"}\n")
        replies = _read_lines(sock, 3)
    assert [r["ok"] for r in replies] == [False, False, True]
    assert "not a JSON request" in replies[0]["error"]


def _read_lines(sock: socket.socket, n: int) -> list[dict]:
    buf = b""
    while buf.count(b"\n") < n:
        buf += sock.recv(4096)
    return [json.loads(line) for line in buf.splitlines()]


def test_no_simulator_running(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="no simulator is running at"):
        call(tmp_path, "status")


def test_a_second_simulator_on_the_same_dir_is_refused(make_sim, tmp_path: Path) -> None:
    make_sim(control=True)
    server = ControlServer(tmp_path / "sim" / "control.sock", {})
    with pytest.raises(SimError, match="already running"):
        server.start()


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    server = ControlServer(path, {"ping": lambda: "pong"})
    server.start()
    try:
        assert call(tmp_path, "ping") == "pong"
    finally:
        server.stop()
    assert not path.exists()


def test_stop_while_a_client_holds_a_connection(tmp_path: Path) -> None:
    server = ControlServer(tmp_path / "control.sock", {"ping": lambda: "pong"})
    server.start()
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(tmp_path / "control.sock"))
    client.sendall(b'{"cmd": "ping"}\n')
    assert _read_lines(client, 1) == [{"ok": True, "result": "pong"}]
    server.stop()
    client.close()
