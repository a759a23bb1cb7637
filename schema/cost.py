"""The static cost of an operation, computed from the document before validation runs.

Each field costs 1 per row it is resolved for, plus ``IO_WEIGHT`` when its resolver is async
(a database read or an RPC per row). A list field multiplies the rows of its selections by
its ``first`` argument (a variable counts as the field's cap), by the ``first`` of the
connection it belongs to (``transactions(first:).edges``), or by ``LIST_SIZES``. Fragments
are expanded with memoisation, so a fragment bomb (F1 spreads F2 three times, F2 spreads F3
three times, …) is priced in linear time at its full expanded size, and a fragment cycle is
left to validation. README "Limits" lists the costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)

from services.errors import BadUserInput, QueryTooComplex

IO_WEIGHT = 10
DEFAULT_LIST_SIZE = 10
PAGE_CAP = 100  # `first` is at most 100 wherever it exists
# Lists without `first`, by "Type.field": how many rows they hold at most (or in practice).
LIST_SIZES = {
    "Query.tokenBalances": 50,  # at most 50 tokens per query
    "Transaction.hashes": 22,  # the original, up to 20 fee bumps, the cancel
    "Transaction.events": 10,  # QUEUED … CONFIRMED, plus a reorg or two
}
MAX_FRAGMENT_NESTING = 32  # chains of spreads; also keeps graphql-core's recursion shallow
_HUGE = 10**15  # costs are clamped here: a bomb's true size is not worth computing


@dataclass(frozen=True)
class Priced:
    cost: int
    selections: int

    def __add__(self, other: Priced) -> Priced:
        return Priced(
            min(self.cost + other.cost, _HUGE), min(self.selections + other.selections, _HUGE)
        )

    def times(self, rows: int) -> Priced:
        return Priced(min(self.cost * rows, _HUGE), self.selections)


NOTHING = Priced(0, 0)


def _is_io(field: GraphQLField) -> bool:
    definition: Any = field.extensions.get("strawberry-definition")
    return bool(definition is not None and definition.base_resolver and definition.is_async)


def _first(node: FieldNode, field: GraphQLField) -> int | None:
    """The page size a field asks for: its `first` literal, the cap for a variable."""
    if "first" not in field.args:
        return None
    for argument in node.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode) and len(argument.value.value) < 6:
                return max(0, min(int(argument.value.value), PAGE_CAP))
            return PAGE_CAP
    default = field.args["first"].default_value
    return default if isinstance(default, int) else PAGE_CAP


class _Pricer:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments
        self.memo: dict[tuple[str, str | None, int | None], Priced] = {}
        self.visiting: set[str] = set()

    def selection_set(
        self, parent: Any, selections: SelectionSetNode, page: int | None = None
    ) -> Priced:
        total = NOTHING
        for node in selections.selections:
            if isinstance(node, FieldNode):
                total += self.field(parent, node, page)
            elif isinstance(node, InlineFragmentNode):
                kind = parent
                if node.type_condition is not None:
                    kind = self.schema.get_type(node.type_condition.name.value) or parent
                total += self.selection_set(kind, node.selection_set, page)
            elif isinstance(node, FragmentSpreadNode):
                total += self.spread(parent, node.name.value, page)
        return total

    def spread(self, parent: Any, name: str, page: int | None) -> Priced:
        fragment = self.fragments.get(name)
        if fragment is None:
            raise BadUserInput(f"Unknown fragment '{name}'")
        key = (name, getattr(parent, "name", None), page)
        if key in self.memo:
            return self.memo[key]
        if name in self.visiting:  # a cycle: NoFragmentCyclesRule reports it
            return NOTHING
        if len(self.visiting) >= MAX_FRAGMENT_NESTING:
            raise QueryTooComplex(f"Fragments spread each other deeper than {MAX_FRAGMENT_NESTING}")
        self.visiting.add(name)
        kind = self.schema.get_type(fragment.type_condition.name.value) or parent
        priced = self.selection_set(kind, fragment.selection_set, page)
        self.visiting.discard(name)
        self.memo[key] = priced
        return priced

    def field(self, parent: Any, node: FieldNode, page: int | None) -> Priced:
        fields = getattr(parent, "fields", None)
        definition = fields.get(node.name.value) if fields else None
        if definition is None:  # __typename, introspection, or unknown (validation says)
            inner = self.selection_set(None, node.selection_set) if node.selection_set else NOTHING
            return Priced(1, 1) + inner
        own = Priced(1 + (IO_WEIGHT if _is_io(definition) else 0), 1)
        if node.selection_set is None:
            return own
        kind = definition.type
        if isinstance(kind, GraphQLNonNull):
            kind = kind.of_type
        first = _first(node, definition)
        if isinstance(kind, GraphQLList):
            name = f"{getattr(parent, 'name', '?')}.{node.name.value}"
            rows = first if first is not None else page or LIST_SIZES.get(name, DEFAULT_LIST_SIZE)
            return own + self.selection_set(get_named_type(kind), node.selection_set).times(rows)
        # A connection: its `first` sizes the list (edges) among its own fields.
        return own + self.selection_set(get_named_type(kind), node.selection_set, first)


def price(schema: GraphQLSchema, document: DocumentNode) -> Priced:
    """The most expensive operation in ``document``; BAD_USER_INPUT for an unknown fragment."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    pricer = _Pricer(schema, fragments)
    worst = NOTHING
    roots: dict[OperationType, GraphQLObjectType | None] = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            priced = pricer.selection_set(roots[definition.operation], definition.selection_set)
            worst = Priced(max(worst.cost, priced.cost), max(worst.selections, priced.selections))
    return worst


def check_cost(
    schema: GraphQLSchema, document: DocumentNode, *, max_cost: int, max_selections: int
) -> None:
    priced = price(schema, document)
    if priced.selections > max_selections:
        raise QueryTooComplex(
            f"The operation expands to {priced.selections} selections; the limit is "
            f"{max_selections} (fragments count once per spread)"
        )
    if priced.cost > max_cost:
        raise QueryTooComplex(f"The operation costs {priced.cost}; the limit is {max_cost}")
