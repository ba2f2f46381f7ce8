"""Sip2Pool against the simulated ILS: reconnects after the ILS goes down and up, backoff, keep-alive, lending."""

from __future__ import annotations

import random
import threading

import pytest

from gateway.sip2 import Sip2Client, Sip2Lost, Sip2Pool, Sip2Unavailable
from tests.gateway.sip2.conftest import PASSWORD, USER
from tests.scenarios.harness import wait_for

BOOK = "MH20200001"


@pytest.fixture
def pool_for(ils):
    pools: list[Sip2Pool] = []

    def make(size: int = 2, **kw) -> Sip2Pool:
        kw.setdefault("keepalive_s", 60.0)
        kw.setdefault("backoff", (0.05, 0.2))
        factory = lambda: Sip2Client("127.0.0.1", ils.port, user=USER, password=PASSWORD, timeout_s=5.0,  # noqa
                                     connect_timeout_s=2.0)
        pool = Sip2Pool(factory, size, rng=random.Random(1), **kw)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def _info(pool: Sip2Pool) -> str:
    with pool.connection() as c:
        return c.item_information(BOOK).circulation_status


def test_connections_are_made_when_needed_and_reused(ils, pool_for):
    pool = pool_for(size=3)
    assert ils.server.stats["connections"] == 0
    for _ in range(5):
        assert _info(pool) == "03"
    assert ils.server.stats["logins"] == 1 and pool.snapshot()["connects"] == 1


def test_the_pool_reconnects_after_the_ils_goes_down_and_up(ils, pool_for):
    pool = pool_for()
    assert _info(pool) == "03"
    ils.server.go_down()
    with pytest.raises(Sip2Unavailable, match="cannot connect"):
        _info(pool)                                  # the idle connection is found dead, reconnecting fails
    with pytest.raises(Sip2Unavailable, match="trying again in"):
        _info(pool)                                  # backing off: at once, without trying
    ils.server.come_up()

    def works() -> bool:
        try:
            return _info(pool) == "03"
        except Sip2Unavailable:
            return False
    wait_for(works, 10, "the pool to reconnect")
    assert ils.server.stats["logins"] == 2
    assert ils.requests("17") == 2                   # nothing was sent while the ILS was down


def test_the_backoff_grows_with_jitter_and_resets(ils, pool_for):
    pool = pool_for(backoff=(0.05, 0.4))
    ils.server.go_down()
    steps = []
    for _ in range(5):
        with pytest.raises(Sip2Unavailable):
            _info(pool)
        steps.append(pool._step)
        pool._retry_at = 0.0                         # the test does not wait out each backoff
    assert steps == [0.1, 0.2, 0.4, 0.4, 0.4]
    assert pool.snapshot()["connect_failures"] == 5
    ils.server.come_up()
    assert _info(pool) == "03" and pool._step == 0.05


def test_a_lost_answer_discards_the_connection(ils, pool_for):
    pool = pool_for(size=1)
    assert _info(pool) == "03"
    ils.server.faults.drop_next = 1
    with pytest.raises(Sip2Lost):
        with pool.connection() as c:
            c.checkout("3101120000018", BOOK)
    assert pool.snapshot()["discarded"] == 1
    assert _info(pool) == "04" and ils.server.stats["logins"] == 2


def test_an_error_of_the_callers_between_requests_keeps_the_connection(ils, pool_for):
    pool = pool_for(size=1)
    with pytest.raises(KeyError):
        with pool.connection() as c:
            c.item_information(BOOK)
            raise KeyError("the journal's, not SIP2's")
    assert _info(pool) == "03" and ils.server.stats["logins"] == 1


def test_it_blocks_only_while_every_connection_is_lent(ils, pool_for):
    pool = pool_for(size=1)
    held, second_in, release = threading.Event(), threading.Event(), threading.Event()

    def holder() -> None:
        with pool.connection():
            held.set()
            release.wait(10)

    def second() -> None:
        with pool.connection() as c:
            second_in.set()
            c.item_information(BOOK)

    a = threading.Thread(target=holder)
    a.start()
    held.wait(10)
    b = threading.Thread(target=second)
    b.start()
    assert not second_in.wait(0.3)                   # the one connection is lent
    release.set()
    assert second_in.wait(10)
    a.join(10)
    b.join(10)
    assert ils.server.stats["logins"] == 1


def test_idle_connections_are_kept_alive_with_sc_status(ils, pool_for):
    pool = pool_for(size=1, keepalive_s=0.1)
    assert _info(pool) == "03"
    before = ils.requests("99")
    # The pool counts a keep-alive when its answer is in, a moment after the ILS counts the request.
    wait_for(lambda: pool.snapshot()["keepalives"] >= 3, 10, "three keep-alives")
    assert ils.requests("99") >= before + 3 and ils.requests("17") == 1


def test_a_closed_pool_refuses(ils, pool_for):
    pool = pool_for()
    assert _info(pool) == "03"
    pool.close()
    with pytest.raises(Sip2Unavailable, match="closed"):
        _info(pool)


def test_a_pool_needs_a_connection():
    with pytest.raises(ValueError):
        Sip2Pool(lambda: None, 0)
