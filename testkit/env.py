"""walletql's configuration for a test or a benchmark: in-process Settings, and the
environment of a `walletql` process (nothing inherited from this process's WALLETQL_*)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walletql.settings import Settings

if TYPE_CHECKING:
    from testkit.anvil import Anvil

# pipeline_settings with the data dir and database bound: ``pipeline(node, **overrides)``.
PipelineSettings = Callable[..., Settings]

# A pipeline that moves in test time: one confirmation; bumps and deadlines out of the way
# unless a test brings them in.
PIPELINE_CHAIN: dict[str, Any] = {
    "confirmations": 1,
    "bump_interval_seconds": 60,
    "deadline_seconds": 300,
}
PIPELINE_TIMING: dict[str, Any] = {
    "worker_check_interval_seconds": 0.2,
    "queue_wait_seconds": 0.5,
    "sweeper_interval_seconds": 0.5,
    "sweeper_grace_seconds": 2,
}


def chain_of(node: Anvil, name: str = "anvil", **overrides: Any) -> dict[str, Any]:
    """One entry of WALLETQL_CHAINS for ``node``."""
    return {"chain_id": node.chain_id, "name": name, "rpc_url": node.url, **overrides}


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for a test: nothing read from the environment or a .env file."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "log_level": "DEBUG",
        **overrides,
    }
    return Settings(_env_file=None, **values)


def pipeline_settings(
    data_dir: Path, database_url: str, node: Anvil | None, **overrides: Any
) -> Settings:
    """Settings for a worker-running walletql on ``node`` (None: the embedded chain), with the
    pipeline's timing shortened; ``chain={...}`` overrides the chain's own settings."""
    chain_overrides = overrides.pop("chain", {})
    values: dict[str, Any] = {**PIPELINE_TIMING, **overrides}
    if node is not None:
        values["chains"] = [chain_of(node, **{**PIPELINE_CHAIN, **chain_overrides})]
    return make_settings(data_dir, database_url, **values)


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment less its WALLETQL_* variables, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETQL_")}
    return {**env, **values}


def walletql_env(database_url: str, data_dir: Path, **values: str) -> dict[str, str]:
    """The environment of a `walletql` process on ``database_url`` and ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return clean_env(WALLETQL_DATABASE_URL=database_url, WALLETQL_DATA_DIR=str(data_dir), **values)


def worker_env(settings: Settings, database_url: str, **values: str) -> dict[str, str]:
    """The environment of a `walletql` process sharing ``settings``' chains, data dir and
    queue timing (a worker, or a second API, beside an in-process one)."""
    return walletql_env(
        database_url,
        settings.data_dir,
        WALLETQL_CHAINS=json.dumps([c.model_dump() for c in settings.chains]),
        WALLETQL_QUEUE_WAIT_SECONDS=str(settings.queue_wait_seconds),
        WALLETQL_WORKER_CHECK_INTERVAL_SECONDS=str(settings.worker_check_interval_seconds),
        **values,
    )
