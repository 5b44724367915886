/**
 * The coordinator's state machine for one write (put or delete) of one key.
 *
 * The coordinator is the key's first live replica. `createPutSession` stamps the new version with
 * a dotted version vector (actor = self, past = the client's context), merges it into the key's
 * local versions (`sync`), and returns effects: store that post-write set locally, and send the
 * WHOLE set to every other replica (docs/versioning.md: context ranges are exact only if whole sets
 * travel). `onReply` and `onTick` then feed in acknowledgements, refusals and time, and return one
 * respond effect, exactly once:
 * - success as soon as W replicas acknowledged (the local store is one of them once the caller
 *   reports it with `onReply(session, self, ok)`);
 * - failure (LOOM_QUORUM) as soon as W acknowledgements are impossible (more than N - W refused),
 *   or when `nowMs` reaches `deadlineMs` first.
 * After the response every input is ignored. Pure: no clock, timer, port or storage access; the
 * caller owns all of that and sets a timer for `deadlineMs`. See docs/coordinator.md.
 */
import type { Version } from "../storage/version_set_format.ts";
import { assert } from "../util/assert.ts";
import { describe, LoomRangeError, LoomTypeError } from "../util/errors.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { type CausalContext, join, update } from "../version/dotted_version_vector.ts";
import { decodeVersion, encodeContext, encodeVersion } from "../version/version_codec.ts";
import type { QuorumFailure } from "./quorum_error.ts";
import {
  applyReplicated,
  type SiblingLimits,
  siblingLimits as defaultSiblingLimits,
  type SiblingWarning,
  type TooManySiblingsFailure,
} from "./replica_apply.ts";
import { checkSessionBasics, checkSigner } from "./session_checks.ts";

export interface PutSessionOptions {
  /** The caller's id for the request; echoed in every message and in the response. */
  readonly requestId: number;
  /** The key, already validated (non-empty, within limits.keyBytesMax). */
  readonly key: Uint8Array;
  /** The value to write, or null for a delete (a tombstone). */
  readonly value: Uint8Array | null;
  /**
   * The client's context, decoded and verified for this key (decodeContext with the cluster's
   * signer: never a context the client could have made up), or emptyContext for a blind write.
   */
  readonly context: CausalContext;
  /** Signs the context the session returns, bound to `key` (docs/versioning.md). */
  readonly signer: ContextSigner;
  /** The key's N replicas, this node first. */
  readonly preferenceList: readonly number[];
  /** This node's id: the actor of the new version's dot. */
  readonly self: number;
  /** The actor of the new version's dot (this node's current life). @default self */
  readonly actor?: number;
  /** Acknowledgements required, 1..N. */
  readonly w: number;
  /**
   * While the ring changes (docs/reconfiguration.md), the write must reach W replicas of the
   * old set AND W of the new one: each group here needs min(w, group size) acknowledgements.
   * Every node of every group must be in `preferenceList`. @default [preferenceList]
   */
  readonly quorumGroups?: readonly (readonly number[])[];
  /**
   * Sloppy quorum with `pw` (Riak's primary write quorum): of the acknowledgements, at least
   * `needed` must come from these nodes, the key's primaries (fallbacks holding hints do not
   * count). @default none
   */
  readonly primaryQuorum?: { readonly nodes: readonly number[]; readonly needed: number };
  /** How long after `nowMs` the session gives up. */
  readonly timeoutMs: number;
  readonly nowMs: number;
  /** Every version the local store holds for the key now, tombstones included. */
  readonly localVersions: readonly Version[];
  /** Most entries the new version's past keeps (the cluster's current setting). */
  readonly pruneThreshold: number;
  /** This node's wall time for the dot; orders siblings and pruning only. */
  readonly timestampMs: number;
  /** Lowest counter the dot may take: a per-node counter that only grows (see `update`). */
  readonly counterFloor: number;
  /** @default siblingLimits from replica_apply.ts */
  readonly siblingLimits?: SiblingLimits;
}

export interface ReplicateMessage {
  readonly type: "replicate";
  readonly requestId: number;
  readonly key: Uint8Array;
  readonly versions: readonly Version[];
}

export type PutResult =
  | {
      readonly ok: true;
      /** Replicas that had acknowledged when the session answered (W of them). */
      readonly acknowledged: number;
      /**
       * Encoded context of the key's versions at the coordinator after the write (the new one and
       * the concurrent siblings it kept): pass it with the next write, which then replaces `values`.
       */
      readonly context: string;
      /**
       * The non-tombstone values that context covers, newest first: the written value and the
       * siblings it did not replace. A context covers whole actors' histories up to a counter, so
       * the coordinator's siblings are returned with it (as Riak's return_body does): the client
       * sees everything its next write will replace.
       */
      readonly values: readonly Uint8Array[];
    }
  | { readonly ok: false; readonly error: QuorumFailure | TooManySiblingsFailure };

