"""What each console page shows, put together from the live fleet (FleetWatch) and the journal. No HTML here.

The fleet list puts offline and alarmed bookcases first. A bookcase is offline when its retained state says so
(its last will) or when it has not been heard from for ``STALE_S``. Patron keys are shown masked; no name or
card number ever reaches the console (the gateway has none to give it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.console.fleet import FleetWatch
from gateway.journal import Journal
from kiosk.store.replica import utc

STALE_S = 15 * 60.0          # no state for this long (the bookcases publish at least every 5 minutes): offline
DAYS_CHARTED = 30


@dataclass
class Views:
    journal: Journal
    fleet: FleetWatch
    tz: ZoneInfo
    cache_s: float = 1.0                     # the journal's figures for the fleet list are at most this old
    _cached: tuple[float, dict] | None = None

    def _journal_parts(self) -> dict:
        """Open alarms per bookcase, today's loans and returns, when each was last heard of: one read a second
        at most, however many browsers refresh the fleet."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.cache_s:
            return self._cached[1]
        alarms: dict[str, int] = {}
        for alarm in self.journal.alarms(open_only=True, limit=100_000):
            alarms[alarm["bookcase"]] = alarms.get(alarm["bookcase"], 0) + 1
        parts = {"alarms": alarms, "today": {r["bookcase"]: r for r in self.journal.day_counts(self.today(),
                                                                                 self.day_start_utc(self.today()))},
                 "heard": self.journal.last_seen(), "backlog": self.journal.backlog()}
        self._cached = (now, parts)
        return parts

    def today(self) -> str:
        return datetime.now(self.tz).date().isoformat()

    def day_start_utc(self, day: str) -> str:
        """The start of local ``day`` in UTC, as the journal's ``ts_utc`` is written (a bookcase a time zone
        further east counts from a little earlier: the day's own dates still decide)."""
        start = datetime.fromisoformat(day).replace(tzinfo=self.tz) - timedelta(hours=14)
        return utc(start.isoformat())

    def fleet_rows(self, sort: str = "", query: str = "") -> list[dict]:
        """One row per bookcase (offline and alarmed first unless ``sort`` names a column)."""
        states, holdings, _ = self.fleet.snapshot()
        parts = self._journal_parts()
        alarms, today, heard = parts["alarms"], parts["today"], parts["heard"]
        now = time.time()
        rows = []
        for bookcase in sorted(set(states) | set(heard) | set(holdings)):
            st = states.get(bookcase, {})
            seen = self.fleet.seen.get(bookcase)
            online = bool(st.get("online")) and seen is not None and now - seen < STALE_S
            doors = st.get("doors") or {}
            rows.append({
                "bookcase": bookcase, "name": st.get("name", ""), "address": st.get("address", ""),
                "online": online, "reason": st.get("reason") or "", "last_seen": st.get("ts") or heard.get(bookcase),
                "version": st.get("version", ""), "content": (st.get("content") or {}).get("version"),
                "outbox": st.get("outbox_depth"), "outbox_oldest": st.get("outbox_oldest"),
                "last_sync": st.get("last_sync"),
                "doors_in": len(doors.get("in_service", [])), "doors_out": doors.get("out_of_service", []),
                "alarms": alarms.get(bookcase, 0), "books": (holdings.get(bookcase) or {}).get("items"),
                "loans_today": (today.get(bookcase) or {}).get("loans", 0),
                "returns_today": (today.get(bookcase) or {}).get("returns", 0)})
        if query:
            q = query.lower()
            rows = [r for r in rows if q in r["bookcase"].lower() or q in r["name"].lower()
                    or q in r["address"].lower()]
        if sort.lstrip("-") in (rows[0] if rows else {}):
            key = sort.lstrip("-")
            rows.sort(key=lambda r: (r[key] is None, r[key] if not isinstance(r[key], list) else len(r[key])),
                      reverse=sort.startswith("-"))
        else:
            rows.sort(key=lambda r: (r["online"], -r["alarms"], r["bookcase"]))
        return rows

    def totals(self, rows: list[dict]) -> dict:
        return {"bookcases": len(rows), "online": sum(r["online"] for r in rows),
                "alarms": sum(r["alarms"] for r in rows), "loans": sum(r["loans_today"] for r in rows),
                "returns": sum(r["returns_today"] for r in rows), "backlog": self._journal_parts()["backlog"]}

    def bookcase(self, bookcase: str) -> dict | None:
        states, holdings, _ = self.fleet.snapshot()
        heard = self.journal.last_seen()
        if bookcase not in states and bookcase not in heard and bookcase not in holdings:
            return None
        row = next((r for r in self.fleet_rows() if r["bookcase"] == bookcase), None)
        st = states.get(bookcase, {})
        return {"row": row, "state": st, "health": st.get("health") or {}, "counters": st.get("counters") or {},
                "holdings": holdings.get(bookcase), "alarms": self.journal.alarms(bookcase=bookcase, limit=50),
                "sessions": self.journal.sessions_of(bookcase, limit=30)}

    def review(self) -> list[dict]:
        return self.journal.review_list()

    def figures(self) -> dict:
        since = (datetime.now(self.tz).date() - timedelta(days=DAYS_CHARTED - 1)).isoformat()
        counts = self.journal.day_counts(since, self.day_start_utc(since))
        days = [(datetime.now(self.tz).date() - timedelta(days=n)).isoformat() for n in range(DAYS_CHARTED - 1, -1, -1)]
        per_day = {d: {"loans": 0, "returns": 0} for d in days}
        per_bookcase: dict[str, dict] = {}
        for r in counts:
            if r["day"] in per_day:
                per_day[r["day"]]["loans"] += r["loans"]
                per_day[r["day"]]["returns"] += r["returns"]
            b = per_bookcase.setdefault(r["bookcase"], {"loans": 0, "returns": 0})
            b["loans"] += r["loans"]
            b["returns"] += r["returns"]
        hourly = self.journal.hour_counts(since, self.day_start_utc(since))
        hours = {int(r["hour"]): r["n"] for r in hourly if (r["hour"] or "").isdigit()}
        return {"since": since, "days": [(d, per_day[d]) for d in days],
                "bookcases": sorted(per_bookcase.items()), "hours": [(h, hours.get(h, 0)) for h in range(24)],
                "backlog": self.journal.backlog()}
