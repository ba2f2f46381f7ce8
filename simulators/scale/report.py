"""A fleet run's report: JSON for machines, a short text with tables for people, and the backlog over simulated time
as an SVG plot (drawn here: a few polylines need no plotting library)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from simulators.scale.check import Finding

if TYPE_CHECKING:
    from simulators.scale.fleet import FleetRun

PLOT_W, PLOT_H, MARGIN = 900, 320, 60
SERIES = (("outbox", "bookcases' outboxes", "#1f77b4"), ("gateway", "gateway: not yet applied", "#d62728"),
          ("acks_due", "gateway: acks due", "#2ca02c"))


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def latencies(run: FleetRun, transactions_path: Path | None) -> dict:
    """Loan recorded at the bookcase -> applied at the ILS -> its ack back at the bookcase, in real seconds."""
    to_ack = [run.acks_at[e] - t0 for e, t0 in run.visits.loan_started.items() if e in run.acks_at]
    to_ils: list[float] = []
    if transactions_path is not None and transactions_path.exists():
        first: dict[tuple[str, str], float] = {}
        for line in transactions_path.read_text(encoding="utf-8").splitlines():
            t = json.loads(line)
            if t["kind"] == "checkout" and t["via"] == "sip2":
                first.setdefault((t["item"], t["patron"]), datetime.fromisoformat(t["at"]).timestamp())
        started = {}
        for p in run.visits.truth:
            if p.kind == "loan":
                started.setdefault((p.item, p.card), p.real)
        to_ils = [first[k] - t0 for k, t0 in started.items() if k in first and first[k] >= t0 - 1]
    out = {}
    for name, values in (("loan_to_ils_s", to_ils), ("loan_to_ack_s", to_ack)):
        out[name] = {"n": len(values), "p50": _r(percentile(values, 50)), "p99": _r(percentile(values, 99)),
                     "max": _r(max(values) if values else None)}
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def build(run: FleetRun, findings: list[Finding], dump: dict) -> dict:
    cfg = run.cfg
    tally = run.visits.tally
    n_tx = tally.loans + tally.returns
    journaled = run.journal.status() if run.journal else {}
    report = {
        "ok": all(f.ok for f in findings),
        "run": {"bookcases": cfg.bookcases, "follow_fleet": sum(1 for b in run.bookcases if b.follows_fleet),
                "days": cfg.days, "start": cfg.start.isoformat(), "rate_per_day": round(cfg.rate_per_day, 1),
                "population": cfg.population, "cards_in_run": len(run.model.cards), "doors": cfg.doors,
                "capacity": cfg.capacity, "stock": cfg.stock, "loan_days_mean": round(cfg.loan_days, 2),
                "speed": run.options.speed, "seed": cfg.seed},
        "circulation": {"visits": tally.visits, "visits_failed": tally.visits_failed,
                        "refusals": dict(run.visits.refusals), "patrons_gave_up": run.visits.gave_up,
                        "transactions": n_tx, "loans": tally.loans, "returns": tally.returns,
                        "per_day": round(n_tx / cfg.days, 1),
                        "target_per_day": round(cfg.rate_per_day, 1),
                        "returns_elsewhere_share": _share(tally.returns_elsewhere, tally.returns_of_bookcase_loans),
                        "children_share_of_loans": _share(tally.children_loans, tally.loans),
                        "books_per_visit": round(n_tx / tally.visits, 2) if tally.visits else None,
                        "by_hour": tally.by_hour, "by_weekday": tally.by_weekday,
                        "desk_loans_at_start": sum(len(g.items) for g in run.model.desk)},
        "faults": run.faults.log,
        "faults_done": run.faults.done,
        "checks": [f.to_dict() for f in findings],
        "timing": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in run.timing.items()},
        "memory_mb": {k: round(v, 1) for k, v in run.memory.items()},
        "cpu_s": {k: round(v, 1) for k, v in getattr(run, "cpu", {}).items()},
        "latency": latencies(run, Path(dump["transactions"]) if dump.get("transactions") else None),
        "ils": {"transactions": dump.get("transactions_count"), "loans_now": dump.get("loans_count")},
        "journal": journaled,
        "samples": run.samples,
        "scheduler_errors": run.scheduler.errors,
    }
    mem = report["memory_mb"]
    if "host_end_of_run_mb" in mem and cfg.bookcases:
        mem["per_bookcase"] = round((mem["host_end_of_run_mb"] - mem["host_before_bookcases_mb"]) / cfg.bookcases, 2)
    if run.timing.get("simulated_s"):
        report["throughput"] = {"transactions_per_real_s": round(n_tx / run.timing["simulated_s"], 1),
                                "simulated_per_real": round(cfg.days * 86400 / run.timing["simulated_s"], 1)}
    return report


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def text(report: dict) -> str:
    r, c = report["run"], report["circulation"]
    lines = [f"Fleet run: {r['bookcases']} bookcases ({r['follow_fleet']} following the fleet), {r['days']:g} "
             f"simulated day(s) from {r['start'][:10]}, {r['rate_per_day']:,.0f} loans+returns a day wanted",
             f"Result: {'EVERY CHECK PASSED' if report['ok'] else 'SOME CHECKS FAILED'}", "",
             "Circulation",
             _table([("visits", f"{c['visits']:,}"), ("loans", f"{c['loans']:,}"), ("returns", f"{c['returns']:,}"),
                     ("loans+returns a day", f"{c['per_day']:,.0f} (wanted {c['target_per_day']:,.0f})"),
                     ("books per visit", c["books_per_visit"]),
                     ("returns at another bookcase than the loan's", _pct(c["returns_elsewhere_share"])),
                     ("children's books among loans", _pct(c["children_share_of_loans"])),
                     ("visits that could not happen", f"{c['visits_failed']} {c['refusals'] or ''}".strip()),
                     ("desk loans held at the start", c["desk_loans_at_start"])]), "",
             "Checks",
             _table([(f["name"], ("ok   " if f["ok"] else "FAIL ") + f["summary"]) for f in report["checks"]])]
    for f in report["checks"]:
        if not f["ok"] and f["examples"]:
            lines += [f"  {f['name']}, first examples:"] + [f"    {json.dumps(e, ensure_ascii=False)}"
                                                            for e in f["examples"][:6]]
    if report["faults"]:
        lines += ["", "Faults", _table([(f["when"], f["what"]) for f in report["faults"]])]
    lat, t = report["latency"], report["timing"]
    lines += ["", "Costs",
              _table([("wall time of the simulated run", f"{t.get('simulated_s', 0):.0f} s "
                                                         f"({t.get('real_per_simulated_day_s', 0):.0f} s a day)"),
                      ("end going quiet", f"{t.get('quiet_s', 0):.0f} s"),
                      ("loan -> ILS, p50 / p99", f"{lat['loan_to_ils_s']['p50']} / {lat['loan_to_ils_s']['p99']} s"),
                      ("loan -> ack at the bookcase, p50 / p99",
                       f"{lat['loan_to_ack_s']['p50']} / {lat['loan_to_ack_s']['p99']} s"),
                      ("CPU: broker / gateway / ILS / bookcases' host",
                       " / ".join(f"{report['cpu_s'].get(k, 0):.0f}" for k in ("broker_s", "gateway_s", "ils_s",
                                                                              "host_s")) + " s"),
                      ("memory: per bookcase (host RSS / bookcases)", f"{report['memory_mb'].get('per_bookcase')} MB"),
                      ("memory: broker / gateway",
                       f"{report['memory_mb'].get('broker_mb')} / {report['memory_mb'].get('gateway_mb')} MB")])]
    peak = max(report["samples"], key=lambda s: s["outbox"] + s["gateway"], default=None)
    if peak:
        lines += ["", f"Backlog peak: {peak['outbox']:,} events in outboxes, {peak['gateway']:,} at the gateway, "
                      f"at {peak['when']} (plot: backlog.svg)"]
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f} %"


def _table(rows: list[tuple]) -> str:
    width = max((len(str(a)) for a, _ in rows), default=0)
    return "\n".join(f"  {str(a).ljust(width)}  {b}" for a, b in rows)


def svg(samples: list[dict], title: str) -> str:
    """The backlog over simulated time: outboxes, the gateway's unapplied events and acks due."""
    if not samples:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{PLOT_W}" height="{PLOT_H}"></svg>\n'
    t0, t1 = samples[0]["t"], max(samples[-1]["t"], samples[0]["t"] + 1)
    top = max(1, max(max(s[k] for k, _, _ in SERIES) for s in samples))
    w, h = PLOT_W - 2 * MARGIN, PLOT_H - 2 * MARGIN

    def x(t: float) -> float:
        return MARGIN + (t - t0) / (t1 - t0) * w

    def y(v: float) -> float:
        return MARGIN + h - v / top * h
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{PLOT_W}" height="{PLOT_H}" font-family="sans-serif" '
             f'font-size="12">', f'<rect width="{PLOT_W}" height="{PLOT_H}" fill="white"/>',
             f'<text x="{MARGIN}" y="24" font-size="14">{escape(title)}</text>',
             f'<line x1="{MARGIN}" y1="{MARGIN + h}" x2="{MARGIN + w}" y2="{MARGIN + h}" stroke="black"/>',
             f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{MARGIN + h}" stroke="black"/>',
             f'<text x="{MARGIN - 6}" y="{MARGIN + 4}" text-anchor="end">{top:,}</text>',
             f'<text x="{MARGIN - 6}" y="{MARGIN + h + 4}" text-anchor="end">0</text>']
    days = (t1 - t0) / 86400
    step = 86400 * max(1, round(days / 10)) if days > 1.5 else 3 * 3600
    tick = t0 - t0 % step + step if t0 % step else t0
    while tick <= t1:
        label = samples[0]["when"][:10] if tick == t0 else ""
        parts.append(f'<line x1="{x(tick):.1f}" y1="{MARGIN + h}" x2="{x(tick):.1f}" y2="{MARGIN + h + 4}" '
                     f'stroke="black"/><text x="{x(tick):.1f}" y="{MARGIN + h + 18}" text-anchor="middle">'
                     f'{"day " + str(int(tick // 86400)) if step >= 86400 else f"{tick / 3600:.0f} h"}{label}</text>')
        tick += step
    for n, (key, name, colour) in enumerate(SERIES):
        points = " ".join(f"{x(s['t']):.1f},{y(s[key]):.1f}" for s in samples)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        parts.append(f'<rect x="{MARGIN + w - 210}" y="{MARGIN + 6 + n * 16}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{MARGIN + w - 195}" y="{MARGIN + 15 + n * 16}">{escape(name)}</text>')
    parts.append(f'<text x="{MARGIN + w / 2}" y="{PLOT_H - 12}" text-anchor="middle">simulated time</text></svg>')
    return "\n".join(parts) + "\n"


def write(folder: Path, report: dict) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "report.json", "text": folder / "report.txt", "svg": folder / "backlog.svg"}
    paths["json"].write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    paths["text"].write_text(text(report), encoding="utf-8")
    r = report["run"]
    paths["svg"].write_text(svg(report["samples"], f"Backlog over simulated time: {r['bookcases']} bookcases, "
                                                   f"{r['days']:g} day(s)"), encoding="utf-8")
    return paths


__all__ = ["build", "percentile", "svg", "text", "write"]
