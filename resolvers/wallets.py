"""Wallet queries and mutations: unpack the context, call one service, map the result."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

import time

from strawberry.scalars import JSON

from schema.context import Info
from schema.scalars import Address, ChainId
from schema.tx_inputs import SignTransactionInput, tx_request
from schema.types import UserType
from schema.wallet_types import (
    BalanceType,
    ChainType,
    ChangePasswordInput,
    SignedMessageType,
    SignedTransactionType,
    SignMessageInput,
    SignTypedDataInput,
    TokenBalanceType,
)


def chains(info: Info) -> list[ChainType]:
    """The configured chains; one is the default."""
    registry = info.context.services.chains
    return [ChainType.from_model(c, registry.default_id) for c in registry.all()]


async def balance(info: Info, chain_id: ChainId | None = None) -> BalanceType:
    """The caller's native balance; chainId defaults to the default chain."""
    ctx = info.context
    result = await ctx.services.wallets.balance(ctx.uow, await ctx.principal(), chain_id)
    return BalanceType.from_model(result)


async def token_balances(
    info: Info, tokens: list[Address], chain_id: ChainId | None = None
) -> list[TokenBalanceType]:
    """ERC-20 balances of the caller's wallet; errors are reported per token."""
    ctx = info.context
    result = await ctx.services.wallets.token_balances(
        ctx.uow, await ctx.principal(), chain_id, list(tokens)
    )
    return [TokenBalanceType.from_model(t) for t in result]


async def sign_transaction(info: Info, input: SignTransactionInput) -> SignedTransactionType:
    """Fill in and sign a transaction. Nothing is broadcast."""
    ctx = info.context
    signed = await ctx.services.wallets.sign_transaction(
        ctx.uow, await ctx.principal(), tx_request(input), input.password
    )
    return SignedTransactionType.from_model(signed)


async def sign_message(info: Info, input: SignMessageInput) -> SignedMessageType:
    """EIP-191 personal_sign of text or bytes."""
    ctx = info.context
    signed = await ctx.services.wallets.sign_message(
        ctx.uow, await ctx.principal(), input.message, input.encoding.value, input.password
    )
    return SignedMessageType.from_model(signed)


async def sign_typed_data(info: Info, input: SignTypedDataInput) -> SignedMessageType:
    """EIP-712 signature of typed data."""
    ctx = info.context
    signed = await ctx.services.wallets.sign_typed_data(
        ctx.uow, await ctx.principal(), input.typed_data, input.password
    )
    return SignedMessageType.from_model(signed)


async def change_password(info: Info, input: ChangePasswordInput) -> UserType:
    """Re-encrypt the wallet key under a new password; the address stays."""
    ctx = info.context
    profile = await ctx.services.wallets.change_password(
        ctx.uow, await ctx.principal(), input.current_password, input.new_password
    )
    return UserType.from_model(profile)


async def export_wallet(info: Info, password: str) -> JSON:
    """A Web3 Secret Storage v3 keystore (MetaMask, geth, ethers can import it), encrypted with the
    same password. Needs a token issued in the last few minutes."""
    ctx = info.context
    keystore = await ctx.services.wallets.export_wallet(
        ctx.uow, await ctx.principal(), password, time.time()
    )
    return JSON(keystore)
