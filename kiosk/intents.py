"""A local Unix socket for intents (choose a door, cancel) and status, for headless runs and tests.

One JSON object per line: {"intent": "door", "door": 2} | {"intent": "cancel"} | {"intent": "status"}.
The answer is one JSON line: {"ok": true, "handled": true, "result": "door 2 unlocked for the patron",
"snapshot": {...}} or {"ok": false, "error": "..."}; the snapshot is taken after the core loop has handled the
intent (a ``Barrier`` posted behind it), so it shows its effect, and ``result`` says that effect in one line
(``handled`` is false if the core loop was too busy to reach it in time: then the snapshot is from before).
The touch UI posts the same intents in-process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Callable

from kiosk.core import events as ev
from kiosk.core.snapshot import Snapshot

LOGGER = logging.getLogger(__name__)

# The flow's states (kiosk.core.flow) an answer speaks of.
IDLE, CHOOSING, REFUSED, DOOR_OPEN, SCANNING, RECEIPT = (
    "idle", "choosing", "refused", "door_open", "scanning", "receipt")
STAFF_PIN, RESTOCK = "staff_pin", "staff_restock"

MAX_REQUEST_BYTES = 4096
BARRIER_TIMEOUT_S = 3.0      # a core loop busy longer than this: answer with the snapshot as it stands


@dataclasses.dataclass(frozen=True)
class Barrier:
    """Posted behind an intent: the core loop sets ``done`` when it reaches it, every event before it handled."""
    done: threading.Event


class IntentServer:
    def __init__(self, path: Path, post: Callable[[ev.Event], None], snapshot: Callable[[], Snapshot]) -> None:
        self.path = Path(path)
        self.post = post
        self.snapshot = snapshot
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(MAX_REQUEST_BYTES)
                reply = outer.answer(line)
                self.wfile.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")

        self._server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        self._server.daemon_threads = True
        os.chmod(self.path, 0o660)
        self._thread = threading.Thread(target=self._server.serve_forever, name="kiosk-intents", daemon=True)
        self._thread.start()

    def answer(self, line: bytes) -> dict:
        try:
            request = json.loads(line)
            intent = request["intent"]
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": 'expected one JSON line like {"intent": "door", "door": 2}'}
        if intent == "door":
            door = request.get("door")
            if not isinstance(door, int) or isinstance(door, bool):
                return {"ok": False, "error": "door must be a door number"}
            event: ev.Event | None = ev.DoorChosen(door)
        elif intent == "cancel":
            event = ev.Cancel()
        elif intent == "status":
            event = None
        else:
            return {"ok": False, "error": f"unknown intent {intent!r} (door, cancel, status)"}
        before, handled = self.snapshot(), True
        if event is not None:
            barrier = Barrier(threading.Event())
            self.post(event)
            self.post(barrier)
            handled = barrier.done.wait(BARRIER_TIMEOUT_S)
        after = self.snapshot()
        return {"ok": True, "handled": handled, "result": result(request, before, after, handled),
                "snapshot": dataclasses.asdict(after)}

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def result(request: dict, before: Snapshot, after: Snapshot, handled: bool = True) -> str:
    """One line for an operator: what an intent did, judged from the snapshots before and after it."""
    now = describe(after)
    if not handled:
        return f"sent, not handled yet (the bookcase is busy); the state shown is from before it: {now}"
    if request["intent"] == "status":
        return now
    if request["intent"] == "cancel":
        return f"cancelled; {now}" if after.state != before.state else f"nothing to cancel; {now}"
    door = request["door"]
    if after.state in (DOOR_OPEN, SCANNING) and after.door == door:
        if before.state in (DOOR_OPEN, SCANNING) and before.door == door:
            return f"door {door} was open already; {now}"
        return f"door {door} unlocked; {now}"
    checking = getattr(after, "checking", ())    # doors whose state the lock board cannot tell, if the flow says
    doors = after.doors_in_service + after.doors_out_of_service + checking
    if doors and door not in doors:
        return f"door {door}: this bookcase has no such door; nothing done ({now})"
    if door in after.doors_out_of_service:
        return f"door {door} is out of service; nothing done ({now})"
    if door in checking:
        return f"door {door} is being checked (the lock board cannot tell whether it is open); nothing done ({now})"
    if after.state in (IDLE, RECEIPT, REFUSED):
        return f"door {door} chosen: it opens for the next card read ({now})"
    if after.state == CHOOSING:
        return f"door {door} is busy and did not open; the patron is still choosing ({now})"
    return f"door {door} not opened: {now}"


def describe(snapshot: Snapshot) -> str:
    """The bookcase's state in a few words."""
    state, door = snapshot.state, snapshot.door
    words = {IDLE: "idle, waiting for a patron", CHOOSING: "a patron is choosing a door",
             REFUSED: "a card was refused",
             DOOR_OPEN: f"door {door} open {'to return books' if snapshot.kind == 'return' else 'for a patron'}",
             SCANNING: f"counting the books behind door {door}", RECEIPT: "showing a receipt",
             STAFF_PIN: "waiting for a staff PIN", RESTOCK: "restocking"}.get(state, state.replace("_", " "))
    if snapshot.reason and state == REFUSED:
        words += f" ({snapshot.reason})"
    if snapshot.out_of_service:
        words += "; out of service"
    return f"now {words}"


class ScanRouter:
    """Where a line from the scanner goes: to the core as a card (``default``), unless a page of the screen that
    wants barcodes (the Find page, searching for a scanned book) ``claim``s it. The claimer runs on the scanner's
    thread and must only take note and return: True if it took the line."""

    def __init__(self, default: Callable[[str], None]) -> None:
        self.default = default
        self.claimer: Callable[[str], bool] | None = None

    def claim(self, claimer: Callable[[str], bool] | None) -> None:
        self.claimer = claimer

    def route(self, text: str) -> None:
        claimer = self.claimer
        try:
            if claimer is not None and claimer(text):
                return
        except Exception:
            LOGGER.exception("the screen could not take a scanned line; it goes to the core as a card")
        self.default(text)


def send(path: Path | str, request: dict, timeout_s: float = 5.0) -> dict:
    """Client side: send one intent, return the answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)
