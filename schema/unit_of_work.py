"""Where a mutation's unit of work is opened: one per mutation field, committed when its
resolver returns and rolled back when it raises. Mutation fields run one after another, so
the unit can sit on the shared context for that time. The fields of the returned object
resolve afterwards, reading committed data."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import AsyncExtensionResolver

from schema.context import Info


class UnitOfWorkPerMutation(FieldExtension):
    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        context = info.context
        reads = context.uow
        async with context.services.units.begin() as uow:
            context.uow = uow
            try:
                return await next_(source, info, **kwargs)
            finally:
                context.uow = reads
                # The returned object's fields resolve next, on what this unit commits.
                context.new_scope()
