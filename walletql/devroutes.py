"""Development-only HTTP routes (mounted when WALLETQL_ENV=dev)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from services.container import Services
from services.errors import DomainError
from services.json_limits import loads_bounded
from services.validation import UINT256_MAX, parse_address


async def faucet(request: Request) -> JSONResponse:
    """POST {"address", "wei", "chainId"?}: fund an address on a dev chain. Needs a token."""
    services: Services = request.state.services
    try:
        await services.verifier.verify_header(request.headers.get("authorization"))
        body = loads_bounded(await request.body())
        if not isinstance(body, dict):
            raise TypeError("the body must be a JSON object")
        address = parse_address(str(body.get("address")), field="address")
        wei = int(str(body.get("wei")))
        if not 0 < wei <= UINT256_MAX:
            raise ValueError("wei out of range")
        chain_id = body.get("chainId")
        assert services.faucet is not None
        await services.faucet.fund(address, wei, int(chain_id) if chain_id is not None else None)
    except DomainError as exc:
        status = 401 if exc.code == "UNAUTHENTICATED" else 400
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status)
    except (ValueError, TypeError) as exc:
        return JSONResponse({"error": {"code": "BAD_USER_INPUT", "message": str(exc)}}, 400)
    return JSONResponse({"address": address, "wei": str(wei)})
