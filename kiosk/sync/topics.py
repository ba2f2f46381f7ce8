"""The fleet's topic layout (docs/design.md §6), for one bookcase: what it publishes, reads, and how to parse a topic.

    <root>bookcase/<id>/event       QoS 1, the transaction stream (the outbox, in seq order)
    <root>bookcase/<id>/state       retained: online/offline (last will), version, outbox depth, last sync
    <root>bookcase/<id>/holdings    retained: what the bookcase holds now
    <root>central/patron/<key>      retained, from the library's gateway: a patron's status
    <root>central/ack/<id>          from the gateway: which of our events it applied or rejected
    <root>central/content           retained, from the library: the newest signed screen content (version, url)
    <root>central/gateway/<gw>/state  retained, from each gateway process: online (last will), ILS up/down, backlog
                                    depth and age (docs/gateway.md); bookcases do not read it

``<root>`` is ``citybook/v1/<library>/`` unless the config says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from paho.mqtt.subscribeoptions import SubscribeOptions

EVENT, STATE, HOLDINGS, PATRON, ACK, CONTENT = "event", "state", "holdings", "patron", "ack", "content"


@dataclass(frozen=True)
class Topics:
    root: str
    bookcase: str

    def event(self, bookcase: str | None = None) -> str:
        return f"{self.root}bookcase/{bookcase or self.bookcase}/{EVENT}"

    def state(self, bookcase: str | None = None) -> str:
        return f"{self.root}bookcase/{bookcase or self.bookcase}/{STATE}"

    def holdings(self, bookcase: str | None = None) -> str:
        return f"{self.root}bookcase/{bookcase or self.bookcase}/{HOLDINGS}"

    def patron(self, key: str) -> str:
        return f"{self.root}central/patron/{key}"

    def ack(self, bookcase: str | None = None) -> str:
        return f"{self.root}central/ack/{bookcase or self.bookcase}"

    def content(self) -> str:
        return f"{self.root}central/{CONTENT}"

    def gateway_state(self, gateway: str) -> str:
        return f"{self.root}central/gateway/{gateway}/{STATE}"

    def subscriptions(self, every_retained: bool = False) -> list[tuple[str, SubscribeOptions]]:
        """What a bookcase reads, all at QoS 1. noLocal: our own events do not come back to us.

        Retained messages (holdings, patron statuses) come with a new subscription only, not each time the
        link subscribes again to a session the broker kept: that session has queued every change since.
        ``every_retained``: send them all anyway — for a database that has never synced (a new or replaced
        SD card) whose bookcase id still has a session on the broker.

        The content announcement is one small message that only says which version is newest: it comes on
        every subscription, so a bookcase whose content was wiped learns of it again at once."""
        retained = SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE if every_retained else \
            SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
        return [
            (self.event("+"), SubscribeOptions(qos=1, noLocal=True, retainHandling=retained)),
            (self.holdings("+"), SubscribeOptions(qos=1, noLocal=True, retainHandling=retained)),
            (self.patron("+"), SubscribeOptions(qos=1, retainHandling=retained)),
            (self.ack(), SubscribeOptions(qos=1, retainHandling=retained)),
            (self.content(), SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE)),
        ]

    def parse(self, topic: str) -> tuple[str, str] | None:
        """``(kind, who)`` for a topic this bookcase reads — who is a bookcase id, a patron key, or "" for the
        content announcement — else None."""
        if not topic.startswith(self.root):
            return None
        parts = topic[len(self.root):].split("/")
        if parts == ["central", CONTENT]:
            return CONTENT, ""
        if len(parts) != 3 or not all(parts):
            return None
        if parts[0] == "bookcase" and parts[2] in (EVENT, HOLDINGS):
            return parts[2], parts[1]
        if parts[0] == "central" and parts[1] == PATRON:
            return PATRON, parts[2]
        if parts[0] == "central" and parts[1] == ACK and parts[2] == self.bookcase:
            return ACK, parts[2]
        return None
