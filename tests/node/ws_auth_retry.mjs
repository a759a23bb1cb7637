// Counts how often a graphql-ws client connects when its token is refused or expires.
// Usage: node ws_auth_retry.mjs WS_URL TOKEN [FRESH_TOKEN]
// The client is set up as the README says: connectionParams is a function (TOKEN on the first
// connect, FRESH_TOKEN, when given, on later ones), and shouldRetry stops on an auth close
// unless the reason is an expired token. It holds one subscription open; after a reconnect it
// runs `{ me { sub } }` on the new socket. Prints one JSON line:
// {connects, acks, closes: [{code, reason}], data, error}.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, freshToken] = process.argv.slice(2);
const report = { connects: 0, acks: 0, closes: [], data: null, error: null };

const isAuthClose = (e) => e?.code === 4403 || e?.code === 4401;
const shouldRetry = (e) => !isAuthClose(e) || e.reason === "Token expired";

let reconnected;
const secondAck = new Promise((resolve) => (reconnected = resolve));
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  retryAttempts: 5,
  connectionParams: () => ({
    authorization: `Bearer ${report.connects > 1 && freshToken ? freshToken : token}`,
  }),
  shouldRetry,
  on: {
    connecting: () => report.connects++,
    connected: () => ++report.acks === 2 && reconnected(),
    closed: (e) => report.closes.push({ code: e.code, reason: e.reason }),
  },
});

const query = (q) =>
  new Promise((resolve, reject) => {
    let result = null;
    client.subscribe({ query: q }, {
      next: (value) => (result = value),
      error: reject,
      complete: () => resolve(result),
    });
  });

const deadline = setTimeout(() => {
  report.error = "timeout";
  console.log(JSON.stringify(report));
  process.exit(1);
}, 60_000);
try {
  const failed = new Promise((_, reject) => {
    client.subscribe({ query: "subscription { myTransactions { seq } }" }, {
      next: () => {},
      error: reject,
      complete: () => reject(new Error("subscription completed")),
    });
  });
  await Promise.race([failed, secondAck]);
  report.data = (await query("{ me { sub } }")).data;
} catch (e) {
  report.error = { code: e?.code ?? null, reason: e?.reason ?? String(e) };
}
clearTimeout(deadline);
console.log(JSON.stringify(report));
await client.dispose();
process.exit(0);
