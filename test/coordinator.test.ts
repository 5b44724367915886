import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  createGetSession,
  type GetEffect,
  type GetResult,
  type GetSession,
  onReply as onGetReply,
  onTick as onGetTick,
  onWiden as onGetWiden,
} from "../src/coordinator/get_session.ts";
import { RoundTripEstimate } from "../src/coordinator/round_trip_estimate.ts";
import {
  createPutSession,
  onReply as onPutReply,
  onTick as onPutTick,
  type PutResult,
  type PutSessionOptions,
} from "../src/coordinator/put_session.ts";
import { QuorumError, toQuorumError } from "../src/coordinator/quorum_error.ts";
import { applyReplicated, siblingLimits } from "../src/coordinator/replica_apply.ts";
import type { Version } from "../src/storage/version_set_format.ts";
import { LoomRangeError, LoomTypeError } from "../src/util/errors.ts";
import { createContextSigner } from "../src/version/context_signer.ts";
import { type CausalContext, emptyContext, join, update } from "../src/version/dotted_version_vector.ts";
import { decodeContext, decodeVersion, encodeVersion } from "../src/version/version_codec.ts";
import { isError } from "./support/assertions.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const texts = (values: readonly (Uint8Array | null)[]): string[] => values.map((value) => (value === null ? "<tombstone>" : decoder.decode(value)));
const key = bytes("user:1");
/** The sessions sign the contexts they return with the cluster's signer; here, a fixed secret. */
const signer = createContextSigner(new Uint8Array(16).fill(7));
const binding = { key, signer };

function putOptions(overrides: Partial<PutSessionOptions> = {}): PutSessionOptions {
  return {
    requestId: 7,
    key,
    value: bytes("alice"),
    context: emptyContext,
    preferenceList: [0, 1, 2],
    self: 0,
    w: 2,
    timeoutMs: 100,
    nowMs: 1_000,
    localVersions: [],
    pruneThreshold: 8,
    timestampMs: 1_000,
    counterFloor: 1,
    signer,
    ...overrides,
  };
}

function responses<T extends { kind: string }>(effects: readonly T[]): Extract<T, { kind: "respond" }>[] {
  return effects.filter((effect): effect is Extract<T, { kind: "respond" }> => effect.kind === "respond");
}

/** A version stamped directly: `actor`'s `counter`-th write at `timestampMs`, having seen `seen`. */
function stamp(value: string | null, options: { actor: number; counter: number; timestampMs: number; seen?: readonly Version[] }): Version {
  const context: CausalContext = options.seen ? join(options.seen.map((version) => decodeVersion(version.version))) : emptyContext;
  const clock = update({
    context,
    actor: options.actor,
    local: [],
    timestampMs: options.timestampMs,
    pruneThreshold: 8,
    counterFloor: options.counter,
  });
  return { version: encodeVersion(clock), value: value === null ? null : bytes(value) };
}

function concurrentVersions(count: number): Version[] {
  return Array.from({ length: count }, (_, index) => stamp(`v${index}`, { actor: 9, counter: index + 1, timestampMs: 1_000 + index }));
}

// ---- a small replica group driven through the sessions with instant, lossless replies -------------

class ReplicaGroup {
  readonly stores = new Map<number, Version[]>();
  nowMs = 1_000;
  #counter = 0;

  readonly nodes: readonly number[];

  constructor(nodes: readonly number[]) {
    this.nodes = nodes;
    for (const node of nodes) this.stores.set(node, []);
  }

  /** The preference list with `self` first (the others in ring order). */
  preferenceList(self: number): number[] {
    const at = this.nodes.indexOf(self);
    return [...this.nodes.slice(at), ...this.nodes.slice(0, at)];
  }

  apply(node: number, versions: readonly Version[]): void {
    const applied = applyReplicated({ key, localVersions: this.stores.get(node)!, incoming: versions });
    assert.ok(applied.ok, "a replica refused a write");
    if (applied.ok) this.stores.set(node, applied.versions);
  }

