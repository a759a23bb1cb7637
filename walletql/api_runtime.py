"""The API runtime: the core runtime plus what only the GraphQL API needs (the key vault
and its pepper, the token verifier, the user-facing services, the live-event hub and its
listener, the dev faucet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from db.url import DatabaseUrl
from services.auth import JwksCache, JwksFetcher, TokenVerifier, http_jwks_fetcher
from services.container import Services
from services.faucet import Faucet
from services.hub import EventHub, EventSource
from services.keys import KdfParams, KeyVault
from services.listener import PostgresListener
from services.live import LiveService
from services.passwords import PasswordGuard
from services.transaction_queries import TransactionQueries
from services.transactions import TransactionService
from services.users import UserService
from services.wallets import WalletService
from walletql.devauth import DEV_AUDIENCE, DEV_ISSUER, DevSigner, load_or_create_pepper
from walletql.runtime import CoreRuntime, start_core
from walletql.settings import Settings


@dataclass
class ApiRuntime:
    core: CoreRuntime
    services: Services
    hub: EventHub
    listener: EventSource | None = None

    async def listen(self, database_url: DatabaseUrl) -> None:
        """Start this process's event listener: committed events reach the hub. It connects
        in the background (the first answer does not wait for its connection)."""
        self.listener = PostgresListener(database_url.asyncpg_kwargs(), self.hub)
        self.listener.start()
        self.core.closers.append(self.listener.close)

    async def close(self) -> None:
        await self.core.close()


def build_verifier(settings: Settings, signer: DevSigner | None) -> TokenVerifier:
    if signer is not None:
        document = signer.jwks()

        async def local_jwks() -> dict[str, Any]:
            return document

        fetch: JwksFetcher = local_jwks
        issuer: str | None
        audience: str | None
        issuer, audience = settings.jwt_issuer or DEV_ISSUER, settings.jwt_audience or DEV_AUDIENCE
    else:
        assert settings.jwks_url
        fetch = http_jwks_fetcher(settings.jwks_url, settings.jwks_timeout_seconds)
        issuer, audience = settings.jwt_issuer, settings.jwt_audience
    cache = JwksCache(
        fetch, ttl=settings.jwks_cache_seconds, min_refetch=settings.jwks_min_refetch_seconds
    )
    return TokenVerifier(
        cache,
        algorithms=settings.jwt_algorithms,
        issuer=issuer,
        audience=audience,
        required_scope=settings.jwt_required_scope,
        leeway=settings.jwt_leeway_seconds,
        cache_size=settings.jwt_cache_size,
    )


def load_pepper(settings: Settings) -> bytes:
    if settings.pepper is not None:
        return settings.pepper.get_secret_value().encode()
    return load_or_create_pepper(settings.data_dir)


async def start_api(
    settings: Settings, database_url: DatabaseUrl | str, signer: DevSigner | None = None
) -> ApiRuntime:
    """The core runtime and the API's services on top of it."""
    core = await start_core(settings, database_url)
    if signer is None and settings.dev_auth:
        signer = DevSigner(settings.data_dir)
    vault = KeyVault(
        load_pepper(settings),
        KdfParams(settings.kdf_memory_kib, settings.kdf_iterations, settings.kdf_lanes),
        concurrency=settings.kdf_concurrency,
    )
    core.closers.append(vault.close)
    chains = core.chains
    faucet = Faucet(chains, settings.faucet_wei) if settings.env == "dev" else None
    guard = PasswordGuard(
        max_failures=settings.password_max_failures,
        window_seconds=settings.password_failure_window_seconds,
        clock=core.clock,
    )
    wallets = WalletService(vault, guard, chains, settings.export_max_token_age_seconds)
    queries = TransactionQueries(chains)
    transactions = TransactionService(
        wallets,
        chains,
        core.queue,
        core.processor,
        queries,
        bump_rungs=settings.fee_bump_rungs,
        clock=core.clock,
    )
    hub = EventHub(settings.subscriber_buffer)
    services = Services(
        units=core.units,
        verifier=build_verifier(settings, signer),
        vault=vault,
        users=UserService(vault, on_wallet_created=faucet.fund_new_wallet if faucet else None),
        chains=chains,
        wallets=wallets,
        faucet=faucet,
        transactions=transactions,
        transaction_queries=queries,
        live=LiveService(hub, queries),
    )
    return ApiRuntime(core, services, hub)
