"""The small fleet of issue 16 as its README command runs it: 20 bookcases, a simulated week, every fault kind
(bookcases offline for hours and days, a gateway SIGKILL, a broker restart, an ILS outage, a bookcase's daemon
SIGKILLed mid-session, an SD card replaced with a blank one) — real Mosquitto, the real gateway process, the
simulated ILS over SIP2, each bookcase's real core on its own SQLite file. The run's own end check compares what
physically happened with the ILS, the journal and every bookcase; this test reads its report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.scale.faults import KINDS
from tests.support import require_binary

REPO = Path(__file__).resolve().parents[2]
CHECKS = {"ils_exactly_once", "events_found", "outboxes_empty", "acks_arrived", "loan_counts", "review_queue"}
RUN_TIMEOUT_S = 1500      # 3.5-4 minutes on a quiet 2-core machine; several times that on a loaded one


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)     # the suite's 300 s per test is too short for this one under load
def test_a_week_of_twenty_bookcases_with_every_fault_loses_and_doubles_nothing(tmp_path):
    require_binary("mosquitto")
    done = subprocess.run([sys.executable, "-m", "simulators.cli", "fleet-load", "--bookcases", "20", "--days", "7",
                           "--rate", "400", "--population", "5000", "--workdir", str(tmp_path / "run"), "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.stdout.strip(), done.stderr[-3000:]
    report = json.loads(done.stdout)
    failed = [f"{c['name']}: {c['summary']} {c['examples'][:3]}" for c in report["checks"] if not c["ok"]]
    assert done.returncode == 0 and report["ok"], "\n".join(failed) or done.stderr[-3000:]
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == CHECKS
    circulation = report["circulation"]
    transactions = circulation["loans"] + circulation["returns"]
    # The checks looked at the whole run, not at an empty one.
    assert circulation["loans"] > 500 and circulation["returns"] > 200
    assert checks["ils_exactly_once"]["checked"] == transactions - 1            # the ILS's refused item aside
    assert checks["events_found"]["checked"] == transactions
    assert checks["loan_counts"]["checked"] >= 100
    assert report["ils"]["transactions"] >= transactions - 1
    assert all(report["faults_done"][kind] >= 1 for kind in KINDS), report["faults_done"]
    assert report["scheduler_errors"] == 0
    # The library's shape: 2-5 books a visit, about 30 % children's books, busier evenings than nights.
    assert 2.0 <= circulation["books_per_visit"] <= 5.0
    assert 0.2 <= circulation["children_share_of_loans"] <= 0.4
    by_hour = circulation["by_hour"]
    assert sum(by_hour[18:21]) > 5 * sum(by_hour[1:5])
    # Every ack reached its bookcase, so loan -> ack was measured for every loan.
    assert report["latency"]["loan_to_ack_s"]["n"] == circulation["loans"]
    files = {k: Path(v) for k, v in report["files"].items()}
    assert "EVERY CHECK PASSED" in files["text"].read_text(encoding="utf-8")
    assert "<polyline" in files["svg"].read_text(encoding="utf-8")
