import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng, type Prng } from "../src/io/prng.ts";
import { limits } from "../src/util/limits.ts";
import {
  actorMax,
  type CausalContext,
  clockEntriesMax,
  type ClockEntry,
  compare,
  counterMax,
  descends,
  dominates,
  type DottedVersionVector,
  emptyContext,
  hasSeen,
  join,
  joinContexts,
  sync,
  timestampMsMax,
  update,
} from "../src/version/dotted_version_vector.ts";
import { contextTagBytes, createContextSigner } from "../src/version/context_signer.ts";
import {
  type ContextBinding,
  contextCharactersMax,
  decodeContext,
  decodeVersion,
  encodeContext,
  encodeVersion,
} from "../src/version/version_codec.ts";
import { rejectsWithCode } from "./support/assertions.ts";

// ---- helpers ---------------------------------------------------------------------------------

interface Sibling {
  readonly clock: DottedVersionVector;
  readonly value: string;
}

/** A clock from a compact description: dot [actor, counter], past { actor: counter }. */
function clock(dot: [number, number], past: Record<number, number> = {}, timestampMs = 1000): DottedVersionVector {
  const entries = Object.entries(past)
    .map(([actor, counter]) => ({ actor: Number(actor), counter, timestampMs }))
    .sort((a, b) => a.actor - b.actor);
  return { dot: { actor: dot[0], counter: dot[1], timestampMs }, past: entries };
}

/** One node's state for one key, and the coordinator's write path: stamp, then sync locally. */
interface WriteOptions {
  readonly context: CausalContext;
  readonly actor: number;
  readonly value: string;
  readonly timestampMs?: number;
  readonly pruneThreshold?: number;
}

function write(local: readonly Sibling[], options: WriteOptions): Sibling[] {
  const stamped = update({
    context: options.context,
    actor: options.actor,
    local: local.map((sibling) => sibling.clock),
    timestampMs: options.timestampMs ?? 1000,
    pruneThreshold: options.pruneThreshold ?? clockEntriesMax,
  });
  return sync(local, [{ clock: stamped, value: options.value }]);
}

function contextOf(siblings: readonly Sibling[]): CausalContext {
  return join(siblings.map((sibling) => sibling.clock));
}

function valuesOf(siblings: readonly Sibling[]): string[] {
  return siblings.map((sibling) => sibling.value).sort();
}

/** The secret of the worked example in docs/versioning.md: bytes 00 01 .. 0f (SipHash's test key). */
const exampleSecret = Uint8Array.from({ length: 16 }, (_, index) => index);
const exampleKey = new TextEncoder().encode("user:1");
const binding: ContextBinding = { key: exampleKey, signer: createContextSigner(exampleSecret) };
const bindingFor = (key: string): ContextBinding => ({ key: new TextEncoder().encode(key), signer: binding.signer });

function randomClock(prng: Prng, entriesMax = clockEntriesMax): DottedVersionVector {
  const actors = new Set<number>();
  const count = prng.nextInt(entriesMax + 1);
  while (actors.size < count) actors.add(prng.chance(0.8) ? prng.nextInt(16) : prng.nextInt(actorMax + 1));
  const dotActor = prng.chance(0.5) && actors.size > 0 ? prng.pick([...actors]) : prng.nextInt(actorMax + 1);
  const dotTimestampMs = randomTimestamp(prng);
  const past: ClockEntry[] = [...actors]
    .sort((a, b) => a - b)
    .map((actor) => ({ actor, counter: randomCounter(prng), timestampMs: randomTimestamp(prng) }));
  const ownCounter = past.find((entry) => entry.actor === dotActor)?.counter ?? 0;
  const dotCounter = ownCounter === counterMax ? counterMax : ownCounter + 1 + prng.nextInt(Math.min(1000, counterMax - ownCounter));
  const fixedPast = ownCounter === counterMax ? past.filter((entry) => entry.actor !== dotActor) : past;
  return { dot: { actor: dotActor, counter: dotCounter, timestampMs: dotTimestampMs }, past: fixedPast };
}

function randomCounter(prng: Prng): number {
  const shape = prng.nextInt(4);
  if (shape === 0) return 1 + prng.nextInt(10);
  if (shape === 1) return 1 + prng.nextInt(1_000_000);
  if (shape === 2) return counterMax - prng.nextInt(3);
  return 1 + prng.nextInt(counterMax);
}

