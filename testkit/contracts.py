"""An OpenZeppelin ERC-20 on a node: deploy, mint, send signed transactions.

`@openzeppelin/contracts` (npm, tests/node) ships the compiled artifacts; see testkit.anvil.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, cast

from eth_account import Account
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.types import TxParams, Wei

from testkit.anvil import INSTALL_HINT, NODE_MODULES

OPENZEPPELIN_ARTIFACTS = NODE_MODULES / "@openzeppelin/contracts/build/contracts"
# ERC-20 with constructor(string name, string symbol) that grants the deployer DEFAULT_ADMIN,
# MINTER and PAUSER roles, and mint(address to, uint256 amount). 18 decimals.
ERC20_ARTIFACT = "ERC20PresetMinterPauser"


def contracts_available() -> str | None:
    """None when the OpenZeppelin ERC-20 artifact is installed, else why it is not."""
    path = OPENZEPPELIN_ARTIFACTS / f"{ERC20_ARTIFACT}.json"
    if not path.is_file():
        return f"OpenZeppelin artifacts not installed at {path}: {INSTALL_HINT}"
    return None


@cache
def load_artifact(name: str = ERC20_ARTIFACT) -> dict[str, Any]:
    """A compiled OpenZeppelin contract: its JSON artifact (abi, bytecode, ...)."""
    path = OPENZEPPELIN_ARTIFACTS / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no artifact {path}: {INSTALL_HINT}")
    artifact: dict[str, Any] = json.loads(path.read_text())
    return artifact


async def send_signed(w3: AsyncWeb3[Any], private_key: str, tx: TxParams) -> dict[str, Any]:
    """Fill in nonce, gas and fees; sign locally; send raw; wait for a successful receipt."""
    sender = Account.from_key(private_key).address
    tx = {**tx, "from": sender}
    if "nonce" not in tx:
        tx["nonce"] = await w3.eth.get_transaction_count(sender, "pending")
    if "chainId" not in tx:
        tx["chainId"] = await w3.eth.chain_id
    if "gas" not in tx:
        tx["gas"] = await w3.eth.estimate_gas(tx)
    if "gasPrice" not in tx and "maxFeePerGas" not in tx:
        block = await w3.eth.get_block("latest")
        tip = await w3.eth.max_priority_fee
        tx["maxPriorityFeePerGas"] = tip
        tx["maxFeePerGas"] = Wei(2 * int(block.get("baseFeePerGas", 0)) + tip)
    signed = Account.sign_transaction(cast(dict[str, Any], tx), private_key)
    tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.to_0x_hex()} reverted: {dict(receipt)!r}")
    return dict(receipt)


async def deploy_erc20(
    w3: AsyncWeb3[Any], deployer_key: str, name: str, symbol: str, *, artifact: str = ERC20_ARTIFACT
) -> ChecksumAddress:
    """Deploy OpenZeppelin's ERC20PresetMinterPauser (the deployer may mint); its address."""
    compiled = load_artifact(artifact)
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    sender = Account.from_key(deployer_key).address
    nonce = await w3.eth.get_transaction_count(sender, "pending")
    tx = await factory.constructor(name, symbol).build_transaction({"from": sender, "nonce": nonce})
    receipt = await send_signed(w3, deployer_key, tx)
    address = receipt["contractAddress"]
    if not address:
        raise RuntimeError(f"deployment receipt has no contract address: {receipt!r}")
    return to_checksum_address(address)


async def mint_erc20(w3: AsyncWeb3[Any], token: str, minter_key: str, to: str, amount: int) -> None:
    """Mint `amount` base units of `token` to `to`, signed by a key with MINTER_ROLE."""
    sender = Account.from_key(minter_key).address
    nonce = await w3.eth.get_transaction_count(sender, "pending")
    call = erc20(w3, token).functions.mint(to_checksum_address(to), amount)
    tx = await call.build_transaction({"from": sender, "nonce": nonce})
    await send_signed(w3, minter_key, tx)


def erc20(w3: AsyncWeb3[Any], token: str) -> AsyncContract:
    """The token at `token`, bound with the ERC-20 (preset) ABI."""
    return w3.eth.contract(address=to_checksum_address(token), abi=load_artifact()["abi"])