  put(self: number, value: string | null, context: CausalContext): PutResult {
    this.nowMs += 1;
    this.#counter += 1;
    const { session, effects } = createPutSession(
      putOptions({
        preferenceList: this.preferenceList(self),
        self,
        value: value === null ? null : bytes(value),
        context,
        localVersions: this.stores.get(self)!,
        nowMs: this.nowMs,
        timestampMs: this.nowMs,
        counterFloor: this.#counter,
      }),
    );
    const results: PutResult[] = responses(effects).map((effect) => effect.result);
    for (const effect of effects) {
      if (effect.kind === "store-local") {
        this.apply(self, effect.versions);
        results.push(...responses(onPutReply(session, self, true, this.nowMs)).map((e) => e.result));
      } else if (effect.kind === "send") {
        this.apply(effect.to, effect.message.versions);
        results.push(...responses(onPutReply(session, effect.to, true, this.nowMs)).map((e) => e.result));
      }
    }
    assert.is(results.length, 1, "a put responds exactly once");
    return results[0]!;
  }

  get(self: number): GetResult {
    this.nowMs += 1;
    const { session, effects } = createGetSession({
      requestId: 1,
      key,
      preferenceList: this.preferenceList(self),
      self,
      r: 2,
      timeoutMs: 100,
      nowMs: this.nowMs,
      signer,
    });
    const results: GetResult[] = [];
    const run = (batch: readonly GetEffect[]): void => {
      for (const effect of batch) {
        if (effect.kind === "respond") results.push(effect.result);
        else if (effect.kind === "read-local") run(onGetReply(session, self, { ok: true, versions: this.stores.get(self)! }, this.nowMs));
        else if (effect.kind === "store-local") this.apply(self, effect.versions);
        else if (effect.message.type === "read") {
          run(onGetReply(session, effect.to, { ok: true, versions: this.stores.get(effect.to)! }, this.nowMs));
        } else this.apply(effect.to, effect.message.versions);
      }
    };
    run(effects);
    assert.is(results.length, 1, "a get responds exactly once");
    return results[0]!;
  }
}

function contextOf(result: PutResult | GetResult): CausalContext {
  assert.ok(result.ok, `expected success, got ${JSON.stringify(result)}`);
  return result.ok ? decodeContext(result.context, binding) : emptyContext;
}

// ---- put: quorum --------------------------------------------------------------------------------

test("a put stores locally, replicates to every other replica and responds once W replicas acknowledged", () => {
  const { session, effects } = createPutSession(putOptions());
  assert.equal(effects.map((effect) => effect.kind), ["store-local", "send", "send"]);
  assert.equal(effects.flatMap((effect) => (effect.kind === "send" ? [effect.to] : [])), [1, 2]);
  assert.equal(responses(effects), []);
  assert.equal(onPutReply(session, 0, true, 1_001), [], "one acknowledgement of two is not a quorum");
  const answered = onPutReply(session, 2, true, 1_002);
  assert.equal(responses(answered).map((effect) => effect.result), [{ ok: true, acknowledged: 2, context: session.context, values: session.values }]);
  assert.is(responses(answered)[0]!.requestId, 7);
});

test("acknowledgements and ticks that arrive after a put responded change nothing", () => {
  const { session } = createPutSession(putOptions({ w: 1 }));
  assert.is(responses(onPutReply(session, 0, true, 1_001)).length, 1);
  assert.equal(onPutReply(session, 1, true, 1_002), []);
  assert.equal(onPutReply(session, 2, false, 1_003), []);
  assert.equal(onPutTick(session, 5_000), []);
  const timedOut = createPutSession(putOptions()).session;
  assert.is(responses(onPutTick(timedOut, 1_100)).length, 1);
  assert.equal(onPutReply(timedOut, 0, true, 1_101), [], "a late acknowledgement does not turn a failure into a success");
  assert.equal(onPutReply(timedOut, 1, true, 1_102), []);
});

test("a duplicate acknowledgement from one replica counts once", () => {
  const { session } = createPutSession(putOptions());
  assert.equal(onPutReply(session, 1, true, 1_001), []);
  assert.equal(onPutReply(session, 1, true, 1_002), []);
  assert.equal(onPutReply(session, 9, true, 1_003), [], "a node outside the preference list is not a replica");
  assert.is(session.acknowledged, 1);
});

