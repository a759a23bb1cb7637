"""A page on another origin, in headless Chromium, uses `walletql serve` as `make run` starts it:
a query and a mutation over HTTP (CORS), and a subscription over the websocket.

Chromium is Debian's package (`make browser` installs it); playwright-core drives it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from testkit.anvil import NODE_DIR, NODE_MODULES
from testkit.env import walletql_env
from testkit.process import ServerProcess
from testkit.server import LiveServer
from tests.node_support import node_json, require_node_package
from walletql.devauth import DevSigner

PAGE = NODE_DIR / "browser" / "page.html"
GRAPHQL_WS = NODE_MODULES / "graphql-ws" / "umd" / "graphql-ws.min.js"


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.skip("chromium is not installed: run `make browser`")
    return found


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[str, Path]]:
    async with ServerProcess(walletql_env(database_url, tmp_path)) as serve:
        yield serve.url, tmp_path


def page_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", lambda _: FileResponse(PAGE)),
            Route("/graphql-ws.min.js", lambda _: FileResponse(GRAPHQL_WS)),
            Route("/favicon.ico", lambda _: Response(status_code=204)),
        ]
    )


async def test_a_page_on_another_origin_queries_mutates_and_subscribes(
    api: tuple[str, Path],
) -> None:
    browser = chromium()
    require_node_package("playwright-core")
    require_node_package("graphql-ws")
    base, data_dir = api
    token = DevSigner(data_dir).mint("alice")
    async with LiveServer(page_app()) as pages:
        # localhost, not 127.0.0.1: another origin than the API's, as a Vite dev server is.
        url = f"http://localhost:{pages.port}/?api={base}&token={token}"
        result = await node_json(
            "browser/run_page.mjs", url, timeout=180, env={"CHROMIUM": browser}
        )
    assert result["ok"], result
    assert result["origin"] == f"http://localhost:{pages.port}"
    assert result["query"]["me"] is None
    assert result["query"]["chains"][0]["isDefault"] is True
    assert result["mutation"]["created"]["sub"] == "alice"
    assert result["mutation"]["submitted"]["status"] == "QUEUED"
    statuses = result["subscription"]
    assert statuses[0] == "QUEUED"
    assert statuses[-1] == "CONFIRMED"
    assert result["problems"] == []
