"""A real PgBouncer in transaction pooling mode, in front of the suite's PostgreSQL.

``TemporaryPgBouncer`` writes a ``pgbouncer.ini`` and a ``userlist.txt`` into a temporary folder,
starts Debian's ``/usr/sbin/pgbouncer`` (``BINDU_PGBOUNCER`` names another binary) on a free
loopback port with ``pool_mode = transaction`` and a small ``default_pool_size`` (so server
connections really are shared between clients), waits until it accepts connections, and removes
everything on ``stop()``. PgBouncer refuses to run as root, so as root it runs as the ``postgres``
user, as ``TemporaryPostgres`` runs the server. A missing binary fails the fixture loudly: the
contract runs through PgBouncer are part of the suite, never skipped.

The fixture ``pgbouncer_url`` is the URL of the suite's migrated test database through it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

POOL_SIZE = 3
"""Server connections per (database, user): fewer than the storage pool, so they are shared."""

_INI = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
auth_type = scram-sha-256
auth_file = {dir}/userlist.txt
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
server_tls_sslmode = disable
log_connections = 0
log_disconnections = 0
"""


def find_pgbouncer() -> str:
    """The PgBouncer binary (``BINDU_PGBOUNCER``, else ``pgbouncer`` on PATH or in /usr/sbin)."""
    explicit = os.environ.get("BINDU_PGBOUNCER")
    found = explicit or shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if not found or not Path(found).exists():
        pytest.fail(
            "pgbouncer is not installed: the contract suite runs through a real PgBouncer in "
            "transaction mode (apt-get install -y pgbouncer, or set BINDU_PGBOUNCER)",
            pytrace=False,
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@dataclass
class TemporaryPgBouncer:
    """A throwaway PgBouncer (transaction mode) in front of ``server_url``'s server."""

    server_url: str
    pool_size: int = POOL_SIZE
    port: int = field(default_factory=_free_port)
    binary: str = field(default_factory=find_pgbouncer)
    _dir: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        """The URL of ``database`` through PgBouncer (same user and password as the server's)."""
        parts = urlsplit(self.server_url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[0]}@127.0.0.1:{self.port}/{database}"

    def start(self) -> TemporaryPgBouncer:
        """Write the configuration, start PgBouncer and wait for it to listen; returns self."""
        parts = urlsplit(self.server_url)
        self._dir = Path(tempfile.mkdtemp(prefix="bindu-pgbouncer-"))
        ini = self._dir / "pgbouncer.ini"
        ini.write_text(_INI.format(
            host=parts.hostname, port=parts.port or 5432, listen_port=self.port,
            pool_size=self.pool_size, dir=self._dir,
        ))
        userlist = self._dir / "userlist.txt"
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        userlist.write_text(f"{_quote(user)} {_quote(password)}\n")
        userlist.chmod(0o600)
        run_as = None
        if os.geteuid() == 0:  # "PgBouncer should not run as root"
            run_as = "postgres"
            try:
                pw = pwd.getpwnam(run_as)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", run_as], check=True)
                pw = pwd.getpwnam(run_as)
            for path in (self._dir, ini, userlist):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self._dir.chmod(0o700)
        self._proc = subprocess.Popen(
            [self.binary, str(ini)], user=run_as, cwd=self._dir,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                log = self.log()
                self.stop()
                raise RuntimeError(f"pgbouncer exited at startup:\n{err}\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("pgbouncer did not listen within 30 s")

    def log(self) -> str:
        """PgBouncer's log so far."""
        try:
            return (self._dir / "pgbouncer.log").read_text() if self._dir else ""
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop PgBouncer and remove its folder."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> TemporaryPgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def pgbouncer(admin_url: str) -> Iterator[TemporaryPgBouncer]:
    """One PgBouncer (transaction mode, pool of 3 server connections) for the whole run."""
    with TemporaryPgBouncer(admin_url) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def pgbouncer_url(pgbouncer: TemporaryPgBouncer, pg_url: str) -> str:
    """The suite's migrated test database, reached through PgBouncer in transaction mode."""
    return pgbouncer.url(urlsplit(pg_url).path.lstrip("/"))
