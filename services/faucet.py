"""The dev faucet: funds wallets on development chains so a new user sees a balance."""

from __future__ import annotations

import logging

from services.chains import Chains

log = logging.getLogger(__name__)


class Faucet:
    def __init__(self, chains: Chains, wei_per_wallet: int) -> None:
        self._chains = chains
        self._wei = wei_per_wallet

    async def fund_new_wallet(self, address: str) -> None:
        """Fund a new wallet on every in-process chain; a failure only costs the gift."""
        for config in self._chains.all():
            if not config.embedded or not self._wei:
                continue
            try:
                await self._chains.get(config.chain_id).dev_fund(address, self._wei)
            except Exception:
                log.warning("faucet could not fund %s on chain %s", address, config.chain_id)

    async def fund(self, address: str, wei: int, chain_id: int | None) -> None:
        """Give ``wei`` to ``address`` on a development chain (embedded, or anvil)."""
        await self._chains.get(chain_id).dev_fund(address, wei)
