"""Every setting of walletql, in one place (env prefix ``WALLETQL_``)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.url import DatabaseUrl, parse_database_url
from walletql.origins import DEV_ORIGINS, OriginPolicy

EMBEDDED_RPC = "embedded"
# The checkout (where pyproject.toml is); an installed package falls back to the cwd.
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
PROJECT_ROOT = _SOURCE_ROOT if (_SOURCE_ROOT / "pyproject.toml").exists() else Path.cwd()
EMBEDDED_CHAIN_ID = 131277322940537  # the chain id of eth-tester's in-process EVM


class ChainSettings(BaseModel):
    """One chain: ``rpc_url`` is a JSON-RPC URL, or ``embedded`` for the in-process EVM."""

    chain_id: int = Field(gt=0)
    name: str
    rpc_url: str
    confirmations: int = Field(default=2, ge=1)
    deadline_seconds: int = Field(default=300, ge=1)
    bump_interval_seconds: int = Field(default=30, ge=1)
    native_currency_symbol: str = Field(default="ETH", min_length=1, max_length=16)
    native_currency_decimals: int = Field(default=18, ge=0, le=36)
    # A block explorer's transaction page, with {hash} where the hash goes.
    explorer_tx_url: str | None = Field(default=None, pattern=r"^https?://[^\s]*\{hash\}")


def _embedded_chain() -> list[ChainSettings]:
    return [
        ChainSettings(
            chain_id=EMBEDDED_CHAIN_ID, name="embedded", rpc_url=EMBEDDED_RPC, confirmations=1
        )
    ]


class Settings(BaseSettings):
    """Runtime settings. With none set, the embedded defaults apply."""

    model_config = SettingsConfigDict(
        env_prefix="WALLETQL_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # A rejected value (a database URL with its password) never shows in an error.
        hide_input_in_errors=True,
    )

    # Process
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path(".data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for collectors
    metrics_enabled: bool = True  # GET /metrics (Prometheus text format)
    env: Literal["dev", "production"] = "dev"

    # Database: empty means "start the embedded PostgreSQL under data_dir".
    database_url: SecretStr | None = None
    database_pool_size: int = Field(default=20, ge=1)
    # serve, worker and the Lambda migrate at start instead of refusing an old schema.
    migrate_on_start: bool | None = None  # default: on when the database is embedded

    # Auth: empty jwks_url means "dev mode": a local RS256 key signs dev tokens.
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: list[str] = ["RS256"]
    jwt_required_scope: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=60)
    jwks_cache_seconds: int = Field(default=300, ge=1)
    jwks_min_refetch_seconds: float = Field(default=30.0, ge=0)
    jwks_timeout_seconds: float = Field(default=5.0, gt=0)
    # Verified tokens remembered until their exp (0: verify every request's token afresh).
    jwt_cache_size: int = Field(default=4096, ge=0)

    # Keys
    pepper: SecretStr | None = None  # empty: a generated file under data_dir (dev only)
    kdf_memory_kib: int = Field(default=19 * 1024, ge=19 * 1024)
    kdf_iterations: int = Field(default=2, ge=2)
    kdf_lanes: int = Field(default=1, ge=1)
    # Default: one less than the cores, so the KDF never starves the event loop.
    kdf_concurrency: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1), ge=1)

    # Chains: a JSON list; the first is the default chain.
    chains: list[ChainSettings] = Field(default_factory=_embedded_chain, min_length=1)
    chain_timeout_seconds: float = Field(default=5.0, gt=0)
    # Dev faucet: every new wallet gets this much on the embedded chain (dev mode only).
    faucet_wei: int = Field(default=10 * 10**18, ge=0)

    # Password attempts and exports
    password_max_failures: int = Field(default=5, ge=1)
    password_failure_window_seconds: int = Field(default=900, ge=1)
    export_max_token_age_seconds: int = Field(default=300, ge=1)

    # Queue: "postgres" (a table queue in the same database) or "sqs".
    queue_backend: Literal["postgres", "sqs"] = "postgres"
    queue_name: str = "walletql-transactions"
    sqs_queue_url: str | None = None
    sqs_dead_letter_url: str | None = None
    sqs_region: str = "us-east-1"
    sqs_endpoint_url: str | None = None
    queue_visibility_timeout_seconds: int = Field(default=60, ge=1, le=43200)
    queue_max_receives: int = Field(default=5, ge=1)
    queue_wait_seconds: float = Field(default=10.0, ge=0, le=20)

    # Worker
    worker_concurrency: int = Field(default=4, ge=1)
    worker_check_interval_seconds: float = Field(default=2.0, gt=0)
    fee_bump_rungs: int = Field(default=5, ge=0, le=20)
    sweeper_interval_seconds: float = Field(default=15.0, gt=0)
    sweeper_grace_seconds: float = Field(default=30.0, gt=0)

    # GraphQL
    graphiql: bool | None = None  # default: on in dev, off in production
    introspection: bool | None = None  # default: on in dev, off in production
    max_query_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=15, ge=1)
    max_tokens: int = Field(default=2000, ge=10)
    # Browser origins for CORS and the websocket; None: local dev servers in dev, none in
    # production. ``http://localhost:*`` allows any port, ``*`` any origin.
    allowed_origins: list[str] | None = None
    cors_allow_credentials: bool = False
    # Automatic persisted queries: hashes remembered per process (entries, and bytes of text).
    apq_cache_size: int = Field(default=1000, ge=1)
    apq_cache_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    ws_init_timeout_seconds: float = Field(default=5.0, gt=0)
    ws_max_subscriptions: int = Field(default=20, ge=1)
    subscriber_buffer: int = Field(default=256, ge=1)
    max_query_cost: int = Field(default=10_000, ge=1)
    max_expanded_selections: int = Field(default=2_000, ge=1)
    document_cache_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    document_cache_max_query_bytes: int = Field(default=32 * 1024, ge=0)

    # Connections and bodies (README "Limits")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)
    header_read_timeout_seconds: float = Field(default=10.0, gt=0)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    keep_alive_timeout_seconds: int = Field(default=5, ge=1)
    ws_max_message_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_connections_per_ip: int = Field(default=256, ge=0)  # 0: no limit

    @field_validator("database_url", mode="before")
    @classmethod
    def _empty_means_embedded(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_database_url(value.get_secret_value())  # DatabaseUrlError is a ValueError
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir_of_the_checkout(cls, value: Path) -> Path:
        """A relative data dir belongs to the checkout, not to the current directory: run from
        anywhere, one checkout keeps one database, key and pepper."""
        return value if value.is_absolute() else PROJECT_ROOT / value

    @field_validator("jwt_algorithms")
    @classmethod
    def _only_asymmetric(cls, value: list[str]) -> list[str]:
        allowed = {"RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"}
        bad = [alg for alg in value if alg not in allowed]
        if bad or not value:
            raise ValueError(f"jwt_algorithms must be a non-empty subset of {sorted(allowed)}")
        return value

    @model_validator(mode="after")
    def _production_needs_real_parts(self) -> Settings:
        if self.env == "production":
            # Every process: no embedded part. The API's own needs: ``missing_for_api``.
            if self.database_url is None:
                raise ValueError(
                    "WALLETQL_ENV=production requires WALLETQL_DATABASE_URL "
                    "(the embedded PostgreSQL is for development)"
                )
            if any(chain.rpc_url == EMBEDDED_RPC for chain in self.chains):
                raise ValueError(
                    "WALLETQL_ENV=production cannot use the in-process EVM (rpc_url "
                    '"embedded"): set WALLETQL_CHAINS to JSON-RPC URLs'
                )
        if self.queue_backend == "sqs" and not (self.sqs_queue_url and self.sqs_dead_letter_url):
            raise ValueError(
                "WALLETQL_QUEUE_BACKEND=sqs requires WALLETQL_SQS_QUEUE_URL and "
                "WALLETQL_SQS_DEAD_LETTER_URL"
            )
        if self.cors_allow_credentials and "*" in self.origins:
            raise ValueError(
                "WALLETQL_CORS_ALLOW_CREDENTIALS needs listed origins, not * in "
                "WALLETQL_ALLOWED_ORIGINS"
            )
        OriginPolicy(self.origins)  # a malformed origin is a start-up error
        ids = [chain.chain_id for chain in self.chains]
        if len(ids) != len(set(ids)):
            raise ValueError("WALLETQL_CHAINS has a chain id twice")
        if self.pepper is not None and len(self.pepper.get_secret_value()) < 32:
            raise ValueError("WALLETQL_PEPPER must have at least 32 characters")
        return self

    def missing_for_api(self) -> list[str]:
        """What the API process needs beyond the worker's settings: in production, the JWKS
        and the pepper (the worker and the Lambda hold neither)."""
        if self.env != "production":
            return []
        return [f"WALLETQL_{n.upper()}" for n in ("jwks_url", "pepper") if not getattr(self, n)]

    @property
    def dev_auth(self) -> bool:
        """True while no external JWKS is configured: the local dev key signs tokens."""
        return not self.jwks_url

    @cached_property
    def database(self) -> DatabaseUrl | None:
        """The parsed ``database_url``; None means "start the embedded PostgreSQL"."""
        if self.database_url is None:
            return None
        return parse_database_url(self.database_url.get_secret_value())

    @property
    def origins(self) -> list[str]:
        if self.allowed_origins is not None:
            return self.allowed_origins
        return list(DEV_ORIGINS) if self.env == "dev" else []

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else self.env == "dev"

    @property
    def introspection_enabled(self) -> bool:
        return self.introspection if self.introspection is not None else self.env == "dev"

    @property
    def should_migrate_on_start(self) -> bool:
        if self.migrate_on_start is not None:
            return self.migrate_on_start
        return self.embedded_database
