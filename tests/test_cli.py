"""The ``walletql`` command as a new user runs it: serve on embedded defaults, token, migrate."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from web3 import AsyncWeb3

from tests.chain_support import Anvil
from tests.conftest import ROOT, free_port

WALLETQL = [sys.executable, "-m", "walletql.cli"]


async def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *WALLETQL, *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def wait_until_up(
    client: httpx.AsyncClient, url: str, proc: asyncio.subprocess.Process
) -> None:
    for _ in range(600):
        if proc.returncode is not None:
            pytest.fail("serve exited early")
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    pytest.fail("serve did not come up in 60 s")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETQL_")}
    return {**env, **extra}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Under the repo, not pytest's root-only tmp dir: the embedded server may run as 'nobody'.
    path = ROOT / ".data" / f"cli-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_serve_on_embedded_defaults_then_token_create_user_and_me(data_dir: Path) -> None:
    port = free_port()
    env = clean_env(WALLETQL_DATA_DIR=str(data_dir), WALLETQL_PORT=str(port))
    proc = await asyncio.create_subprocess_exec(
        *WALLETQL, "serve", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as client:
            await wait_until_up(client, f"{base}/healthz", proc)
            status, token, _ = await run("token", "alice", env=env)
            assert status == 0
            token = token.strip()
            headers = {"authorization": f"Bearer {token}"}
            create = 'mutation { createUser(input: {password: "correct horse"}) { sub wallet { address } } }'  # noqa: E501
            created = (
                await client.post(f"{base}/graphql", json={"query": create}, headers=headers)
            ).json()
            assert created["data"]["createUser"]["sub"] == "alice"
            me = (
                await client.post(
                    f"{base}/graphql", json={"query": "{ me { sub } }"}, headers=headers
                )
            ).json()
            assert me == {"data": {"me": {"sub": "alice"}}}
    finally:
        proc.send_signal(signal.SIGTERM)
        raw, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
        output = raw.decode()
    assert proc.returncode == 0, output
    assert "dev token" in output
    # The embedded PostgreSQL was stopped with the server.
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    # Generated secrets live in the data dir, private to their owner.
    for name in ("pepper", "jwt-dev-key.pem"):
        assert (data_dir / name).stat().st_mode & 0o077 == 0


def test_token_refuses_when_an_external_jwks_is_configured(tmp_path: Path) -> None:
    env = clean_env(WALLETQL_DATA_DIR=str(tmp_path), WALLETQL_JWKS_URL="https://auth.example/jwks")
    done = subprocess.run([*WALLETQL, "token", "alice"], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "WALLETQL_JWKS_URL" in done.stderr
    assert not (tmp_path / "jwt-dev-key.pem").exists()


async def test_serve_with_walletql_chains_signs_for_an_anvil_node(
    anvil: Anvil, anvil_w3: AsyncWeb3[Any], database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = clean_env(
        WALLETQL_DATA_DIR=str(tmp_path),
        WALLETQL_PORT=str(port),
        WALLETQL_DATABASE_URL=database_url,
        WALLETQL_CHAINS=json.dumps(
            [{"chain_id": anvil.chain_id, "name": "anvil", "rpc_url": anvil.url}]
        ),
    )
    proc = await asyncio.create_subprocess_exec(
        *WALLETQL, "serve", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}/graphql"
        _, token, _ = await run("token", "alice", env=env)
        headers = {"authorization": f"Bearer {token.strip()}"}
        async with httpx.AsyncClient(timeout=10) as client:
            await wait_until_up(client, f"http://127.0.0.1:{port}/healthz", proc)
            create = (
                'mutation { createUser(input: {password: "correct horse"}) { wallet { address } } }'
            )
            created = (await client.post(base, json={"query": create}, headers=headers)).json()
            address = created["data"]["createUser"]["wallet"]["address"]
            await anvil_w3.provider.make_request("anvil_setBalance", [address, hex(10**18)])  # type: ignore[arg-type]
            sign = (
                'mutation { signTransaction(input: {password: "correct horse", value: "1000", '
                'to: "0x000000000000000000000000000000000000dEaD"}) { raw hash } }'
            )
            signed = (await client.post(base, json={"query": sign}, headers=headers)).json()
        raw = signed["data"]["signTransaction"]["raw"]
        tx_hash = await anvil_w3.eth.send_raw_transaction(raw)
        receipt = await anvil_w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        assert receipt["from"] == address
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=30)


async def test_migrate_creates_the_schema(pg_admin_url: str) -> None:
    name = f"walletql_m_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
        env = clean_env(WALLETQL_DATABASE_URL=url.replace("postgresql://", "postgresql+asyncpg://"))
        status, _, err = await run("migrate", env=env)
        assert status == 0, err
        conn = await asyncpg.connect(url)
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        await conn.close()
        assert {"users", "wallets", "transactions", "transaction_events", "nonce_states"} <= tables
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
