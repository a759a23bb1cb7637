// Submit a transaction and print each status as walletql pushes it (Node, graphql-ws).
//   cd examples/node && npm install
//   TOKEN=$(uv run -q walletql token alice) node subscribe.mjs "$TOKEN" "correct horse battery staple"
// In a browser, drop the `webSocketImpl` line: graphql-ws uses the browser's WebSocket.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [token, password] = process.argv.slice(2);
const client = createClient({
  url: "ws://127.0.0.1:8000/graphql",
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
});

const run = (query, variables) =>
  new Promise((resolve, reject) => {
    let result;
    client.subscribe({ query, variables }, {
      next: (value) => (result = value),
      error: reject,
      complete: () => resolve(result),
    });
  });

const submitted = await run(
  `mutation($password: String!) {
     submitTransaction(input: {
       to: "0x000000000000000000000000000000000000dEaD", value: "1000", password: $password
     }) { id status }
   }`,
  { password },
);
if (submitted.errors) throw new Error(JSON.stringify(submitted.errors));
const id = submitted.data.submitTransaction.id;
console.log("submitted", id);

const events = client.iterate({
  query: `subscription($id: ID!) {
    transactionStatus(id: $id, afterSeq: 0) { seq status reason transaction { hash } }
  }`,
  variables: { id },
});
for await (const { data, errors } of events) {
  if (errors) throw new Error(JSON.stringify(errors));
  const e = data.transactionStatus;
  console.log(e.seq, e.status, e.reason ?? "", e.transaction.hash);
}
await client.dispose();
