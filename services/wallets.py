"""The wallet's everyday abilities: balances, signing, password change and export."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, replace
from typing import Any

from db.models import Wallet
from db.repositories import UserProfile, UserRepository, WalletRepository, wallet_to_unlock
from db.unit_of_work import UnitOfWork
from services.auth import Principal
from services.chains import Chains
from services.errors import BadUserInput, DecryptionFailed, Forbidden, NotFound, WrongPassword
from services.json_limits import parse_json_text
from services.keys import KeyVault
from services.nonces import lock_next_nonce
from services.passwords import PasswordGuard
from services.sealing import sealed_of, store_sealed
from services.tokens import TokenBalance, format_units, read_token
from services.transactions_build import (
    SignedTx,
    TxRequest,
    fill_affordable,
    read_ahead,
    sign_transaction,
)
from services.users import check_password_strength
from services.validation import check_text

_HEX_MESSAGE = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


@dataclass(frozen=True)
class Balance:
    chain_id: int
    wei: int
    block_number: int

    @property
    def ether(self) -> str:
        return format_units(self.wei, 18)


@dataclass(frozen=True)
class SignedMessage:
    signature: str
    message_hash: str
    address: str
    encoding: str  # "TEXT" or "HEX": what the message was taken as


@dataclass(frozen=True)
class Unlocked:
    wallet: Wallet
    key: bytes
    # The nonce the wallet reserves next on the chain unlock was asked about (None: none
    # stored yet, or not asked).
    next_nonce: int | None = None


class WalletService:
    def __init__(
        self, vault: KeyVault, guard: PasswordGuard, chains: Chains, export_max_age: int
    ) -> None:
        self._vault = vault
        self._attempt_locks = [asyncio.Lock() for _ in range(256)]
        self._guard = guard
        self.chains = chains
        self._export_max_age = export_max_age

    async def _wallet(self, uow: UnitOfWork, principal: Principal) -> Wallet:
        async with uow.read() as session:
            wallet = await WalletRepository.from_session(session).for_user_sub(principal.sub)
        if wallet is None:
            raise NotFound("no wallet yet: run createUser first")
        return wallet

    async def unlock(
        self,
        uow: UnitOfWork,
        principal: Principal,
        password: str,
        *,
        field: str = "password",
        nonce_chain_id: int | None = None,
    ) -> Unlocked:
        """Decrypt the caller's key for this request; WRONG_PASSWORD or RATE_LIMITED otherwise.
        With ``nonce_chain_id``, the wallet's stored next nonce there comes along.

        The read is one statement on a pooled connection and the failure counter goes
        through its own transaction: no connection is held while the KDF runs, and the
        unit's transaction has not begun when this returns."""
        check_text(password, field=field)
        # One attempt per user at a time in this process: check, KDF and the failure record
        # happen in order, so parallel guesses cannot all pass the check before any failure
        # is counted. (Across K API processes, at most K guesses overlap.)
        async with self._attempt_locks[hash(principal.sub) % len(self._attempt_locks)]:
            async with uow.driver() as driver:
                found = await wallet_to_unlock(
                    driver, principal.sub, self._guard.window_start(), nonce_chain_id
                )
            if found is None:
                raise NotFound("no wallet yet: run createUser first")
            wallet = found.wallet
            failures = self._guard.check(found.failures, found.oldest_failure)
            try:
                key = await self._vault.open(
                    sealed_of(wallet), password, user_id=wallet.user_id, address=wallet.address
                )
            except DecryptionFailed:
                await self._guard.record_failure(uow, wallet.user_id)
                raise WrongPassword("wrong password", field=field) from None
        if failures:
            await self._guard.clear(uow, wallet.user_id)
        return Unlocked(wallet, key, found.next_nonce)

    async def balance(self, uow: UnitOfWork, principal: Principal, chain_id: int | None) -> Balance:
        """The caller's native balance on a chain (the default chain when None)."""
        chain = self.chains.get(chain_id)
        wallet = await self._wallet(uow, principal)
        wei, block = await chain.balance(wallet.address)
        return Balance(chain.chain_id, wei, block)

    async def token_balances(
        self, uow: UnitOfWork, principal: Principal, chain_id: int | None, tokens: list[str]
    ) -> list[TokenBalance]:
        """ERC-20 balances; a token that is not an ERC-20 gets its own error entry."""
        if len(tokens) > 50:
            raise BadUserInput("at most 50 tokens per query", field="tokens")
        chain = self.chains.get(chain_id)
        wallet = await self._wallet(uow, principal)
        return list(await asyncio.gather(*(read_token(chain, t, wallet.address) for t in tokens)))

    async def sign_transaction(
        self, uow: UnitOfWork, principal: Principal, req: TxRequest, password: str
    ) -> SignedTx:
        """Fill in, check funds (the preflight submitTransaction uses) and sign; nothing is
        broadcast. Without a nonce, it takes and reserves the wallet's next one, the same
        reservation submitTransaction uses. The KDF and the chain calls come first; under the
        nonce lock it only reserves and signs."""
        chain = self.chains.get(req.chain_id)
        unlocked = await self.unlock(uow, principal, password)
        address = unlocked.wallet.address
        ahead = await read_ahead(chain, address, req, pending_nonce=req.nonce is None)
        chain_next = await ahead.pending_nonce(address) if req.nonce is None else req.nonce
        tx = await fill_affordable(ahead, address, replace(req, nonce=chain_next))
        if req.nonce is not None:
            return await asyncio.to_thread(sign_transaction, tx, unlocked.key, address)
        reserved = await lock_next_nonce(
            await uow.driver_in_transaction(), unlocked.wallet.id, chain.chain_id, chain_next
        )
        signed = await asyncio.to_thread(
            sign_transaction, {**tx, "nonce": reserved.next_nonce}, unlocked.key, address
        )
        await reserved.take(signed.nonce)
        return signed

    async def sign_message(
        self, uow: UnitOfWork, principal: Principal, message: str, encoding: str, password: str
    ) -> SignedMessage:
        """EIP-191 personal_sign of text, or of bytes given as 0x-hex."""
        from eth_account.messages import encode_defunct

        if encoding == "AUTO":
            encoding = "HEX" if _HEX_MESSAGE.fullmatch(message) and len(message) > 2 else "TEXT"
        if encoding == "HEX":
            if not _HEX_MESSAGE.fullmatch(message):
                raise BadUserInput("expected 0x-hex bytes of even length", field="message")
            signable = encode_defunct(primitive=bytes.fromhex(message[2:]))
        else:
            signable = encode_defunct(text=check_text(message, field="message"))
        return await self._sign_signable(uow, principal, password, signable, encoding)

    async def sign_typed_data(
        self, uow: UnitOfWork, principal: Principal, typed_data: Any, password: str
    ) -> SignedMessage:
        """EIP-712 signature of a full typed-data document."""
        from eth_account.messages import encode_typed_data

        from services.typed_data import validate_typed_data

        # A caller without a wallet is answered before the document is decoded and checked.
        await self._wallet(uow, principal)
        if isinstance(typed_data, str):  # clients often send JSON.stringify(typedData)
            typed_data = parse_json_text(typed_data, field="typedData")
        validate_typed_data(typed_data)
        try:
            signable = encode_typed_data(full_message=typed_data)
        except Exception as exc:
            raise BadUserInput(f"typedData: {exc}", field="typedData") from exc
        return await self._sign_signable(uow, principal, password, signable, "TYPED_DATA")

    async def _sign_signable(
        self, uow: UnitOfWork, principal: Principal, password: str, signable: Any, encoding: str
    ) -> SignedMessage:
        from eth_account import Account

        unlocked = await self.unlock(uow, principal, password)
        # ECDSA and eth-account's encoding: off the event loop, like the KDF.
        signed = await asyncio.to_thread(Account.sign_message, signable, unlocked.key)
        return SignedMessage(
            "0x" + bytes(signed.signature).hex(),
            "0x" + bytes(signed.message_hash).hex(),
            unlocked.wallet.address,
            encoding,
        )

    async def change_password(
        self, uow: UnitOfWork, principal: Principal, current: str, new: str
    ) -> UserProfile:
        """Re-seal the key under a new password; the address stays the same. Both KDF runs
        happen before the wallet row is locked; under the lock, a record that changed
        meanwhile (a concurrent change) makes this caller's password the wrong one."""
        check_password_strength(new, field="newPassword")
        unlocked = await self.unlock(uow, principal, current, field="currentPassword")
        opened = unlocked.wallet
        sealed = await self._vault.seal(
            unlocked.key, new, user_id=opened.user_id, address=opened.address
        )
        wallet = await WalletRepository.from_session(uow.session).for_user_sub(
            principal.sub, lock=True
        )
        if wallet is None or sealed_of(wallet) != sealed_of(opened):
            raise WrongPassword("wrong password", field="currentPassword")
        store_sealed(wallet, sealed)
        await uow.session.flush()
        profile = await UserRepository.from_session(uow.session).profile_by_id(wallet.user_id)
        assert profile is not None
        return profile

    async def export_wallet(
        self, uow: UnitOfWork, principal: Principal, password: str, now: float
    ) -> dict[str, Any]:
        """A Web3 Secret Storage v3 keystore, encrypted with the same password."""
        from eth_account import Account

        if now - principal.issued_at > self._export_max_age:
            raise Forbidden(
                f"exporting a wallet needs a recent login (a token issued in the last "
                f"{self._export_max_age} s); sign in again"
            )
        unlocked = await self.unlock(uow, principal, password)
        keystore: dict[str, Any] = await self._vault.run_in_pool(
            Account.encrypt, unlocked.key, password
        )
        return keystore