test("a put fails with its counts as soon as refusals make W acknowledgements impossible", () => {
  const { session } = createPutSession(putOptions());
  assert.equal(onPutReply(session, 0, true, 1_001), []);
  assert.equal(onPutReply(session, 1, false, 1_002), [], "node 2 could still make the quorum");
  const failed = responses(onPutReply(session, 2, false, 1_003));
  assert.equal(failed.map((effect) => effect.result), [{ ok: false, error: { code: "LOOM_QUORUM", acknowledged: 1, required: 2 } }]);
  const result = failed[0]!.result;
  if (result.ok || result.error.code !== "LOOM_QUORUM") throw new Error("expected a quorum failure");
  const error = toQuorumError("put", result.error, 3);
  assert.is(error.code, "LOOM_QUORUM");
  assert.is(error.message, "put failed: 1 of 3 replicas acknowledged, 2 required");
});

test("a put that reaches its deadline fails with the acknowledgements it had", () => {
  const { session } = createPutSession(putOptions({ w: 3 }));
  assert.is(session.deadlineMs, 1_100);
  assert.equal(onPutReply(session, 0, true, 1_010), []);
  assert.equal(onPutReply(session, 2, true, 1_020), []);
  assert.equal(onPutTick(session, 1_099), [], "the deadline has not passed");
  assert.equal(responses(onPutTick(session, 1_100)).map((effect) => effect.result), [
    { ok: false, error: { code: "LOOM_QUORUM", acknowledged: 2, required: 3 } },
  ]);
});

test("while keys move, a put needs W acknowledgements from the old replicas and W from the new ones", () => {
  // Old replicas 0,1,2; new replicas 0,1,3 (node 2 leaves the key, node 3 gains it).
  const options = putOptions({ preferenceList: [0, 1, 2, 3], quorumGroups: [[0, 1, 2], [0, 1, 3]] });
  const { session, effects } = createPutSession(options);
  assert.equal(effects.flatMap((effect) => (effect.kind === "send" ? [effect.to] : [])), [1, 2, 3], "every old and new replica gets it");
  assert.equal(onPutReply(session, 0, true, 1_001), []);
  assert.equal(onPutReply(session, 2, true, 1_002), [], "W of the old set, but only one of the new set");
  const answered = responses(onPutReply(session, 3, true, 1_003));
  assert.equal(answered.map((effect) => effect.result.ok), [true]);

  const refused = createPutSession(options).session;
  assert.equal(onPutReply(refused, 0, true, 1_001), []);
  assert.equal(onPutReply(refused, 1, false, 1_002), []);
  const failed = responses(onPutReply(refused, 3, false, 1_003));
  assert.equal(failed.map((effect) => effect.result), [{ ok: false, error: { code: "LOOM_QUORUM", acknowledged: 1, required: 2 } }], "the new set can no longer reach W");
});

test("a quorum group smaller than W needs all of its nodes, and a group outside the list is refused", async () => {
  const { session } = createPutSession(putOptions({ w: 3, preferenceList: [0, 1, 2], quorumGroups: [[0, 1, 2], [0, 1]] }));
  assert.equal(onPutReply(session, 0, true, 1_001), []);
  assert.equal(onPutReply(session, 1, true, 1_002), []);
  assert.equal(responses(onPutReply(session, 2, true, 1_003)).map((effect) => effect.result.ok), [true]);
  await rejectsWithCode(() => createPutSession(putOptions({ quorumGroups: [[0, 9]] })), "LOOM_OUT_OF_RANGE");
  assert.throws(() => createPutSession(putOptions({ quorumGroups: [] })), /quorumGroups/);
});

// ---- put: versions ----------------------------------------------------------------------------

