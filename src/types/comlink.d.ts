/**
 * comlink's ESM builds have no .d.mts files beside them; these point tsc at the package's own
 * types. Node and Deno both load the ESM files (the package's main is a UMD build).
 */
declare module "comlink/dist/esm/comlink.mjs" {
  export * from "comlink";
}

declare module "comlink/dist/esm/node-adapter.mjs" {
  import type { Endpoint } from "comlink";
  /** Adapts a node:worker_threads MessagePort (on/off 'message') to comlink's Endpoint. */
  export default function nodeEndpoint(port: {
    postMessage(message: unknown, transfer?: readonly unknown[]): void;
    on(event: "message", listener: (value: unknown) => void): unknown;
    off(event: "message", listener: (value: unknown) => void): unknown;
    start?: () => void;
  }): Endpoint;
}
