"""Two password changes that race: the key is re-sealed once, never twice over each other."""

from __future__ import annotations

import asyncio

from testkit.graphql import error_codes, only_error
from testkit.pipeline import PASSWORD, new_wallet
from testkit.server import LiveServer
from tests.test_wallet_signing import SIGN_MESSAGE
from walletql.devauth import DevSigner

CHANGE = """mutation($i: ChangePasswordInput!) {
  changePassword(input: $i) { wallet { address } }
}"""


async def test_of_two_concurrent_changes_from_the_same_password_one_wins_one_is_wrong(
    server: LiveServer, signer: DevSigner
) -> None:
    token, address = await new_wallet(server, signer, "alice", None)
    first, second = await asyncio.gather(
        *(
            server.graphql(
                CHANGE, {"i": {"currentPassword": PASSWORD, "newPassword": new}}, token=token
            )
            for new in ("first new password", "second new password")
        )
    )
    results = {"first new password": first, "second new password": second}
    winners = [new for new, body in results.items() if "errors" not in body]
    losers = [body for body in results.values() if "errors" in body]
    assert len(winners) == 1, results
    assert only_error(losers[0])["extensions"] == {
        "code": "WRONG_PASSWORD",
        "field": "currentPassword",
    }
    assert results[winners[0]]["data"]["changePassword"]["wallet"]["address"] == address
    loser = next(new for new in results if new != winners[0])
    for password, works in ((winners[0], True), (PASSWORD, False), (loser, False)):
        signed = await server.graphql(
            SIGN_MESSAGE, {"i": {"message": "hi", "password": password}}, token=token
        )
        assert error_codes(signed) == ([] if works else ["WRONG_PASSWORD"]), signed
