/**
 * The rebuild of a node's Merkle trees as a scan-job folder (src/storage/scan_job.ts): runs in a
 * pool thread over a pinned snapshot of the node's store, and returns per peer the leaves of the
 * tree over the keys both replicate, plus the keys holding only tombstones (purge candidates).
 * The same fold runs in-thread when the store cannot pin a snapshot (a failed store). Pure.
 */
import { keyPosition } from "../ring/hash_ring.ts";
import { placementOf, type RingSpec } from "../ring/ring_spec.ts";
import type { EntryFolder, FolderReference, ScannedEntry } from "../storage/scan_job.ts";
import { decodeVersion } from "../version/version_codec.ts";
import { itemHash, segmentAt } from "./item_hash.ts";

export interface TreeBuildParams {
  readonly self: number;
  readonly ring: RingSpec;
  readonly buckets: number;
}

export interface TombstoneKey {
  readonly key: Uint8Array;
  /** Newest dot timestamp among its tombstones (when it was deleted). */
  readonly deletedAtMs: number;
}

export interface TreeBuild {
  /** Peers this node shares keys with, and each one's leaves as (high, low) pairs, in step. */
  readonly peers: number[];
  readonly leaves: Uint32Array[];
  readonly tombstones: TombstoneKey[];
  readonly keys: number;
}

/** The newest dot timestamp of a set of tombstones, or undefined when any version is live. */
export function deletedAtOf(versions: readonly { version: Uint8Array; value: Uint8Array | null }[]): number | undefined {
  let newest = 0;
  for (const version of versions) {
    if (version.value !== null) return undefined;
    newest = Math.max(newest, decodeVersion(version.version).dot.timestampMs);
  }
  return versions.length > 0 ? newest : undefined;
}

export function buildTrees(params: TreeBuildParams, entries: Iterable<ScannedEntry>): TreeBuild {
  const placement = placementOf(params.ring);
  const leavesOf = new Map<number, Uint32Array>();
  const tombstones: TombstoneKey[] = [];
  let keys = 0;
  for (const { key, versions } of entries) {
    keys++;
    const position = keyPosition(key);
    const replicas = placement.ring.preferenceListAt(position, placement.n);
    if (!replicas.includes(params.self)) continue;
    const segment = segmentAt(position, params.buckets);
    const hash = itemHash(key, versions);
    for (const peer of replicas) {
      if (peer === params.self) continue;
      let leaves = leavesOf.get(peer);
      if (!leaves) leavesOf.set(peer, (leaves = new Uint32Array(params.buckets * 2)));
      leaves[segment * 2] = (leaves[segment * 2]! ^ hash.high) >>> 0;
      leaves[segment * 2 + 1] = (leaves[segment * 2 + 1]! ^ hash.low) >>> 0;
    }
    const deletedAtMs = deletedAtOf(versions);
    if (deletedAtMs !== undefined) tombstones.push({ key, deletedAtMs });
  }
  const peers = [...leavesOf.keys()].sort((a, b) => a - b);
  return { peers, leaves: peers.map((peer) => leavesOf.get(peer)!), tombstones, keys };
}

export const treeBuildFolder: EntryFolder = {
  fold: (params, entries) => buildTrees(params as TreeBuildParams, entries),
};

export const treeBuildFolderReference: FolderReference = { moduleUrl: import.meta.url, exportName: "treeBuildFolder" };
