"""User queries and mutations: unpack the context, call one service, map the result."""

from __future__ import annotations

import strawberry

from schema.context import Context, Info
from schema.scalars import Address
from schema.types import CreateUserInput, PublicUserType, UserType
from services.auth import Principal
from services.errors import NotFound


async def me(info: Info) -> UserType | None:
    ctx = info.context
    async with ctx.read() as uow:
        profile = await ctx.services.users.me(uow, await ctx.principal())
    return UserType.from_model(profile) if profile else None


async def me_type(ctx: Context, principal: Principal) -> UserType:
    """The caller as a UserType, for mutations that return the user they changed."""
    async with ctx.read() as uow:
        profile = await ctx.services.users.me(uow, principal)
    if profile is None:
        raise NotFound("no such user")
    return UserType.from_model(profile)


async def user(info: Info, id: strawberry.ID) -> PublicUserType | None:
    ctx = info.context
    await ctx.principal()
    async with ctx.read() as uow:
        profile = await ctx.services.users.public_profile(uow, str(id))
    return PublicUserType.from_model(profile) if profile else None


async def user_by_address(info: Info, address: Address) -> PublicUserType | None:
    ctx = info.context
    await ctx.principal()
    async with ctx.read() as uow:
        profile = await ctx.services.users.public_profile_by_address(uow, address)
    return PublicUserType.from_model(profile) if profile else None


async def create_user(info: Info, input: CreateUserInput) -> UserType:
    ctx = info.context
    principal = await ctx.principal()
    async with ctx.unit_of_work() as uow:
        profile = await ctx.services.users.create_user(
            uow, principal, input.password, input.username
        )
    return UserType.from_model(profile)
