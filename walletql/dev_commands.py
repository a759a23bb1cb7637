"""The dev-mode commands: ``walletql token`` (a dev token) and ``walletql faucet`` (ether from
the running dev server's faucet)."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from walletql.settings import Settings


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.dev_auth:
        print(
            "walletql token signs dev tokens only while WALLETQL_JWKS_URL is unset; "
            "get tokens from your auth provider instead",
            file=sys.stderr,
        )
        return 2
    from walletql.devauth import DevSigner

    print(DevSigner(settings.data_dir).mint(args.sub, ttl=args.ttl))
    return 0


def cmd_faucet(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    from walletql.devauth import DevSigner

    try:
        wei = int(Decimal(args.amount) * 10**18)
    except ArithmeticError:
        print(f"not an amount of ether: {args.amount}", file=sys.stderr)
        return 2
    token = DevSigner(settings.data_dir).mint("walletql-faucet", ttl=60)
    url = f"http://{settings.host}:{settings.port}/dev/faucet"
    body: dict[str, Any] = {"address": args.address, "wei": str(wei)}
    if args.chain_id is not None:
        body["chainId"] = args.chain_id
    try:
        response = httpx.post(url, json=body, headers={"authorization": f"Bearer {token}"})
    except httpx.TransportError:
        print(f"no walletql server answers at {url}: start it with `make run`", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"faucet refused: {response.text}", file=sys.stderr)
        return 1
    print(f"sent {args.amount} ETH to {args.address}")
    return 0
