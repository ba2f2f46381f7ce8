"""The link's reconnect backoff (pure arithmetic: no sockets, no clocks) and its subscriptions."""

from __future__ import annotations

import random

from paho.mqtt.subscribeoptions import SubscribeOptions

from kiosk.sync.link import Backoff
from kiosk.sync.topics import Topics


class Fixed(random.Random):
    """A random source that always says ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_delays_double_up_to_the_maximum():
    backoff = Backoff(1.0, 60.0, Fixed(0.999999))
    steps = [round(backoff.next()) for _ in range(9)]
    assert steps == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_jitter_keeps_each_delay_between_half_and_all_of_its_step():
    low, high = Backoff(2.0, 8.0, Fixed(0.0)), Backoff(2.0, 8.0, Fixed(0.999999))
    assert [low.next() for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    assert [round(high.next(), 3) for _ in range(4)] == [2.0, 4.0, 8.0, 8.0]
    spread = Backoff(2.0, 8.0, random.Random(4))
    for step in (2.0, 4.0, 8.0, 8.0):
        assert step / 2 <= spread.next() <= step


def test_reset_after_a_connection_that_lasted():
    backoff = Backoff(0.5, 30.0, Fixed(0.0))
    for _ in range(6):
        backoff.next()
    assert backoff.next() == 15.0
    backoff.reset()
    assert backoff.next() == 0.25


def test_retained_messages_on_new_subscriptions_only_unless_asked():
    topics = Topics("citybook/v1/minhang/", "MH-0001")
    usual, fresh = topics.subscriptions(), topics.subscriptions(every_retained=True)
    assert [t for t, _ in usual] == [t for t, _ in fresh] == [
        "citybook/v1/minhang/bookcase/+/event", "citybook/v1/minhang/bookcase/+/holdings",
        "citybook/v1/minhang/central/patron/+", "citybook/v1/minhang/central/ack/MH-0001",
        "citybook/v1/minhang/central/content"]
    assert {o.retainHandling for _, o in usual[:4]} == {SubscribeOptions.RETAIN_SEND_IF_NEW_SUB}
    assert {o.retainHandling for _, o in fresh} == {SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE}
    # The content announcement is one small message: it comes with every subscription.
    assert usual[4][1].retainHandling == SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
    assert all(o.QoS == 1 for _, o in usual)
    assert [o.noLocal for _, o in usual] == [True, True, False, False, False]
