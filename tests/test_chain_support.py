"""The chain test harness works: a real anvil node, an OpenZeppelin ERC-20 deployed on it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError
from web3.types import TxParams, Wei

from testkit.anvil import Anvil, anvil_available
from testkit.contracts import contracts_available, deploy_erc20, erc20, mint_erc20, send_signed

ONE_TOKEN = 10**18


@pytest.fixture(autouse=True)
def _needs_anvil() -> None:
    reason = anvil_available() or contracts_available()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    with Anvil(chain_id=1337) as node:
        yield node


async def connect(node: Anvil) -> AsyncWeb3[AsyncHTTPProvider]:
    return AsyncWeb3(AsyncHTTPProvider(node.url))


@pytest.fixture
async def w3(anvil: Anvil) -> AsyncIterator[AsyncWeb3[AsyncHTTPProvider]]:
    web3 = await connect(anvil)
    try:
        yield web3
    finally:
        await web3.provider.disconnect()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_node_answers_with_funded_dev_accounts(
    anvil: Anvil, w3: AsyncWeb3[AsyncHTTPProvider]
) -> None:
    assert anvil.url == f"http://127.0.0.1:{anvil.port}"
    assert await w3.eth.chain_id == 1337
    assert len(anvil.accounts) == len(anvil.private_keys) == 10
    # The keys anvil reported really are the accounts' keys, and those accounts are funded.
    for address, key in zip(anvil.accounts, anvil.private_keys, strict=True):
        assert Account.from_key(key).address == address
    assert await w3.eth.get_balance(anvil.accounts[0]) == 10_000 * 10**18


async def test_deploy_and_mint_erc20(anvil: Anvil, w3: AsyncWeb3[AsyncHTTPProvider]) -> None:
    deployer_key = anvil.private_keys[0]
    holder = Account.create().address

    token = await deploy_erc20(w3, deployer_key, "Test Dollar", "TUSD")

    assert AsyncWeb3.is_checksum_address(token)
    assert await w3.eth.get_code(token) != b""
    await mint_erc20(w3, token, deployer_key, holder, 1000 * ONE_TOKEN)
    contract = erc20(w3, token)
    assert await contract.functions.balanceOf(holder).call() == 1000 * ONE_TOKEN
    assert await contract.functions.totalSupply().call() == 1000 * ONE_TOKEN
    assert await contract.functions.symbol().call() == "TUSD"
    assert await contract.functions.name().call() == "Test Dollar"
    assert await contract.functions.decimals().call() == 18


async def test_only_a_minter_can_mint(anvil: Anvil, w3: AsyncWeb3[AsyncHTTPProvider]) -> None:
    token = await deploy_erc20(w3, anvil.private_keys[0], "Test Dollar", "TUSD")
    with pytest.raises(ContractLogicError, match="must have minter role"):
        await mint_erc20(w3, token, anvil.private_keys[1], anvil.accounts[1], ONE_TOKEN)


async def test_restart_with_state_keeps_the_chain(tmp_path: Path) -> None:
    holder = Account.create().address
    with Anvil(state_path=tmp_path / "state.json") as node:
        url, first_pid = node.url, node.pid
        w3 = await connect(node)
        try:
            token = await deploy_erc20(w3, node.private_keys[0], "Test Dollar", "TUSD")
            await mint_erc20(w3, token, node.private_keys[0], holder, 1000 * ONE_TOKEN)
            tx: TxParams = {"to": holder, "value": Wei(5 * 10**17)}
            await send_signed(w3, node.private_keys[1], tx)
            height = await w3.eth.block_number
        finally:
            await w3.provider.disconnect()

        node.restart()

        assert node.url == url
        assert node.pid != first_pid
        assert first_pid is not None
        assert not _alive(first_pid)
        assert (tmp_path / "state.json").is_file()
        w3 = await connect(node)
        try:
            assert await w3.eth.block_number == height
            assert await w3.eth.get_balance(holder) == 5 * 10**17
            assert await erc20(w3, token).functions.balanceOf(holder).call() == 1000 * ONE_TOKEN
            # The chain goes on from there.
            await mint_erc20(w3, token, node.private_keys[0], holder, ONE_TOKEN)
            assert await erc20(w3, token).functions.balanceOf(holder).call() == 1001 * ONE_TOKEN
        finally:
            await w3.provider.disconnect()
        pid = node.pid
    assert pid is not None
    assert not _alive(pid)
    assert not node.running


async def test_restart_without_state_is_a_fresh_chain() -> None:
    with Anvil() as node:
        w3 = await connect(node)
        try:
            token = await deploy_erc20(w3, node.private_keys[0], "Test Dollar", "TUSD")
            node.restart()
            assert await w3.eth.block_number == 0
            assert await w3.eth.get_code(token) == b""
        finally:
            await w3.provider.disconnect()


async def test_async_context_manager_and_forced_stop(tmp_path: Path) -> None:
    async with Anvil(state_path=tmp_path / "state.json") as node:
        pid = node.pid
        assert pid is not None
        assert _alive(pid)
        node.stop(force=True)  # a crash: SIGKILL, so nothing is dumped
        assert not _alive(pid)
        assert not (tmp_path / "state.json").exists()
        node.stop()  # idempotent
