// Apollo Client 3's persisted-query link and BatchHttpLink against walletql.
// Usage: node apollo_links.mjs HTTP_URL TOKEN. Prints one JSON line:
// {apq: {first, second, requests}, batch: {error}}; requests lists what each POST carried.
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client/core/index.js";
import { BatchHttpLink } from "@apollo/client/link/batch-http/index.js";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries/index.js";

const [api, token] = process.argv.slice(2);
const requests = [];
const recordingFetch = async (uri, init) => {
  const body = JSON.parse(init.body);
  const response = await fetch(uri, {
    ...init,
    headers: { ...init.headers, authorization: `Bearer ${token}` },
  });
  requests.push({
    query: typeof body.query === "string",
    hash: Boolean(body.extensions?.persistedQuery?.sha256Hash),
    status: response.status,
    type: response.headers.get("content-type"),
  });
  return response;
};

const CHAINS = gql`query Chains { chains { chainId isDefault } }`;
const persisted = createPersistedQueryLink({
  sha256: (text) => createHash("sha256").update(text).digest("hex"),
});
const apq = new ApolloClient({
  cache: new InMemoryCache(),
  link: persisted.concat(new HttpLink({ uri: `${api}/graphql`, fetch: recordingFetch })),
  defaultOptions: { query: { fetchPolicy: "network-only" } },
});
const first = (await apq.query({ query: CHAINS })).data;
const afterFirst = requests.length;
const second = (await apq.query({ query: CHAINS })).data;
const report = {
  apq: { first, second, requests: requests.splice(0), firstRequests: afterFirst },
  batch: {},
};

const batched = new ApolloClient({
  cache: new InMemoryCache(),
  link: new BatchHttpLink({ uri: `${api}/graphql`, fetch: recordingFetch, batchMax: 5 }),
});
try {
  await batched.query({ query: CHAINS });
  report.batch.error = null;
} catch (error) {
  const result = error.networkError?.result;
  report.batch.error = {
    status: error.networkError?.statusCode ?? null,
    codes: (result?.errors ?? error.graphQLErrors ?? []).map((e) => e.extensions?.code),
  };
}
console.log(JSON.stringify(report));
