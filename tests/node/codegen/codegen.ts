// GraphQL Code Generator for walletql, as the README shows it. The test runs it with the schema,
// documents and output paths in WALLETQL_CODEGEN_* (defaults: this repository's layout).
import type { CodegenConfig } from "@graphql-codegen/cli";

const out = process.env.WALLETQL_CODEGEN_OUT ?? "out/graphql.ts";

const config: CodegenConfig = {
  schema: process.env.WALLETQL_CODEGEN_SCHEMA ?? "../../../schema.graphql",
  documents: process.env.WALLETQL_CODEGEN_DOCUMENTS ?? "operations.graphql",
  generates: {
    [out]: {
      plugins: ["typescript-operations"],
      config: {
        strictScalars: true,
        enumType: "string-literal",
        scalars: {
          Address: "`0x${string}`",
          BigInt: "string",
          ChainId: "number",
          DateTime: "string",
          Hex: "`0x${string}`",
          JSON: "unknown",
        },
      },
    },
  },
};

export default config;
