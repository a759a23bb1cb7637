"""User queries and mutations: unpack the context, call one service, map the result."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

import strawberry

from schema.context import Info
from schema.scalars import Address
from schema.types import CreateUserInput, PublicUserType, UserType


async def me(info: Info) -> UserType | None:
    """The signed-in user; null before createUser."""
    ctx = info.context
    profile = await ctx.services.users.me(ctx.uow, await ctx.principal())
    return UserType.from_model(profile) if profile else None


async def user(info: Info, id: strawberry.ID) -> PublicUserType | None:
    """Another user's public profile; null if none."""
    ctx = info.context
    await ctx.principal()
    profile = await ctx.services.users.public_profile(ctx.uow, str(id))
    return PublicUserType.from_model(profile) if profile else None


async def user_by_address(info: Info, address: Address) -> PublicUserType | None:
    """The public profile that owns a wallet; null if no user has it."""
    ctx = info.context
    await ctx.principal()
    profile = await ctx.services.users.public_profile_by_address(ctx.uow, address)
    return PublicUserType.from_model(profile) if profile else None


async def create_user(info: Info, input: CreateUserInput) -> UserType:
    """Create the signed-in user and a wallet sealed by the password."""
    ctx = info.context
    profile = await ctx.services.users.create_user(
        ctx.uow, await ctx.principal(), input.password, input.username
    )
    return UserType.from_model(profile)
