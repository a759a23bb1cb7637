"""Automatic persisted queries (Apollo's APQ protocol, version 1), with a bounded cache.

A client first sends only ``extensions.persistedQuery.sha256Hash``; an unknown hash gets the
error ``PERSISTED_QUERY_NOT_FOUND``, and the client sends the query with its hash once, which
is checked and remembered. The cache is per process, bounded in entries and in bytes; a miss
(another process, an eviction, a restart) costs the client one round trip, never an error.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import replace

from strawberry.http import GraphQLRequestData

from walletql.rejections import RequestRejected

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PersistedQueryNotFound(RequestRejected):
    def __init__(self) -> None:
        # Apollo's link matches the message or the code; status 200 under application/json
        # (as Apollo Server answers), 400 under application/graphql-response+json.
        super().__init__(200, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")


class PersistedQueries:
    """Queries by sha256 hash: least recently used first out, at most ``max_entries`` and
    ``max_bytes`` of query text."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._queries: OrderedDict[str, str] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._queries)

    def resolve(self, data: GraphQLRequestData) -> GraphQLRequestData:
        """The request with its query filled in from the cache, when it names one."""
        persisted = (data.extensions or {}).get("persistedQuery")
        if persisted is None:
            return data
        digest = _hash_of(persisted)
        if data.query is None:
            query = self._queries.get(digest)
            if query is None:
                raise PersistedQueryNotFound()
            self._queries.move_to_end(digest)
            return replace(data, query=query)
        if hashlib.sha256(data.query.encode()).hexdigest() != digest:
            raise RequestRejected(
                400, "BAD_REQUEST", "persistedQuery.sha256Hash does not match query"
            )
        self._remember(digest, data.query)
        return data

    def _remember(self, digest: str, query: str) -> None:
        size = len(query.encode())
        if digest in self._queries or size > self._max_bytes:
            return
        self._queries[digest] = query
        self._bytes += size
        while len(self._queries) > self._max_entries or self._bytes > self._max_bytes:
            _, evicted = self._queries.popitem(last=False)
            self._bytes -= len(evicted.encode())


def _hash_of(persisted: object) -> str:
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise RequestRejected(400, "BAD_REQUEST", "persistedQuery must be {version: 1, sha256Hash}")
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise RequestRejected(
            400, "BAD_REQUEST", "persistedQuery.sha256Hash must be 64 lowercase hex digits"
        )
    return digest
