"""What the services hand to the edges, named here so that the layers above ``services/``
(schema, resolvers, the composition roots) never import ``db/``: the stored records they map
to GraphQL types, and the unit of work the edges open."""

from __future__ import annotations

from db.models import Transaction, TransactionAttempt, TransactionEvent
from db.repositories import UserProfile
from db.unit_of_work import UnitOfWork, UnitsOfWork

__all__ = [
    "Transaction",
    "TransactionAttempt",
    "TransactionEvent",
    "UnitOfWork",
    "UnitsOfWork",
    "UserProfile",
]
