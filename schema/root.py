"""The root types: each field names its resolver in ``resolvers/``."""

from __future__ import annotations

import strawberry

from resolvers import users
from schema.types import PublicUserType, UserType


@strawberry.type
class Query:
    me: UserType | None = strawberry.field(
        resolver=users.me, description="The signed-in user; null before createUser."
    )
    user: PublicUserType = strawberry.field(
        resolver=users.user, description="Another user's public profile."
    )
    user_by_address: PublicUserType = strawberry.field(
        resolver=users.user_by_address, description="The public profile that owns a wallet."
    )


@strawberry.type
class Mutation:
    create_user: UserType = strawberry.mutation(
        resolver=users.create_user,
        description="Create the signed-in user and a wallet sealed by the password.",
    )
