"""Self-hosted GraphiQL page: every asset comes from ``walletql/static/graphiql``."""

from __future__ import annotations

import html
import json
import secrets

PLACEHOLDER_TOKEN = "<paste a token from `walletql token SUB`>"  # noqa: S105

DEFAULT_QUERY = """# walletql: your embedded Ethereum wallet over GraphQL.
# The Headers tab below carries your token. New here? Run createUser first:
#
# mutation {
#   createUser(input: {password: "correct horse battery staple"}) {
#     id wallet { address }
#   }
# }

query Me {
  me { id sub username wallet { address } createdAt }
}
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>walletql GraphiQL</title>
<link rel="stylesheet" href="{prefix}/graphiql.min.css">
<style nonce="{nonce}">html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL...</div>
<script src="{prefix}/react.production.min.js"></script>
<script src="{prefix}/react-dom.production.min.js"></script>
<script nonce="{nonce}">window.__webpack_nonce__ = {nonce_js};</script>
<script src="{prefix}/graphiql.min.js"></script>
<script nonce="{nonce}">
(() => {{
  const url = new URL({endpoint}, location.href);
  const wsUrl = new URL(url);
  wsUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const token = new URLSearchParams(location.search).get("token");
  const headers = JSON.stringify(
    {{ Authorization: "Bearer " + (token || {placeholder}) }}, null, 2);
  const base = GraphiQL.createFetcher({{
    url: url.href, subscriptionUrl: wsUrl.href }});
  // For each subscription, createFetcher (@graphiql/toolkit 0.11) opens a
  // new graphql-ws client with connectionParams = {{...wsConnectionParams,
  // ...<headers editor JSON>}}. Lowercasing the keys turns the editor's
  // "Authorization" into the {{"authorization": "Bearer ..."}} payload that
  // the server reads from connection_init. HTTP header names are
  // case-insensitive, so POST requests behave the same.
  const fetcher = (params, opts) => base(params, opts && opts.headers ? {{
    ...opts,
    headers: Object.fromEntries(Object.entries(opts.headers).map(
      ([k, v]) => [k.toLowerCase(), v])),
  }} : opts);
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher,
      isHeadersEditorEnabled: true,
      defaultQuery: {default_query},
      defaultEditorToolsVisibility: "headers",
      // `headers` wins over tabs stored in localStorage; `defaultHeaders`
      // only fills a fresh session, so the placeholder never clobbers them.
      ...(token ? {{ headers }} : {{ defaultHeaders: headers }}),
    }}));
}})();
</script>
</body>
</html>
"""


def _js(value: str) -> str:
    """JSON-encode ``value`` so it is safe inside an inline <script>."""
    dumped = json.dumps(value)
    return dumped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def graphiql_html(
    endpoint: str = "/graphql", static_prefix: str = "/static/graphiql", nonce: str = ""
) -> str:
    """Return the GraphiQL page for ``endpoint``; assets come from ``static_prefix``. Its
    inline script and style carry ``nonce`` (see ``security_headers``)."""
    return _PAGE.format(
        nonce=html.escape(nonce, quote=True),
        nonce_js=_js(nonce),
        prefix=html.escape(static_prefix.rstrip("/"), quote=True),
        endpoint=_js(endpoint),
        placeholder=_js(PLACEHOLDER_TOKEN),
        default_query=_js(DEFAULT_QUERY),
    )


def graphiql_page(
    endpoint: str = "/graphql", static_prefix: str = "/static/graphiql"
) -> tuple[str, dict[str, str]]:
    """The page and its headers, with a fresh nonce."""
    nonce = secrets.token_urlsafe(18)
    return graphiql_html(endpoint, static_prefix, nonce), security_headers(nonce)


def security_headers(nonce: str) -> dict[str, str]:
    """Headers for the GraphiQL page: a CSP that allows our own assets, the page's inline
    script and style by nonce (GraphiQL's dialogs add style elements with that nonce, read
    from ``__webpack_nonce__``), and fetches and websockets to this origin only."""
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "content-security-policy": policy,
        "x-content-type-options": "nosniff",
        # The page's URL may carry ?token=…: never send it to another site.
        "referrer-policy": "no-referrer",
    }
