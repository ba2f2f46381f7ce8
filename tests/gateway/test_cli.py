"""`citybook-gateway` as staff run it: check-config, patrons import, status, review list/retry/resolve."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway.journal import Outcome
from tests.gateway.support import Bookcase, load, record, write_gateway_config
from gateway.journal import open_journal

ROOT = Path(__file__).resolve().parents[2]


def gw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_help_names_every_command():
    out = gw("--help")
    assert out.returncode == 0
    for word in ("run", "status", "patrons", "review", "check-config", "examples:"):
        assert word in out.stdout


def test_check_config_says_what_is_wrong_with_file_and_key(tmp_path):
    path = write_gateway_config(tmp_path)
    ok = gw("check-config", str(path))
    assert ok.returncode == 0 and "journal: SQLite" in ok.stdout and "sip2-test-password" not in ok.stdout
    path.write_text(path.read_text().replace("pool_size", "poolsize") + "\n[ils2]\n")
    bad = gw("check-config", str(path))
    assert bad.returncode == 2 and f"{path}: ils2: unknown key" in bad.stderr


def test_patrons_import_status_and_the_review_queue(tmp_path):
    path = write_gateway_config(tmp_path)
    export = tmp_path / "export.csv"
    export.write_text("card,uids,class,status\n3101120000018,04A224B2C35E80,adult,active\nbad,,,\n")
    out = gw("patrons", "import", "--config", str(path), str(export))
    assert out.returncode == 1, out.stderr            # one line skipped: said, and the exit code says so
    assert "1 patron(s), 2 card key(s): 2 new" in out.stdout and "line 3:" in out.stdout
    assert len((tmp_path / "patrons.jsonl").read_text().splitlines()) == 2

    journal = open_journal(load(path).journal)
    loan = Bookcase("MH-A").loan("MH20200001", "3101120000018")
    record(journal, loan)
    ev = journal.claim("gw-1#x/0", 60)
    journal.finish(ev, "gw-1#x/0", Outcome("rejected", reason="Item is lost", screen_message="Item is lost"), "gw-1")
    journal.close()

    status = gw("status", "--config", str(path), "--json")
    assert json.loads(status.stdout)["backlog"]["review_open"] == 1
    assert "review queue: 1 open" in gw("status", "--config", str(path)).stdout
    listed = gw("review", "list", "--config", str(path))
    assert loan["id"][:8] in listed.stdout and "the ILS said: Item is lost" in listed.stdout
    assert "3101120000018" not in listed.stdout
    assert gw("review", "resolve", "--config", str(path), loan["id"][:8]).returncode == 2   # --note is required
    done = gw("review", "resolve", "--config", str(path), loan["id"][:8], "--note", "found on the shelf",
              "--by", "zhang.min")
    assert done.returncode == 0 and "resolved by zhang.min" in done.stdout
    assert "empty" in gw("review", "list", "--config", str(path)).stdout
    again = gw("review", "retry", "--config", str(path), "nosuchid")
    assert again.returncode == 1 and "no event 'nosuchid'" in again.stderr
