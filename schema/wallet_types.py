"""GraphQL types for chains, balances and signing."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

from enum import Enum

import strawberry
from strawberry.scalars import JSON

from schema.enums import SignedEncoding, TokenErrorCode, TxType
from schema.scalars import Address, BigInt, ChainId, Hex, optional_big
from services.chains import ChainConfig
from services.tokens import TokenBalance
from services.transactions import FeeEstimate
from services.transactions_build import SignedTx
from services.wallets import Balance, SignedMessage


@strawberry.type(name="NativeCurrency")
class NativeCurrencyType:
    symbol: str = strawberry.field(description="ETH, POL, …: what `Balance.ether` counts.")
    decimals: int = strawberry.field(description="Decimals of one coin in wei (18).")


@strawberry.type(name="Chain")
class ChainType:
    chain_id: ChainId = strawberry.field(description="EIP-155 chain id.")
    name: str
    confirmations: int = strawberry.field(description="Blocks until a transaction is final.")
    is_default: bool
    native_currency: NativeCurrencyType
    explorer_tx_url: str | None = strawberry.field(
        description="The block explorer's transaction page, with {hash} where the hash goes; "
        "null when none is configured. Transaction.explorerUrl fills it in."
    )

    @classmethod
    def from_model(cls, m: ChainConfig, default_id: int) -> "ChainType":
        return cls(
            chain_id=ChainId(m.chain_id),
            name=m.name,
            confirmations=m.confirmations,
            is_default=m.chain_id == default_id,
            native_currency=NativeCurrencyType(
                symbol=m.native_currency_symbol, decimals=m.native_currency_decimals
            ),
            explorer_tx_url=m.explorer_tx_url,
        )


@strawberry.type(name="Balance")
class BalanceType:
    chain_id: ChainId
    wei: BigInt
    ether: str = strawberry.field(description="The balance in ether, exact, as decimal text.")
    block_number: BigInt

    @classmethod
    def from_model(cls, m: Balance) -> "BalanceType":
        return cls(
            chain_id=ChainId(m.chain_id),
            wei=BigInt(m.wei),
            ether=m.ether,
            block_number=BigInt(m.block_number),
        )


@strawberry.type(name="TokenError")
class TokenErrorType:
    code: TokenErrorCode
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
    def from_model(cls, m: TokenBalance) -> "TokenBalanceType":
        error = None
        if m.error_code:
            error = TokenErrorType(code=TokenErrorCode(m.error_code), message=m.error_message or "")
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
    to: Address | None = strawberry.field(description="Null for a contract deployment.")
    value: BigInt
    data: Hex
    gas: BigInt = strawberry.field(description="The gas limit it was signed with.")
    chain_id: ChainId
    type: TxType
    max_fee_per_gas: BigInt | None = strawberry.field(description="EIP1559 only.")
    max_priority_fee_per_gas: BigInt | None = strawberry.field(description="EIP1559 only.")
    gas_price: BigInt | None = strawberry.field(description="LEGACY only.")

    @classmethod
    def from_model(cls, m: SignedTx) -> "SignedTransactionType":
        f = m.fields

        return cls(
            raw=Hex("0x" + m.raw.hex()),
            hash=Hex(m.hash),
            nonce=BigInt(m.nonce),
            from_=Address(m.sender),
            to=Address(f["to"]) if f.get("to") else None,
            value=BigInt(int(f["value"])),
            data=Hex("0x" + bytes(f["data"]).hex()),
            gas=BigInt(int(f["gas"])),
            chain_id=ChainId(m.chain_id),
            type=TxType.of(m.tx_type),
            max_fee_per_gas=optional_big(f.get("maxFeePerGas")),
            max_priority_fee_per_gas=optional_big(f.get("maxPriorityFeePerGas")),
            gas_price=optional_big(f.get("gasPrice")),
        )


@strawberry.type(name="FeeEstimate")
class FeeEstimateType:
    chain_id: ChainId
    type: TxType = strawberry.field(description="What a submit without fee fields would use.")
    base_fee_per_gas: BigInt | None = strawberry.field(
        description="The latest block's base fee; null on chains without EIP-1559."
    )
    max_fee_per_gas: BigInt | None = strawberry.field(description="EIP1559 only.")
    max_priority_fee_per_gas: BigInt | None = strawberry.field(description="EIP1559 only.")
    gas_price: BigInt | None = strawberry.field(description="LEGACY only.")
    gas: BigInt = strawberry.field(description="The gas limit the cost is for.")
    max_cost: BigInt = strawberry.field(
        description="gas * the highest price per gas these caps allow, in wei (no value)."
    )

    @classmethod
    def from_model(cls, m: FeeEstimate) -> "FeeEstimateType":
        return cls(
            chain_id=ChainId(m.chain_id),
            type=TxType.of(m.caps.tx_type),
            base_fee_per_gas=optional_big(m.caps.base_fee),
            max_fee_per_gas=optional_big(m.caps.max_fee_per_gas),
            max_priority_fee_per_gas=optional_big(m.caps.max_priority_fee_per_gas),
            gas_price=optional_big(m.caps.gas_price),
            gas=BigInt(m.gas),
            max_cost=BigInt(m.max_cost),
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
    encoding: SignedEncoding = strawberry.field(description="What was signed.")

    @classmethod
    def from_model(cls, m: SignedMessage) -> "SignedMessageType":
        return cls(
            signature=Hex(m.signature),
            message_hash=Hex(m.message_hash),
            address=Address(m.address),
            encoding=SignedEncoding(m.encoding),
        )


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
