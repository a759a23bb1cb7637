// Compiled with the generated types: each scalar maps to the TypeScript type the README says.
import type {
  ActivityQuery,
  FeedSubscription,
  SendMutationVariables,
  SignMutation,
  WalletQuery,
} from "./out/graphql";

declare const wallet: WalletQuery;
declare const activity: ActivityQuery;
declare const feed: FeedSubscription;
declare const signed: SignMutation;

const address: `0x${string}` | undefined = wallet.me?.wallet.address;
const wei: bigint = BigInt(wallet.balance.wei);
const chainId: number = wallet.balance.chainId;
const maxCost: string = wallet.estimateFees.maxCost;
const createdAt: Date | undefined = wallet.me ? new Date(wallet.me.createdAt) : undefined;

const node = activity.transactions.edges[0]?.node;
const data: `0x${string}` | undefined = node?.data;
const kind: "SEND" | "CANCEL" | undefined = node?.attempts[0]?.kind;
const txType: "LEGACY" | "EIP1559" | undefined = node?.type;
const failure:
  | "REVERTED"
  | "REJECTED"
  | "NONCE_CONFLICT"
  | "DEAD_LETTER"
  | "RETRYING"
  | undefined = node?.error?.code;
const deployed: boolean = node?.to === null;

// The resume cursor goes back in as it came out.
const next: string = feed.myTransactions.userSeq;
const send: SendMutationVariables = {
  input: { to: address, value: "1000", password: "…", chainId },
};
const deploy: SendMutationVariables = { input: { data: "0x6000", password: "…" } };
const raw: `0x${string}` = signed.signTransaction.raw;

// @ts-expect-error a BigInt is a string, never a JavaScript number
const wrong: number = wallet.balance.wei;
// @ts-expect-error an Address is 0x-prefixed
const notAnAddress: SendMutationVariables = { input: { to: "dead", password: "…" } };

export { address, wei, maxCost, createdAt, kind, txType, failure, deployed, next, send, deploy, raw, data, wrong, notAnAddress };