test("a put replicates the whole post-write set, the siblings it had not seen included", () => {
  const sibling = stamp("bob", { actor: 1, counter: 1, timestampMs: 900 });
  const { session, effects } = createPutSession(putOptions({ localVersions: [sibling] }));
  assert.equal(texts(session.versions.map((version) => version.value)), ["alice", "bob"]);
  for (const effect of effects) {
    if (effect.kind === "store-local") assert.is(effect.versions, session.versions);
    if (effect.kind === "send") {
      assert.equal(effect.message.type, "replicate");
      assert.is(effect.message.versions, session.versions);
      assert.is(effect.message.requestId, 7);
    }
  }
});

test("a put returns the siblings its context covers: the coordinator's post-write set, values newest first", () => {
  const sibling = stamp("bob", { actor: 1, counter: 1, timestampMs: 900 });
  const { session } = createPutSession(putOptions({ localVersions: [sibling] }));
  const context = decodeContext(session.context, binding);
  assert.equal(context.entries.map((entry) => [entry.actor, entry.counter, entry.frontier]), [[0, 1, true], [1, 1, true]]);
  assert.equal(texts(session.values), ["alice", "bob"], "the client sees what its next write will replace");
});

test("a blind write's returned context never silently replaces a sibling the same coordinator stamped", () => {
  // A context names an actor's events up to a counter: one covering the coordinator's second dot
  // also covers its first. Had the put returned only its own version, the client's next write
  // would drop "first" without the client ever seeing it (found by the simulator).
  const group = new ReplicaGroup([0, 1, 2]);
  group.put(0, "first", emptyContext);
  const blind = group.put(0, "second", emptyContext);
  assert.equal(blind.ok && texts(blind.values), ["second", "first"]);
  group.put(0, "third", contextOf(blind));
  const read = group.get(1);
  assert.equal(read.ok && texts(read.values), ["third"], "the client replaced both: it saw both");
});

test("a write with a stale context is kept beside the write it had not seen", () => {
  const group = new ReplicaGroup([0, 1, 2]);
  const first = contextOf(group.put(0, "v1", emptyContext));
  group.put(1, "v2", first);
  group.put(0, "v3", first);
  for (const node of group.nodes) assert.equal(texts(group.stores.get(node)!.map((v) => v.value)), ["v3", "v2"], `node ${node}`);
  const read = group.get(2);
  assert.equal(read.ok && texts(read.values), ["v3", "v2"]);
  assert.equal(read.ok && read.siblings, 2);
});

test("two writes carrying the same context through the same coordinator are both kept", () => {
  const group = new ReplicaGroup([0, 1, 2]);
  group.put(0, "start", emptyContext);
  const read = group.get(0);
  const context = contextOf(read);
  group.put(0, "from client a", context);
  group.put(0, "from client b", context);
  const after = group.get(1);
  assert.equal(after.ok && texts(after.values).sort(), ["from client a", "from client b"]);
  group.put(2, "resolved", contextOf(after));
  const resolved = group.get(0);
  assert.equal(resolved.ok && texts(resolved.values), ["resolved"], "a write with the read's context resolves both siblings");
});

test("a sequential writer passing its context never creates siblings in 1000 writes", () => {
  const group = new ReplicaGroup([0, 1, 2, 3, 4]);
  let context: CausalContext = emptyContext;
  for (let index = 0; index < 1_000; index++) {
    const result = group.put(index % 5, `value ${index}`, context);
    context = contextOf(result);
    for (const node of [0, 1, 2]) {
      const held = group.stores.get(group.preferenceList(index % 5)[node]!)!;
      if (held.length !== 1) assert.unreachable(`write ${index}: a replica holds ${held.length} versions`);
    }
  }
  const read = group.get(3);
  assert.equal(read.ok && texts(read.values), ["value 999"]);
});

test("a delete writes a tombstone that a read reports as no value with a context", () => {
  const group = new ReplicaGroup([0, 1, 2]);
  const written = contextOf(group.put(0, "alice", emptyContext));
  group.put(1, null, written);
  const read = group.get(2);
  assert.equal(read.ok && read.values, []);
  assert.equal(read.ok && read.siblings, 1);
  assert.ok(contextOf(read).entries.length > 0, "the tombstone's clock is in the context");
});

