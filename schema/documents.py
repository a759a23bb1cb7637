"""Parsing and validation, bounded and cached by query text.

Before the parser (which recurses) sees a query, its bracket nesting is checked on the text.
Before validation (some of graphql-core's rules are superlinear in the expanded size) the
operation is priced (schema/cost.py). Parsed documents and their validation results are kept
in one cache bounded in estimated bytes: a parsed AST takes about 125 bytes per byte of query
text, so 80 distinct 4 MB queries used to pin 600 MB. Queries above ``max_query_bytes`` are
never kept.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from graphql import DocumentNode, GraphQLError, parse
from graphql.validation import ASTValidationRule, specified_rules
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from schema.cost import check_cost
from services.errors import DomainError, QueryTooComplex
from services.json_limits import bracket_depth

MAX_DOCUMENT_NESTING = 64
AST_BYTES_PER_QUERY_BYTE = 125  # measured with tracemalloc on graphql-core 3.3

# Block strings, strings and comments, whose brackets do not nest; unterminated ones run to
# the end (the parser rejects them), which keeps the scan linear.
_NOT_STRUCTURE = re.compile(
    r'"""(?:[^"\\]++|\\.|"(?!""))*+(?:"""|\Z)|"(?:[^"\\\n]++|\\.)*+(?:"|$)|#[^\n\r]*', re.S
)
# Stands in for a refused document, so strawberry reports the refusal as a pre-execution error.
_REFUSED = parse("{ __typename }")


def check_document_nesting(query: str, limit: int = MAX_DOCUMENT_NESTING) -> None:
    if query.count("{") + query.count("[") <= limit:
        return
    structure = _NOT_STRUCTURE.sub("", query)
    if bracket_depth(structure.encode("utf-8", "surrogatepass")) > limit:
        raise QueryTooComplex(f"The document nests deeper than {limit} levels")


@dataclass
class Entry:
    document: DocumentNode
    errors: list[GraphQLError] | None = field(default=None)


class DocumentCache:
    """LRU of parsed (and, once done, validated) documents, bounded in estimated bytes."""

    def __init__(self, max_bytes: int, max_query_bytes: int, max_entries: int = 1024) -> None:
        self.max_bytes = max_bytes
        self.max_query_bytes = max_query_bytes
        self.max_entries = max_entries
        self.bytes = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def cost(query: str) -> int:
        return len(query) * AST_BYTES_PER_QUERY_BYTE

    def get(self, query: str) -> Entry | None:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
        return entry

    def put(self, query: str, document: DocumentNode) -> Entry:
        entry = Entry(document)
        size = self.cost(query)
        if len(query) > self.max_query_bytes or size > self.max_bytes:
            return entry  # used for this request only
        while self._entries and (
            self.bytes + size > self.max_bytes or len(self._entries) >= self.max_entries
        ):
            evicted, _ = self._entries.popitem(last=False)
            self.bytes -= self.cost(evicted)
        self._entries[query] = entry
        self.bytes += size
        return entry


@dataclass(frozen=True)
class Limits:
    max_cost: int
    max_selections: int


def checked_documents(
    cache: DocumentCache, rules: list[type[ASTValidationRule]], limits: Limits
) -> Callable[[], SchemaExtension]:
    """The extension factory: strawberry builds one extension per operation."""
    all_rules = (*specified_rules, *rules)

    class CheckedDocuments(SchemaExtension):
        entry: Entry | None = None

        def _refuse(self, context: ExecutionContext, error: DomainError) -> None:
            context.graphql_document = _REFUSED
            context.pre_execution_errors = [GraphQLError(error.message, original_error=error)]

        def on_parse(self) -> Iterator[None]:
            context = self.execution_context
            query = context.query
            if context.graphql_document is None and query:
                self.entry = cache.get(query)
                if self.entry is None:
                    try:
                        check_document_nesting(query)
                        document = parse(query, **context.parse_options)
                    except DomainError as exc:
                        self._refuse(context, exc)
                    except GraphQLError:
                        pass  # strawberry parses it again and reports the syntax error
                    else:
                        self.entry = cache.put(query, document)
                if self.entry is not None:
                    context.graphql_document = self.entry.document
            yield

        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            if context.pre_execution_errors is None and context.graphql_document is not None:
                if self.entry is not None and self.entry.errors is not None:
                    context.pre_execution_errors = list(self.entry.errors)
                else:
                    errors = self._validate(context.graphql_document)
                    if self.entry is not None:
                        self.entry.errors = errors
                    context.pre_execution_errors = errors
            yield

        def _validate(self, document: DocumentNode) -> list[GraphQLError]:
            schema = self.execution_context.schema._schema
            try:
                check_cost(
                    schema, document, max_cost=limits.max_cost, max_selections=limits.max_selections
                )
            except DomainError as exc:
                return [GraphQLError(exc.message, original_error=exc)]
            return list(validate_document(schema, document, all_rules))

    return CheckedDocuments
