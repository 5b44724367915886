/**
 * What the cluster answers when a request cannot be served: every refusal is a typed rejection
 * (never a synchronous throw), made before anything is sent, and leaves nothing behind; every
 * failure says whether the request may have been applied (`outcome`); close() lets the requests
 * in flight finish instead of reporting them failed.
 */
import { suite, test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCluster, type Cluster } from "../src/runtime/cluster.ts";
import { eventually } from "./support/eventually.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const INVALID = "LOOM_INVALID_ARGUMENT";
const OUT_OF_RANGE = "LOOM_OUT_OF_RANGE";
import { GENEROUS_REQUEST_TIMEOUT_MS } from "./support/deadlines.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/**
 * `call`, for rejectsWithCode, checked to fail by rejecting its promise: a synchronous throw is
 * turned into an error without a code, which rejectsWithCode reports.
 */
function asynchronously(call: () => Promise<unknown>): () => Promise<unknown> {
  return () => {
    try {
      return call();
    } catch (error) {
      throw new Error(`expected a rejected promise, but the call threw synchronously: ${String(error)}`);
    }
  };
}

const shared = suite<{ cluster: Cluster }>("refusals on a running cluster", { cluster: undefined as unknown as Cluster });

shared.before(async (context) => {
  context.cluster = await createCluster({ nodes: 3, n: 3, w: 2, r: 2, vnodesPerNode: 16, memtableBytes: 1 << 20, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
});

shared.after(async (context) => {
  await context.cluster.close();
  rmSync(context.cluster.dataDir, { recursive: true, force: true });
});

shared("a bad key or value makes put, delete and get reject with a typed error instead of throwing", async ({ cluster }) => {
  // Not a key at all: LOOM_INVALID_ARGUMENT; an empty or oversized one: LOOM_OUT_OF_RANGE.
  const badKeys: [unknown, string][] = [
    [123, INVALID], [null, INVALID], [undefined, INVALID], [{}, INVALID], [[], INVALID],
    ["", OUT_OF_RANGE], [new Uint8Array(0), OUT_OF_RANGE], ["k".repeat(16 * 1024 + 1), OUT_OF_RANGE],
    [true, INVALID], [12n, INVALID],
  ];
  for (const [key, code] of badKeys) {
    for (const call of [() => cluster.put(key as string, "v"), () => cluster.delete(key as string), () => cluster.get(key as string)]) {
      const error = await rejectsWithCode(asynchronously(call), code);
      assert.is(error.outcome, "not-applied");
    }
  }
  const badValues: [unknown, string][] = [[123, INVALID], [null, INVALID], [undefined, INVALID], [{}, INVALID], [["a"], INVALID], [new ArrayBuffer(2), INVALID], ["v".repeat(1024 * 1024 + 1), OUT_OF_RANGE]];
  for (const [value, code] of badValues) await rejectsWithCode(asynchronously(() => cluster.put("bad-value", value as string)), code);
  assert.equal((await cluster.get("bad-value")).values, [], "no refused put wrote anything");
});

shared("request options are validated like settings: unknown names, wrong types and null are refused", async ({ cluster }) => {
  const cases: [() => Promise<unknown>, string, RegExp][] = [
    [() => cluster.put("opts", "v", null as never), INVALID, /options must be an object, got null/],
    [() => cluster.put("opts", "v", "w=3" as never), INVALID, /options must be an object/],
    [() => cluster.put("opts", "v", 3 as never), INVALID, /options must be an object/],
    [() => cluster.put("opts", "v", { W: 3 } as never), INVALID, /unknown option "W"/],
    [() => cluster.put("opts", "v", { ctx: "abc" } as never), INVALID, /unknown option "ctx"/],
    [() => cluster.put("opts", "v", { r: 2 } as never), INVALID, /unknown option "r"/],
    [() => cluster.put("opts", "v", { w: null } as never), INVALID, /w must be an integer, got null/],
    [() => cluster.put("opts", "v", { w: 2.5 }), INVALID, /w must be an integer/],
    [() => cluster.put("opts", "v", { timeoutMs: 0 }), OUT_OF_RANGE, /timeoutMs is 0/],
    [() => cluster.put("opts", "v", { context: 5 } as never), INVALID, /context must be a string/],
    [() => cluster.delete("opts", { w: "2" } as never), INVALID, /w must be an integer, got "2"/],
    [() => cluster.get("opts", { w: 2 } as never), INVALID, /unknown option "w"/],
    [() => cluster.get("opts", null as never), INVALID, /options must be an object, got null/],
    [() => cluster.get("opts", { r: 4 }), OUT_OF_RANGE, /r is 4, must be between 1 and n \(3\)/],
  ];
  for (const [call, code, message] of cases) {
    const error = await rejectsWithCode(asynchronously(call), code, message);
    assert.is(error.outcome, "not-applied");
  }
  assert.equal((await cluster.get("opts")).values, [], "no refused write reached a replica");
  await cluster.put("opts", "v", { w: undefined, timeoutMs: undefined }); // explicit undefined takes the default
});

shared("strings with lone surrogates are refused as keys and values; surrogate pairs are fine", async ({ cluster }) => {
  for (const key of ["\uD800", "\uDBFF", "a\uDC00b", "x\uD83D"]) {
    await rejectsWithCode(asynchronously(() => cluster.put(key, "v")), INVALID, /lone surrogate/);
  }
  await rejectsWithCode(asynchronously(() => cluster.put("surrogate-value", "\uDFFF")), INVALID);
  await cluster.put("emoji-\u{1F600}", "\u{1F600}");
  assert.equal((await cluster.get("emoji-\u{1F600}")).values.map(text), ["\u{1F600}"]);
  assert.equal((await cluster.get("surrogate-value")).values, []);
});

shared("changing a key or value buffer after put() returns changes nothing stored", async ({ cluster }) => {
  const key = new TextEncoder().encode("buffer-key");
  const value = new Uint8Array([1, 2, 3]);
  const writing = cluster.put(key, value);
  value[0] = 9;
  key[0] = 0x41;
  await writing;
  assert.equal([...(await cluster.get("buffer-key")).values[0]!], [1, 2, 3]);
});

shared("a 65th blind write is refused as TooManySiblingsError before anything is written", async ({ cluster }) => {
  for (let i = 0; i < 64; i++) await cluster.put("crowded", `v${i}`);
  const error = await rejectsWithCode(asynchronously(() => cluster.put("crowded", "one too many")), "LOOM_TOO_MANY_SIBLINGS");
  assert.is(error.outcome, "not-applied");
  assert.ok(!(await cluster.get("crowded")).values.map(text).includes("one too many"));
  const { context } = await cluster.get("crowded");
  await cluster.put("crowded", "resolved", { context }); // a write with the read's context is always accepted
  assert.equal((await cluster.get("crowded")).values.map(text), ["resolved"]);
});

shared("a write whose replicas stop answering misses its quorum: QuorumError, outcome unknown, with the count of W", async ({ cluster }) => {
  const [, second, third] = cluster.preferenceList("quorum-key");
  // Paused threads keep their state and stay members: the router cannot know, only the deadline tells.
  await cluster.faults.pause(second!, 800);
  await cluster.faults.pause(third!, 800);
  const error = await rejectsWithCode(asynchronously(() => cluster.put("quorum-key", "maybe", { timeoutMs: 200 })), "LOOM_QUORUM", /put failed: 1 of 3 replicas acknowledged, 2 required/);
  assert.is(error.outcome, "unknown");
  assert.is(error.required, 2);
  await eventually(async () => (await cluster.stats()).nodes.length === 3, { what: "the paused nodes answer again" });
});

shared("a write that cannot reach W replicas that are up is refused at once as not-applied", async ({ cluster }) => {
  const [, second, third] = cluster.preferenceList("fast-fail");
  await cluster.faults.crash(second!);
  await cluster.faults.crash(third!);
  try {
    const error = await rejectsWithCode(
      asynchronously(() => cluster.put("fast-fail", "refused", { timeoutMs: 60_000 })),
      "LOOM_QUORUM",
      /put failed: 0 of 3 replicas acknowledged, 2 required \(only 1 of replicas .* is up, 2 needed; nothing was sent\)/,
    );
    assert.is(error.outcome, "not-applied");
  } finally {
    await cluster.faults.restart(second!);
    await cluster.faults.restart(third!);
  }
  assert.equal((await cluster.get("fast-fail", { r: 3 })).values, [], "nothing was written anywhere");
});

shared("with every replica down a write fails at once as not-applied, and it is truly absent later", async ({ cluster }) => {
  const replicas = cluster.preferenceList("nobody-home");
  for (const node of replicas) await cluster.faults.crash(node);
  try {
    const error = await rejectsWithCode(asynchronously(() => cluster.put("nobody-home", "lost", { w: 3 })), "LOOM_QUORUM", /0 of 3 replicas acknowledged, 3 required \(only 0 of replicas/);
    assert.is(error.outcome, "not-applied");
  } finally {
    for (const node of replicas) await cluster.faults.restart(node);
  }
  assert.equal((await cluster.get("nobody-home", { r: 3 })).values, []);
});

test("close() lets the 200 puts in flight finish: every one resolves and is there after reopen", async () => {
  const first = await createCluster({ nodes: 3, vnodesPerNode: 16, memtableBytes: 1 << 20, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
  const dataDir = first.dataDir;
  try {
    const puts = Array.from({ length: 200 }, (_, i) => first.put(`inflight-${i}`, `value-${i}`));
    const closing = first.close();
    const late = await rejectsWithCode(asynchronously(() => first.put("after-close", "x")), "LOOM_CLOSED");
    assert.is(late.outcome, "not-applied");
    const settled = await Promise.allSettled(puts);
    await closing;
    const rejected = settled.filter((result) => result.status === "rejected");
    assert.is(rejected.length, 0, `rejected: ${rejected.map((result) => String((result as PromiseRejectedResult).reason)).slice(0, 3).join("; ")}`);
    const again = await createCluster({ dataDir });
    try {
      for (let i = 0; i < 200; i++) assert.equal((await again.get(`inflight-${i}`)).values.map(text), [`value-${i}`]);
      assert.equal((await again.get("after-close")).values, [], "the refused write is not there");
    } finally {
      await again.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a corrupt store file in a node directory fails createCluster with CorruptionError, typed across the thread", async () => {
  const first = await createCluster({ nodes: 3, vnodesPerNode: 16, memtableBytes: 1 << 20, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
  const dataDir = first.dataDir;
  await first.put("k", "v");
  await first.close();
  try {
    writeFileSync(join(dataDir, "node-1", "MANIFEST"), "LOOMMAN1 this is not a manifest");
    const failure = await rejectsWithCode(async () => (await createCluster({ dataDir })).close(), "LOOM_CORRUPTION");
    assert.match(failure.path!, /node-1\/MANIFEST$/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

shared.run();
test.run();
