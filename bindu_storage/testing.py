"""Throwaway PostgreSQL servers for tests, benchmarks and demos.

``TemporaryPostgres`` runs ``initdb`` and ``pg_ctl`` from the machine's PostgreSQL server
binaries (Debian's ``postgresql-NN``; ``BINDU_PG_BINDIR`` picks others) in a temporary
directory, on a free loopback port, tuned for speed (no fsync), with password authentication
over TCP, and removes everything on ``stop()``. As root it runs the server as the ``postgres``
user, since ``initdb`` refuses root. ``replica()`` starts a hot standby streaming from it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_FAST_CONFIG = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sock}'
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = replica
max_wal_senders = 10
hot_standby = on
shared_preload_libraries = '{preload}'
track_io_timing = on
log_min_messages = warning
"""


def find_bindir() -> Path:
    """The directory of ``initdb``/``pg_ctl`` (newest Debian PostgreSQL, or BINDU_PG_BINDIR)."""
    explicit = os.environ.get("BINDU_PG_BINDIR")
    candidates = [explicit] if explicit else []
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise FileNotFoundError(
        "no PostgreSQL server binaries found: install postgresql-15 (apt-get install "
        "postgresql-15 postgresql-contrib) or set BINDU_PG_BINDIR"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TemporaryPostgres:
    """A throwaway PostgreSQL cluster; use as a context manager or call start()/stop()."""

    password: str = field(default_factory=lambda: secrets.token_hex(12))
    user: str = "postgres"
    port: int = field(default_factory=_free_port)
    bindir: Path = field(default_factory=find_bindir)
    preload: str = "pg_stat_statements"
    """``shared_preload_libraries`` of the server (empty: none, as a default PostgreSQL install)."""
    _dir: Path | None = None
    _run_as: str | None = None

    @property
    def url(self) -> str:
        """URL of the ``postgres`` database, with the password."""
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        """URL of ``database`` on this server."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        assert self._dir is not None
        return self._dir / "data"

    def _cmd(self, *args: str | Path, env: dict[str, str] | None = None) -> None:
        subprocess.run(
            [str(a) for a in args],
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            user=self._run_as,
            env={**os.environ, **(env or {})},
            cwd=str(self._dir),
        )

    def _prepare_dir(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="bindu-pg-"))
        if os.geteuid() == 0:
            self._run_as = "postgres"
            try:
                pw = pwd.getpwnam(self._run_as)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", self._run_as], check=True)
                pw = pwd.getpwnam(self._run_as)
            os.chown(self._dir, pw.pw_uid, pw.pw_gid)
        self._dir.chmod(0o700)

    def start(self) -> TemporaryPostgres:
        """Create and start the cluster; returns self."""
        self._prepare_dir()
        assert self._dir is not None
        pwfile = self._dir / "pw"
        pwfile.write_text(self.password)
        if self._run_as:
            pw = pwd.getpwnam(self._run_as)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._cmd(
            self.bindir / "initdb", "-D", self.data_dir, "-U", self.user, "--pwfile", pwfile,
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
            "--locale=C",
        )
        pwfile.unlink()
        self._configure(self.data_dir, self.port)
        self._start_server(self.data_dir)
        return self

    def _configure(self, data_dir: Path, port: int) -> None:
        with open(data_dir / "postgresql.conf", "a") as conf:
            conf.write(_FAST_CONFIG.format(port=port, sock=self._dir, preload=self.preload))
            if "pg_stat_statements" in self.preload:
                conf.write("pg_stat_statements.track = all\n")

    def _start_server(self, data_dir: Path) -> None:
        self._cmd(self.bindir / "pg_ctl", "-D", data_dir, "-l", data_dir / "server.log",
                  "-w", "-t", "60", "start")

    def replica(self) -> TemporaryPostgres:
        """Start a hot standby of this server (pg_basebackup, streaming), sharing its folder."""
        assert self._dir is not None
        standby = TemporaryPostgres(password=self.password, user=self.user, bindir=self.bindir,
                                    preload=self.preload)
        standby._dir, standby._run_as = self._dir, self._run_as
        standby_data = self._dir / f"standby-{standby.port}"
        self._cmd(
            self.bindir / "pg_basebackup", "-D", standby_data, "-h", "127.0.0.1",
            "-p", str(self.port), "-U", self.user, "-X", "stream", "-R", "--no-sync", "-c", "fast",
            env={"PGPASSWORD": self.password},
        )
        standby._configure(standby_data, standby.port)
        standby._start_server(standby_data)
        standby._standby_data = standby_data  # type: ignore[attr-defined]
        return standby

    def stop(self) -> None:
        """Stop the server and delete its files (a standby only stops)."""
        if self._dir is None:
            return
        standby_data = getattr(self, "_standby_data", None)
        data = standby_data or self.data_dir
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            self._cmd(self.bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        if standby_data is None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
