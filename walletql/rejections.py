"""Requests refused before GraphQL runs: a status, a stable code and a JSON body."""

from __future__ import annotations

from cross_web import HTTPException
from starlette.responses import JSONResponse

# The code of each status strawberry itself may refuse a request with.
_CODES = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    408: "REQUEST_TIMEOUT",
}


class RequestRejected(HTTPException):
    """An HTTP request that never reaches execution, with the code the client sees."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(status_code, message)
        self.code = code


def error_body(code: str, message: str) -> dict[str, object]:
    """The GraphQL error shape, so clients read one format for every refusal."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def code_of(exc: HTTPException) -> str:
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else _CODES.get(exc.status_code, "BAD_REQUEST")


def rejection_response(exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, code_of(exc), exc.reason)


def error_response(status_code: int, code: str, message: str) -> JSONResponse:
    # 413 and 408 keep the connection: the server discards the rest of the body within the
    # header deadline (walletql/server.py), so the client reads this answer, not a reset.
    return JSONResponse(error_body(code, message), status_code=status_code)
