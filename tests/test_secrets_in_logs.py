"""No key, password or pepper may appear in any log line, at any level."""

from __future__ import annotations

import io
import json
import logging

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from db.models import Wallet
from services.keys import KdfParams, KeyVault, SealedKey
from testkit.server import LiveServer
from walletql.devauth import DevSigner, load_or_create_pepper
from walletql.logs import log_handler
from walletql.settings import Settings

PASSWORD = "Sup3r-Secret-Passphrase!"


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_secret_reaches_the_logs(
    server: LiveServer,
    signer: DevSigner,
    settings: Settings,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    log_format: str,
) -> None:
    token = signer.mint("alice")
    create = "mutation($i: CreateUserInput!) { createUser(input: $i) { wallet { address } } }"
    # The lines exactly as WALLETQL_LOG_FORMAT writes them.
    stream = io.StringIO()
    handler = log_handler(log_format, stream)
    logging.getLogger().addHandler(handler)
    with caplog.at_level(logging.DEBUG):
        body = await server.graphql(create, {"i": {"password": PASSWORD}}, token=token)
        address = body["data"]["createUser"]["wallet"]["address"]
        # Failures that carry the password in their input.
        await server.graphql(create, {"i": {"password": PASSWORD}}, token=token)  # USER_EXISTS
        await server.graphql(create, {"i": {"password": PASSWORD, "username": 7}}, token=token)
        await server.graphql(create, {"i": {"password": PASSWORD}}, token="garbage")
        await server.graphql("{ me { id } }", token=token)
    logging.getLogger().removeHandler(handler)

    pepper = load_or_create_pepper(settings.data_dir)
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        wallet = (await conn.execute(select(Wallet).where(Wallet.address == address))).one()
    await engine.dispose()
    sealed = SealedKey(wallet.ciphertext, wallet.nonce, wallet.salt, KdfParams(), wallet.version)
    key = await KeyVault(pepper, KdfParams()).open(
        sealed, PASSWORD, user_id=wallet.user_id, address=address
    )

    secrets = {
        "password": PASSWORD,
        "pepper": pepper.decode(),
        "private key": key.hex(),
        "private key (0x)": "0x" + key.hex(),
        "ciphertext": wallet.ciphertext.hex(),
    }
    lines = stream.getvalue().splitlines()
    assert len(lines) > 5, "the flows above do log"
    for line in lines:
        if log_format == "json":
            assert isinstance(json.loads(line), dict)
        for name, secret in secrets.items():
            assert secret not in line, f"{name} leaked into a log line: {line[:80]}"
        assert "INSERT INTO" not in line, "SQL text leaked"
        assert "SELECT " not in line, "SQL text leaked"
        assert "Traceback" not in line


def test_logged_errors_drop_credentials_from_urls() -> None:
    from services.logs import describe_exception

    try:
        raise RuntimeError(
            "401 Unauthorized, url=https://rpc.example.io/v3/SECRETKEY123?token=abc, "
            "dsn=postgresql+asyncpg://walletql:hunter2@db.internal:5432/walletql, "
            "node=HTTPS://ops:UPPERSECRET@rpc.upper.io, proxy=http://ops:p@ssword@proxy.io/"
        )
    except RuntimeError as exc:
        line = describe_exception(exc)
    assert "rpc.example.io" in line
    assert "db.internal" in line
    assert "rpc.upper.io" in line
    assert "proxy.io" in line
    for secret in ("SECRETKEY123", "token=abc", "hunter2", "UPPERSECRET", "ssword"):
        assert secret not in line


async def test_the_redaction_filter_keeps_sql_and_tracebacks_out_of_every_layers_logs(
    database_url: str,
) -> None:
    """db/engine.py logs a failed after-commit send with its exception; the filter the
    composition root installs reduces it to one line without the statement."""
    from db.unit_of_work import UnitsOfWork
    from services.logs import install_redaction

    engine = create_async_engine(database_url)
    units = UnitsOfWork(engine)

    async def failing_send() -> None:
        async with units.begin() as side:
            await side.session.execute(text("SELECT secret_column FROM no_such_table"))

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    db_logger = logging.getLogger("db")
    db_logger.addHandler(handler)
    try:
        install_redaction(db_logger)
        async with units.begin() as uow:
            uow.after_commit(failing_send)
    finally:
        db_logger.removeHandler(handler)
        await engine.dispose()
    line = stream.getvalue()
    assert "after-commit callback failed" in line
    assert "ProgrammingError" in line
    assert "secret_column" not in line, "SQL text leaked"
    assert "[SQL" not in line
    assert "Traceback" not in line
