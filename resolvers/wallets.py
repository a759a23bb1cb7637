"""Wallet queries and mutations: unpack the context, call one service, map the result."""

from __future__ import annotations

import time

from strawberry.scalars import JSON

from resolvers.users import me_type
from schema.context import Info
from schema.scalars import Address, ChainId
from schema.types import UserType
from schema.wallet_types import (
    BalanceType,
    ChainType,
    ChangePasswordInput,
    SignedMessageType,
    SignedTransactionType,
    SignMessageInput,
    SignTransactionInput,
    SignTypedDataInput,
    TokenBalanceType,
)
from services.transactions_build import TxRequest


def chains(info: Info) -> list[ChainType]:
    registry = info.context.services.chains
    return [ChainType.from_model(c, registry.default_id) for c in registry.all()]


async def balance(info: Info, chain_id: ChainId | None = None) -> BalanceType:
    ctx = info.context
    async with ctx.read() as uow:
        result = await ctx.services.wallets.balance(uow, await ctx.principal(), chain_id)
    return BalanceType.from_model(result)


async def token_balances(
    info: Info, tokens: list[Address], chain_id: ChainId | None = None
) -> list[TokenBalanceType]:
    ctx = info.context
    async with ctx.read() as uow:
        result = await ctx.services.wallets.token_balances(
            uow, await ctx.principal(), chain_id, list(tokens)
        )
    return [TokenBalanceType.from_model(t) for t in result]


def tx_request(input: SignTransactionInput) -> TxRequest:
    return TxRequest(
        to=input.to,
        chain_id=input.chain_id,
        value=input.value or 0,
        data=bytes.fromhex(input.data[2:]) if input.data else b"",
        gas=input.gas,
        nonce=input.nonce,
        max_fee_per_gas=input.max_fee_per_gas,
        max_priority_fee_per_gas=input.max_priority_fee_per_gas,
        gas_price=input.gas_price,
        tx_type=input.type.value if input.type is not None else None,
    )


async def sign_transaction(info: Info, input: SignTransactionInput) -> SignedTransactionType:
    ctx = info.context
    async with ctx.unit_of_work() as uow:
        signed = await ctx.services.wallets.sign_transaction(
            uow, await ctx.principal(), tx_request(input), input.password
        )
    return SignedTransactionType.from_model(signed)


async def sign_message(info: Info, input: SignMessageInput) -> SignedMessageType:
    ctx = info.context
    async with ctx.unit_of_work() as uow:
        signed = await ctx.services.wallets.sign_message(
            uow, await ctx.principal(), input.message, input.encoding.value, input.password
        )
    return SignedMessageType.from_model(signed)


async def sign_typed_data(info: Info, input: SignTypedDataInput) -> SignedMessageType:
    ctx = info.context
    async with ctx.unit_of_work() as uow:
        signed = await ctx.services.wallets.sign_typed_data(
            uow, await ctx.principal(), input.typed_data, input.password
        )
    return SignedMessageType.from_model(signed)


async def change_password(info: Info, input: ChangePasswordInput) -> UserType:
    ctx = info.context
    principal = await ctx.principal()
    async with ctx.unit_of_work() as uow:
        await ctx.services.wallets.change_password(
            uow, principal, input.current_password, input.new_password
        )
    return await me_type(ctx, principal)


async def export_wallet(info: Info, password: str) -> JSON:
    ctx = info.context
    async with ctx.unit_of_work() as uow:
        keystore = await ctx.services.wallets.export_wallet(
            uow, await ctx.principal(), password, time.time()
        )
    return JSON(keystore)
