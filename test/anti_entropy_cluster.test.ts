/**
 * Merkle anti-entropy on real worker threads, through the public API: a wiped node rebuilt from
 * its peers, trees rebuilt in the storage pool when the bucket count changes under writes, deleted
 * keys purged from every replica's files, and the set workload under every fault kind.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { rootsAgree as rootsAgreeIn } from "../src/antientropy/anti_entropy.ts";
import { createCluster, type Cluster } from "../src/runtime/cluster.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { createPrng } from "../src/io/prng.ts";
import { readLog } from "../src/storage/log_reader.ts";
import { decodeBatch } from "../src/storage/log_batch.ts";
import { parseFileName } from "../src/storage/manifest.ts";
import { SSTableReader } from "../src/storage/sstable_reader.ts";
import { HINTS_DIRECTORY } from "../src/handoff/hint_store.ts";
import { parseSet, SetChecker } from "../src/sim/set_checker.ts";
import { runSetWorkload } from "../src/sim/set_workload.ts";
import { setFaultKinds } from "../src/sim/run_set_seed.ts";
import { clusterTarget } from "./support/cluster_target.ts";
import { eventually } from "./support/eventually.ts";
import { recordFigures } from "./support/figures.ts";
import { GENEROUS_REQUEST_TIMEOUT_MS } from "./support/deadlines.ts";

const decoder = new TextDecoder();

/** Whether every pair of nodes holds equal roots for each other, none of them rebuilding. */
async function rootsAgree(cluster: Cluster): Promise<boolean> {
  const stats = await cluster.stats();
  return stats.nodes.length === cluster.ring().nodes.length && rootsAgreeIn(new Map(stats.nodes.map((node) => [node.nodeId, node.antiEntropy])));
}

async function hintsHeld(cluster: Cluster): Promise<number> {
  const stats = await cluster.stats();
  return stats.nodes.reduce((sum, node) => sum + node.hints.held.reduce((held, target) => held + target.keys, 0), 0);
}

