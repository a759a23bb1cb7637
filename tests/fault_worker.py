"""A walletql worker that kills itself with SIGKILL right after its first broadcast:
the crash between "sent to the node" and "committed the new status".

Run as ``python -m tests.fault_worker``, with the same WALLETQL_* environment as a worker.
"""

from __future__ import annotations

import os
import signal
import sys

from services.chains import Chain
from walletql.cli import main

_send = Chain.send_raw_transaction


async def _send_then_die(self: Chain, raw: bytes) -> str:
    tx_hash = await _send(self, raw)
    os.kill(os.getpid(), signal.SIGKILL)
    return tx_hash


Chain.send_raw_transaction = _send_then_die  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(["worker"]))
