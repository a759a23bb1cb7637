"""The one place where failures become GraphQL errors with a stable ``extensions.code``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    Node,
    ObjectFieldNode,
    OperationDefinitionNode,
    Visitor,
    visit,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult as StrawberryExecutionResult
from strawberry.types.execution import StreamExecutionResult

from services import metrics
from services.errors import DomainError
from services.logs import describe_exception
from services.request_context import current_request

log = logging.getLogger("walletql.errors")

# Messages of strawberry's depth, alias and token limit extensions.
_TOO_COMPLEX = re.compile(
    r"exceeds maximum operation depth|aliases found\. Allowed|Document contains more than"
)
# graphql-core: "Variable '$input' has invalid value at .password: <why>; found: <value>."
_VARIABLE = re.compile(
    r"^Variable '\$(\w+)' has invalid value(?: at \.?([\w.\[\]]+))?: (.*?)(?:; found: .*)?$", re.S
)
_ARGUMENT = re.compile(r"^Argument '(\w+)'|argument '(\w+)'|field '\w+\.(\w+)'")


def _error(source: GraphQLError, message: str, code: str, **extensions: object) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=source.nodes,
        source=source.source,
        positions=source.positions,
        path=source.path,
        extensions={"code": code, **{k: v for k, v in extensions.items() if v is not None}},
    )


def _strip_echoed_value(message: str) -> tuple[str, str | None]:
    """graphql-core echoes a rejected variable's whole value; it may hold a password."""
    if m := _VARIABLE.match(message):
        field = m[2] or m[1]
        return f"Variable '${m[1]}' has an invalid value at '{field}': {m[3]}", field
    return message, None


def _field_holding(document: DocumentNode | None, nodes: list[Node] | None) -> str | None:
    """The argument or input-object field whose literal value the error points at."""
    if document is None or not nodes:
        return None
    target, found = nodes[0], []

    class Finder(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: object) -> None:
            if node.value is target:
                found.append(node.name.value)

        def enter_object_field(self, node: ObjectFieldNode, *_: object) -> None:
            if node.value is target:
                found.append(node.name.value)

    visit(document, Finder())
    return found[0] if found else None


def to_client_error(
    error: GraphQLError, request_id: str, document: DocumentNode | None = None
) -> GraphQLError:
    original = error.original_error
    if isinstance(original, DomainError):
        message, path = _strip_echoed_value(error.message)
        if not message.startswith("Variable"):
            message = original.message
        field = original.field or path or _field_holding(document, error.nodes)
        return _error(error, message, original.code, field=field, **original.extra)
    if (original is None or isinstance(original, GraphQLError)) and error.path is None:
        # Before execution: parsing, validation, variable coercion.
        if _TOO_COMPLEX.search(error.message):
            return _error(error, error.message, "QUERY_TOO_COMPLEX")
        message, field = _strip_echoed_value(error.message)
        if field is None:
            field = _field_holding(document, error.nodes)
        if field is None and (m := _ARGUMENT.search(message)):
            field = next(g for g in m.groups() if g)
        return _error(error, message, "BAD_USER_INPUT", field=field)
    log.error(
        "internal error request_id=%s path=%s %s",
        request_id,
        ".".join(str(p) for p in error.path or ()),
        describe_exception(original) if original is not None else error.message,
    )
    return _error(
        error,
        f"Internal server error. Quote request id {request_id} when reporting it.",
        "INTERNAL",
        requestId=request_id,
    )


def _operation_name(document: DocumentNode | None, provided: str | None) -> str | None:
    """The name of the operation that ran: the requested one if the document has it, else
    the document's only operation's name. (No lists built: this runs on every request.)"""
    if document is None:
        return None
    found, count = None, 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name is not None else None
            if provided is not None and name == provided:
                return name
            found, count = name, count + 1
    return found if provided is None and count == 1 else None


class ErrorCodes(SchemaExtension):
    """Give every error a code; mask unexpected ones and log them with the request id.
    Also tells the request's metrics which operation ran and whether errors went out."""

    def _rewrite(self, result: object) -> None:
        if not isinstance(result, (GraphQLExecutionResult, StrawberryExecutionResult)):
            return
        if result.errors:
            context = self.execution_context.context
            request_id = getattr(context, "request_id", "-")
            document = self.execution_context.graphql_document
            result.errors = [to_client_error(e, request_id, document) for e in result.errors]
            for error in result.errors:
                metrics.count_error(str((error.extensions or {}).get("code", "INTERNAL")))
            if (info := current_request.get()) is not None:
                info.graphql_errors = True

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        context = self.execution_context
        if (info := current_request.get()) is not None:
            name = _operation_name(context.graphql_document, context._provided_operation_name)
            info.operation = metrics.operation_label(name)
        if not self._streamed:
            self._rewrite(context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Each result of a subscription, before it reaches the client."""
        self._streamed = True
        self._rewrite(result)
        yield None
