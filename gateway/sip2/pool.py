"""A pool of logged-in SIP2 connections: SIP2 allows one request per connection, so parallelism = pool size.

``with pool.connection() as client:`` lends a connection for one or more requests. While the ILS cannot be
reached the pool backs off (exponential, with jitter) and raises ``Sip2Unavailable`` at once instead of making
every caller wait: nothing was sent, the caller's event waits in the journal. A connection whose request failed
(Sip2Lost or any other error) is closed and reconnected on its next use. Idle connections are kept alive with
SC status (99) every ``keepalive_s``, so the ILS does not drop them and a dead one is found before a loan needs it.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator

from gateway.sip2.client import Sip2Client, Sip2Error, Sip2Unavailable

LOGGER = logging.getLogger(__name__)


class Sip2Pool:
    def __init__(self, factory: Callable[[], Sip2Client], size: int, *, keepalive_s: float = 60.0,
                 backoff: tuple[float, float] = (1.0, 60.0), rng: random.Random | None = None) -> None:
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
        self._keeper = threading.Thread(target=self._keep_alive, name="sip2-keepalive", daemon=True)
        self._keeper.start()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Sip2Client]:
        client = self._take()
        try:
            if not client.connected:
                self._connect(client)
            yield client
        except Sip2Error:
            client.close()                       # the next use starts a fresh connection
            raise
        except BaseException:
            client.close()
            raise
        finally:
            with self._cond:
                self._idle.append(client)
                self._cond.notify()

    def _take(self) -> Sip2Client:
        with self._cond:
            while True:
                if self._closed:
                    raise Sip2Unavailable("the SIP2 pool is closed")
                wait = self._retry_at - time.monotonic()
                if wait > 0 and not any(c.connected for c in self._idle):
                    raise Sip2Unavailable(f"the ILS could not be reached ({self._last_error}); trying again in "
                                          f"{wait:.0f} s")
                if self._idle:
                    connected = [c for c in self._idle if c.connected]
                    client = connected[0] if connected else self._idle[0]
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
            raise
        with self._cond:
            self._step, self._retry_at = self.backoff_min, 0.0

    def _keep_alive(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(min(self.keepalive_s, 5.0))
                now = time.monotonic()
                due = [c for c in self._idle if c.connected and now - c.last_used >= self.keepalive_s]
                for c in due:
                    self._idle.remove(c)
            for client in due:
                try:
                    client.sc_status()
                except Sip2Error as exc:
                    LOGGER.info("SIP2: an idle connection failed its keep-alive (%s); it reconnects when needed", exc)
                    client.close()
                finally:
                    with self._cond:
                        self._idle.append(client)
                        self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            clients = list(self._idle)
        for client in clients:
            client.close()
        self._keeper.join(10)
