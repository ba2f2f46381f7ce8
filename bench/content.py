"""Content updates (issue 6): from the library publishing a new manifest to the new content on the screen.

Real Mosquitto on a free port; the library's content folder served over loopback HTTP by `kiosk content
serve`'s server; one bookcase's core (fleet link, content updater) in a thread and its attract screen
(1080x1920, SDL's dummy driver) on the main thread, as `kiosk run` runs them. For each trial the library
signs a new version whose new first item has priority 10, and publishes the retained announcement on
``<root>central/content``. Three times are taken: the announcement published; the new version installed
(the content folder's ``current`` swapped); the new item drawn in the promotional region.

  (a) card updates: a new recommendation card, no new file to download. Goal: p99 under 5 s.
  (b) video updates: a new 1280x720 H.264 clip, downloaded at the default bandwidth cap (2000 KB/s).
      Goal: p99 under the download time at the cap + 5 s.

The screen looks for new content every 0.25 s (kiosk.ui.screens.playlist.CHECK_S) and shows it once the new
item is ready (a video: its first frame decoded). Prints a table and writes JSON to bench/results/content.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from bench.stats import percentile  # noqa: E402
from kiosk.config import ScreenConfig  # noqa: E402
from kiosk.content.authoring import sign  # noqa: E402
from kiosk.content.manifest import public_text  # noqa: E402
from kiosk.content.server import ContentServer  # noqa: E402
from kiosk.ui.loop import FPS, KioskUI  # noqa: E402
from kiosk.ui.screens.playlist import Playlist  # noqa: E402
from kiosk.ui.voice import Voice  # noqa: E402
from simulators.fleet.broker import Broker  # noqa: E402
from tests.content.media import make_clip  # noqa: E402
from tests.content.site import content_config, content_store  # noqa: E402
from tests.sync.fleet import ROOT_TOPIC, FleetCase, mqtt_section, publish  # noqa: E402

CARD_GOAL_P99_S = 5.0
VIDEO_MARGIN_S = 5.0                 # (b): the download at the cap, plus this
CAP_KBPS = 2000                      # the config's default [content] max_kbps
TIMEOUT_S = 120.0

BASE = '''library = "minhang"
[[items]]
id = "wechat"
kind = "qr"
title = "闵图微信公众号"
url = "https://www.example.org/minhang-library/wechat"
'''


def notice(n: int, video: bool) -> str:
    if video:
        return f'[[items]]\nid = "notice-{n}"\nkind = "video"\nasset = "video/notice-{n}.mp4"\npriority = 10\n'
    return (f'[[items]]\nid = "notice-{n}"\nkind = "book"\ntitle = "思君令人老，努力加餐饭 ({n})"\n'
            f'why = "今日新书到柜"\npriority = 10\n')


def trial(n: int, video: bool, folder: Path, key: Ed25519PrivateKey, server_url: str, port: int, ui: KioskUI,
          playlist: Playlist, store) -> dict:
    size = 0
    if video:
        clip = make_clip(folder / "video" / f"notice-{n}.mp4", (40 + n * 7 % 200, 120, 180), seconds=6,
                         size=(1280, 720), pattern=True)
        size = clip.stat().st_size
    (folder / "content.toml").write_text(BASE + notice(n, video), encoding="utf-8")
    version = sign(folder, key).version
    before = store.generation()
    t0 = time.perf_counter()
    publish(port, ROOT_TOPIC + "central/content", {"v": 1, "version": version, "url": server_url}, retain=True)
    installed = shown = None
    tick = 1 / FPS
    while shown is None:
        now = time.perf_counter()
        if now - t0 > TIMEOUT_S:
            raise TimeoutError(f"version {version} not on screen within {TIMEOUT_S:.0f} s")
        ui.step()
        if installed is None and store.generation() != before:
            installed = time.perf_counter()
        if playlist.showing == f"notice-{n}":
            shown = time.perf_counter()
        time.sleep(max(0.0, tick - (time.perf_counter() - now)))
    return {"version": version, "bytes": size, "installed_s": (installed or shown) - t0, "on_screen_s": shown - t0}


def run(cards: int, videos: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "site"
        (folder / "video").mkdir(parents=True)
        key = Ed25519PrivateKey.generate()
        broker = Broker(tmp / "broker").start()
        server = ContentServer(folder).start()
        case = FleetCase(tmp / "bc", "MH-B", mqtt_section(broker.port), first_item=101, doors=1, books_per_door=2)
        case.cfg = content_config(tmp / "bc", [public_text(key)], None, mqtt=mqtt_section(broker.port),
                                  bookcase="MH-B", max_kbps=CAP_KBPS)
        store = content_store(case.cfg)
        playlist = Playlist(store, ZoneInfo(case.cfg.content.timezone))
        ui = KioskUI(ScreenConfig(width=1080, height=1920, fullscreen=False, voice=False),
                     bookcase_name=case.cfg.bookcase.name, voice=Voice(enabled=False), promo=playlist)
        rows: dict[str, list[dict]] = {"card": [], "video": []}
        try:
            case.start()
            ui.connect(case.app.post, lambda: case.app.snapshot)
            ui.open()
            for n in range(cards + videos):
                kind = "card" if n < cards else "video"
                rows[kind].append(trial(n, kind == "video", folder, key, server.url, broker.port, ui, playlist,
                                        store))
                print(f"\r  {n + 1}/{cards + videos} updates", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            ui.close()
            case.stop()
            server.close()
            broker.stop()
    return rows


def summary(rows: list[dict], goal_s: float) -> dict:
    shown = [r["on_screen_s"] for r in rows]
    installed = [r["installed_s"] for r in rows]
    return {"updates": len(rows), "mean_bytes": round(sum(r["bytes"] for r in rows) / len(rows)),
            "installed_p50_s": round(percentile(installed, 50), 2), "installed_p99_s": round(percentile(installed, 99), 2),
            "on_screen_p50_s": round(percentile(shown, 50), 2), "on_screen_p99_s": round(percentile(shown, 99), 2),
            "goal_p99_s": round(goal_s, 2), "met": percentile(shown, 99) < goal_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=20, help="card-only updates")
    parser.add_argument("--videos", type=int, default=5, help="updates with a new clip")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "content.json")
    args = parser.parse_args()
    rows = run(args.cards, args.videos)
    results = {"cards": summary(rows["card"], CARD_GOAL_P99_S)}
    if rows["video"]:
        mean = sum(r["bytes"] for r in rows["video"]) / len(rows["video"])
        results["videos"] = summary(rows["video"], mean / (CAP_KBPS * 1024) + VIDEO_MARGIN_S)
    print("\n| publish -> on screen (retained MQTT announcement, real Mosquitto, loopback HTTP) | measured | goal |")
    print("|---|---|---|")
    c = results["cards"]
    print(f"| (a) {c['updates']} card update(s), no new file: installed / on screen | p50 {c['installed_p50_s']} s / "
          f"{c['on_screen_p50_s']} s, p99 {c['installed_p99_s']} s / {c['on_screen_p99_s']} s | on screen p99 < "
          f"{c['goal_p99_s']} s {'(met)' if c['met'] else '(MISSED)'} |")
    if "videos" in results:
        v = results["videos"]
        print(f"| (b) {v['updates']} update(s) with a new 1280x720 clip ({v['mean_bytes'] / 1e6:.1f} MB) at "
              f"{CAP_KBPS} KB/s: installed / on screen | p50 {v['installed_p50_s']} s / {v['on_screen_p50_s']} s, "
              f"p99 {v['installed_p99_s']} s / {v['on_screen_p99_s']} s | on screen p99 < {v['goal_p99_s']} s "
              f"{'(met)' if v['met'] else '(MISSED)'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "trials": rows}, indent=2), encoding="utf-8")
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
