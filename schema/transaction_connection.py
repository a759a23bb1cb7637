"""The page of transactions: cursor pagination's edges and page info."""

# Annotations are evaluated where they stand (no __future__ import): see schema/__init__.py.

import strawberry

from schema.transaction_types import TransactionType
from services.records import Transaction
from services.transaction_queries import encode_cursor


@strawberry.type(name="TransactionEdge")
class TransactionEdge:
    cursor: str
    node: TransactionType


@strawberry.type(name="PageInfo")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(name="TransactionConnection")
class TransactionConnection:
    edges: list[TransactionEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, rows: list[Transaction], has_next: bool) -> "TransactionConnection":
        edges = [
            TransactionEdge(cursor=encode_cursor(t), node=TransactionType.from_model(t))
            for t in rows
        ]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=PageInfo(has_next_page=has_next, end_cursor=end))
