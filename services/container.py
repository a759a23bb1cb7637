"""The services of one process, built once by the composition root (``walletql/app.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from db.unit_of_work import UnitsOfWork
from services.auth import TokenVerifier
from services.chains import Chains
from services.faucet import Faucet
from services.keys import KeyVault
from services.live import LiveService
from services.transaction_queries import TransactionQueries
from services.transactions import TransactionService
from services.users import UserService
from services.wallets import WalletService


@dataclass
class Services:
    units: UnitsOfWork  # for the edges (the GraphQL context); services receive a unit
    verifier: TokenVerifier
    vault: KeyVault
    users: UserService
    chains: Chains
    wallets: WalletService
    faucet: Faucet | None  # dev mode only
    transactions: TransactionService
    transaction_queries: TransactionQueries
    live: LiveService
