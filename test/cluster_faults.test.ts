/**
 * The register workload on real worker threads: clients read and write a few keys through the
 * public API while every fault kind of `cluster.faults` but wipes strikes in turn (crash, restart,
 * pause, partition, heal, message loss, delay, disk faults); after the faults heal, a quorum read
 * of every key shows every acknowledged write (N=3 W=2 R=2), nothing never written and nothing
 * refused as not-applied.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createCluster } from "../src/runtime/cluster.ts";
import { createPrng } from "../src/io/prng.ts";
import { RegisterChecker } from "../src/sim/register_checker.ts";
import { registerFaultKinds } from "../src/sim/run_seed.ts";
import { runWorkload } from "../src/sim/workload.ts";
import { clusterTarget } from "./support/cluster_target.ts";
import { recordFigures } from "./support/figures.ts";
import { GENEROUS_REQUEST_TIMEOUT_MS } from "./support/deadlines.ts";

const text = (values: readonly Uint8Array[]) => values.map((value) => new TextDecoder().decode(value));

test("under every fault kind in turn on real threads, no acknowledged write is lost and no refused write appears", async () => {
  const cluster = await createCluster({ nodes: 5, n: 3, w: 2, r: 2, vnodesPerNode: 16, requestTimeoutMs: 300, memtableBytes: 1 << 20 });
  const { target, healAll } = clusterTarget(cluster);
  const checker = new RegisterChecker();
  try {
    const report = await runWorkload(
      target,
      checker,
      { clients: 4, keys: 5, operations: 300, thinkMsMax: 10, faults: registerFaultKinds, faultEveryMs: 60, faultOrder: "cycle" },
      createPrng(8),
    );
    assert.equal(Object.keys(report.faults).sort(), [...registerFaultKinds].sort(), "every fault kind struck");
    await healAll();
    for (const key of checker.keys()) {
      let values: string[] | undefined;
      for (let attempt = 0; attempt < 10 && values === undefined; attempt++) {
        try {
          values = text((await cluster.get(key)).values);
        } catch {
          await sleep(100);
        }
      }
      assert.ok(values !== undefined, `${key} could not be read after the faults healed`);
      checker.finalRead(key, values!);
    }
    const verdict = checker.report();
    recordFigures("threads-register", {
      operations: report.operations,
      faults: report.faults,
      acknowledged: verdict.acknowledged,
      unknown: verdict.unknown,
      notApplied: verdict.notApplied,
      lost: verdict.lost.length,
      phantoms: verdict.phantoms.length,
    });
    assert.equal(verdict.lost, [], "no acknowledged write lost");
    assert.equal(verdict.phantoms, [], "no read of a value never written or refused");
    assert.equal(verdict.staleSiblings, []);
    assert.equal(verdict.resurrected, []);
    assert.ok(verdict.acknowledged > 20, `writes were acknowledged under faults: ${JSON.stringify({ ...verdict, lost: undefined })}`);
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test("with 2 of 5 nodes down, fallbacks take the writes (sloppy quorum), and pw=2 refuses at once those with fewer primaries up", async () => {
  // A 30 s timeout: a refusal that waited for it would make this test take half a minute.
  const cluster = await createCluster({ nodes: 5, n: 3, w: 2, r: 2, vnodesPerNode: 16, requestTimeoutMs: 30_000, memtableBytes: 1 << 20 });
  try {
    await cluster.faults.crash(3);
    await cluster.faults.crash(4);
    const started = performance.now();
    const sloppy = await Promise.allSettled(Array.from({ length: 1000 }, (_, index) => cluster.put(`k${index}`, "v")));
    const strict = await Promise.allSettled(Array.from({ length: 1000 }, (_, index) => cluster.put(`p${index}`, "v", { pw: 2 })));
    const elapsedMs = performance.now() - started;
    const failedSloppy = sloppy.filter((result) => result.status === "rejected");
    assert.equal(failedSloppy.map((result) => String((result as PromiseRejectedResult).reason)).slice(0, 3), [], "three nodes up hold W=2 of every key, with hints");
    const refused = strict.filter((result) => result.status === "rejected");
    assert.ok(refused.length > 0 && refused.length < strict.length, `keys with 2 primaries up go through, the others not: ${refused.length} refused`);
    for (const result of refused) assert.is(((result as PromiseRejectedResult).reason as { outcome?: string }).outcome, "not-applied");
    recordFigures("threads-two-down", { puts: sloppy.length + strict.length, acknowledgedSloppy: sloppy.length - failedSloppy.length, refusedAtOnceWithPw2: refused.length, milliseconds: Math.round(elapsedMs) });
    assert.ok(elapsedMs < 15_000, `2,000 puts took ${elapsedMs.toFixed(0)} ms: refusals waited for their 30 s timeout`);
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});


test("a read asks R replicas, asks the third when one of them is paused, and answers long before its timeout; one known down is asked last; readFanout all asks every replica", async () => {
  // Gossip would mark the paused node down after failAfterMs and route around it; a long
  // failAfterMs keeps it "up", so the reads must get past it on their own.
  const cluster = await createCluster({ nodes: 3, n: 3, w: 2, r: 2, vnodesPerNode: 16, requestTimeoutMs: 20_000, gossip: { failAfterMs: 60_000, cleanupAfterMs: 120_000 } });
  try {
    const keys = Array.from({ length: 400 }, (_, index) => `fan-${index}`).filter((key) => cluster.preferenceList(key)[1] === 2).slice(0, 40);
    for (const key of keys) await cluster.put(key, `v ${key}`);
    const readsOn = async () => (await cluster.stats()).nodes.reduce((sum, node) => sum + node.reads.speculative, 0);
    const before = await readsOn();
    const pausing = cluster.faults.pause(2, 3000);
    await sleep(50);
    const started = performance.now();
    const answers = await Promise.all(keys.map((key) => cluster.get(key)));
    const elapsedMs = performance.now() - started;
    await pausing;
    assert.equal(answers.map((answer) => text(answer.values)), keys.map((key) => [`v ${key}`]));
    // The main thread would try the next coordinator after a quarter of the 20 s timeout.
    assert.ok(elapsedMs < 2500, `${keys.length} reads took ${elapsedMs.toFixed(0)} ms: they waited for the paused replica`);
    assert.ok((await readsOn()) - before >= keys.length, "each read asked node 3 too");
    // A stale replica third in line: a quorum read never asks it; with readFanout "all" a plain
    // read asks it and repairs it.
    const stale = Array.from({ length: 400 }, (_, index) => `third-${index}`).find((key) => cluster.preferenceList(key)[2] === 2)!;
    await cluster.put(stale, "old", { w: 3 });
    await cluster.configure({ antiEntropy: { enabled: false } });
    await cluster.faults.crash(2);
    // A replica the coordinator knows is down is asked last: no read waits for it.
    const beforeCrashReads = await readsOn();
    const whileDown = await Promise.all(keys.map((key) => cluster.get(key)));
    assert.equal(whileDown.map((answer) => text(answer.values)), keys.map((key) => [`v ${key}`]));
    assert.is((await readsOn()) - beforeCrashReads, 0, "reads with the second replica down did not wait for it");
    await cluster.put(stale, "newer", { context: (await cluster.get(stale)).context });
    await cluster.faults.restart(2);
    await cluster.get(stale);
    await sleep(200);
    assert.equal((await cluster.replicaValues(stale)).map(({ node, values }) => [node, values && text(values)]).sort(), [[0, ["newer"]], [1, ["newer"]], [2, ["old"]]], "a quorum read left the third replica alone");
    // Nodes apply a configuration within a round of receiving it: read until one read asked all.
    await cluster.configure({ readFanout: "all" });
    const deadline = Date.now() + 10_000;
    for (;;) {
      await cluster.get(stale);
      await sleep(50);
      const held = await cluster.replicaValues(stale);
      if (held.every(({ values }) => values && text(values).join() === "newer")) break;
      if (Date.now() > deadline) assert.unreachable(`read repair did not reach every replica: ${JSON.stringify(held.map(({ node, values }) => [node, values && text(values)]))}`);
      await sleep(50);
    }
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test("close finishes while a node's disk is full, and the data directory opens again with what was acknowledged", async () => {
  const cluster = await createCluster({ nodes: 3, vnodesPerNode: 16, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
  try {
    for (let index = 0; index < 50; index++) await cluster.put(`kept-${index}`, "v");
    await cluster.faults.diskFault(1, "full");
    await cluster.put("after-fault", "w").catch(() => {}); // the node's store fails on it
    await cluster.close(); // used to wait forever for node 1's thread
    const again = await createCluster({ dataDir: cluster.dataDir, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
    try {
      for (let index = 0; index < 50; index += 7) assert.equal(text((await again.get(`kept-${index}`)).values), ["v"]);
    } finally {
      await again.close();
    }
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test("a configure issued while a node restarts or is wiped reaches that node too", async () => {
  const cluster = await createCluster({ nodes: 3, vnodesPerNode: 16 });
  try {
    await cluster.faults.crash(1);
    const restarting = cluster.faults.restart(1);
    await sleep(5); // the thread is starting
    await cluster.configure({ antiEntropy: { enabled: false, buckets: 64 } });
    await restarting;
    const wiping = cluster.faults.wipe(2);
    await sleep(5);
    await cluster.configure({ antiEntropy: { enabled: true } });
    await wiping;
    const deadline = Date.now() + 5000;
    for (;;) {
      const nodes = (await cluster.stats()).nodes;
      // Nodes apply a change within a round of receiving it.
      if (nodes.every((node) => node.antiEntropy.enabled)) break;
      if (Date.now() > deadline) assert.unreachable(`nodes disagree with the cluster: ${JSON.stringify(nodes.map((node) => [node.nodeId, node.antiEntropy.enabled]))}`);
      await sleep(20);
    }
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test.run();
