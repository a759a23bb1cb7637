"""A wallet that cannot pay gets INSUFFICIENT_FUNDS with ``needed`` on the in-process chain,
whatever py-evm raises while estimating gas."""

from __future__ import annotations

from testkit.graphql import only_error
from testkit.server import LiveServer
from walletql.devauth import DevSigner

PASSWORD = "correct horse battery"
DEAD = "0x000000000000000000000000000000000000dEaD"
CREATE = "mutation($p: String!) { createUser(input: {password: $p}) { wallet { address } } }"
SIGN = "mutation($i: SignTransactionInput!) { signTransaction(input: $i) { hash } }"
SUBMIT = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id } }"
LISTED = "{ transactions { edges { node { id } } } }"


async def cannot_pay(server: LiveServer, token: str, mutation: str, value: int) -> int:
    """The error's ``needed`` after checking its code and field."""
    body = await server.graphql(
        mutation, {"i": {"to": DEAD, "value": str(value), "password": PASSWORD}}, token=token
    )
    error = only_error(body)
    assert error["extensions"]["code"] == "INSUFFICIENT_FUNDS", error
    assert "Traceback" not in error["message"]
    return int(error["extensions"]["needed"])


async def wallet(server: LiveServer, signer: DevSigner, sub: str) -> tuple[str, str]:
    token = signer.mint(sub)
    body = await server.graphql(CREATE, {"p": PASSWORD}, token=token)
    return token, body["data"]["createUser"]["wallet"]["address"]


async def test_submitting_more_than_the_balance_on_the_embedded_chain(
    server: LiveServer, signer: DevSigner
) -> None:
    mutation = SUBMIT
    token, _ = await wallet(server, signer, "alice")
    balance = int(
        (await server.graphql("{ balance { wei } }", token=token))["data"]["balance"]["wei"]
    )
    needed = await cannot_pay(server, token, mutation, balance + 1)
    assert needed > balance + 1  # the value and the gas
    assert (await server.graphql(LISTED, token=token))["data"]["transactions"]["edges"] == []