function randomTimestamp(prng: Prng): number {
  const shape = prng.nextInt(3);
  if (shape === 0) return 1_700_000_000_000 + prng.nextInt(1_000_000_000);
  if (shape === 1) return prng.nextInt(1000);
  return timestampMsMax - prng.nextInt(1000);
}

// ---- siblings: the requirement ---------------------------------------------------------------

test("two writes with the same context from different clients, through the same node, are both kept", () => {
  let node: Sibling[] = write([], { context: emptyContext, actor: 1, value: "v0" });
  const context = contextOf(node); // both clients read v0
  node = write(node, { context, actor: 1, value: "alice" });
  node = write(node, { context, actor: 1, value: "bob" });
  assert.equal(valuesOf(node), ["alice", "bob"]);
  assert.is(compare(node[0]!.clock, node[1]!.clock), "concurrent");
});

test("two blind writes through the same node are both kept", () => {
  let node: Sibling[] = [];
  node = write(node, { context: emptyContext, actor: 4, value: "first" });
  node = write(node, { context: emptyContext, actor: 4, value: "second" });
  assert.equal(valuesOf(node), ["first", "second"]);
});

test("a plain per-node vector clock loses one of two writes that carry the same context", () => {
  // The pre-DVV scheme: the node increments its own entry of max(context, local clock). The
  // second write's clock then descends the first's, so a replica discards the first write.
  type VectorClock = Map<number, number>;
  const increment = (context: VectorClock, local: VectorClock, actor: number): VectorClock => {
    const next = new Map(context);
    next.set(actor, Math.max(context.get(actor) ?? 0, local.get(actor) ?? 0) + 1);
    return next;
  };
  const vectorDescends = (a: VectorClock, b: VectorClock): boolean =>
    [...b].every(([actor, counter]) => (a.get(actor) ?? 0) >= counter);
  const context: VectorClock = new Map([[1, 1]]);
  const alice = increment(context, context, 1);
  const bob = increment(context, alice, 1);
  assert.ok(vectorDescends(bob, alice), "with vector clocks bob supersedes alice: alice's write is lost");

  // The same two writes with dotted version vectors stay concurrent.
  const v0 = update({ context: emptyContext, actor: 1, local: [], timestampMs: 1, pruneThreshold: 8 });
  const seen = join([v0]);
  const aliceDvv = update({ context: seen, actor: 1, local: [v0], timestampMs: 2, pruneThreshold: 8 });
  const bobDvv = update({ context: seen, actor: 1, local: [aliceDvv], timestampMs: 3, pruneThreshold: 8 });
  assert.is(aliceDvv.dot.counter, 2);
  assert.is(bobDvv.dot.counter, 3);
  assert.not.ok(descends(bobDvv, aliceDvv));
  assert.is(compare(aliceDvv, bobDvv), "concurrent");
});

test("a sequential writer that always passes its context never creates a sibling over 10,000 writes", () => {
  // Five coordinators and a prune threshold of two: pruning is active on almost every write.
  const prng = createPrng(10_000);
  const replicas: Sibling[][] = [[], [], [], [], []];
  for (let i = 0; i < 10_000; i++) {
    const readFrom = replicas[prng.nextInt(replicas.length)]!;
    const coordinator = prng.nextInt(replicas.length);
    const written = write(replicas[coordinator]!, {
      context: contextOf(readFrom),
      actor: coordinator,
      value: `v${i}`,
      timestampMs: 1000 + i,
      pruneThreshold: 2,
    });
    assert.is(written.length, 1, `write ${i} left ${written.length} versions`);
    for (let r = 0; r < replicas.length; r++) replicas[r] = sync(replicas[r]!, written);
    for (const replica of replicas) assert.equal(valuesOf(replica), [`v${i}`]);
    assert.ok(written[0]!.clock.past.length <= 2);
  }
});

test("a write with a stale context becomes a sibling of the write it did not see", () => {
  let node: Sibling[] = write([], { context: emptyContext, actor: 0, value: "v1" });
  const stale = contextOf(node);
  node = write(node, { context: stale, actor: 0, value: "v2" });
  assert.equal(valuesOf(node), ["v2"], "v2 saw v1 and replaces it");
  node = write(node, { context: stale, actor: 2, value: "v3" });
  assert.equal(valuesOf(node), ["v2", "v3"]);
});

