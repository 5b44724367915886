/**
 * The worker-thread cluster, end to end: real worker threads, each node with its own store on the
 * real disk, quorum requests routed through a coordinating node.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { createCluster, type Cluster } from "../src/runtime/cluster.ts";
import { limits } from "../src/util/limits.ts";
import { rejectsWithCode } from "./support/assertions.ts";
import { eventually } from "./support/eventually.ts";
import { GENEROUS_REQUEST_TIMEOUT_MS } from "./support/deadlines.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

const shared = suite<{ cluster: Cluster }>("a running 3-node cluster", { cluster: undefined as unknown as Cluster });

shared.before(async (context) => {
  context.cluster = await createCluster({ nodes: 3, n: 3, w: 2, r: 2, vnodesPerNode: 16, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
});

shared.after(async (context) => {
  await context.cluster.close();
  rmSync(context.cluster.dataDir, { recursive: true, force: true });
});

shared("strings and bytes round-trip, and an absent key reads as no values", async ({ cluster }) => {
  await cluster.put("user:1", "alice");
  assert.equal((await cluster.get("user:1")).values.map(text), ["alice"]);
  await cluster.put(new Uint8Array([0, 255]), new Uint8Array([1, 2, 3]));
  assert.equal([...(await cluster.get(new Uint8Array([0, 255]))).values[0]!], [1, 2, 3]);
  assert.equal((await cluster.get("never-written")).values, []);
});

shared("two writes carrying the same context become siblings, and a write with their context resolves them", async ({ cluster }) => {
  const { context } = await cluster.put("cart", "base");
  await Promise.all([cluster.put("cart", "apple", { context }), cluster.put("cart", "pear", { context })]);
  const read = await cluster.get("cart");
  assert.equal(read.values.map(text).sort(), ["apple", "pear"]);
  await cluster.put("cart", "apple+pear", { context: read.context });
  assert.equal((await cluster.get("cart")).values.map(text), ["apple+pear"]);
});

shared("writes without a context are kept as siblings, never silently dropped", async ({ cluster }) => {
  await Promise.all([cluster.put("blind", "one"), cluster.put("blind", "two")]);
  assert.equal((await cluster.get("blind")).values.map(text).sort(), ["one", "two"]);
});

shared("a sequential writer that passes its context never sees a sibling: 10,000 writes over 50 keys", async ({ cluster }) => {
  // 50 writers side by side (the fsync window makes one awaited write ~2 ms), each alone on its key.
  const writer = async (key: string) => {
    let context = "";
    for (let i = 0; i < 200; i++) {
      ({ context } = await cluster.put(key, String(i), { context }));
      if (i % 50 === 49) {
        const read = await cluster.get(key);
        assert.equal(read.values.map(text), [String(i)], `${key} after ${i + 1} writes`);
        context = read.context;
      }
    }
  };
  await Promise.all(Array.from({ length: 50 }, (_, k) => writer(`counter-${k}`)));
  const replicas = await cluster.replicaValues("counter-0");
  assert.equal(replicas.map((replica) => replica.values?.map(text)), [["199"], ["199"], ["199"]], "no replica holds a sibling either");
});

shared("a delete with the read context makes the key read as absent", async ({ cluster }) => {
  await cluster.put("temp", "x");
  const { context } = await cluster.get("temp");
  await cluster.delete("temp", { context });
  assert.equal((await cluster.get("temp")).values, []);
});

shared("per-request quorum overrides are validated against N", async ({ cluster }) => {
  await cluster.put("k", "v", { w: 3 });
  assert.equal((await cluster.get("k", { r: 3 })).values.map(text), ["v"]);
  await rejectsWithCode(() => cluster.put("k", "v", { w: 4 }), "LOOM_OUT_OF_RANGE", /w is 4, must be between 1 and n \(3\)/);
  await rejectsWithCode(() => cluster.get("k", { r: 0 }), "LOOM_OUT_OF_RANGE", /r is 0/);
});

shared("bad input is refused with a typed error before anything is sent", async ({ cluster }) => {
  const cases: [() => Promise<unknown>, string][] = [
    [() => cluster.put("", "v"), "LOOM_OUT_OF_RANGE"],
    [() => cluster.put("x".repeat(limits.keyBytesMax + 1), "v"), "LOOM_OUT_OF_RANGE"],
    [() => cluster.put("k", 5 as unknown as string), "LOOM_INVALID_ARGUMENT"],
    [() => cluster.put("k", "v", { context: "%%%not-a-context" }), "LOOM_INVALID_ARGUMENT"],
    [() => cluster.get(undefined as unknown as string), "LOOM_INVALID_ARGUMENT"],
  ];
  for (const [call, code] of cases) await rejectsWithCode(call, code);
});

shared("stats count each node's coordinated requests and report its store", async ({ cluster }) => {
  const before = await cluster.stats();
  const total = (stats: typeof before) => stats.nodes.reduce((sum, node) => sum + node.requests.put + node.requests.get, 0);
  for (let i = 0; i < 20; i++) await cluster.put(`stats-${i}`, "v");
  for (let i = 0; i < 10; i++) await cluster.get(`stats-${i}`);
  const after = await cluster.stats();
  assert.is(total(after) - total(before), 30);
  assert.is(after.nodes.length, 3);
  assert.ok(after.nodes.every((node) => node.store.records > 0), "every node holds replicas (N = 3)");
  assert.ok(after.nodes.some((node) => node.latencyMs.put.samples > 0 && node.latencyMs.put.p99 >= node.latencyMs.put.p50));
  assert.is(after.nodes[0]!.keys, undefined, "key counts only when asked for: they cost a scan");
});

shared("stats with keys count each node's live keys, deleted keys and keys with siblings", async ({ cluster }) => {
  const before = await cluster.stats({ keys: true });
  await cluster.put("counted-live", "v");
  await cluster.put("counted-deleted", "v");
  await cluster.delete("counted-deleted", { context: (await cluster.get("counted-deleted")).context });
  await Promise.all([cluster.put("counted-siblings", "a"), cluster.put("counted-siblings", "b")]);
  // Writes answer after W = 2: the third replica may lag a moment behind, so look until it settles.
  const changes = async () =>
    (await cluster.stats({ keys: true })).nodes.map((node, index) => {
      const was = before.nodes[index]!.keys!;
      return [node.keys!.live - was.live, node.keys!.deleted - was.deleted, node.keys!.withSiblings - was.withSiblings];
    });
  // On every node (N = 3): counted-live and counted-siblings are live, counted-deleted is deleted,
  // counted-siblings holds two values.
  await eventually(async () => assert.equal(await changes(), [[2, 1, 1], [2, 1, 1], [2, 1, 1]]));
});

shared("a burst past the in-flight limit is refused with LOOM_BUSY at once, and everything admitted succeeds", async ({ cluster }) => {
  const burst = limits.requestsInFlightMax + 500;
  const results = await Promise.allSettled(Array.from({ length: burst }, (_, i) => cluster.put(`burst-${i}`, "v")));
  const refused = results.filter((result) => result.status === "rejected");
  assert.is(refused.length, 500);
  assert.ok(refused.every((result) => (result.reason as { code?: string }).code === "LOOM_BUSY"));
  assert.equal((await cluster.get(`burst-${limits.requestsInFlightMax - 1}`)).values.map(text), ["v"]);
});

shared("W, R and the pruning threshold change live; impossible settings are refused and change nothing", async ({ cluster }) => {
  const writes = Array.from({ length: 50 }, (_, i) => cluster.put(`live-${i}`, String(i)));
  const next = await cluster.configure({ w: 3, r: 1, pruneThreshold: 8 });
  assert.is(next.w, 3);
  await Promise.all(writes);
  for (let i = 0; i < 50; i += 5) assert.equal((await cluster.get(`live-${i}`)).values.map(text), [String(i)]);
  await rejectsWithCode(() => cluster.configure({ w: 4 }), "LOOM_OUT_OF_RANGE", /w is 4/);
  await rejectsWithCode(() => cluster.configure({ n: 4 }), "LOOM_OUT_OF_RANGE", /n is 4 but the cluster has 3 nodes/);
  await rejectsWithCode(() => cluster.configure({ nodes: 4 }), "LOOM_OUT_OF_RANGE", /addNode/);
  await rejectsWithCode(() => cluster.configure({ vnodesPerNode: 0 }), "LOOM_OUT_OF_RANGE", /vnodesPerNode/);
  await rejectsWithCode(() => cluster.configure({ bogus: 1 } as never), "LOOM_INVALID_ARGUMENT", /unknown setting bogus/);
  await rejectsWithCode(() => cluster.removeNode(7), "LOOM_OUT_OF_RANGE", /no node 7/);
  await rejectsWithCode(() => cluster.removeNode("1" as never), "LOOM_INVALID_ARGUMENT", /node must be an integer id, got/);
  await rejectsWithCode(() => cluster.removeNode(0), "LOOM_OUT_OF_RANGE", /cannot hold n = 3/);
  assert.is(cluster.config.w, 3, "a refused change changes nothing");
  assert.is(cluster.config.nodes, 3);
  await cluster.configure({ w: 2, r: 2, pruneThreshold: 16 });
});

shared.run();

const lifecycle = suite("cluster lifecycle");

lifecycle("closing and re-opening on the same data directory restores the data and the configuration", async () => {
  let cluster = await createCluster({ nodes: 3, n: 2, w: 1, r: 1, vnodesPerNode: 8, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
  const dataDir = cluster.dataDir;
  try {
    for (let i = 0; i < 50; i++) await cluster.put(`key-${i}`, `value-${i}`);
    await cluster.close();
    cluster = await createCluster({ dataDir });
    assert.is(cluster.config.n, 2);
    assert.is(cluster.config.vnodesPerNode, 8);
    for (let i = 0; i < 50; i += 7) assert.equal((await cluster.get(`key-${i}`)).values.map(text), [`value-${i}`]);
  } finally {
    await cluster.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

lifecycle("use after close is refused, and impossible settings open nothing", async () => {
  const cluster = await createCluster({ nodes: 1, n: 1, w: 1, r: 1 });
  await cluster.close();
  rmSync(cluster.dataDir, { recursive: true, force: true });
  await rejectsWithCode(() => cluster.put("k", "v"), "LOOM_CLOSED");
  await rejectsWithCode(() => createCluster({ nodes: 2, n: 3 }), "LOOM_OUT_OF_RANGE", /n is 3 but the cluster has 2 nodes/);
});

lifecycle("with one node crashed writes still reach W; with two they are refused at once, saying how many replicas are up; restarts bring every acknowledged value back", async () => {
  const cluster = await createCluster({ nodes: 3, n: 3, w: 2, r: 2, vnodesPerNode: 8, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
  try {
    for (let i = 0; i < 20; i++) await cluster.put(`before-${i}`, `value-${i}`);
    await cluster.faults.crash(1);
    for (let i = 0; i < 20; i++) await cluster.put(`during-${i}`, `value-${i}`);
    assert.equal((await cluster.get("before-3")).values.map(text), ["value-3"]);
    await cluster.faults.crash(2);
    // A write needing 2 acknowledgements with 1 live replica is refused before anything is sent:
    // the router knows two of three replicas are down.
    const refused = await rejectsWithCode(() => cluster.put("doomed", "x"), "LOOM_QUORUM", /0 of 3 replicas acknowledged, 2 required \(only 1 of replicas \d, \d, \d is up/);
    assert.is(refused.outcome, "not-applied");
    assert.equal((await cluster.stats()).down, [1, 2]);
    await cluster.faults.restart(1);
    await cluster.faults.restart(2);
    for (let i = 0; i < 20; i += 3) {
      assert.equal((await cluster.get(`before-${i}`, { r: 3 })).values.map(text), [`value-${i}`]);
      assert.equal((await cluster.get(`during-${i}`, { r: 3 })).values.map(text), [`value-${i}`]);
    }
    await cluster.faults.restart(1); // restarting a live node is a no-op: it keeps serving
    assert.equal((await cluster.stats()).down, []);
    assert.equal((await cluster.get("before-3", { r: 3 })).values.map(text), ["value-3"]);
    await rejectsWithCode(() => cluster.faults.crash(7), "LOOM_OUT_OF_RANGE", /no node 7, nodes are 0, 1, 2/);
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

lifecycle.run();
