"""The operators' console: the whole fleet at a glance in a browser, the review queue, alarms, figures, /metrics.

Served by the gateway (``[console] listen`` in gateway.toml; `citybook-gateway run` starts it beside the
consumer) or on its own (`citybook-gateway console`), over the same journal and broker. Built with Starlette
(a small, well-kept ASGI toolkit; FastAPI is built on it, but the console has no API to describe) and Jinja2
server-rendered pages with a few lines of plain JavaScript for live updates (server-sent events): no build step,
nothing fetched from the internet, everything ships in the package. Uvicorn serves it. TLS is the library's
reverse proxy's job (docs/console.md).
"""

from __future__ import annotations

import logging
import threading
import time
from zoneinfo import ZoneInfo

import uvicorn

from gateway.config import GatewayConfig
from gateway.console.fleet import FleetWatch
from gateway.console.views import Views
from gateway.console.web import Console
from gateway.journal import Journal

LOGGER = logging.getLogger(__name__)
START_TIMEOUT_S = 15.0


class ConsoleServer:
    """The console's web server on a thread of its own, and its fleet watch."""

    def __init__(self, cfg: GatewayConfig, journal: Journal, fleet: FleetWatch | None = None) -> None:
        self.cfg = cfg
        self.fleet = fleet or FleetWatch(cfg.mqtt, cfg.mqtt.topic_root)
        self.views = Views(journal, self.fleet, ZoneInfo(cfg.console.timezone))
        self.console = Console(self.views, cfg.console)
        host, port = cfg.console.host_port
        self.server = uvicorn.Server(uvicorn.Config(self.console.app, host=host, port=port, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self.server.run, name="console-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.cfg.console.host_port
        return f"http://{host}:{port}/"

    def start(self) -> None:
        self.fleet.start()
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the console could not listen on {self.cfg.console.listen} (see the log above)")
            time.sleep(0.02)
        LOGGER.info("console: %s (broker %s:%d)", self.url, self.cfg.mqtt.host, self.cfg.mqtt.port)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)
        self.fleet.close()