test("a wiped node gets every key back from anti-entropy on real threads, and only what it lacked travels", async () => {
  const cluster = await createCluster({ nodes: 3, n: 3, w: 2, r: 2, vnodesPerNode: 16, memtableBytes: 1 << 20, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS, antiEntropy: { intervalMs: 100 } });
  try {
    const keys = 3000;
    for (let start = 0; start < keys; start += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, index) => cluster.put(`key-${start + index}`, `value-${start + index}`)));
    }
    // Every replica holds every key first, so nothing is still on its way to node 1 when it is wiped
    // and all that comes back to it comes from anti-entropy.
    await eventually(async () => (await cluster.stats({ keys: true })).nodes.every((node) => node.keys?.live === keys), { what: "every replica holds every key" });
    await cluster.faults.wipe(1);
    const started = performance.now();
    await eventually(() => rootsAgree(cluster), { timeoutMs: 20_000, what: "replicas converge after the wipe" });
    const rebuiltMs = performance.now() - started;
    // The tree moves when a write enters the memtable, the counter when that write has returned, so
    // the counter may trail the roots by a moment.
    const stats = await eventually(async () => {
      const now = await cluster.stats({ keys: true });
      return now.nodes.find((node) => node.nodeId === 1)!.antiEntropy.keysRepaired >= keys && now;
    }, { what: "every repair counted" });
    const wiped = stats.nodes.find((node) => node.nodeId === 1)!;
    assert.is(wiped.keys?.live, keys, "node 1 holds every key again");
    const repaired = wiped.antiEntropy.keysRepaired;
    // Each missing key is written once: no key is repaired twice, none arrives another way.
    assert.is(repaired, keys, "keys repaired on the wiped node");
    const received = wiped.antiEntropy.keysReceived;
    assert.ok(received <= keys * 1.1, `${received} keys pushed to the wiped node, for ${keys} missing`);
    for (let index = 0; index < keys; index += 131) {
      for (const replica of await cluster.replicaValues(`key-${index}`)) assert.equal(replica.values?.map((value) => decoder.decode(value)), [`value-${index}`], `key-${index} on node ${replica.node}`);
    }
    recordFigures("threads-wipe-recovery", { keys, rebuiltMs: Math.round(rebuiltMs), keysRepaired: repaired, bytesSent: stats.nodes.reduce((sum, node) => sum + node.antiEntropy.bytesSent, 0) });
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test("changing the bucket count rebuilds every tree in the storage pool while writes go on, and replicas still agree", async () => {
  const cluster = await createCluster({ nodes: 3, n: 3, vnodesPerNode: 16, memtableBytes: 1 << 20, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS, antiEntropy: { intervalMs: 100 } });
  try {
    await Promise.all(Array.from({ length: 2000 }, (_, index) => cluster.put(`key-${index}`, "v")));
    const writing = Promise.all(Array.from({ length: 1000 }, (_, index) => cluster.put(`late-${index}`, "w")));
    await cluster.configure({ antiEntropy: { buckets: 4096 } });
    await writing;
    await eventually(() => rootsAgree(cluster), { timeoutMs: 10_000, what: "roots agree after the rebuild" });
    for (const node of (await cluster.stats()).nodes) {
      assert.ok(node.antiEntropy.rebuilds >= 2, `node ${node.nodeId} rebuilt its trees`);
      assert.is(node.antiEntropy.rebuilding, false);
      assert.is(Object.keys(node.antiEntropy.roots).length, 2);
    }
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

/** Every key of every record in `directory`'s tables and logs (the files as they are on disk). */
function keysOnDisk(directory: string): string[] {
  const fs = new RealFileSystem();
  const keys: string[] = [];
  for (const name of fs.list(directory)) {
    const { kind } = parseFileName(name);
    const path = join(directory, name);
    if (kind === "table") {
      const reader = SSTableReader.open(fs, path);
      try {
        for (const record of reader.records()) keys.push(decoder.decode(record.key));
      } finally {
        reader.close();
      }
    } else if (kind === "log") {
      for (const record of readLog(fs, path).records) for (const entry of decodeBatch(record)) keys.push(decoder.decode(entry.key));
    }
  }
  return keys;
}

test("after the grace, an anti-entropy round and a compaction, a deleted key is in no replica's files", async () => {
  const cluster = await createCluster({ nodes: 3, n: 3, vnodesPerNode: 16, memtableBytes: 1 << 20, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS, antiEntropy: { intervalMs: 100, tombstoneGraceMs: 2000 } });
  try {
    const keys = 200;
    const written = await Promise.all(Array.from({ length: keys }, (_, index) => cluster.put(`gone-${index}`, "v")));
    await Promise.all(Array.from({ length: 50 }, (_, index) => cluster.put(`kept-${index}`, "v")));
    await Promise.all(written.map((write, index) => cluster.delete(`gone-${index}`, { context: write.context })));
    await cluster.compact(); // the tombstones reach the tables: the purge must remove them from there
    await sleep(1000);
    for (const node of (await cluster.stats()).nodes) assert.is(node.antiEntropy.tombstonesPurged, 0, "nothing is purged within the grace");
    await eventually(
      async () => (await cluster.stats()).nodes.every((node) => node.antiEntropy.tombstonesPurged === keys),
      { timeoutMs: 10_000, what: "every replica purges every tombstone" },
    );
    assert.equal((await cluster.compact()).sort(), [0, 1, 2]);
    for (const node of [0, 1, 2]) {
      const onDisk = keysOnDisk(join(cluster.dataDir, `node-${node}`));
      assert.equal(onDisk.filter((key) => key.startsWith("gone-")), [], `node ${node}'s files hold no record of a deleted key`);
      assert.is(onDisk.filter((key) => key.startsWith("kept-")).length, 50, `node ${node} keeps the live keys`);
      assert.equal(keysOnDisk(join(cluster.dataDir, `node-${node}`, HINTS_DIRECTORY)), []);
    }
    for (let index = 0; index < keys; index += 17) assert.equal((await cluster.get(`gone-${index}`)).values, []);
    recordFigures("threads-tombstone-purge", { keys, graceMs: 2000, purgedPerReplica: keys, recordsLeftInFiles: 0 });
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test("the set workload on real threads under every fault kind in turn: no acknowledged add lost, every replica holds every one after anti-entropy", async () => {
  const cluster = await createCluster({ nodes: 5, n: 3, w: 2, r: 2, vnodesPerNode: 16, requestTimeoutMs: 300, memtableBytes: 1 << 20, antiEntropy: { intervalMs: 100 } });
  const { target, healAll } = clusterTarget(cluster);
  const checker = new SetChecker();
  try {
    const report = await runSetWorkload(
      target,
      checker,
      { clients: 4, keys: 3, adds: 300, thinkMsMax: 10, faults: setFaultKinds, faultEveryMs: 60, faultOrder: "cycle", wipeVictim: 2 },
      createPrng(21),
    );
    assert.equal(Object.keys(report.faults).sort(), [...setFaultKinds].sort(), "every fault kind struck");
    await healAll();
    const settleStarted = performance.now();
    await eventually(async () => (await hintsHeld(cluster)) === 0 && (await rootsAgree(cluster)), { timeoutMs: 30_000, what: "hints drain and replicas converge" });
    const settledMs = performance.now() - settleStarted;
    for (const key of checker.keys()) {
      const read = await eventually(() => cluster.get(key).catch(() => false as const), { timeoutMs: 5000, what: `a quorum read of ${key}` });
      checker.finalRead(key, read.values.map((value) => decoder.decode(value)));
    }
    const verdict = checker.report();
    let gaps = 0;
    for (const [key, elements] of checker.acknowledgedByKey()) {
      for (const replica of await cluster.replicaValues(key)) {
        const held = new Set((replica.values ?? []).flatMap((value) => parseSet(decoder.decode(value))));
        gaps += elements.filter((element) => !held.has(element)).length;
      }
    }
    recordFigures("threads-set", {
      adds: verdict.adds,
      faults: report.faults,
      acknowledged: verdict.acknowledged,
      unknown: verdict.unknown,
      unknownPresent: verdict.unknownPresent,
      notApplied: verdict.notApplied,
      lost: verdict.lost.length,
      phantoms: verdict.phantoms.length,
      notAppliedPresent: verdict.notAppliedPresent.length,
      replicaGaps: gaps,
      settledMs: Math.round(settledMs),
    });
    assert.equal(verdict.lost, []);
    assert.equal(verdict.phantoms, []);
    assert.equal(verdict.notAppliedPresent, []);
    assert.is(gaps, 0, "every replica holds every acknowledged add on its own");
    assert.ok(verdict.acknowledged > 50, JSON.stringify({ ...verdict, lost: undefined }));
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test.run();