// ---- get --------------------------------------------------------------------------------------

function getSession(r: number): GetSession {
  const { session, effects } = createGetSession({ requestId: 3, key, preferenceList: [0, 1, 2], self: 0, r, timeoutMs: 100, nowMs: 1_000, signer });
  assert.equal(effects.map((effect) => (effect.kind === "send" ? `${effect.message.type} ${effect.to}` : effect.kind)), [
    "read-local",
    "read 1",
    "read 2",
  ]);
  return session;
}

function repairTargets(effects: readonly GetEffect[]): string[] {
  return effects.flatMap((effect) => {
    if (effect.kind === "store-local") return ["local"];
    if (effect.kind === "send" && effect.message.type === "repair") return [`node ${effect.to}`];
    return [];
  });
}

const older = stamp("old", { actor: 5, counter: 1, timestampMs: 1_000 });
const newer = stamp("new", { actor: 5, counter: 2, timestampMs: 1_001, seen: [older] });
const concurrent = stamp("other", { actor: 6, counter: 1, timestampMs: 1_002 });

test("a read merges divergent replies and repairs only the replicas that lacked a merged version", () => {
  const session = getSession(2);
  assert.equal(onGetReply(session, 0, { ok: true, versions: [newer] }, 1_001), []);
  const answered = onGetReply(session, 1, { ok: true, versions: [older] }, 1_002);
  assert.equal(answered.map((effect) => effect.kind), ["respond"], "no repair before every replica answered");
  const result = responses(answered)[0]!.result;
  assert.equal(result.ok && texts(result.values), ["new"], "the dominated version is dropped");
  assert.equal(result.ok && result.siblings, 1);
  const repaired = onGetReply(session, 2, { ok: true, versions: [concurrent, newer] }, 1_003);
  assert.equal(repairTargets(repaired), ["local", "node 1"], "node 2 already holds the merged set");
  for (const effect of repaired) {
    const versions = effect.kind === "store-local" ? effect.versions : effect.kind === "send" && effect.message.type === "repair" ? effect.message.versions : [];
    assert.equal(texts(versions.map((version) => version.value)), ["other", "new"]);
  }
  assert.ok(session.finished);
  assert.equal(onGetTick(session, 2_000), []);
});

test("a read repairs no replica that never answered", () => {
  const session = getSession(2);
  onGetReply(session, 0, { ok: true, versions: [newer] }, 1_001);
  assert.is(responses(onGetReply(session, 1, { ok: true, versions: [older] }, 1_002)).length, 1);
  assert.equal(onGetTick(session, 1_099), []);
  assert.equal(repairTargets(onGetTick(session, 1_100)), ["node 1"]);
});

test("a read responds with its counts when R replicas cannot answer", () => {
  const refused = getSession(2);
  onGetReply(refused, 0, { ok: true, versions: [newer] }, 1_001);
  assert.equal(onGetReply(refused, 1, { ok: false }, 1_002), []);
  assert.equal(responses(onGetReply(refused, 2, { ok: false }, 1_003)).map((effect) => effect.result), [
    { ok: false, error: { code: "LOOM_QUORUM", acknowledged: 1, required: 2 } },
  ]);
  const timedOut = getSession(3);
  onGetReply(timedOut, 2, { ok: true, versions: [] }, 1_001);
  onGetReply(timedOut, 0, { ok: true, versions: [] }, 1_002);
  assert.equal(responses(onGetTick(timedOut, 1_100)).map((effect) => effect.result), [
    { ok: false, error: { code: "LOOM_QUORUM", acknowledged: 2, required: 3 } },
  ]);
  assert.equal(onGetReply(timedOut, 1, { ok: true, versions: [newer] }, 1_101), [], "a late answer changes nothing");
});

const kinds = (effects: readonly GetEffect[]): string[] => effects.map((effect) => (effect.kind === "send" ? `${effect.message.type} ${effect.to}` : effect.kind));

