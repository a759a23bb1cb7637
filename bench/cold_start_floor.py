"""The cold-start floor of bench/cold_start.py (a): the least a GraphQL server on walletql's
stack must import and do before it answers an authenticated ``me``.

strawberry (one ``me`` field with its types), starlette, SQLAlchemy's asyncio engine (the
pool hands out the asyncpg connection) and pyjwt checking the same RS256 dev token, on the
same uvicorn settings as ``walletql serve``; the same user + wallet row read by ``sub``.
Nothing else: no settings class, no metrics, no limits.

    python -m bench.cold_start_floor PORT ASYNCPG_DSN DATA_DIR
"""

import sys
from pathlib import Path
from typing import Any

PROFILE_SQL = (
    "SELECT u.id, u.username, w.address FROM users u "
    "LEFT JOIN wallets w ON w.user_id = u.id WHERE u.sub = $1"
)


def build_app(dsn: str, data_dir: Path) -> Any:
    import asyncpg
    import jwt
    import strawberry
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.util import greenlet_spawn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from strawberry.asgi import GraphQL

    from walletql.devauth import DevSigner  # the dev key, as walletql reads it

    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(DevSigner(data_dir).jwks()).keys}
    engine = create_async_engine(
        "postgresql+asyncpg://",
        async_creator=lambda: asyncpg.connect(dsn),
        pool_size=20,
        max_overflow=0,
    )

    @strawberry.type
    class Wallet:
        address: str

    @strawberry.type
    class User:
        id: strawberry.ID
        username: str | None
        wallet: Wallet | None

    @strawberry.type
    class Query:
        @strawberry.field
        async def me(self, info: strawberry.Info) -> User | None:
            authorization = info.context["request"].headers.get("authorization") or ""
            token = authorization.partition(" ")[2]
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                key=keys[header["kid"]],
                algorithms=["RS256"],
                issuer="walletql-dev",
                audience="walletql",
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
            pooled = await engine.raw_connection()
            try:
                driver: Any = pooled.driver_connection
                row = await driver.fetchrow(PROFILE_SQL, claims["sub"])
            finally:
                await greenlet_spawn(pooled.close)
            if row is None:
                return None
            wallet = Wallet(address=row["address"]) if row["address"] else None
            return User(id=strawberry.ID(str(row["id"])), username=row["username"], wallet=wallet)

    graphql = GraphQL(strawberry.Schema(query=Query))
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", lambda _: JSONResponse({"ok": True})),
        ]
    )


def main(port: int, dsn: str, data_dir: Path) -> None:
    from bench.floor_server import serve

    serve(build_app(dsn, data_dir), port, lifespan="off")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
