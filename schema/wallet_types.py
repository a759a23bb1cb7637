"""GraphQL types for chains, balances and signing."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.scalars import JSON

from schema.scalars import Address, BigInt, ChainId, Hex
from services.chains import ChainConfig
from services.tokens import TokenBalance
from services.transactions_build import SignedTx
from services.wallets import Balance, SignedMessage


@strawberry.type(name="Chain")
class ChainType:
    chain_id: ChainId = strawberry.field(description="EIP-155 chain id.")
    name: str
    confirmations: int = strawberry.field(description="Blocks until a transaction is final.")
    is_default: bool

    @classmethod
    def from_model(cls, m: ChainConfig, default_id: int) -> ChainType:
        return cls(
            chain_id=ChainId(m.chain_id),
            name=m.name,
            confirmations=m.confirmations,
            is_default=m.chain_id == default_id,
        )


@strawberry.type(name="Balance")
class BalanceType:
    chain_id: ChainId
    wei: BigInt
    ether: str = strawberry.field(description="The balance in ether, exact, as decimal text.")
    block_number: BigInt

    @classmethod
    def from_model(cls, m: Balance) -> BalanceType:
        return cls(
            chain_id=ChainId(m.chain_id),
            wei=BigInt(m.wei),
            ether=m.ether,
            block_number=BigInt(m.block_number),
        )


@strawberry.type(name="TokenError")
class TokenErrorType:
    code: str
    message: str


@strawberry.type(name="TokenBalance")
class TokenBalanceType:
    token: Address
    symbol: str | None
    decimals: int | None
    raw: BigInt | None
    formatted: str | None
    error: TokenErrorType | None = strawberry.field(
        description="Set, with the other fields null, when this token could not be read."
    )

    @classmethod
    def from_model(cls, m: TokenBalance) -> TokenBalanceType:
        error = None
        if m.error_code:
            error = TokenErrorType(code=m.error_code, message=m.error_message or "")
        return cls(
            token=Address(m.token),
            symbol=m.symbol,
            decimals=m.decimals,
            raw=BigInt(m.raw) if m.raw is not None else None,
            formatted=m.formatted,
            error=error,
        )


@strawberry.type(name="SignedTransaction")
class SignedTransactionType:
    raw: Hex = strawberry.field(
        description="The signed transaction, ready for eth_sendRawTransaction."
    )
    hash: Hex
    nonce: BigInt
    from_: Address = strawberry.field(name="from")
    chain_id: ChainId
    type: int = strawberry.field(description="0 (legacy) or 2 (EIP-1559).")

    @classmethod
    def from_model(cls, m: SignedTx) -> SignedTransactionType:
        return cls(
            raw=Hex("0x" + m.raw.hex()),
            hash=Hex(m.hash),
            nonce=BigInt(m.nonce),
            from_=Address(m.sender),
            chain_id=ChainId(m.chain_id),
            type=m.tx_type,
        )


@strawberry.enum(name="MessageEncoding")
class MessageEncoding(Enum):
    AUTO = "AUTO"
    TEXT = "TEXT"
    HEX = "HEX"


@strawberry.type(name="SignedMessage")
class SignedMessageType:
    signature: Hex
    message_hash: Hex = strawberry.field(description="The digest that was signed.")
    address: Address
    encoding: str = strawberry.field(description="TEXT, HEX or TYPED_DATA: what was signed.")

    @classmethod
    def from_model(cls, m: SignedMessage) -> SignedMessageType:
        return cls(
            signature=Hex(m.signature),
            message_hash=Hex(m.message_hash),
            address=Address(m.address),
            encoding=m.encoding,
        )


@strawberry.input(name="SignTransactionInput")
class SignTransactionInput:
    to: Address
    password: str
    chain_id: ChainId | None = None
    value: BigInt | None = None
    data: Hex | None = None
    gas: BigInt | None = None
    nonce: BigInt | None = None
    max_fee_per_gas: BigInt | None = None
    max_priority_fee_per_gas: BigInt | None = None
    gas_price: BigInt | None = None
    type: int | None = strawberry.field(default=None, description="0 (legacy) or 2 (EIP-1559).")


@strawberry.input(name="SignMessageInput")
class SignMessageInput:
    message: str
    password: str
    encoding: MessageEncoding = strawberry.field(
        default=MessageEncoding.AUTO,
        description="AUTO takes a 0x-hex string as bytes and anything else as text.",
    )


@strawberry.input(name="SignTypedDataInput")
class SignTypedDataInput:
    typed_data: JSON = strawberry.field(
        description="The full EIP-712 document: {types, primaryType, domain, message}."
    )
    password: str


@strawberry.input(name="ChangePasswordInput")
class ChangePasswordInput:
    current_password: str
    new_password: str
