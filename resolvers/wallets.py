"""Wallet queries and mutations: unpack the context, call one service, map the result."""

from __future__ import annotations

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
    registry = info.context.services.chains
    return [ChainType.from_model(c, registry.default_id) for c in registry.all()]


async def balance(info: Info, chain_id: ChainId | None = None) -> BalanceType:
    ctx = info.context
    result = await ctx.services.wallets.balance(ctx.uow, await ctx.principal(), chain_id)
    return BalanceType.from_model(result)


async def token_balances(
    info: Info, tokens: list[Address], chain_id: ChainId | None = None
) -> list[TokenBalanceType]:
    ctx = info.context
    result = await ctx.services.wallets.token_balances(
        ctx.uow, await ctx.principal(), chain_id, list(tokens)
    )
    return [TokenBalanceType.from_model(t) for t in result]


async def sign_transaction(info: Info, input: SignTransactionInput) -> SignedTransactionType:
    ctx = info.context
    signed = await ctx.services.wallets.sign_transaction(
        ctx.uow, await ctx.principal(), tx_request(input), input.password
    )
    return SignedTransactionType.from_model(signed)


async def sign_message(info: Info, input: SignMessageInput) -> SignedMessageType:
    ctx = info.context
    signed = await ctx.services.wallets.sign_message(
        ctx.uow, await ctx.principal(), input.message, input.encoding.value, input.password
    )
    return SignedMessageType.from_model(signed)


async def sign_typed_data(info: Info, input: SignTypedDataInput) -> SignedMessageType:
    ctx = info.context
    signed = await ctx.services.wallets.sign_typed_data(
        ctx.uow, await ctx.principal(), input.typed_data, input.password
    )
    return SignedMessageType.from_model(signed)


async def change_password(info: Info, input: ChangePasswordInput) -> UserType:
    ctx = info.context
    profile = await ctx.services.wallets.change_password(
        ctx.uow, await ctx.principal(), input.current_password, input.new_password
    )
    return UserType.from_model(profile)


async def export_wallet(info: Info, password: str) -> JSON:
    ctx = info.context
    keystore = await ctx.services.wallets.export_wallet(
        ctx.uow, await ctx.principal(), password, time.time()
    )
    return JSON(keystore)
