/**
 * Gossip failure detection on real worker threads: the main thread learns membership as events,
 * finds a paused node by its silent heartbeat (the fault injector never tells the router), routes
 * around it, and takes it back when it beats again; a crash and a restart show as exit and start
 * with a higher generation; gossip settings change live.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { createCluster, type MembershipChange } from "../src/runtime/cluster.ts";
import { eventually } from "./support/eventually.ts";

const gossip = { intervalMs: 50, failAfterMs: 400, cleanupAfterMs: 5000 };

test("a paused node is found by gossip, routed around while silent, and up again once it beats", async () => {
  const cluster = await createCluster({ nodes: 4, n: 3, w: 2, r: 2, vnodesPerNode: 16, gossip, requestTimeoutMs: 2000, memtableBytes: 1 << 20 });
  const changes: MembershipChange[] = [];
  cluster.on("membership", (change) => changes.push(change));
  try {
    const key = Array.from({ length: 100 }, (_, index) => `key-${index}`).find((candidate) => cluster.preferenceList(candidate)[0] === 2)!;
    const pausedAt = performance.now();
    await cluster.faults.pause(2, 2500);
    const down = await eventually(() => changes.find((change) => change.node === 2 && change.status === "down") ?? false, { timeoutMs: 2000 });
    assert.is(down.source, "gossip", "found by its heartbeat, not told by the fault injector");
    const detectedMs = performance.now() - pausedAt;
    assert.ok(detectedMs >= gossip.failAfterMs - gossip.intervalMs, `not before failAfterMs: ${detectedMs.toFixed(0)} ms`);
    assert.ok(cluster.membership().find((member) => member.node === 2)!.status === "down");
    const written = await cluster.put(key, "while 2 is paused");
    assert.is.not(written.coordinator, 2, "the router skips the silent node");
    const up = await eventually(() => changes.find((change) => change.node === 2 && change.status === "up") ?? false, { timeoutMs: 5000 });
    assert.is(up.source, "gossip");
    assert.is(up.generation, down.generation, "the same life: a pause, not a restart");
    assert.equal((await cluster.get(key)).values.map((value) => new TextDecoder().decode(value)), ["while 2 is paused"]);
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test("a crash shows as an exit, a restart as a start with a higher generation; stats carry the view", async () => {
  const cluster = await createCluster({ nodes: 3, n: 3, w: 2, r: 2, vnodesPerNode: 16, gossip, memtableBytes: 1 << 20 });
  const changes: MembershipChange[] = [];
  const listener = (change: MembershipChange) => changes.push(change);
  cluster.on("membership", listener);
  try {
    await eventually(() => cluster.membership().every((member) => member.generation > 0), { what: "every node's first heartbeat" });
    const before = cluster.membership().find((member) => member.node === 1)!.generation;
    await cluster.faults.crash(1);
    assert.equal(changes.map((change) => [change.node, change.status, change.source]), [[1, "down", "exit"]]);
    await cluster.faults.restart(1);
    const start = changes.at(-1)!;
    assert.equal([start.node, start.status, start.source], [1, "up", "start"]);
    assert.ok(start.generation > before, `generation ${start.generation} above ${before}`);
    const view = (await cluster.stats()).membership.find((member) => member.node === 1)!;
    assert.is(view.status, "up");
    assert.ok(view.generation > before);
    cluster.off("membership", listener);
    await cluster.faults.crash(1);
    assert.is(changes.length, 2, "no event after off()");
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test("a shorter failAfterMs set live takes effect within one gossip interval", async () => {
  const cluster = await createCluster({ nodes: 3, n: 3, w: 2, r: 2, vnodesPerNode: 16, gossip: { intervalMs: 50, failAfterMs: 5000, cleanupAfterMs: 20_000 }, memtableBytes: 1 << 20 });
  const changes: MembershipChange[] = [];
  cluster.on("membership", (change) => changes.push(change));
  try {
    await cluster.configure({ gossip: { failAfterMs: 300 } });
    await cluster.faults.pause(0, 2000);
    const down = await eventually(() => changes.find((change) => change.node === 0 && change.status === "down") ?? false, { timeoutMs: 1500 });
    assert.is(down.source, "gossip", "found within 1.5 s, far below the old 5 s");
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test.run();
