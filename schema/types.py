"""GraphQL object types. They map from service results, never from ORM models directly."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.scalars import Address
from services.records import UserProfile


@strawberry.type(name="Wallet")
class WalletType:
    address: Address


def _wallet(m: UserProfile) -> WalletType:
    # createUser makes the user and the wallet in one unit of work: every user has one.
    assert m.address is not None, "a user without a wallet"
    return WalletType(address=Address(m.address))


@strawberry.type(name="User", description="The signed-in user, with private fields.")
class UserType:
    id: strawberry.ID
    sub: str
    username: str | None
    wallet: WalletType
    created_at: datetime

    @classmethod
    def from_model(cls, m: UserProfile) -> UserType:
        wallet = _wallet(m)
        return cls(
            id=strawberry.ID(str(m.id)),
            sub=m.sub,
            username=m.username,
            wallet=wallet,
            created_at=m.created_at,
        )


@strawberry.type(name="PublicUser", description="Another user's public profile.")
class PublicUserType:
    id: strawberry.ID
    username: str | None
    wallet: WalletType
    created_at: datetime

    @classmethod
    def from_model(cls, m: UserProfile) -> PublicUserType:
        wallet = _wallet(m)
        return cls(
            id=strawberry.ID(str(m.id)), username=m.username, wallet=wallet, created_at=m.created_at
        )


@strawberry.input(name="CreateUserInput")
class CreateUserInput:
    password: str
    username: str | None = None
