"""Events the MQTT network thread posts to the core loop; the app routes every SyncEvent to FleetSync.

``gen`` numbers the broker connection an event belongs to: a PUBACK or a message from a connection
that has since dropped is recognised as stale and never acknowledged on the next one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyncEvent:
    """Base class: anything the fleet link tells the core loop."""


@dataclass(frozen=True)
class LinkUp(SyncEvent):
    """The broker accepted our CONNECT; ``session_present``: it kept our session (and queued messages)."""
    gen: int
    session_present: bool


@dataclass(frozen=True)
class LinkDown(SyncEvent):
    """A connection that was up has dropped."""
    gen: int
    reason: str


@dataclass(frozen=True)
class Published(SyncEvent):
    """A PUBACK: reason codes below 0x80 mean the broker took the message (0x10: nobody subscribed)."""
    gen: int
    mid: int
    reason_code: int
    reason: str


@dataclass(frozen=True)
class Received(SyncEvent):
    """An inbound message; QoS 1 messages are acknowledged only once the core loop has applied them."""
    gen: int
    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
