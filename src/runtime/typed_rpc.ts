/**
 * Control-plane calls between threads with comlink, with typed errors: `serve` exposes an object's
 * async methods on a MessagePort, `connect` returns a proxy whose methods return the same values
 * and reject with the same error classes (the error codec), since comlink alone keeps only an
 * error's name, message and stack. Used for the job pool (node → main) and for node control
 * (main → node). Values must be structured-cloneable; pass MessagePorts with `transfer`.
 *
 * Thread contract: each side uses its end of the port from the thread that owns it.
 */
/// <reference path="../types/comlink.d.ts" />
import { expose, transfer as comlinkTransfer, wrap } from "comlink/dist/esm/comlink.mjs";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import type { MessagePort } from "node:worker_threads";
import { decodeError, encodeError, type PlainError } from "../util/error_codec.ts";

type Settled = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: PlainError };

/** An API of async methods (every method's result is awaited on the other side). */
export type AsyncApi = { readonly [name: string]: (...args: never[]) => Promise<unknown> };

/** Serves `api` to the thread holding the other end of `port`. Close the port to stop. */
export function serve(api: AsyncApi, port: MessagePort): void {
  const settled: Record<string, (...args: unknown[]) => Promise<Settled>> = {};
  for (const name of Object.keys(api)) {
    const method = api[name] as unknown as (...args: unknown[]) => Promise<unknown>;
    settled[name] = async (...args: unknown[]): Promise<Settled> => {
      try {
        return { ok: true, value: await method(...args) };
      } catch (error) {
        return { ok: false, error: encodeError(error) };
      }
    };
  }
  expose(settled, nodeEndpoint(port));
}

/** The API served behind `port`: each call resolves with its value or rejects with its typed error. */
export function connect<Api extends AsyncApi>(port: MessagePort): Api {
  const remote = wrap<Record<string, (...args: unknown[]) => Promise<Settled>>>(nodeEndpoint(port));
  return new Proxy({} as Api, {
    get(_target, name) {
      if (typeof name !== "string") return undefined;
      return async (...args: unknown[]) => {
        const outcome = await remote[name]!(...args);
        if (outcome.ok) return outcome.value;
        throw decodeError(outcome.error);
      };
    },
  });
}

/** Marks `ports` inside `value` to be moved, not copied, by the next call (comlink's transfer). */
export function transfer<T>(value: T, ports: MessagePort[]): T {
  return comlinkTransfer(value, ports as unknown as Parameters<typeof comlinkTransfer>[1]);
}