export type PutEffect =
  /** Merge `versions` into the local record for `key`, then report with onReply(self, ok). */
  | { readonly kind: "store-local"; readonly key: Uint8Array; readonly versions: readonly Version[] }
  /** Send `message` to node `to`; its acknowledgement comes back through onReply(to, ok). */
  | { readonly kind: "send"; readonly to: number; readonly message: ReplicateMessage }
  /** Answer the caller. Emitted exactly once per session. */
  | { readonly kind: "respond"; readonly requestId: number; readonly result: PutResult }
  | SiblingWarning;

export class PutSession {
  readonly requestId: number;
  readonly key: Uint8Array;
  readonly preferenceList: readonly number[];
  readonly w: number;
  /**
   * While the ring changes: each group with the acknowledgements it needs; success when every
   * group has them. null otherwise: the one group is the preference list, needing W.
   */
  readonly quorumGroups: readonly { readonly nodes: readonly number[]; readonly needed: number }[] | null;
  /** The primaries' share of the quorum (pw), or null. */
  readonly primaryQuorum: { readonly nodes: readonly number[]; readonly needed: number } | null;
  /** When `onTick` fails the session if it has not answered yet. */
  readonly deadlineMs: number;
  /** The post-write set: stored locally and sent to every other replica. Empty if refused. */
  readonly versions: readonly Version[];
  /** The counter of the new version's dot: the caller's node must never stamp it again. */
  readonly dotCounter: number;
  /** Encoded context of the post-write set (see PutResult). */
  readonly context: string;

  /** The post-write set's values, newest first (tombstones left out). */
  get values(): Uint8Array[] {
    return this.versions.flatMap((version) => (version.value === null ? [] : [version.value]));
  }
  readonly #acknowledged = new Set<number>();
  readonly #refused = new Set<number>();
  #responded = false;

  /** Use createPutSession. */
  constructor(options: PutSessionOptions, versions: readonly Version[], context: string, responded: boolean, dotCounter: number) {
    this.dotCounter = dotCounter;
    this.requestId = options.requestId;
    this.key = options.key;
    this.preferenceList = [...options.preferenceList];
    this.w = options.w;
    this.quorumGroups =
      options.quorumGroups?.map((nodes) => ({ nodes: [...nodes], needed: Math.min(options.w, nodes.length) })) ?? null;
    this.primaryQuorum = options.primaryQuorum ?? null;
    this.deadlineMs = options.nowMs + options.timeoutMs;
    this.versions = versions;
    this.context = context;
    this.#responded = responded;
  }

  /** True once the respond effect was emitted: nothing the session is fed changes anything after. */
  get responded(): boolean {
    return this.#responded;
  }

  get acknowledged(): number {
    return this.#acknowledged.size;
  }

