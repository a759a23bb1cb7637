"""The embedded PostgreSQL from a folder that ``nobody`` cannot enter (a clone under /root or
in ``mktemp -d``). As root the server runs as ``nobody``, so walletql keeps the cluster and a
copy of the server under /var/lib/walletql; as any other user it stays in the data dir."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from testkit.env import clean_env
from testkit.net import free_port, wait_http
from testkit.process import WALLETQL
from walletql import embedded_pg, pg_home
from walletql.devauth import DevSigner

AS_ROOT = os.geteuid() == 0


@pytest.fixture
def private_folder() -> Iterator[Path]:
    """A 0700 folder, as ``mktemp -d`` makes; the embedded cluster of anything under it is
    removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="walletql-private-"))
    assert folder.stat().st_mode & 0o777 == 0o700
    yield folder
    if AS_ROOT:
        for data_dir in (folder / "data", folder / "clone" / "data"):
            pg_home.forget(data_dir)
    shutil.rmtree(folder, ignore_errors=True)


async def test_serve_on_the_embedded_database_from_a_private_folder(
    private_folder: Path,
) -> None:
    data_dir = private_folder / "data"
    port = free_port()
    env = clean_env(WALLETQL_DATA_DIR=str(data_dir), WALLETQL_PORT=str(port))
    proc = await asyncio.create_subprocess_exec(
        *WALLETQL, "serve", env=env, cwd=private_folder,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=30) as client:
            await wait_http(f"{base}/healthz", proc, seconds=60)
            headers = {"authorization": f"Bearer {DevSigner(data_dir).mint('dora')}"}
            create = 'mutation { createUser(input: {password: "correct horse"}) { sub } }'
            await client.post(f"{base}/graphql", json={"query": create}, headers=headers)
            me = await client.post(
                f"{base}/graphql", json={"query": "{ me { sub } }"}, headers=headers
            )
        assert me.json() == {"data": {"me": {"sub": "dora"}}}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    cluster = embedded_pg.EmbeddedPostgres(data_dir).pgdata
    assert (cluster / "PG_VERSION").exists()
    assert not (cluster / "postmaster.pid").exists(), "stopped with the server"
    if AS_ROOT:
        home = pg_home.server_home(data_dir)
        assert cluster == home.cluster
        assert (data_dir / "postgres").resolve() == home.cluster  # the link shows where
        assert cluster.stat().st_uid == pg_home_owner()
        assert (home.root / "data-dir").read_text() == f"{data_dir.resolve()}\n"
    else:
        assert cluster == data_dir.resolve() / "postgres"


def pg_home_owner() -> int:
    import pwd

    return pwd.getpwnam("nobody").pw_uid


async def test_a_server_installed_in_a_private_folder_runs(
    private_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole clone in a private folder: the virtualenv's copy of the server is out of
    nobody's reach too."""
    installed = embedded_pg._bin_dir().parents[2]  # the site-packages folder with the wheel
    site = private_folder / "clone" / ".venv" / "site-packages"
    for part in pg_home.SERVER_PARTS:
        if (installed / part).is_dir():
            shutil.copytree(installed / part, site / part, symlinks=True)
    monkeypatch.setattr(embedded_pg, "_bin_dir", lambda: site / pg_home.BIN)
    server = embedded_pg.EmbeddedPostgres(private_folder / "clone" / "data")
    server.start()
    try:
        conn = await asyncpg.connect(host="127.0.0.1", port=server.port, user="postgres")
        version = await conn.fetchval("SHOW server_version")
        await conn.close()
    finally:
        server.stop()
    assert version.split(".")[0].isdigit()
    if AS_ROOT:
        home = pg_home.server_home(private_folder / "clone" / "data")
        assert (home.bin / "postgres").exists()
        assert server.pgdata == home.cluster
