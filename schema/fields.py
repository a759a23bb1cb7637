"""How a field with a resolver is declared: its description is the resolver's docstring; a mutation
runs in its own unit of work (schema/unit_of_work.py); a subscription's DataLoaders start
afresh with each item it pushes (schema/loaders.py)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import strawberry

from schema.loaders import LoadersPerItem
from schema.unit_of_work import UnitOfWorkPerMutation


def _description(resolver: Callable[..., Any]) -> str:
    doc = inspect.getdoc(resolver)
    assert doc, f"{resolver.__qualname__} needs a docstring: it is the field's description"
    return " ".join(doc.split())


def field(resolver: Callable[..., Any]) -> Any:
    """A field (of Query, or of an object type) resolved and described by ``resolver``."""
    return strawberry.field(resolver=resolver, description=_description(resolver))


def mutation(resolver: Callable[..., Any]) -> Any:
    """A mutation field that runs in its own unit of work."""
    return strawberry.mutation(
        resolver=resolver,
        description=_description(resolver),
        extensions=[UnitOfWorkPerMutation()],
    )


def subscription(resolver: Callable[..., Any]) -> Any:
    """A subscription field whose pushed items each read afresh."""
    return strawberry.subscription(
        resolver=resolver, description=_description(resolver), extensions=[LoadersPerItem()]
    )
