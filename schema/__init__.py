"""The GraphQL schema: types, scalars, error mapping. No business logic lives here.

The modules strawberry reads types from (the types, inputs, enums, scalars, the root and
``resolvers/``) have no ``from __future__ import annotations``: strawberry would parse and
evaluate every annotation string back into a type, about 20 ms of each start before the
first answer. A forward reference there is a quoted name.
"""

from __future__ import annotations

from collections.abc import Callable

from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry import Schema
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.documents import DocumentCache, Limits, checked_documents
from schema.errors import ErrorCodes
from schema.loaders import LoadersPerOperation
from schema.root import Mutation, Query, Subscription
from schema.scalars import SCALAR_MAP


class WalletqlSchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ErrorCodes logs unexpected errors, once, with the request id and without the
        # request's variables; expected errors (bad input, auth) are not worth a log line.
        return None

    def _warn_for_federation_directives(self) -> None:
        # strawberry imports federation's 18 directive classes (about 10 ms of a start) to
        # warn about a type that carries one; a schema whose types carry no directive at
        # all needs no look.
        if any(t.definition.directives for t in self.schema_converter.type_map.values()):
            super()._warn_for_federation_directives()


def build_schema(
    *,
    max_depth: int = 10,
    max_aliases: int = 15,
    max_tokens: int = 2000,
    introspection: bool = True,
    max_cost: int = 10_000,
    max_selections: int = 2_000,
    cache_bytes: int = 32 * 1024 * 1024,
    cache_max_query_bytes: int = 32 * 1024,
) -> Schema:
    # The limit rules are built once: strawberry's limiters create a new rule class per
    # instance. Validation results are cached per query text with the parsed document.
    rules = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    # Factories: strawberry builds fresh extension instances for every operation.
    extensions: list[Callable[[], SchemaExtension]] = [
        ErrorCodes,
        LoadersPerOperation,
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        checked_documents(
            DocumentCache(cache_bytes, cache_max_query_bytes),
            rules,
            Limits(max_cost=max_cost, max_selections=max_selections),
        ),
    ]
    return WalletqlSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )
