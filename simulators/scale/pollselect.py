"""paho-mqtt's network loop waits on its sockets with ``select.select()``, which cannot take a file descriptor of
1024 or more (ValueError: paho then reports the connection lost, and its loop thread ends before CONNACK is read).
A bookcase has a few dozen descriptors; a fleet of hundreds of bookcases in one process has thousands (each its
SQLite files, its socket and paho's wake-up pair), so every bookcase past the first ~170 could never connect.

``install()`` gives paho's client module this ``select()`` instead: the same answer for the calls paho makes
(read and write lists, no exceptional list, a timeout in seconds), built on ``poll()``, which has no such limit.
Only the fleet simulator installs it; the bookcase and the gateway keep paho as it is.
"""

from __future__ import annotations

import select as _select
from types import ModuleType
from typing import Any

READY_TO_READ = _select.POLLIN | _select.POLLPRI | _select.POLLHUP | _select.POLLERR | _select.POLLNVAL
READY_TO_WRITE = _select.POLLOUT | _select.POLLHUP | _select.POLLERR | _select.POLLNVAL


def _fd(obj: Any) -> int:
    fd = obj if isinstance(obj, int) else obj.fileno()
    if fd < 0:                                    # a closed socket: what select() says of it
        raise ValueError("file descriptor cannot be a negative integer")
    return fd


def select(rlist: list, wlist: list, xlist: list, timeout: float | None = None) -> tuple[list, list, list]:
    masks: dict[int, int] = {}
    for obj in rlist:
        masks[_fd(obj)] = masks.get(_fd(obj), 0) | _select.POLLIN | _select.POLLPRI
    for obj in wlist:
        masks[_fd(obj)] = masks.get(_fd(obj), 0) | _select.POLLOUT
    poller = _select.poll()
    for fd, mask in masks.items():
        poller.register(fd, mask)
    ready = dict(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))
    return ([o for o in rlist if ready.get(_fd(o), 0) & READY_TO_READ],
            [o for o in wlist if ready.get(_fd(o), 0) & READY_TO_WRITE], [])


class _Shim(ModuleType):
    select = staticmethod(select)


def install() -> Any:
    """Give paho's client module the poll-based select; returns what it had, for ``uninstall``."""
    import paho.mqtt.client as paho_client
    previous = paho_client.select
    shim = _Shim("select")
    paho_client.select = shim
    return previous


def uninstall(previous: Any) -> None:
    import paho.mqtt.client as paho_client
    paho_client.select = previous
