/**
 * Sloppy quorum with hinted handoff on real worker threads: fallbacks take writes (and answer
 * reads) for primaries that are down, keep them as durable hints, and hand them back once the
 * primary beats again; hints are bounded in bytes and in time; a node that is down for good can
 * be removed, its replicas rebuilt from the survivors.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createCluster, type Cluster } from "../src/runtime/cluster.ts";
import { rejectsWithCode } from "./support/assertions.ts";
import { eventually } from "./support/eventually.ts";
import { recordFigures } from "./support/figures.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const gossip = { intervalMs: 50, failAfterMs: 400, cleanupAfterMs: 10_000 };

async function hintsHeld(cluster: Cluster): Promise<number> {
  const { nodes } = await cluster.stats();
  return nodes.reduce((sum, node) => sum + node.hints.held.reduce((keys, target) => keys + target.keys, 0), 0);
}

/** Keys whose primaries include `node`. */
function keysOf(cluster: Cluster, node: number, count: number, prefix: string): string[] {
  const keys: string[] = [];
  for (let index = 0; keys.length < count; index++) if (cluster.preferenceList(`${prefix}${index}`).includes(node)) keys.push(`${prefix}${index}`);
  return keys;
}

async function everyPrimaryHolds(cluster: Cluster, keys: readonly string[], value: (key: string) => string): Promise<void> {
  const held = await Promise.all(keys.map((key) => cluster.replicaValues(key)));
  keys.forEach((key, index) => {
    for (const { node, values } of held[index]!) assert.equal(values?.map(text), [value(key)], `${key} on node ${node}`);
  });
}

