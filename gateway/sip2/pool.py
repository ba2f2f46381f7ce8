"""A pool of logged-in SIP2 connections: SIP2 allows one request per connection, so parallelism = pool size.

``with pool.connection() as client:`` lends a connection for one or more requests; it blocks only while all
``size`` connections are lent. While the ILS cannot be reached the pool backs off (exponential, with jitter:
each wait is between half and all of the current step, the step doubling from backoff[0] up to backoff[1]) and
raises ``Sip2Unavailable`` at once instead of making every caller wait: nothing was sent, the caller's event
waits in the journal. A connection whose request failed (Sip2Lost or any other error) is closed and
reconnected on its next use; one the ILS closed while it was idle is found before it is lent (nothing is
sent on it) and reconnected. Idle connections are kept alive with SC status (99) every ``keepalive_s``, so
the ILS does not drop them and a dead one is found before a loan needs it.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator

from gateway.sip2.client import Sip2Client
from gateway.sip2.errors import Sip2Error, Sip2Unavailable

LOGGER = logging.getLogger(__name__)


class Sip2Pool:
    def __init__(self, factory: Callable[[], Sip2Client], size: int, *, keepalive_s: float = 60.0,
                 backoff: tuple[float, float] = (1.0, 60.0), rng: random.Random | None = None) -> None:
        if size < 1:
            raise ValueError(f"a SIP2 pool needs at least one connection, got {size}")
        self.factory = factory
        self.size = size
        self.keepalive_s = keepalive_s
        self.backoff_min, self.backoff_max = backoff
        self.rng = rng or random.Random()
        self._idle: list[Sip2Client] = [factory() for _ in range(size)]
        self._cond = threading.Condition()
        self._step = self.backoff_min
        self._retry_at = 0.0
        self._last_error = ""
        self._closed = False
        self._keeper: threading.Thread | None = None
        self.stats = {"connects": 0, "connect_failures": 0, "keepalives": 0, "discarded": 0}

    @contextlib.contextmanager
    def connection(self) -> Iterator[Sip2Client]:
        client = self._take()
        try:
            if not client.alive():
                if client.connected:
                    LOGGER.info("SIP2: %s closed an idle connection; connecting again", client.where)
                    client.close()
                self._connect(client)
            yield client
        except BaseException as exc:
            # A SIP2 error, or anything while a request was out: the connection's state is unknown, the next
            # use starts afresh. An error of the caller's between requests leaves a good connection.
            if isinstance(exc, Sip2Error) or client.in_flight:
                with self._cond:
                    self.stats["discarded"] += 1
                client.close()
            raise
        finally:
            with self._cond:
                self._idle.append(client)
                self._cond.notify_all()              # the keep-alive thread waits on it too

    def _take(self) -> Sip2Client:
        with self._cond:
            while True:
                if self._closed:
                    raise Sip2Unavailable("the SIP2 pool is closed")
                connected = [c for c in self._idle if c.connected]
                wait = self._retry_at - time.monotonic()
                if wait > 0 and not connected and self._idle:
                    raise Sip2Unavailable(f"the ILS could not be reached ({self._last_error}); trying again in "
                                          f"{wait:.1f} s")
                if self._idle:
                    client = connected[-1] if connected else self._idle[-1]
                    self._idle.remove(client)
                    return client
                self._cond.wait()

    def _connect(self, client: Sip2Client) -> None:
        try:
            client.connect()
        except Sip2Unavailable as exc:
            with self._cond:
                delay = self._step * (0.5 + self.rng.random() / 2)
                self._step = min(self._step * 2, self.backoff_max)
                self._retry_at = time.monotonic() + delay
                self._last_error = str(exc)
                self.stats["connect_failures"] += 1
            raise
        with self._cond:
            self._step, self._retry_at = self.backoff_min, 0.0
            self.stats["connects"] += 1
            if self._keeper is None and not self._closed:
                self._keeper = threading.Thread(target=self._keep_alive, name="sip2-keepalive", daemon=True)
                self._keeper.start()

    def _keep_alive(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(min(self.keepalive_s / 2, 5.0))
                if self._closed:
                    return
                now = time.monotonic()
                due = [c for c in self._idle if c.connected and now - c.last_used >= self.keepalive_s]
                for c in due:
                    self._idle.remove(c)
            for client in due:
                try:
                    client.sc_status()
                    self.stats["keepalives"] += 1
                except Sip2Error as exc:
                    LOGGER.info("SIP2: an idle connection failed its keep-alive (%s); it reconnects when needed", exc)
                    client.close()
                finally:
                    with self._cond:
                        self._idle.append(client)
                        self._cond.notify_all()

    def snapshot(self) -> dict:
        """For status pages: connections lent and connected, the backoff, the counters."""
        with self._cond:
            return {"size": self.size, "idle": len(self._idle), "connected": sum(c.connected for c in self._idle),
                    "retry_in_s": round(max(0.0, self._retry_at - time.monotonic()), 1),
                    "last_error": self._last_error or None, **self.stats}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            clients = list(self._idle)
            keeper = self._keeper
        for client in clients:
            client.close()
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(10)
