"""The ``walletql`` command as a new user runs it: serve on embedded defaults, token, migrate."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from web3 import AsyncWeb3

from testkit.anvil import Anvil
from testkit.env import chain_of, clean_env
from testkit.net import free_port, wait_http
from testkit.pipeline import fund
from testkit.postgres import asyncpg_dsn, create_database, drop_database
from testkit.process import WALLETQL, ServerProcess, run_walletql


async def test_serve_on_embedded_defaults_then_token_create_user_and_me(data_dir: Path) -> None:
    port = free_port()
    env = clean_env(WALLETQL_DATA_DIR=str(data_dir), WALLETQL_PORT=str(port))
    proc = await asyncio.create_subprocess_exec(
        *WALLETQL, "serve", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as client:
            await wait_http(f"{base}/healthz", proc, seconds=60)
            status, token, _ = await run_walletql("token", "alice", env=env)
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
    env = clean_env(
        WALLETQL_DATA_DIR=str(tmp_path),
        WALLETQL_DATABASE_URL=database_url,
        WALLETQL_CHAINS=json.dumps([chain_of(anvil)]),
    )
    async with ServerProcess(env, ("serve",)) as server:
        base = f"{server.url}/graphql"
        _, token, _ = await run_walletql("token", "alice", env=env)
        headers = {"authorization": f"Bearer {token.strip()}"}
        async with httpx.AsyncClient(timeout=10) as client:
            create = (
                'mutation { createUser(input: {password: "correct horse"}) { wallet { address } } }'
            )
            created = (await client.post(base, json={"query": create}, headers=headers)).json()
            address = created["data"]["createUser"]["wallet"]["address"]
            await fund(anvil_w3, address, 10**18)
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


async def test_migrate_creates_the_schema(pg_admin_url: str) -> None:
    name = f"walletql_m_{uuid.uuid4().hex[:8]}"
    url = await create_database(pg_admin_url, name)
    try:
        env = clean_env(WALLETQL_DATABASE_URL=url)
        status, _, err = await run_walletql("migrate", env=env)
        assert status == 0, err
        conn = await asyncpg.connect(asyncpg_dsn(url))
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        await conn.close()
        assert {"users", "wallets", "transactions", "transaction_events", "nonce_states"} <= tables
    finally:
        await drop_database(pg_admin_url, name)
