/**
 * Merging whole version sets of several keys into a node's store: a ring change's stream chunk, a
 * batch of hints handed back, a coordinator's every copy of a key. The merge is the replica side's
 * (applyReplicated), with a larger sibling bound than client writes get.
 */
import type { WriteOperation } from "../storage/store.ts";
import type { NodeStore } from "../storage/tracked_store.ts";
import type { Version } from "../storage/version_set_format.ts";
import { RingChangeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import { applyReplicated, siblingLimits } from "./replica_apply.ts";

/**
 * Streamed copies are merged with a larger sibling bound than client writes: refusing one would
 * abandon the whole ring change, and the union of two replicas' sets can exceed siblingsMax only
 * after writers ignored the limit's warnings.
 */
export const streamSiblingLimits = { siblingsWarn: siblingLimits.siblingsMax, siblingsMax: limits.versionsPerRecordMax };

export interface StreamEntry {
  readonly key: Uint8Array;
  readonly versions: readonly Version[];
}

/**
 * Merges whole version sets of several keys (a stream chunk, a batch of hints handed back) into
 * `store` as one atomic batch, durable once it resolves; returns the keys the store did not hold.
 * Throws RingChangeError when a key would pass the stream sibling bound (nothing is written).
 */
export async function mergeEntries(store: NodeStore, entries: readonly StreamEntry[]): Promise<number> {
  if (store.writeWouldWait) await store.whenWritable();
  let keysNew = 0;
  const operations: WriteOperation[] = [];
  const befores: Version[][] = [];
  for (const entry of entries) {
    const local = store.get(entry.key);
    if (local.length === 0) keysNew++;
    const applied = applyReplicated({ key: entry.key, localVersions: local, incoming: entry.versions, limits: streamSiblingLimits });
    if (!applied.ok) throw new RingChangeError(`key would hold ${applied.error.siblings} versions`);
    operations.push({ key: entry.key, kind: "put", versions: applied.versions });
    befores.push(local);
  }
  if (operations.length > 0) await store.write(operations, befores);
  return keysNew;
}
