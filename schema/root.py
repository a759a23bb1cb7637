"""The root types: each field names its resolver in ``resolvers/``."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.scalars import JSON

from resolvers import subscriptions, users, wallets
from resolvers import transactions as tx_resolvers
from schema.transaction_connection import TransactionConnection
from schema.transaction_types import TransactionEventType, TransactionType
from schema.types import PublicUserType, UserType
from schema.unit_of_work import mutation
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
    me: UserType | None = strawberry.field(
        resolver=users.me, description="The signed-in user; null before createUser."
    )
    user: PublicUserType | None = strawberry.field(
        resolver=users.user, description="Another user's public profile; null if none."
    )
    user_by_address: PublicUserType | None = strawberry.field(
        resolver=users.user_by_address,
        description="The public profile that owns a wallet; null if no user has it.",
    )
    chains: list[ChainType] = strawberry.field(
        resolver=wallets.chains, description="The configured chains; one is the default."
    )
    balance: BalanceType = strawberry.field(
        resolver=wallets.balance,
        description="The caller's native balance; chainId defaults to the default chain.",
    )
    transaction: TransactionType = strawberry.field(
        resolver=tx_resolvers.transaction, description="One of the caller's transactions."
    )
    transactions: TransactionConnection = strawberry.field(
        resolver=tx_resolvers.transactions,
        description="The caller's transactions, newest first (cursor pagination, first ≤ 100).",
    )
    estimate_fees: FeeEstimateType = strawberry.field(
        resolver=tx_resolvers.estimate_fees,
        description="The fee caps a submitTransaction without fee fields would use now, and "
        "the most `gas` (default 21000) could cost at them.",
    )
    token_balances: list[TokenBalanceType] = strawberry.field(
        resolver=wallets.token_balances,
        description="ERC-20 balances of the caller's wallet; errors are reported per token.",
    )


@strawberry.type
class Mutation:
    create_user: UserType = mutation(
        resolver=users.create_user,
        description="Create the signed-in user and a wallet sealed by the password.",
    )
    sign_transaction: SignedTransactionType = mutation(
        resolver=wallets.sign_transaction,
        description="Fill in and sign a transaction. Nothing is broadcast.",
    )
    sign_message: SignedMessageType = mutation(
        resolver=wallets.sign_message, description="EIP-191 personal_sign of text or bytes."
    )
    sign_typed_data: SignedMessageType = mutation(
        resolver=wallets.sign_typed_data, description="EIP-712 signature of typed data."
    )
    submit_transaction: TransactionType = mutation(
        resolver=tx_resolvers.submit_transaction,
        description="Sign and queue a transaction; the worker broadcasts it and follows it.",
    )
    transfer_token: TransactionType = mutation(
        resolver=tx_resolvers.transfer_token,
        description="Send ERC-20 tokens: an ERC-20 transfer(to, amount) call to the token, "
        "through the same pipeline as submitTransaction.",
    )
    speed_up_transaction: TransactionType = mutation(
        resolver=tx_resolvers.speed_up_transaction,
        description="Broadcast the next pre-signed fee bump now.",
    )
    cancel_transaction: TransactionType = mutation(
        resolver=tx_resolvers.cancel_transaction,
        description="Broadcast the pre-signed cancel; CANCELLED once the cancel is mined.",
    )
    change_password: UserType = mutation(
        resolver=wallets.change_password,
        description="Re-encrypt the wallet key under a new password; the address stays.",
    )
    export_wallet: JSON = mutation(
        resolver=wallets.export_wallet,
        description="A Web3 Secret Storage v3 keystore (MetaMask, geth, ethers can import it), "
        "encrypted with the same password. Needs a token issued in the last few minutes.",
    )


@strawberry.type
class Subscription:
    transaction_status: AsyncGenerator[TransactionEventType, None] = strawberry.subscription(
        resolver=subscriptions.transaction_status,
        description="The current state (or every event after afterSeq), then each new event "
        "of one of your transactions; completes after a final status.",
    )
    my_transactions: AsyncGenerator[TransactionEventType, None] = strawberry.subscription(
        resolver=subscriptions.my_transactions,
        description="Every event of every transaction of yours, in commit order; resume "
        "with afterSeq = the last userSeq you saw.",
    )
