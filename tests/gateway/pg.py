"""A PostgreSQL server for the tests, from Debian's postgresql package: initdb into a temporary folder, a free
port on 127.0.0.1, trust authentication, one fresh database per test. As root (CI runs as root) the server runs
as the package's ``postgres`` user, since PostgreSQL refuses to run as root. Missing: the test fails under CI.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from simulators.fleet.broker import free_port
from tests.pcsc_support import SESSION_CHILDREN

START_TIMEOUT_S = 30.0


def find_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


class PgServer:
    def __init__(self) -> None:
        self.initdb, self.postgres = find_bin("initdb"), find_bin("postgres")
        if not self.initdb or not self.postgres:
            raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql; scripts/bootstrap.sh "
                                    "installs it)")
        self.folder = Path(tempfile.mkdtemp(prefix="citybook-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.run_as: dict = {}
        if os.getuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise FileNotFoundError("running as root, and there is no 'postgres' user to run PostgreSQL as "
                                        "(it comes with the postgresql package)") from None
            os.chown(self.folder, pw.pw_uid, pw.pw_gid)
            self.run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def start(self) -> "PgServer":
        out = subprocess.run([self.initdb, "-D", str(self.data), "-U", "citybook", "--auth=trust", "-E", "UTF8",
                              "--no-locale"], capture_output=True, text=True, timeout=120, cwd=self.folder,
                             **self.run_as)
        if out.returncode:
            raise RuntimeError(f"initdb failed: {out.stderr.strip() or out.stdout.strip()}")
        log = open(self.folder / "postgres.log", "wb")
        try:
            self.proc = subprocess.Popen([self.postgres, "-D", str(self.data), "-p", str(self.port), "-k",
                                          str(self.folder), "-c", "listen_addresses=127.0.0.1",
                                          "-c", "max_connections=200"], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.folder, start_new_session=True,
                                         **self.run_as)
        finally:
            log.close()
        SESSION_CHILDREN.add(self.proc.pid)
        import psycopg
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("PostgreSQL did not start: " + self.log_tail()) from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://citybook@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def log_tail(self) -> str:
        try:
            return (self.folder / "postgres.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.send_signal(signal.SIGINT)          # fast shutdown
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            SESSION_CHILDREN.discard(proc.pid)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    try:
        server = PgServer().start()
    except (FileNotFoundError, RuntimeError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()