async function withCluster(options: Parameters<typeof createCluster>[0], body: (cluster: Cluster) => Promise<void>): Promise<void> {
  // A generous request deadline: these tests are about where writes go, and a replica's fsync on a
  // loaded 2-core machine can take longer than the default second.
  const cluster = await createCluster({ nodes: 5, n: 3, vnodesPerNode: 16, gossip, memtableBytes: 1 << 20, requestTimeoutMs: 5000, ...options });
  try {
    await body(cluster);
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
}

test("W=3 with one of three owners down succeeds through a fallback; its hints drain once it is back, and every primary then holds every write", () =>
  // W = 3 waits for the slowest of three replicas: with both suites side by side on a loaded
  // machine one put once missed the 5 s deadline by a single acknowledgement.
  withCluster({ w: 3, r: 2, requestTimeoutMs: 15_000 }, async (cluster) => {
    const keys = keysOf(cluster, 2, 200, "w3-");
    await cluster.faults.crash(2);
    // W = 3: each write is acknowledged by every replica, the stand-in's hint included, so writing
    // them side by side leaves nothing in flight that the test then looks for.
    await Promise.all(keys.map((key) => cluster.put(key, `value of ${key}`)));
    const held = await hintsHeld(cluster);
    assert.ok(held >= keys.length, `fallbacks hold a hint for every key of node 2: ${held}`);
    const restarted = performance.now();
    await cluster.faults.restart(2);
    await eventually(async () => (await hintsHeld(cluster)) === 0, { timeoutMs: 20_000, what: "every hint handed back" });
    const drainMs = Math.round(performance.now() - restarted);
    const delivered = (await cluster.stats()).nodes.reduce((sum, node) => sum + node.hints.delivered, 0);
    assert.ok(delivered > 0, `${delivered} hints delivered`);
    await everyPrimaryHolds(cluster, keys, (key) => `value of ${key}`);
    recordFigures("threads-hint-drain", { keys: keys.length, hintsHeld: held, delivered, drainMs, gossipIntervalMs: gossip.intervalMs, keysPerSecond: 5000 });
  }));

test("reads count fallbacks: with two of three owners down, R=2 reads a write that only a primary and a stand-in hold; pr=2 is refused", () =>
  withCluster({ w: 2, r: 2 }, async (cluster) => {
    const key = keysOf(cluster, 0, 1, "r-")[0]!;
    const [, second, third] = cluster.preferenceList(key);
    await cluster.faults.crash(second!);
    await cluster.faults.crash(third!);
    await cluster.put(key, "written with two owners down");
    assert.equal((await cluster.get(key)).values.map(text), ["written with two owners down"]);
    const refused = await rejectsWithCode(() => cluster.get(key, { pr: 2 }), "LOOM_QUORUM");
    assert.is(refused.outcome, "not-applied");
  }));

test("hints survive a restart of the node holding them", () =>
  withCluster({ w: 2, r: 2 }, async (cluster) => {
    const keys = keysOf(cluster, 4, 60, "survive-");
    await cluster.faults.crash(4);
    for (const key of keys) await cluster.put(key, `kept ${key}`);
    const holders = (await cluster.stats()).nodes.filter((node) => node.hints.held.some((target) => target.target === 4)).map((node) => node.nodeId);
    assert.ok(holders.length > 0, "some node holds hints for node 4");
    for (const holder of holders) {
      await cluster.faults.crash(holder);
      await cluster.faults.restart(holder);
    }
    assert.ok((await hintsHeld(cluster)) >= keys.length, "the hints came back with their holders");
    await cluster.faults.restart(4);
    await eventually(async () => (await hintsHeld(cluster)) === 0, { timeoutMs: 20_000 });
    await everyPrimaryHolds(cluster, keys, (key) => `kept ${key}`);
  }));

test("past handoff.bytesPerTargetMax hints are refused and counted; writes still reach W, and read repair brings the owner up to date", () =>
  withCluster({ w: 2, r: 3, handoff: { bytesPerTargetMax: 1024 } }, async (cluster) => {
    const keys = keysOf(cluster, 1, 100, "bytes-");
    await cluster.faults.crash(1);
    for (const key of keys) await cluster.put(key, `v ${key}`.padEnd(64, "."));
    const { nodes } = await cluster.stats();
    const refused = nodes.reduce((sum, node) => sum + node.hints.refusedBytes, 0);
    assert.ok(refused > 0, "hints past 1 KiB per target were refused");
    for (const node of nodes) for (const target of node.hints.held) assert.ok(target.bytes <= 1024, `node ${node.nodeId} holds ${target.bytes} bytes for ${target.target}`);
    await cluster.faults.restart(1);
    await eventually(async () => (await hintsHeld(cluster)) === 0, { timeoutMs: 20_000 });
    for (const key of keys) await cluster.get(key); // R = 3: the read repairs node 1
    await eventually(() => everyPrimaryHolds(cluster, keys, (key) => `v ${key}`.padEnd(64, ".")));
  }));

test("a primary down longer than handoff.windowMs gets no more hints", () =>
  withCluster({ w: 2, r: 2, handoff: { windowMs: 300 } }, async (cluster) => {
    await cluster.faults.crash(3);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const keys = keysOf(cluster, 3, 50, "window-");
    for (const key of keys) await cluster.put(key, "late");
    const { nodes } = await cluster.stats();
    assert.ok(nodes.reduce((sum, node) => sum + node.hints.skippedWindow, 0) >= keys.length, "every write skipped the hint");
    assert.is(await hintsHeld(cluster), 0);
  }));

test("removing a node that is down rebuilds its replicas from the survivors, and frees its directory", () =>
  withCluster({ w: 2, r: 2 }, async (cluster) => {
    const keys = Array.from({ length: 300 }, (_, index) => `forced-${index}`);
    for (const key of keys) await cluster.put(key, `stays ${key}`);
    await cluster.faults.crash(2);
    const during = keysOf(cluster, 2, 30, "during-");
    for (const key of during) await cluster.put(key, `stays ${key}`);
    await cluster.removeNode(2);
    assert.equal(cluster.ring().nodes, [0, 1, 3, 4]);
    await eventually(async () => (await hintsHeld(cluster)) === 0, { timeoutMs: 20_000, what: "hints for the removed node re-homed and delivered" });
    await eventually(() => everyPrimaryHolds(cluster, [...keys, ...during], (key) => `stays ${key}`));
    assert.ok(!existsSync(join(cluster.dataDir, "node-2", "LOCK")), "the removed node's lock is freed");
  }));

test.run();