  /** Records one replica's answer; the first answer of each replica in the list counts, others are ignored. */
  reply(from: number, ok: boolean, nowMs: number): PutEffect[] {
    if (this.#responded) return [];
    if (!this.preferenceList.includes(from) || this.#acknowledged.has(from) || this.#refused.has(from)) {
      return this.tick(nowMs);
    }
    (ok ? this.#acknowledged : this.#refused).add(from);
    if (this.#reached()) return this.#respond({ ok: true, acknowledged: this.#acknowledged.size, context: this.context, values: this.values });
    if (this.#impossible()) return this.#fail();
    return this.tick(nowMs);
  }

  #reached(): boolean {
    const primaries = this.primaryQuorum;
    if (primaries !== null && this.#count(primaries.nodes, this.#acknowledged) < primaries.needed) return false;
    const groups = this.quorumGroups;
    if (groups === null) return this.#acknowledged.size >= this.w;
    return groups.every((group) => this.#count(group.nodes, this.#acknowledged) >= group.needed);
  }

  /** More refusals than some group can afford: W acknowledgements can no longer come. */
  #impossible(): boolean {
    const primaries = this.primaryQuorum;
    if (primaries !== null && primaries.nodes.length - this.#count(primaries.nodes, this.#refused) < primaries.needed) return true;
    const groups = this.quorumGroups;
    if (groups === null) return this.preferenceList.length - this.#refused.size < this.w;
    return groups.some((group) => group.nodes.length - this.#count(group.nodes, this.#refused) < group.needed);
  }

  #count(nodes: readonly number[], answered: ReadonlySet<number>): number {
    let count = 0;
    for (const node of nodes) if (answered.has(node)) count++;
    return count;
  }

  /** Fails the session once `nowMs` reaches the deadline without a response. */
  tick(nowMs: number): PutEffect[] {
    if (this.#responded || nowMs < this.deadlineMs) return [];
    return this.#fail();
  }

  #fail(): PutEffect[] {
    const primaries = this.primaryQuorum;
    const fromPrimaries = primaries ? { primaries: { acknowledged: this.#count(primaries.nodes, this.#acknowledged), required: primaries.needed } } : {};
    return this.#respond({ ok: false, error: { code: "LOOM_QUORUM", acknowledged: this.#acknowledged.size, required: this.w, ...fromPrimaries } });
  }

  #respond(result: PutResult): PutEffect[] {
    assert(!this.#responded, "a put session responds once");
    this.#responded = true;
    return [{ kind: "respond", requestId: this.requestId, result }];
  }
}

/**
 * Stamps the write and starts its session. Returns the session and the first effects: store-local
 * and one send per other replica (plus a sibling warning past siblingsWarn); or, when the post-write
 * set would exceed siblingsMax, only a failed respond (LOOM_TOO_MANY_SIBLINGS) and nothing written.
 * Throws LoomTypeError or LoomRangeError on an invalid option (nothing is written then either).
 */
export function createPutSession(options: PutSessionOptions): { session: PutSession; effects: PutEffect[] } {
  checkPutOptions(options);
  const clock = update({
    context: options.context,
    actor: options.actor ?? options.self,
    local: options.localVersions.map((version) => decodeVersion(version.version)),
    timestampMs: options.timestampMs,
    pruneThreshold: options.pruneThreshold,
    counterFloor: options.counterFloor,
  });
  const written: Version = { version: encodeVersion(clock), value: options.value };
  const applied = applyReplicated({
    key: options.key,
    localVersions: options.localVersions,
    incoming: [written],
    limits: options.siblingLimits ?? defaultSiblingLimits,
  });
  if (!applied.ok) {
    const session = new PutSession(options, [], "", true, clock.dot.counter);
    return { session, effects: [{ kind: "respond", requestId: options.requestId, result: { ok: false, error: applied.error } }] };
  }
  assert(applied.versions.includes(written), "a freshly stamped version is never dominated");
  // The context of what the coordinator now holds: a context names each actor's events up to a
  // counter, so one covering the new dot also covers this node's earlier dots for the key, and
  // those versions must travel with it (values).
  const context = encodeContext(join(applied.versions.map((version) => decodeVersion(version.version))), { key: options.key, signer: options.signer });
  const session = new PutSession(options, applied.versions, context, false, clock.dot.counter);
  const { key, requestId } = options;
  const effects: PutEffect[] = [...applied.effects, { kind: "store-local", key, versions: applied.versions }];
  for (const to of options.preferenceList.slice(1)) {
    effects.push({ kind: "send", to, message: { type: "replicate", requestId, key, versions: applied.versions } });
  }
  return { session, effects };
}

/** Feeds one replica's answer (`from` = self for the local store). Returns the effects to run. */
export function onReply(session: PutSession, from: number, ok: boolean, nowMs: number): PutEffect[] {
  return session.reply(from, ok, nowMs);
}

/** Feeds the time; fails the session at its deadline. Returns the effects to run. */
export function onTick(session: PutSession, nowMs: number): PutEffect[] {
  return session.tick(nowMs);
}

function checkPutOptions(options: PutSessionOptions): void {
  const action = "put session";
  checkSessionBasics(action, options, { name: "w", value: options.w });
  if (options.quorumGroups !== undefined) {
    if (!Array.isArray(options.quorumGroups) || options.quorumGroups.length === 0) {
      throw new LoomTypeError(`${action} failed: quorumGroups is ${describe(options.quorumGroups)}, must be a non-empty array`);
    }
    for (const group of options.quorumGroups) {
      if (!Array.isArray(group) || group.length === 0 || !group.every((node) => options.preferenceList.includes(node))) {
        throw new LoomRangeError(`${action} failed: quorum group ${JSON.stringify(group)} must be non-empty and within preferenceList`);
      }
    }
  }
  if (options.value !== null && !(options.value instanceof Uint8Array)) {
    throw new LoomTypeError(`${action} failed: value is ${describe(options.value)}, must be a Uint8Array or null`);
  }
  checkSigner(action, options.signer);
  if (!Array.isArray(options.localVersions)) {
    throw new LoomTypeError(`${action} failed: localVersions is ${describe(options.localVersions)}, must be an array`);
  }
}
