/**
 * What a Dynamo client remembers between writes: per record, the join of the contexts its
 * completed writes of that record returned. The next write of the record carries it, so it
 * replaces every version this client saw acknowledged; only writes of the same record still in
 * flight at once stay as siblings. Without it every update is a blind write, which loomkv (like
 * Riak with siblings on) keeps as one more sibling, until the key passes its sibling limit.
 * Contexts are signed by the cluster: only `cluster.joinContexts` can join two of them.
 */
import type { Cluster } from "../src/index.ts";

export class WriteContexts {
  readonly #cluster: Cluster;
  readonly #contexts: string[];

  constructor(cluster: Cluster, records: number) {
    this.#cluster = cluster;
    this.#contexts = new Array<string>(records).fill("");
  }

  /** Writes `value` to `key` (record `record`) with the context held for it, and keeps the new one. */
  async put(record: number, key: string | Uint8Array, value: Uint8Array): Promise<void> {
    const sent = this.#contexts[record]!;
    const { context } = await this.#cluster.put(key, value, sent === "" ? undefined : { context: sent });
    const held = this.#contexts[record]!;
    this.#contexts[record] = held === sent ? context : this.#cluster.joinContexts(key, [held, context]);
  }
}
