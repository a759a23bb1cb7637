"""A walletql worker that kills itself with SIGKILL right after its first broadcast:
the crash between "sent to the node" and "committed the new status".

Run as ``python -m tests.fault_worker``, with the same WALLETQL_* environment as a worker.
The chains are passed in where the core runtime is built (``serve_worker(chains=...)``).
"""

from __future__ import annotations

import os
import signal

from services.chains import Chain
from walletql.cli import run_loop
from walletql.logs import configure_logging
from walletql.runtime import build_chains, serve_worker
from walletql.settings import Settings


class DyingChain(Chain):
    """A real chain client that dies (SIGKILL) once the node has accepted a transaction."""

    async def send_raw_transaction(self, raw: bytes) -> str:
        tx_hash = await super().send_raw_transaction(raw)
        os.kill(os.getpid(), signal.SIGKILL)
        return tx_hash


if __name__ == "__main__":
    settings = Settings()
    configure_logging(settings.log_level)
    assert settings.database_url is not None
    url = settings.database_url.get_secret_value()
    run_loop(serve_worker(settings, url, chains=build_chains(settings, DyingChain)))
