#!/usr/bin/env python3
"""Smoke test: the self-hosted GraphiQL page renders in headless Chromium offline.

Serves ``walletql.graphiql.graphiql_html()`` at /graphql and walletql/static/graphiql
at /static/graphiql on 127.0.0.1, loads the page in headless Chromium with DNS
disabled for every host except 127.0.0.1, takes a screenshot and checks the dumped
DOM for GraphiQL's rendered markup.

Usage: .venv/bin/python scripts/graphiql_smoke.py --screenshot /tmp/giql.png
Exit codes: 0 ok, 1 GraphiQL did not render, 2 chromium not found.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "walletql" / "static" / "graphiql"
TOKEN = "smoke-token-123"
CHROMIUM_NAMES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
CDN_HOSTS = (
    "unpkg.com",
    "jsdelivr.net",
    "cdnjs.cloudflare.com",
    "esm.sh",
    "fonts.googleapis.com",
)


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def start_server(
    html: str, headers: dict[str, str]
) -> tuple[uvicorn.Server, threading.Thread, int]:
    async def page(request: Request) -> HTMLResponse:
        # With the page's real headers: the CSP must let GraphiQL render.
        return HTMLResponse(html, headers=headers)

    app = Starlette(
        routes=[
            Route("/graphql", page),
            Mount("/static/graphiql", StaticFiles(directory=STATIC_DIR), name="graphiql"),
        ]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            sys.exit("error: test server did not start")
        time.sleep(0.05)
    return server, thread, port


def run_chromium(chromium: str, url: str, extra: list[str]) -> str:
    with tempfile.TemporaryDirectory(prefix="giql-chromium-") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            # "Network off": nothing but 127.0.0.1 resolves.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--window-size=1280,800",
            *extra,
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        sys.exit(f"error: chromium exited with {proc.returncode}")
    return proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG output path")
    args = parser.parse_args()

    chromium = find_chromium()
    if chromium is None:
        print(
            "error: chromium not found (tried $CHROMIUM, " + ", ".join(CHROMIUM_NAMES) + ").\n"
            "Install it, e.g.: apt-get update && apt-get install -y chromium",
            file=sys.stderr,
        )
        return 2

    sys.path.insert(0, str(ROOT))
    from walletql.graphiql import graphiql_page

    html, headers = graphiql_page()
    server, thread, port = start_server(html, headers)
    base = f"http://127.0.0.1:{port}/graphql"
    try:
        shot = args.screenshot.resolve()
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.unlink(missing_ok=True)
        run_chromium(chromium, base, [f"--screenshot={shot}"])
        dom = run_chromium(chromium, base, ["--dump-dom"])
        dom_token = run_chromium(chromium, f"{base}?token={TOKEN}", ["--dump-dom"])
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    assets = b"".join(p.read_bytes() for p in STATIC_DIR.iterdir()).decode("utf-8", "replace")
    checks = {
        "page has no absolute (CDN) URL": "://" not in html,
        "static assets reference no CDN host": not any(h in assets for h in CDN_HOSTS),
        "DOM has .graphiql-container": 'class="graphiql-container"' in dom,
        "DOM has query editor": "graphiql-query-editor" in dom,
        "headers tab active and open": 'active" data-name="headers"' in dom
        and 'aria-label="Hide editor tools"' in dom,
        "headers pre-filled with placeholder": '"Bearer &lt;paste a token' in dom,
        "?token= pre-fills Bearer token": f'"Bearer {TOKEN}"</span>' in dom_token,
        f"screenshot written to {shot}": shot.is_file() and shot.stat().st_size > 0,
    }
    for name, ok in checks.items():
        print(f"[{'PASS' if ok else 'FAIL'}] {name}")
    if not all(checks.values()):
        print(f"--- dumped DOM (first 3000 chars) ---\n{dom[:3000]}", file=sys.stderr)
        return 1
    print("GraphiQL rendered from local assets only.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