test("a write with the context of all siblings replaces them all, tombstones included", () => {
  let a: Sibling[] = write([], { context: emptyContext, actor: 0, value: "from-0" });
  let b: Sibling[] = write([], { context: emptyContext, actor: 1, value: "from-1" });
  let c: Sibling[] = write([], { context: emptyContext, actor: 2, value: "tombstone" });
  a = write(a, { context: emptyContext, actor: 0, value: "also-from-0" });
  const merged = sync(sync(a, b), c);
  assert.is(merged.length, 4);
  const resolved = write(merged, { context: contextOf(merged), actor: 1, value: "resolved" });
  assert.equal(valuesOf(resolved), ["resolved"]);
  // Replicas that never saw some siblings converge too when the resolution reaches them.
  b = sync(b, resolved);
  c = sync(c, resolved);
  assert.equal(valuesOf(b), ["resolved"]);
  assert.equal(valuesOf(c), ["resolved"]);
});

// ---- compare and descends --------------------------------------------------------------------

test("compare and descends follow the truth table", () => {
  const base = clock([0, 1]);
  const child = clock([1, 1], { 0: 1 });
  const sibling = clock([0, 2], { 0: 1 }); // same past as child, other branch
  const grandchild = clock([2, 5], { 0: 2, 1: 1 });
  const reusedDot = clock([1, 1], { 0: 2 }); // same dot as child, different past: an anomaly
  const cases: [DottedVersionVector, DottedVersionVector, string, boolean][] = [
    [base, base, "equal", true],
    [base, child, "before", false],
    [child, base, "after", true],
    [child, sibling, "concurrent", false],
    [sibling, child, "concurrent", false],
    [base, grandchild, "before", false],
    [grandchild, base, "after", true],
    [grandchild, child, "after", true],
    [grandchild, sibling, "after", true],
    [child, reusedDot, "concurrent", false],
    [clock([3, 1]), clock([4, 1]), "concurrent", false],
  ];
  for (const [a, b, ordering, aDescendsB] of cases) {
    const label = `${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
    assert.is(compare(a, b), ordering, label);
    assert.is(descends(a, b), aDescendsB, label);
    assert.is(dominates(a, b), ordering === "after", label);
  }
});

test("the dot is a single event: a past below the counter does not cover the events between", () => {
  // (1,3) was stamped with a context that had seen (1,1) only: (1,2) stays concurrent with it.
  const two = clock([1, 2], { 1: 1 });
  const three = clock([1, 3], { 1: 1 });
  assert.is(compare(two, three), "concurrent");
  assert.ok(hasSeen(three, { actor: 1, counter: 1 }));
  assert.not.ok(hasSeen(three, { actor: 1, counter: 2 }));
});

test("compare is antisymmetric and descends is reflexive over random clocks", () => {
  const prng = createPrng(31);
  const mirror = { before: "after", after: "before", equal: "equal", concurrent: "concurrent" } as const;
  for (let i = 0; i < 2000; i++) {
    const a = randomClock(prng, 4);
    const b = prng.chance(0.1) ? a : randomClock(prng, 4);
    assert.is(compare(b, a), mirror[compare(a, b)]);
    assert.ok(descends(a, a));
  }
});

// ---- join, update, sync ----------------------------------------------------------------------

test("join takes the highest counter per actor and marks the actors that stamped a sibling", () => {
  const context = join([clock([0, 3], { 1: 2 }, 10), clock([2, 1], { 0: 2, 1: 4 }, 20)]);
  assert.equal(context.entries, [
    { actor: 0, counter: 3, timestampMs: 10, frontier: true },
    { actor: 1, counter: 4, timestampMs: 20, frontier: false },
    { actor: 2, counter: 1, timestampMs: 20, frontier: true },
  ]);
  assert.equal(join([]), emptyContext);
});

test("update numbers the dot above every counter the actor used and honours the counter floor", () => {
  const local = [clock([3, 7]), clock([1, 2], { 3: 9 })];
  const stamped = update({ context: join([clock([0, 1])]), actor: 3, local, timestampMs: 5, pruneThreshold: 8 });
  assert.equal(stamped.dot, { actor: 3, counter: 10, timestampMs: 5 });
  assert.equal(stamped.past, [{ actor: 0, counter: 1, timestampMs: 1000 }]);
  const floored = update({ context: emptyContext, actor: 3, local, timestampMs: 5, pruneThreshold: 8, counterFloor: 500 });
  assert.is(floored.dot.counter, 500);
});

test("update refuses invalid options with typed errors", async () => {
  const valid = { context: emptyContext, actor: 1, local: [], timestampMs: 1, pruneThreshold: 4 };
  const invalid: [Record<string, unknown>, string][] = [
    [{ actor: -1 }, "LOOM_OUT_OF_RANGE"],
    [{ actor: actorMax + 1 }, "LOOM_OUT_OF_RANGE"],
    [{ actor: 1.5 }, "LOOM_INVALID_ARGUMENT"],
    [{ actor: "1" }, "LOOM_INVALID_ARGUMENT"],
    [{ timestampMs: -1 }, "LOOM_OUT_OF_RANGE"],
    [{ timestampMs: timestampMsMax + 1 }, "LOOM_OUT_OF_RANGE"],
    [{ pruneThreshold: 0 }, "LOOM_OUT_OF_RANGE"],
    [{ pruneThreshold: clockEntriesMax + 1 }, "LOOM_OUT_OF_RANGE"],
    [{ counterFloor: -3 }, "LOOM_OUT_OF_RANGE"],
  ];
  for (const [override, code] of invalid) {
    await rejectsWithCode(() => update({ ...valid, ...override } as Parameters<typeof update>[0]), code);
  }
  await rejectsWithCode(() => update({ ...valid, local: [clock([1, counterMax])] }), "LOOM_OUT_OF_RANGE", /counter/);
});

test("sync keeps one copy of a version received twice and orders siblings newest first", () => {
  const older = { clock: clock([0, 1], {}, 100), value: "older" };
  const newer = { clock: clock([1, 1], {}, 200), value: "newer" };
  const merged = sync([older, newer], [newer, older, newer]);
  assert.equal(merged.map((sibling) => sibling.value), ["newer", "older"]);
  assert.equal(sync(merged, merged), merged);
});

// ---- codec -----------------------------------------------------------------------------------

test("the version codec round-trips random clocks and stays canonical", () => {
  const prng = createPrng(2024);
  for (let i = 0; i < 3000; i++) {
    const original = randomClock(prng);
    const blob = encodeVersion(original);
    assert.ok(blob.length <= limits.versionBytesMax);
    const decoded = decodeVersion(blob);
    assert.equal(decoded, original);
    assert.equal(encodeVersion(decoded), blob);
  }
});

test("the context codec round-trips random contexts", () => {
  const prng = createPrng(77);
  for (let i = 0; i < 2000; i++) {
    const clocks = Array.from({ length: prng.nextInt(4) }, () => randomClock(prng, 20));
    const context = join(clocks);
    const text = encodeContext(context, binding);
    assert.ok(/^[A-Za-z0-9_-]*$/.test(text), text);
    assert.ok(text.length <= contextCharactersMax);
    assert.equal(decodeContext(text, binding), context);
  }
});

test("a version clock is a few bytes: the worked example in docs/versioning.md", () => {
  const example: DottedVersionVector = {
    dot: { actor: 2, counter: 7, timestampMs: 1_700_000_000_000 },
    past: [
      { actor: 0, counter: 3, timestampMs: 1_699_999_999_000 },
      { actor: 2, counter: 5, timestampMs: 1_699_999_990_000 },
    ],
  };
  const hex = [...encodeVersion(example)].map((byte) => byte.toString(16).padStart(2, "0")).join(" ");
  assert.is(hex, "01 02 07 80 d0 95 ff bc 31 02 00 03 cf 0f 02 05 9f 9c 01");
  // Contexts for key "user:1" under the secret 00 01 .. 0f: the body, then its SipHash-2-4 tag.
  assert.is(encodeContext(emptyContext, binding), "AgD1aZHaI0Icbg");
  const context = encodeContext(join([example]), binding);
  assert.is(context, "AgKA0JX_vDEAA-gHBQcAJ8zM6sRHNTE");
  assert.is(hexOf(fromBase64Url(context)), "02 02 80 d0 95 ff bc 31 00 03 e8 07 05 07 00 27 cc cc ea c4 47 35 31");
  assert.is(encodeContext(join([example]), bindingFor("user:2")), "AgKA0JX_vDEAA-gHBQcAor7frk238LU", "another key, another tag");
});

test("a malformed context is a bad context: LoomTypeError with code LOOM_INVALID_ARGUMENT", async () => {
  const valid = encodeContext(join([clock([0, 3], { 1: 2 }), clock([2, 1])]), binding);
  // Bodies that break the grammar but carry a valid tag (as a buggy encoder would make them):
  // the parser still refuses them after the tag matched.
  const toText = (body: readonly number[]) => base64Url([...body, ...binding.signer.sign(exampleKey, Uint8Array.from(body))]);
  const malformed: unknown[] = [
    undefined,
    null,
    42,
    { entries: [] },
    "",
    "A",
    "AQA=",
    "AQ A",
    "AQ+A",
    "AQB", // spare bits set
    valid.slice(0, -2),
    valid + "AA",
    "x".repeat(contextCharactersMax + 1),
    toText([3, 0]), // unknown format
    base64Url([2, 0]), // no tag
    toText([2, 1]), // one entry, nothing follows
    toText([2, 65, 0]), // 65 entries: over the limit
    toText([2, 2, 5, 2, 1, 0, 0, 1, 0]), // second entry repeats the actor (delta 0)
    toText([2, 1, 5, 2, 0, 0]), // counter 0
    toText([2, 1, 5, 2, 1, 6]), // age beyond the newest timestamp
    toText([2, 1, 0x85, 0x00, 2, 1, 0]), // overlong varint
    toText([2, 1, 5, 0x80, 0x80, 0x80, 0x02, 1, 0]), // actor 2^21, beyond actorMax
  ];
  for (const input of malformed) {
    await rejectsWithCode(() => decodeContext(input, binding), "LOOM_INVALID_ARGUMENT", /^decode context failed: bad context: /);
  }
});

// ---- signed contexts -------------------------------------------------------------------------

/** A format-2 context claiming counter 2^53 - 2 for actor 0, with a tag made without the secret. */
function forgedContext(tag: readonly number[]): string {
  const body = [2, 1, 5, 0, ...varint(counterMax - 1), 0];
  return base64Url([...body, ...tag]);
}

test("a context made up without the secret is refused as a bad context, whatever its tag", async () => {
  const prng = createPrng(53);
  const tags = [new Array(contextTagBytes).fill(0), new Array(contextTagBytes).fill(0xff)];
  for (let i = 0; i < 200; i++) tags.push(Array.from({ length: contextTagBytes }, () => prng.nextInt(256)));
  for (const tag of tags) {
    await rejectsWithCode(() => decodeContext(forgedContext(tag), binding), "LOOM_INVALID_ARGUMENT", /^decode context failed: bad context: /);
  }
  await rejectsWithCode(() => decodeContext(forgedContext(tags[0]!), binding), "LOOM_INVALID_ARGUMENT", /tag does not match .*: read the key again$/);
});

test("a context is bound to its key: another key's context is refused", async () => {
  const context = encodeContext(join([clock([0, 3], { 1: 2 })]), bindingFor("user:2"));
  assert.equal(decodeContext(context, bindingFor("user:2")).entries.length, 2);
  await rejectsWithCode(() => decodeContext(context, binding), "LOOM_INVALID_ARGUMENT", /^decode context failed: bad context: /);
  // The key's length is hashed too: "ab" + body never passes for "a" + ("b" + body).
  await rejectsWithCode(() => decodeContext(encodeContext(emptyContext, bindingFor("ab")), bindingFor("a")), "LOOM_INVALID_ARGUMENT", /^decode context failed: bad context: /);
  await rejectsWithCode(() => decodeContext(encodeContext(emptyContext, bindingFor("user:1")), { key: exampleKey.subarray(0, 5), signer: binding.signer }), "LOOM_INVALID_ARGUMENT", /^decode context failed: bad context: /);
});

test("a context signed with another cluster's secret is refused", async () => {
  const other = createContextSigner(exampleSecret.map((byte) => byte ^ 0x80));
  const context = encodeContext(join([clock([0, 3])]), { key: exampleKey, signer: other });
  await rejectsWithCode(() => decodeContext(context, binding), "LOOM_INVALID_ARGUMENT", /^decode context failed: bad context: /);
});

test("flipping any bit of a context makes it a bad context", async () => {
  const bytes = fromBase64Url(encodeContext(join([clock([0, 3], { 1: 2 }), clock([2, 1])]), binding));
  for (let index = 0; index < bytes.length; index++) {
    for (let bit = 0; bit < 8; bit++) {
      const flipped = [...bytes];
      flipped[index]! ^= 1 << bit;
      await rejectsWithCode(() => decodeContext(base64Url(flipped), binding), "LOOM_INVALID_ARGUMENT", /^decode context failed: bad context: /);
    }
  }
});

test("a context of format 1 (before signed contexts) is refused with the reason", async () => {
  // The worked example's context as format 1 encoded it: no tag.
  for (const old of ["AQKA0JX_vDEAA-gHBQcA", "AQA", forgedContext([]).replace(/^Ag/, "AQ")]) {
    await rejectsWithCode(() => decodeContext(old, binding), "LOOM_INVALID_ARGUMENT", /^decode context failed: bad context: .*context format 1 predates signed contexts: read the key again/);
  }
});

test("joinContexts keeps per actor the highest counter, and frontier when either context has it", () => {
  const left = { entries: [{ actor: 0, counter: 3, timestampMs: 10, frontier: true }, { actor: 2, counter: 1, timestampMs: 10, frontier: false }] };
  const right = { entries: [{ actor: 1, counter: 4, timestampMs: 20, frontier: true }, { actor: 2, counter: 5, timestampMs: 20, frontier: false }] };
  assert.equal(joinContexts([left, right]), {
    entries: [
      { actor: 0, counter: 3, timestampMs: 10, frontier: true },
      { actor: 1, counter: 4, timestampMs: 20, frontier: true },
      { actor: 2, counter: 5, timestampMs: 20, frontier: false },
    ],
  });
  assert.equal(joinContexts([right, left]), joinContexts([left, right]));
  assert.equal(joinContexts([]), emptyContext);
  const siblings = [clock([0, 1], {}, 100), clock([1, 1], {}, 200)];
  assert.equal(joinContexts([join([siblings[0]!]), join([siblings[1]!])]), join(siblings), "joining reads equals reading both");
});

test("a malformed version blob raises a RangeError naming the decode", async () => {
  const valid = encodeVersion(clock([1, 3], { 0: 2 }));
  const malformed: Uint8Array[] = [
    new Uint8Array([]),
    new Uint8Array([2, 0, 1, 0, 0]),
    valid.subarray(0, valid.length - 1),
    new Uint8Array([...valid, 0]),
    new Uint8Array([1, 0, 0, 0, 0]), // counter 0
    new Uint8Array([1, 1, 2, 0, 1, 1, 2, 0]), // past reaches the dot's own counter
    new Uint8Array([1, 1, 3, 0, 2, 0, 1, 0, 0, 1, 0]), // past repeats an actor
    new Uint8Array([1, 1, 3, 0, 1, 0, 1, 1]), // past timestamp before 0
    new Uint8Array([1, 0x81, 0x00, 1, 0, 0]), // overlong varint
    new Uint8Array(limits.versionBytesMax + 1),
  ];
  for (const blob of malformed) {
    await rejectsWithCode(() => decodeVersion(blob), "LOOM_OUT_OF_RANGE", /^decode version failed/);
  }
});

test("encode refuses clocks that break the invariants", async () => {
  const tooMany = clock([0, 1], Object.fromEntries(Array.from({ length: clockEntriesMax + 1 }, (_, i) => [i + 1, 1])));
  await rejectsWithCode(() => encodeVersion(tooMany), "LOOM_OUT_OF_RANGE");
  const unsorted = {
    dot: { actor: 0, counter: 1, timestampMs: 0 },
    past: [
      { actor: 3, counter: 1, timestampMs: 0 },
      { actor: 2, counter: 1, timestampMs: 0 },
    ],
  };
  await rejectsWithCode(() => encodeVersion(unsorted), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => encodeVersion(clock([1, 2], { 1: 2 })), "LOOM_OUT_OF_RANGE");
  await rejectsWithCode(() => encodeVersion({ dot: null } as never), "LOOM_INVALID_ARGUMENT");
});

// ---- pruning -----------------------------------------------------------------------------------

/** A context with `count` actors, actor i last written at time 1000 + i (actor 0 is the oldest). */
function wideContext(count: number, frontier: readonly number[] = []): CausalContext {
  return {
    entries: Array.from({ length: count }, (_, actor) => ({
      actor,
      counter: 1 + actor,
      timestampMs: 1000 + actor,
      frontier: frontier.includes(actor),
    })),
  };
}

test("pruning keeps at most pruneThreshold entries and drops the oldest first", () => {
  for (const threshold of [1, 2, 5, 16, clockEntriesMax]) {
    const stamped = update({ context: wideContext(clockEntriesMax), actor: 100, local: [], timestampMs: 9999, pruneThreshold: threshold });
    assert.is(stamped.past.length, threshold);
    assert.equal(
      stamped.past.map((entry) => entry.actor),
      Array.from({ length: threshold }, (_, i) => clockEntriesMax - threshold + i),
    );
    assert.ok(encodeVersion(stamped).length <= limits.versionBytesMax);
  }
});

test("pruning keeps the entries that let a write supersede the siblings its client saw", () => {
  // Actors 0 and 1 stamped the (old) siblings; 2..9 appear only in their pasts.
  const stamped = update({ context: wideContext(10, [0, 1]), actor: 3, local: [], timestampMs: 9999, pruneThreshold: 3 });
  assert.equal(stamped.past.map((entry) => entry.actor), [0, 1, 9]);
  const old0 = clock([0, 1], {}, 1000);
  const old1 = clock([1, 2], {}, 1001);
  assert.ok(dominates(stamped, old0) && dominates(stamped, old1));
});

test("pruning only ever adds siblings: a pruned write supersedes a subset of what the full one does", () => {
  const prng = createPrng(5150);
  for (let round = 0; round < 300; round++) {
    // A local state of concurrent versions by 12 actors; the client saw a random subset of them.
    const local: DottedVersionVector[] = [];
    for (let actor = 0; actor < 12; actor++) {
      if (prng.chance(0.6)) local.push(clock([actor, 1 + prng.nextInt(5)], {}, prng.nextRange(0, 5000)));
    }
    const seen = local.filter(() => prng.chance(0.5));
    const context = join(seen);
    const floor = 1000;
    const full = update({ context, actor: 20, local, timestampMs: 6000, pruneThreshold: clockEntriesMax, counterFloor: floor });
    const threshold = 1 + prng.nextInt(6);
    const pruned = update({ context, actor: 20, local, timestampMs: 6000, pruneThreshold: threshold, counterFloor: floor });
    assert.ok(pruned.past.length <= threshold);
    for (const version of local) {
      if (dominates(pruned, version)) assert.ok(dominates(full, version), "pruning superseded a version the full clock keeps");
      if (!seen.includes(version)) assert.not.ok(dominates(pruned, version), "a write superseded a version its client never saw");
    }
  }
});

test("pruning can make a descendant look concurrent: a false sibling, never a lost write", () => {
  // a → b → c, each seeing the previous; c's past is pruned to one entry and forgets actor 0.
  const a = update({ context: emptyContext, actor: 0, local: [], timestampMs: 1, pruneThreshold: 1 });
  const b = update({ context: join([a]), actor: 1, local: [], timestampMs: 2, pruneThreshold: 1 });
  const c = update({ context: join([b]), actor: 2, local: [], timestampMs: 3, pruneThreshold: 1 });
  assert.equal(c.past.map((entry) => entry.actor), [1]);
  assert.ok(dominates(b, a) && dominates(c, b));
  assert.is(compare(a, c), "concurrent", "c cannot prove it saw a");
  // A replica that received a and c but never b keeps both: a is a false sibling.
  const replica = sync([{ clock: a, value: "a" }], [{ clock: c, value: "c" }]);
  assert.equal(valuesOf(replica), ["a", "c"]);
  // The client's next write, with the context of both, resolves it.
  assert.equal(valuesOf(write(replica, { context: contextOf(replica), actor: 0, value: "d", pruneThreshold: 2 })), ["d"]);
});

test.run();

// ---- bytes for hand-made contexts --------------------------------------------------------------

function varint(value: number): number[] {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return bytes;
}

function hexOf(bytes: Iterable<number>): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join(" ");
}

function fromBase64Url(text: string): number[] {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const bytes: number[] = [];
  let bits = 0;
  let accumulator = 0;
  for (const character of text) {
    accumulator = ((accumulator << 6) | alphabet.indexOf(character)) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((accumulator >> bits) & 0xff);
    }
  }
  return bytes;
}

function base64Url(bytes: readonly number[]): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  let bits = 0;
  let accumulator = 0;
  let text = "";
  for (const byte of bytes) {
    accumulator = ((accumulator << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      text += alphabet[(accumulator >> bits) & 63];
    }
  }
  if (bits > 0) text += alphabet[(accumulator << (6 - bits)) & 63];
  return text;
}