function askingSession(r: number, ask: number): GetSession {
  const { session, effects } = createGetSession({ requestId: 3, key, preferenceList: [0, 1, 2], self: 0, r, ask, timeoutMs: 100, nowMs: 1_000, signer });
  assert.equal(kinds(effects), ["read-local", "read 1", "read 2"].slice(0, ask));
  return session;
}

test("a read that asks R replicas answers and repairs from them alone, and never asks the third", () => {
  const session = askingSession(2, 2);
  assert.equal(onGetReply(session, 0, { ok: true, versions: [newer] }, 1_001), []);
  const answered = onGetReply(session, 1, { ok: true, versions: [older] }, 1_002);
  assert.equal(kinds(answered), ["respond", "repair 1"], "every replica asked answered: the response, then read repair at once");
  const result = responses(answered)[0]!.result;
  assert.equal(result.ok && texts(result.values), ["new"]);
  assert.ok(session.finished, "nothing more is awaited");
  assert.equal(onGetWiden(session), [], "a finished read asks nobody");
  assert.equal(onGetReply(session, 2, { ok: true, versions: [concurrent] }, 1_003), [], "an answer from a replica never asked is ignored");
});

test("a refusal from an asked replica asks the others, which can still make up R", () => {
  const session = askingSession(2, 2);
  onGetReply(session, 0, { ok: true, versions: [newer] }, 1_001);
  assert.equal(kinds(onGetReply(session, 1, { ok: false }, 1_002)), ["read 2"]);
  const answered = onGetReply(session, 2, { ok: true, versions: [newer] }, 1_003);
  assert.equal(kinds(answered), ["respond"], "every replica now asked answered or refused; none lacks a version");
  assert.equal(responses(answered)[0]!.result.ok, true);
  assert.ok(session.finished);
});

test("widening a slow read asks every replica not asked yet, once, and the first R answers respond", () => {
  const session = askingSession(2, 2);
  onGetReply(session, 0, { ok: true, versions: [older] }, 1_001);
  assert.equal(kinds(onGetWiden(session)), ["read 2"]);
  assert.equal(onGetWiden(session), [], "every replica was asked already");
  assert.equal([0, 1, 2, 7].map((node) => session.askedFirst(node)), [true, true, false, false], "node 2 was asked by the widen, not at the start");
  const answered = onGetReply(session, 2, { ok: true, versions: [newer] }, 1_003);
  assert.equal(kinds(answered), ["respond"], "node 1 is still awaited: repair waits for it or the deadline");
  const result = responses(answered)[0]!.result;
  assert.equal(result.ok && texts(result.values), ["new"]);
  assert.equal(repairTargets(onGetReply(session, 1, { ok: true, versions: [older] }, 1_004)), ["local", "node 1"]);
  assert.ok(session.finished);
});

test("a read session refuses an ask below r or above the preference list", () => {
  for (const ask of [1, 4, 2.5]) {
    assert.throws(() => createGetSession({ requestId: 3, key, preferenceList: [0, 1, 2], self: 0, r: 2, ask, timeoutMs: 100, nowMs: 1_000, signer }), isError(ask === 2.5 ? LoomTypeError : LoomRangeError));
  }
});

test("the speculative wait is the 99th percentile of the last window of round trips, within its floor and ceiling", () => {
  const estimate = new RoundTripEstimate({ floorMs: 1, ceilingMs: 50, window: 100 });
  assert.is(estimate.waitMs, 50, "before any estimate: the ceiling");
  for (let index = 0; index < 63; index++) estimate.add(index === 0 ? 40 : 2);
  estimate.add(Number.NaN);
  estimate.add(-1);
  assert.is(estimate.waitMs, 50, "a sample that is no number of ms is ignored: still one short of a first estimate");
  estimate.add(2);
  assert.is(estimate.waitMs, 40, "a first estimate after 64 samples: their slowest");
  for (let index = 0; index < 36; index++) estimate.add(2);
  assert.is(estimate.waitMs, 40, "the first window holds the slow sample (1 in 100)");
  for (let index = 0; index < 100; index++) estimate.add(2);
  assert.is(estimate.waitMs, 2, "steady round trips: the wait is theirs");
  for (let index = 0; index < 100; index++) estimate.add(index < 98 ? 3 : 30);
  assert.is(estimate.waitMs, 30, "the slowest one in a hundred sets the wait");
  for (let index = 0; index < 100; index++) estimate.add(0.1);
  assert.is(estimate.waitMs, 1, "never under the floor");
  for (let index = 0; index < 100; index++) estimate.add(400);
  assert.is(estimate.waitMs, 50, "never past the ceiling");
});

