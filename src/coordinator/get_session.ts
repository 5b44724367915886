/**
 * The coordinator's state machine for one read of one key, with read repair.
 *
 * `createGetSession` asks the first `ask` replicas of the preference list (all of them unless told
 * otherwise; the local store through a read-local effect, the others through read messages).
 * `onReply` collects their version sets and responds, exactly once, as soon as R replicas answered:
 * the merge of the answers so far (the dominance merge rule: versions no other version dominates,
 * newest first). A refusal, or `widen` (the coordinator's speculative retry, when the asked ones
 * are slow), asks the replicas not asked yet. It fails (LOOM_QUORUM) as soon as R answers are
 * impossible, or at `deadlineMs`.
 *
 * Read repair runs once, when every replica asked answered (or refused) or at the deadline,
 * whichever comes first, and only after the response: the answers are merged again (late ones
 * included) and every replica whose answer lacked a version of that merge receives it (the local
 * store through a store-local effect). Replicas that answered with an equal set, and replicas that
 * never answered or were never asked, are left alone (anti-entropy covers them). Pure: see
 * put_session.ts and docs/coordinator.md.
 */
import type { Version } from "../storage/version_set_format.ts";
import { assert } from "../util/assert.ts";
import { compareBytes } from "../util/bytes.ts";
import type { ContextSigner } from "../version/context_signer.ts";
import { join } from "../version/dotted_version_vector.ts";
import { dominanceMergeRule } from "../version/sibling_merge_rule.ts";
import { decodeVersion, encodeContext } from "../version/version_codec.ts";
import type { QuorumFailure } from "./quorum_error.ts";
import { checkInteger, checkSessionBasics, checkSigner } from "./session_checks.ts";

export interface GetSessionOptions {
  readonly requestId: number;
  /** The key, already validated. */
  readonly key: Uint8Array;
  /** The key's N replicas, this node first. */
  readonly preferenceList: readonly number[];
  readonly self: number;
  /** Answers required, 1..N. */
  readonly r: number;
  /**
   * Replicas asked at first: the first `ask` of the preference list (r..N; default N, every one).
   * The others are asked on a refusal or on `widen`.
   */
  readonly ask?: number;
  readonly timeoutMs: number;
  readonly nowMs: number;
  /** Signs the context the read returns, bound to `key` (docs/versioning.md). */
  readonly signer: ContextSigner;
  /** `pr` (Riak's primary read quorum): at least `needed` answers must come from these primaries. */
  readonly primaryQuorum?: { readonly nodes: readonly number[]; readonly needed: number };
}

export interface ReadMessage {
  readonly type: "read";
  readonly requestId: number;
  readonly key: Uint8Array;
}

export interface RepairMessage {
  readonly type: "repair";
  readonly key: Uint8Array;
  /** The merged set; the replica merges it into its own (applyReplicated). */
  readonly versions: readonly Version[];
}

/** A replica's answer: the versions it holds for the key (none: []), or a refusal. */
export type ReadReply = { readonly ok: true; readonly versions: readonly Version[] } | { readonly ok: false };

export type GetResult =
  | {
      readonly ok: true;
      /** Values of the non-tombstone versions, newest first; [] when absent or deleted. */
      readonly values: readonly Uint8Array[];
      /** Encoded join of every merged version, tombstones included: pass it with the next write. */
      readonly context: string;
      /** Versions merged, tombstones included (values.length can be lower). */
      readonly siblings: number;
    }
  | { readonly ok: false; readonly error: QuorumFailure };

export type GetEffect =
  /** Read the local versions of `key`, then report them with onReply(self, { ok: true, versions }). */
  | { readonly kind: "read-local"; readonly key: Uint8Array }
  /** Merge `versions` into the local record (read repair of this node). */
  | { readonly kind: "store-local"; readonly key: Uint8Array; readonly versions: readonly Version[] }
  | { readonly kind: "send"; readonly to: number; readonly message: ReadMessage | RepairMessage }
  /** Answer the caller. Emitted exactly once per session. */
  | { readonly kind: "respond"; readonly requestId: number; readonly result: GetResult };

