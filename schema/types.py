"""GraphQL object types. They map from service results, never from ORM models directly."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

from datetime import datetime
from typing import Any

import strawberry

from schema.scalars import Address
from services.records import UserProfile


@strawberry.type(name="Wallet")
class WalletType:
    address: Address


def _profile(m: UserProfile) -> dict[str, Any]:
    """The fields a user's private and public views share."""
    # createUser makes the user and the wallet in one unit of work: every user has one.
    assert m.address is not None, "a user without a wallet"
    wallet = WalletType(address=Address(m.address))
    return {"id": strawberry.ID(str(m.id)), "username": m.username, "wallet": wallet,
            "created_at": m.created_at}  # fmt: skip


@strawberry.type(name="User", description="The signed-in user, with private fields.")
class UserType:
    id: strawberry.ID
    sub: str
    username: str | None
    wallet: WalletType
    created_at: datetime

    @classmethod
    def from_model(cls, m: UserProfile) -> "UserType":
        return cls(sub=m.sub, **_profile(m))


@strawberry.type(name="PublicUser", description="Another user's public profile.")
class PublicUserType:
    id: strawberry.ID
    username: str | None
    wallet: WalletType
    created_at: datetime

    @classmethod
    def from_model(cls, m: UserProfile) -> "PublicUserType":
        return cls(**_profile(m))


@strawberry.input(name="CreateUserInput")
class CreateUserInput:
    password: str
    username: str | None = None
