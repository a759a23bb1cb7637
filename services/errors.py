"""Domain errors. Each has a stable ``code``; ``schema/errors.py`` maps them to GraphQL."""

from __future__ import annotations


class DomainError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class NotFound(DomainError):
    code = "NOT_FOUND"


class BadUserInput(DomainError):
    code = "BAD_USER_INPUT"


class UserExists(DomainError):
    code = "USER_EXISTS"


class WeakPassword(DomainError):
    code = "WEAK_PASSWORD"


class WrongPassword(DomainError):
    code = "WRONG_PASSWORD"


class InsufficientFunds(DomainError):
    code = "INSUFFICIENT_FUNDS"


class NonceConflict(DomainError):
    code = "NONCE_CONFLICT"


class IdempotencyConflict(DomainError):
    code = "IDEMPOTENCY_CONFLICT"


class RateLimited(DomainError):
    code = "RATE_LIMITED"


class QueryTooComplex(DomainError):
    code = "QUERY_TOO_COMPLEX"


class ChainUnavailable(DomainError):
    code = "CHAIN_UNAVAILABLE"


class DecryptionFailed(Exception):
    """The ciphertext did not open: wrong password, wrong pepper or tampered data."""