test("a read of a key no replica holds returns no values and the empty context", () => {
  const session = getSession(1);
  const result = responses(onGetReply(session, 0, { ok: true, versions: [] }, 1_001))[0]!.result;
  assert.equal(result.ok && { ...result, context: decodeContext(result.context, binding) }, { ok: true, values: [], context: emptyContext, siblings: 0 });
});

// ---- sibling limits -----------------------------------------------------------------------------

test("a replica merge warns past siblingsWarn and refuses past siblingsMax", () => {
  const { siblingsWarn, siblingsMax } = siblingLimits;
  const quiet = applyReplicated({ key, localVersions: concurrentVersions(siblingsWarn - 1), incoming: concurrentVersions(siblingsWarn).slice(-1) });
  assert.equal(quiet.ok && [quiet.versions.length, quiet.effects], [siblingsWarn, []]);
  const warned = applyReplicated({ key, localVersions: concurrentVersions(siblingsWarn), incoming: concurrentVersions(siblingsWarn + 1).slice(-1) });
  assert.equal(warned.ok && warned.effects, [{ kind: "sibling-warning", key, siblings: siblingsWarn + 1, siblingsWarn }]);
  const atLimit = applyReplicated({ key, localVersions: [], incoming: concurrentVersions(siblingsMax) });
  assert.ok(atLimit.ok, "siblingsMax siblings are still accepted");
  const refused = applyReplicated({ key, localVersions: concurrentVersions(siblingsMax), incoming: concurrentVersions(siblingsMax + 1).slice(-1) });
  assert.equal(refused, { ok: false, error: { code: "LOOM_TOO_MANY_SIBLINGS", siblings: siblingsMax + 1, siblingsMax } });
});

test("a coordinator refuses a blind put that would exceed siblingsMax and writes nothing", () => {
  const localVersions = concurrentVersions(siblingLimits.siblingsMax);
  const { session, effects } = createPutSession(putOptions({ localVersions, counterFloor: 100 }));
  assert.equal(effects.map((effect) => effect.kind), ["respond"]);
  assert.equal(responses(effects)[0]!.result, {
    ok: false,
    error: { code: "LOOM_TOO_MANY_SIBLINGS", siblings: siblingLimits.siblingsMax + 1, siblingsMax: siblingLimits.siblingsMax },
  });
  assert.equal(onPutReply(session, 0, true, 1_001), []);
  const resolving = createPutSession(putOptions({ localVersions, counterFloor: 100, context: join(localVersions.map((v) => decodeVersion(v.version))) }));
  assert.equal(resolving.effects.map((effect) => effect.kind), ["store-local", "send", "send"], "a write that resolves them is accepted");
  assert.is(resolving.session.versions.length, 1);
});

// ---- options ------------------------------------------------------------------------------------

test("session options out of range are refused with the field named", async () => {
  await rejectsWithCode(() => createPutSession(putOptions({ w: 4 })), "LOOM_OUT_OF_RANGE", /w is 4/);
  assert.throws(() => createPutSession(putOptions({ self: 1 })), /self is 1, must be first/);
  assert.throws(() => createPutSession(putOptions({ preferenceList: [0, 1, 1] })), /repeats a node/);
  await rejectsWithCode(() => createPutSession(putOptions({ timeoutMs: 0 })), "LOOM_OUT_OF_RANGE");
  assert.throws(
    () => createGetSession({ requestId: 1, key, preferenceList: [0, 1, 2], self: 0, r: 0, timeoutMs: 100, nowMs: 0, signer }),
    /r is 0, must be in 1..3/,
  );
});

test.run();
