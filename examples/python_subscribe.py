"""Submit a transaction and print each status as walletql pushes it (Python, gql).

pip install "gql[websockets]"       # or: uv run --with "gql[websockets]" python ...
TOKEN=$(uv run -q walletql token alice)
python examples/python_subscribe.py "$TOKEN" "correct horse battery staple"
"""

import asyncio
import sys

from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

URL = "ws://127.0.0.1:8000/graphql"
SUBMIT = gql("""
mutation($password: String!) {
  submitTransaction(input: {
    to: "0x000000000000000000000000000000000000dEaD", value: "1000", password: $password
  }) { id status }
}""")
STATUS = gql("""
subscription($id: ID!) {
  transactionStatus(id: $id, afterSeq: 0) { seq status reason transaction { hash blockNumber } }
}""")


async def main(token: str, password: str) -> None:
    transport = WebsocketsTransport(
        url=URL,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],  # graphql-transport-ws
        init_payload={"authorization": f"Bearer {token}"},
    )
    async with Client(transport=transport) as session:
        submitted = await session.execute(SUBMIT, variable_values={"password": password})
        tx_id = submitted["submitTransaction"]["id"]
        print("submitted", tx_id)
        async for result in session.subscribe(STATUS, variable_values={"id": tx_id}):
            event = result["transactionStatus"]
            print(
                event["seq"], event["status"], event["reason"] or "", event["transaction"]["hash"]
            )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
