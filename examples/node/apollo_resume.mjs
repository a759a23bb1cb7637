// Apollo Client 3 following every status of your transactions, resuming without duplicates or
// gaps after the connection (or the server) goes away: the README's client set-up, runnable.
//   cd examples/node && npm install
//   TOKEN=$(uv run walletql token alice) node apollo_resume.mjs http://127.0.0.1:8000 "$TOKEN"
// Prints one JSON line per event: {userSeq, seq, status, transactionId}. With a third
// argument N it exits after N events (tests/test_apollo_example.py runs it that way).
// In a browser, drop the `webSocketImpl` line: graphql-ws uses the browser's WebSocket.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql, split } from "@apollo/client/core/index.js";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions/index.js";
import { getMainDefinition } from "@apollo/client/utilities/index.js";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [api = "http://127.0.0.1:8000", token = process.env.TOKEN, count] = process.argv.slice(2);
// Replace with your auth provider's call (e.g. Dynamic's getAuthToken()): it runs on every
// (re)connect, so a reconnect after expiry sends a fresh token.
const getFreshToken = async () => token;

const wsClient = createClient({
  url: `${api.replace(/^http/, "ws")}/graphql`,
  webSocketImpl: WebSocket,
  connectionParams: async () => ({ authorization: `Bearer ${await getFreshToken()}` }),
  // A refused token is final; an expired one is worth one reconnect with a fresh token.
  shouldRetry: (e) => !(e?.code === 4403 || e?.code === 4401) || e.reason === "Token expired",
  // Keep trying while the server restarts: 0.5 s, 1 s, 2 s, then every 3 s.
  retryAttempts: Infinity,
  retryWait: (retries) => new Promise((r) => setTimeout(r, Math.min(500 * 2 ** retries, 3000))),
});

// graphql-ws resends the same payload on every reconnect, and GraphQLWsLink passes the
// operation's variables into it by reference: keeping afterSeq at the last event seen makes
// each resubscription start right after it.
const resumeLink = new ApolloLink((operation, forward) => {
  operation.variables = { ...operation.variables };
  return forward(operation).map((result) => {
    for (const event of Object.values(result.data ?? {})) {
      const cursor = event?.userSeq ?? event?.seq;
      if (cursor != null) operation.variables.afterSeq = cursor;
    }
    return result;
  });
});

const isSubscription = ({ query }) => {
  const definition = getMainDefinition(query);
  return definition.kind === "OperationDefinition" && definition.operation === "subscription";
};

const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: split(
    isSubscription,
    resumeLink.concat(new GraphQLWsLink(wsClient)),
    new HttpLink({
      uri: `${api}/graphql`,
      fetch: async (uri, init) =>
        fetch(uri, {
          ...init,
          headers: { ...init.headers, authorization: `Bearer ${await getFreshToken()}` },
        }),
    }),
  ),
});

const FEED = gql`
  subscription Feed($afterSeq: BigInt) {
    myTransactions(afterSeq: $afterSeq) { userSeq seq status transactionId }
  }
`;

let seen = 0;
// afterSeq "0": every event of yours from the start. Keep the last userSeq somewhere durable
// (localStorage) and start from it instead, to resume across page loads too.
client.subscribe({ query: FEED, variables: { afterSeq: "0" } }).subscribe({
  next: ({ data, errors }) => {
    if (errors) {
      console.error(JSON.stringify(errors));
      process.exit(1);
    }
    const { userSeq, seq, status, transactionId } = data.myTransactions;
    console.log(JSON.stringify({ userSeq, seq, status, transactionId }));
    if (count && ++seen >= Number(count)) {
      wsClient.dispose();
      process.exit(0);
    }
  },
  error: (error) => {
    console.error(String(error));
    process.exit(1);
  },
});