export class GetSession {
  readonly requestId: number;
  readonly key: Uint8Array;
  readonly preferenceList: readonly number[];
  readonly self: number;
  readonly r: number;
  readonly primaryQuorum: { readonly nodes: readonly number[]; readonly needed: number } | null;
  readonly #signer: ContextSigner;
  /** When `onTick` ends the session (fails it if it has not answered, and repairs). */
  readonly deadlineMs: number;
  /** Answers in arrival order. */
  readonly #answers = new Map<number, readonly Version[]>();
  readonly #refused = new Set<number>();
  /** Replicas asked so far: the first #asked of the preference list. */
  #asked: number;
  /** Replicas asked at the start (the rest only by a widen). */
  readonly #askedFirst: number;
  #responded = false;
  #finished = false;

  /** Use createGetSession. */
  constructor(options: GetSessionOptions) {
    this.requestId = options.requestId;
    this.key = options.key;
    this.preferenceList = [...options.preferenceList];
    this.self = options.self;
    this.r = options.r;
    this.primaryQuorum = options.primaryQuorum ?? null;
    this.#signer = options.signer;
    this.deadlineMs = options.nowMs + options.timeoutMs;
    this.#asked = Math.min(options.ask ?? this.preferenceList.length, this.preferenceList.length);
    this.#askedFirst = this.#asked;
  }

  /** Whether `node` was asked when the session started (its answer's time is a round trip). */
  askedFirst(node: number): boolean {
    const index = this.preferenceList.indexOf(node);
    return index >= 0 && index < this.#askedFirst;
  }

  /** Replicas asked so far (the first ones of the preference list). */
  get asked(): number {
    return this.#asked;
  }

  get responded(): boolean {
    return this.#responded;
  }

  /** True once read repair ran: the session may be dropped. */
  get finished(): boolean {
    return this.#finished;
  }

