"""What tests/ and bench/ both need to run walletql against real parts: PostgreSQL and fresh
databases (postgres), walletql in-process under uvicorn or as a `walletql` process (server,
process), anvil and an ERC-20 on it (anvil, contracts), a graphql-transport-ws client (ws),
moto's SQS (sqs), settings and environments (env), and a wallet's way through the pipeline
(pipeline).

Kept light on purpose: bench's client processes import `testkit.ws` alone.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
