"""Sample data for the operators' console: bookcases' retained state messages and a journal of their events,
shaped like the library's (its bookcases' sites, evening and weekend peaks). For the screenshots, the console's
tests and its benchmark; everything passes the fleet's own schemas."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.journal import Incoming, Journal
from kiosk import __version__
from kiosk.sync import schema

TZ = ZoneInfo("Asia/Shanghai")
ROOT = "citybook/v1/minhang/"
SITES = ["莘庄镇康城社区", "七宝镇万科城市花园", "古美路街道平南社区", "江川路街道紫竹科学园区", "梅陇镇春申社区",
         "虹桥镇龙柏社区", "颛桥镇银都社区", "浦锦街道浦江世博家园", "华漕镇纪王社区", "新虹街道虹桥天地"]


def bookcase_id(n: int) -> str:
    return f"MH-{n:04d}"


def state(bookcase: str, n: int, *, online: bool = True, outbox: int = 0, reason: str | None = None,
          content: int = 1796355988, doors_out: tuple[int, ...] = ()) -> dict:
    msg = {"v": 1, "id": str(uuid.uuid4()), "bookcase": bookcase, "ts": datetime.now(TZ).isoformat(timespec="seconds"),
           "type": "state", "online": online, "name": f"闵行区图书馆城市书柜 · {SITES[n % len(SITES)]}",
           "version": __version__, "outbox_depth": outbox, "last_sync": datetime.now(TZ).isoformat(timespec="seconds"),
           "counters": {"events_applied": 12 * n % 97, "link_lost": n % 3},
           "content": {"version": content, "last_result": "installed", "last_error": None, "refused": 0},
           "doors": {"in_service": [d for d in range(1, 7) if d not in doors_out], "out_of_service": list(doors_out)}}
    if reason:
        msg["reason"] = reason
    return schema.check_message("state", msg)


class EventMaker:
    """A bookcase's events with its own seq numbers."""

    def __init__(self, bookcase: str) -> None:
        self.bookcase = bookcase
        self.seq = 0

    def event(self, type_: str, at: datetime, **fields) -> dict:
        self.seq += 1
        return schema.check_event({"v": 1, "id": str(uuid.uuid4()), "bookcase": self.bookcase, "seq": self.seq,
                                   "ts": at.isoformat(timespec="milliseconds"), "type": type_, **fields})


def fill_journal(journal: Journal, bookcases: int, days: int = 30, per_day: int = 40, seed: int = 2020) -> dict:
    """A month of sessions, loans and returns, a few alarms and things for staff to look at; what was written."""
    rng = random.Random(seed)
    today = datetime.now(TZ).replace(minute=0, second=0, microsecond=0)
    makers = [EventMaker(bookcase_id(n)) for n in range(1, bookcases + 1)]
    written = {"loans": 0, "returns": 0, "alarms": 0, "review": 0}
    batch: list[Incoming] = []
    for day in range(days - 1, -1, -1):
        for maker in makers:
            for _ in range(rng.randint(per_day // 2, per_day)):
                hour = rng.choices(range(8, 22), weights=[1, 1, 2, 2, 2, 2, 2, 3, 3, 4, 6, 8, 7, 4])[0]
                at = today - timedelta(days=day) + timedelta(hours=hour - today.hour, minutes=rng.randint(0, 59))
                if at > datetime.now(TZ):
                    continue
                session, door = str(uuid.uuid4()), rng.randint(1, 6)
                patron = f"{rng.getrandbits(128):032x}"
                kind = rng.choice(["loan", "loan", "return"])
                fields = {"session": session, "door": door, "item": f"MH2020{rng.randint(0, 99999):05d}"}
                if kind == "loan":
                    fields |= {"patron": patron, "due": (at + timedelta(days=30)).date().isoformat()}
                batch.append(_incoming(maker.event(kind, at, **fields)))
                batch.append(_incoming(maker.event("session_closed", at, session=session, door=door, kind="patron",
                                                   patron=patron, loans=int(kind == "loan"),
                                                   returns=int(kind == "return"), missing=0)))
                written["loans" if kind == "loan" else "returns"] += 1
    for n, maker in enumerate(makers[:3]):
        at = datetime.now(TZ) - timedelta(minutes=30 + n)
        batch.append(_incoming(maker.event("alarm", at, alarm=["door_held_open", "hardware_fault", "disk_low"][n],
                                           door=2 if n == 0 else None, **({"device": "rfid"} if n == 1 else {}))))
        written["alarms"] += 1
    at = datetime.now(TZ) - timedelta(minutes=12)
    batch.append(_incoming(makers[0].event("uncertain_tag", at, session=str(uuid.uuid4()), door=3,
                                           uid="E004A1B2C3D4E5F6", item="MH20200125")))
    batch.append(_incoming(makers[-1].event("item_missing", at, session=str(uuid.uuid4()), door=5,
                                            uid="E0041122334455AA", item="MH20200301")))
    written["review"] += 2
    for start in range(0, len(batch), 500):
        journal.record(batch[start:start + 500], "sample", 60.0)
    # All but the last hour's loans and returns have reached the ILS and been acknowledged, as in a quiet week.
    cutoff = (datetime.now(TZ) - timedelta(hours=1)).astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M")
    journal._write(lambda tx: tx.execute(
        "UPDATE events SET state = 'applied', done_at = received_at, done_epoch = received_epoch, "
        "acked_at = received_at WHERE type IN ('loan', 'return') AND ts_utc < ?", (cutoff,)))
    journal._write(lambda tx: tx.execute("UPDATE events SET acked_at = received_at WHERE acked_at IS NULL "
                                         "AND state = 'informational'"))
    return written


def holdings(bookcase: str, n: int, books: int = 300) -> dict:
    """A bookcase's retained holdings: ``books`` books over six doors."""
    items = [{"item": f"MH2020{n:02d}{i:03d}", "title": f"书 {i}", "door": 1 + i % 6} for i in range(books)]
    return schema.check_message("holdings", {"v": 1, "id": str(uuid.uuid4()), "bookcase": bookcase,
                                             "ts": datetime.now(TZ).isoformat(timespec="seconds"),
                                             "type": "holdings", "items": items})


def _incoming(ev: dict) -> Incoming:
    return Incoming(f"{ROOT}bookcase/{ev['bookcase']}/event", ev["bookcase"], schema.encode(ev), event=ev)