  /** Records one replica's answer; the first answer of each replica in the list counts. */
  reply(from: number, reply: ReadReply, nowMs: number): GetEffect[] {
    if (this.#finished) return [];
    const index = this.preferenceList.indexOf(from);
    if (index < 0 || index >= this.#asked || this.#answers.has(from) || this.#refused.has(from)) {
      return this.tick(nowMs);
    }
    if (reply.ok) this.#answers.set(from, [...reply.versions]);
    else this.#refused.add(from);
    // A refusal before the response: the replicas not asked yet may still make up R.
    const effects: GetEffect[] = !reply.ok && !this.#responded ? this.widen() : [];
    if (this.#answers.size + this.#refused.size === this.#asked) return [...effects, ...this.#finish()];
    if (!this.#responded && this.#enough()) effects.push(this.#respondMerged());
    if (!this.#responded && this.#impossible()) effects.push(this.#fail());
    const ticked = this.tick(nowMs);
    return ticked.length === 0 ? effects : [...effects, ...ticked];
  }

  /**
   * Asks every replica not asked yet (a speculative retry: the ones asked are slow or down).
   * Nothing once the session responded or when every replica was asked.
   */
  widen(): GetEffect[] {
    if (this.#responded || this.#finished || this.#asked === this.preferenceList.length) return [];
    // The list starts with this node, always asked first: the rest are other replicas.
    const effects: GetEffect[] = [];
    for (let index = this.#asked; index < this.preferenceList.length; index++) {
      effects.push({ kind: "send", to: this.preferenceList[index]!, message: { type: "read", requestId: this.requestId, key: this.key } });
    }
    this.#asked = this.preferenceList.length;
    return effects;
  }

  /** R answers, of which pr from primaries when asked. */
  #enough(): boolean {
    if (this.#answers.size < this.r) return false;
    const primaries = this.primaryQuorum;
    return primaries === null || primaries.nodes.filter((node) => this.#answers.has(node)).length >= primaries.needed;
  }

  #impossible(): boolean {
    if (this.preferenceList.length - this.#refused.size < this.r) return true;
    const primaries = this.primaryQuorum;
    return primaries !== null && primaries.nodes.filter((node) => !this.#refused.has(node)).length < primaries.needed;
  }

  /** At the deadline: fails the session if it has not answered, then repairs. */
  tick(nowMs: number): GetEffect[] {
    if (this.#finished || nowMs < this.deadlineMs) return [];
    return this.#finish();
  }

  /** Responds if still due, then emits read repair for the replicas that answered. */
  #finish(): GetEffect[] {
    assert(!this.#finished, "a get session finishes once");
    this.#finished = true;
    const effects: GetEffect[] = [];
    if (!this.#responded) effects.push(this.#enough() ? this.#respondMerged() : this.#fail());
    const merged = mergeAnswers(this.#answers);
    for (const [from, versions] of this.#answers) {
      if (merged.every((version) => versions.some((held) => sameVersion(held, version)))) continue;
      if (from === this.self) effects.push({ kind: "store-local", key: this.key, versions: merged });
      else effects.push({ kind: "send", to: from, message: { type: "repair", key: this.key, versions: merged } });
    }
    return effects;
  }

  #respondMerged(): GetEffect {
    const merged = mergeAnswers(this.#answers);
    const values = merged.flatMap((version) => (version.value === null ? [] : [version.value]));
    const clocks = merged.map((version) => decodeVersion(version.version));
    const context = encodeContext(join(clocks), { key: this.key, signer: this.#signer });
    return this.#respond({ ok: true, values, context, siblings: merged.length });
  }

  #fail(): GetEffect {
    const primaries = this.primaryQuorum;
    const fromPrimaries = primaries ? { primaries: { acknowledged: primaries.nodes.filter((node) => this.#answers.has(node)).length, required: primaries.needed } } : {};
    return this.#respond({ ok: false, error: { code: "LOOM_QUORUM", acknowledged: this.#answers.size, required: this.r, ...fromPrimaries } });
  }

  #respond(result: GetResult): GetEffect {
    assert(!this.#responded, "a get session responds once");
    this.#responded = true;
    return { kind: "respond", requestId: this.requestId, result };
  }
}

/**
 * Starts a read. Returns the session and its first effects: read-local and one read message per
 * other replica. Throws LoomTypeError or LoomRangeError on an invalid option.
 */
export function createGetSession(options: GetSessionOptions): { session: GetSession; effects: GetEffect[] } {
  const action = "get session";
  checkSessionBasics(action, options, { name: "r", value: options.r });
  checkSigner(action, options.signer);
  const { key, requestId, preferenceList } = options;
  if (options.ask !== undefined) checkInteger(action, "ask", options.ask, options.r, preferenceList.length);
  const ask = options.ask ?? preferenceList.length;
  const effects: GetEffect[] = [{ kind: "read-local", key }];
  for (let index = 1; index < ask; index++) effects.push({ kind: "send", to: preferenceList[index]!, message: { type: "read", requestId, key } });
  return { session: new GetSession(options), effects };
}

/** Feeds one replica's answer (`from` = self for the local read). Returns the effects to run. */
export function onReply(session: GetSession, from: number, reply: ReadReply, nowMs: number): GetEffect[] {
  return session.reply(from, reply, nowMs);
}

/** Asks the replicas not asked yet (speculative retry); see GetSession.widen. */
export function onWiden(session: GetSession): GetEffect[] {
  return session.widen();
}

/** Feeds the time; at the deadline fails an unanswered session and repairs. */
export function onTick(session: GetSession, nowMs: number): GetEffect[] {
  return session.tick(nowMs);
}

/** The dominance merge of every answer. Throws LoomRangeError on a blob that is not a version clock. */
function mergeAnswers(answers: ReadonlyMap<number, readonly Version[]>): Version[] {
  return dominanceMergeRule.merge([...answers.values()].flat());
}

/** Same clock blob and same value (or both tombstones). */
function sameVersion(a: Version, b: Version): boolean {
  if (compareBytes(a.version, b.version) !== 0) return false;
  if (a.value === null || b.value === null) return a.value === b.value;
  return compareBytes(a.value, b.value) === 0;
}
