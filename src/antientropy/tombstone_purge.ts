/**
 * The purge of keys holding only tombstones (docs/anti-entropy.md). Keeps the pending keys (noted
 * as writes or a rebuild's scan find them) with when each other replica was seen to hold the
 * tombstone (an agreement on its segment after this node took it) or said it holds nothing for the
 * key, in which life; purges a key `tombstoneGraceMs` after its delete once every other replica
 * holds it or nothing, and no hint may hold an older version. Requires the injected options, the
 * trees (replicas, bucket count, rebuild under way), the agreements, and whether the node stopped.
 * Pure over the injected store and clock.
 */
import type { Version } from "../storage/version_set_format.ts";
import { dominanceMergeRule } from "../version/sibling_merge_rule.ts";
import { decodeVersion } from "../version/version_codec.ts";
import type { AntiEntropyOptions } from "./anti_entropy_options.ts";
import type { AntiEntropyCounters } from "./anti_entropy_stats.ts";
import { itemHash, segmentOf } from "./item_hash.ts";
import type { SegmentAgreements } from "./segment_agreements.ts";
import { deletedAtOf, type TombstoneKey } from "./tree_build.ts";
import type { TreeUpkeep } from "./tree_upkeep.ts";

interface Pending {
  readonly key: Uint8Array;
  /** Newest dot timestamp of its tombstones. */
  readonly deletedAtMs: number;
  /** Wall time this node took the tombstones (or rebuilt its trees over them). */
  readonly notedAtMs: number;
  /** Peers seen to hold the tombstone: when (an agreement on its segment after notedAtMs), in which life. */
  readonly heldBy: Map<number, Sighting>;
  /** Peers that said they hold nothing for the key: when, in which life. */
  readonly absentAt: Map<number, Sighting>;
  /**
   * Since when no hint anywhere may hold an older version (purgeAllowed held at every check since);
   * undefined while it does not. A peer's "nothing" said before then may have been refilled by a
   * hint since, so it does not count.
   */
  allowedSinceMs: number | undefined;
}

/** A key this node purged in this life: the tombstones it dropped, and when (wall time). */
interface Purged {
  readonly key: Uint8Array;
  readonly versions: readonly Version[];
  readonly atMs: number;
}

interface Sighting {
  readonly atMs: number;
  readonly generation: number;
}

export interface TombstonePurgeParts {
  readonly options: AntiEntropyOptions;
  readonly stats: AntiEntropyCounters;
  readonly trees: TreeUpkeep;
  readonly agreements: SegmentAgreements;
  /** Whether the node stopped its anti-entropy. */
  readonly stopped: () => boolean;
}

export class TombstonePurge {
  readonly #options: AntiEntropyOptions;
  readonly #stats: AntiEntropyCounters;
  readonly #trees: TreeUpkeep;
  readonly #agreements: SegmentAgreements;
  readonly #stopped: () => boolean;
  readonly #tombstones = new Map<string, Pending>();
  /**
   * Keys this node purged in this life and has held nothing of since, until every other replica
   * agreed on their segment after the purge (then none holds the tombstone to offer it again).
   */
  readonly #purged = new Map<string, Purged>();
  #purging = false;

  constructor(parts: TombstonePurgeParts) {
    this.#options = parts.options;
    this.#stats = parts.stats;
    this.#trees = parts.trees;
    this.#agreements = parts.agreements;
    this.#stopped = parts.stopped;
  }

  /** Keys holding only tombstones, waiting for their grace and their replicas' agreement. */
  get pending(): number {
    return this.#tombstones.size;
  }

  clear(): void {
    this.#tombstones.clear();
    this.#purged.clear();
  }

