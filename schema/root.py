"""The root types: each field names its resolver in ``resolvers/``, whose docstring describes
the field (schema/fields.py)."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

from collections.abc import AsyncGenerator

import strawberry
from strawberry.scalars import JSON

from resolvers import subscriptions, users, wallets
from resolvers import transactions as tx_resolvers
from schema.fields import field, mutation, subscription
from schema.transaction_connection import TransactionConnection
from schema.transaction_types import TransactionEventType, TransactionType
from schema.types import PublicUserType, UserType
from schema.wallet_types import (
    BalanceType,
    ChainType,
    FeeEstimateType,
    SignedMessageType,
    SignedTransactionType,
    TokenBalanceType,
)


@strawberry.type
class Query:
    me: UserType | None = field(users.me)
    user: PublicUserType | None = field(users.user)
    user_by_address: PublicUserType | None = field(users.user_by_address)
    chains: list[ChainType] = field(wallets.chains)
    balance: BalanceType = field(wallets.balance)
    transaction: TransactionType = field(tx_resolvers.transaction)
    transactions: TransactionConnection = field(tx_resolvers.transactions)
    estimate_fees: FeeEstimateType = field(tx_resolvers.estimate_fees)
    token_balances: list[TokenBalanceType] = field(wallets.token_balances)


@strawberry.type
class Mutation:
    create_user: UserType = mutation(users.create_user)
    sign_transaction: SignedTransactionType = mutation(wallets.sign_transaction)
    sign_message: SignedMessageType = mutation(wallets.sign_message)
    sign_typed_data: SignedMessageType = mutation(wallets.sign_typed_data)
    submit_transaction: TransactionType = mutation(tx_resolvers.submit_transaction)
    transfer_token: TransactionType = mutation(tx_resolvers.transfer_token)
    speed_up_transaction: TransactionType = mutation(tx_resolvers.speed_up_transaction)
    cancel_transaction: TransactionType = mutation(tx_resolvers.cancel_transaction)
    change_password: UserType = mutation(wallets.change_password)
    export_wallet: JSON = mutation(wallets.export_wallet)


@strawberry.type
class Subscription:
    transaction_status: AsyncGenerator[TransactionEventType, None] = subscription(
        subscriptions.transaction_status
    )
    my_transactions: AsyncGenerator[TransactionEventType, None] = subscription(
        subscriptions.my_transactions
    )