  /** A write landed: only a key that held or now holds nothing but tombstones is (or becomes) a purge candidate. */
  onWrite(key: Uint8Array, before: readonly Version[], after: readonly Version[]): void {
    if (this.#purged.size > 0 && after.length > 0) this.#purged.delete(hexOf(key));
    const deletedAtMs = deletedAtOf(after);
    if (deletedAtMs === undefined && deletedAtOf(before) === undefined) return;
    const id = hexOf(key);
    if (deletedAtMs === undefined) this.#tombstones.delete(id);
    else this.#tombstones.set(id, { key: key.slice(), deletedAtMs, notedAtMs: this.#options.clock.wallMs(), heldBy: new Map(), absentAt: new Map(), allowedSinceMs: undefined });
  }

  /** A rebuild's scan found these tombstone-only keys; those not pending yet are noted at `notedAtMs`. */
  onScanned(tombstones: readonly TombstoneKey[], notedAtMs: number): void {
    // A rebuild (a start, a new ring or bucket count): the replicas of what was purged may have
    // changed; a purged key offered again is then stored again, which is always safe.
    this.#purged.clear();
    for (const { key, deletedAtMs } of tombstones) {
      const id = hexOf(key);
      if (!this.#tombstones.has(id)) this.#tombstones.set(id, { key, deletedAtMs, notedAtMs, heldBy: new Map(), absentAt: new Map(), allowedSinceMs: undefined });
    }
  }

  /** `from` said it holds nothing for `keys` (it declined to store their expired tombstones). */
  onPurged(from: number, keys: readonly Uint8Array[]): void {
    const sighting = { atMs: this.#options.clock.wallMs(), generation: this.#options.generationOf(from) };
    for (const key of keys) this.#tombstones.get(hexOf(key))?.absentAt.set(from, sighting);
  }

  /**
   * Whether every other replica of a pending tombstone's key (but `except`, when given) holds it,
   * or holds nothing for it. A peer holds it once it agreed on the key's segment after this node
   * took the tombstone (the first such sighting is kept). A peer that said it holds nothing counts
   * only if it said so after every other peer was seen holding the tombstone: from then on no
   * replica holds an older value without the tombstone, so nothing can refill the empty peer with
   * one. Sightings from an earlier life of a peer do not count (a restart may have lost what it
   * held in memory).
   */
  #heldEverywhere(pending: Pending, segment: number, except?: number): boolean {
    let heldSinceMs = 0;
    const absent: Sighting[] = [];
    for (const peer of this.#trees.peersOf(pending.key)) {
      if (peer === except) continue;
      const held = this.#heldBy(pending, peer, segment);
      if (held) {
        heldSinceMs = Math.max(heldSinceMs, held.atMs);
        continue;
      }
      const gone = pending.absentAt.get(peer);
      if (!gone || gone.generation !== this.#options.generationOf(peer)) return false;
      absent.push(gone);
    }
    const since = Math.max(heldSinceMs, pending.allowedSinceMs ?? Number.POSITIVE_INFINITY);
    return absent.every((gone) => gone.atMs > since);
  }

  /** When `peer`, in its current life, was first seen holding the pending tombstone (undefined: not yet). */
  #heldBy(pending: Pending, peer: number, segment: number): Sighting | undefined {
    const generation = this.#options.generationOf(peer);
    let held = pending.heldBy.get(peer);
    if (held && held.generation !== generation) {
      pending.heldBy.delete(peer);
      held = undefined;
    }
    if (!held && this.#agreements.agreedSince(peer, segment, pending.notedAtMs)) {
      held = { atMs: this.#agreements.agreedAt(peer, segment), generation };
      pending.heldBy.set(peer, held);
    }
    return held;
  }

  /**
   * Whether every replica of `key` but `receiver` holds its tombstone or nothing, as the purge
   * counts it (#heldEverywhere). Only then may `receiver`, holding nothing for the key, decline
   * the expired tombstone and say so (aePurged): no other replica is left with a value the
   * tombstone deletes. Holding nothing is not proof of a purge: a replica wiped after the delete,
   * offered the tombstone while another replica may still hold the deleted value, must store it,
   * or a read answered by it and that replica brings the value back (and the delete lives on
   * fewer replicas than it was acknowledged by).
   */
  heldByAllBut(key: Uint8Array, receiver: number): boolean {
    const pending = this.#tombstones.get(hexOf(key));
    return pending !== undefined && this.#heldEverywhere(pending, segmentOf(key, this.#trees.buckets), receiver);
  }

  /**
   * Whether this node purged `key` in this life, holding exactly tombstones that cover `versions`
   * (they add nothing to them), and has held nothing of it since. When it purged, every other
   * replica held the tombstones or nothing (#heldEverywhere), so `versions` offered again may be
   * declined (aePurged) rather than stored and purged once more.
   */
  purgedHere(key: Uint8Array, versions: readonly Version[]): boolean {
    const purged = this.#purged.get(hexOf(key));
    if (!purged) return false;
    const merged = dominanceMergeRule.merge([...purged.versions, ...versions]);
    const [a, b] = [itemHash(key, merged), itemHash(key, purged.versions)];
    return a.high === b.high && a.low === b.low;
  }

  /** Purges the tombstone-only keys past their grace that every other replica holds. */
  async purge(): Promise<void> {
    if (this.#purging) return;
    this.#purging = true;
    try {
      const { tombstoneGraceMs } = this.#options.config();
      const nowMs = this.#options.clock.wallMs();
      for (const [id, purged] of this.#purged) {
        const segment = segmentOf(purged.key, this.#trees.buckets);
        if (this.#trees.peersOf(purged.key).every((peer) => this.#agreements.agreedSince(peer, segment, purged.atMs))) this.#purged.delete(id);
      }
      for (const [id, pending] of [...this.#tombstones]) {
        if (this.#stopped() || this.#trees.building) return;
        if (!this.#options.purgeAllowed(pending.deletedAtMs)) {
          pending.allowedSinceMs = undefined;
          continue;
        }
        pending.allowedSinceMs ??= nowMs;
        if (nowMs - pending.deletedAtMs < tombstoneGraceMs) continue;
        const segment = segmentOf(pending.key, this.#trees.buckets);
        if (!this.#heldEverywhere(pending, segment)) continue;
        const versions = this.#options.store.get(pending.key);
        if (deletedAtOf(versions) === undefined) {
          this.#tombstones.delete(id);
          continue;
        }
        try {
          if (await this.#options.purge(pending.key, versions)) {
            this.#stats.tombstonesPurged++;
            // Still empty (a write landing since would have made the record stale).
            if (this.#options.store.get(pending.key).length === 0) this.#purged.set(id, { key: pending.key, versions, atMs: this.#options.clock.wallMs() });
          }
        } catch {
          return; // the store refuses writes: try again next round
        }
      }
    } finally {
      this.#purging = false;
    }
  }

  /** Whether versions are older than the tombstone grace (their newest dot). */
  expired(versions: readonly Version[]): boolean {
    if (versions.length === 0) return false;
    let newestMs = 0;
    for (const version of versions) newestMs = Math.max(newestMs, decodeVersion(version.version).dot.timestampMs);
    return this.#options.clock.wallMs() - newestMs > this.#options.config().tombstoneGraceMs;
  }
}

function hexOf(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}
