/**
 * A cleanup that failed after a ring change, on real worker threads: it is remembered, finished
 * when the node restarts (before it serves), no purge goes ahead meanwhile, and a later move that
 * brings the keys back to that node brings back no deleted value.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createCluster } from "../src/runtime/cluster.ts";
import { eventually } from "./support/eventually.ts";
import { GENEROUS_REQUEST_TIMEOUT_MS } from "./support/deadlines.ts";

const decoder = new TextDecoder();

test("a node whose disk fails during its cleanup finishes it on restart, and a delete purged meanwhile stays deleted when its keys come back", async () => {
  const cluster = await createCluster({
    nodes: 4,
    n: 3,
    vnodesPerNode: 16,
    requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS,
    memtableBytes: 1 << 20,
    gossip: { intervalMs: 50, failAfterMs: 250, cleanupAfterMs: 5000 },
    antiEntropy: { intervalMs: 100, tombstoneGraceMs: 500 },
  });
  try {
    const keys = Array.from({ length: 300 }, (_, index) => `key-${index}`);
    await Promise.all(keys.map((key) => cluster.put(key, `value-${key}`)));
    const before = new Map(keys.map((key) => [key, cluster.preferenceList(key)]));
    // Lowering N moves no key to a new replica: the ring switches at once, then every node drops
    // the keys it no longer holds. The victim's disk is full, which its store learns on that drop.
    const victim = 1;
    await cluster.faults.diskFault(victim, "full");
    await cluster.configure({ n: 2, w: 2, r: 1 });
    const lost = keys.filter((key) => before.get(key)!.includes(victim) && !cluster.preferenceList(key).includes(victim));
    assert.ok(lost.length > 20, `node ${victim} lost ${lost.length} keys`);
    assert.ok((await cluster.stats()).cleanupsPending.includes(victim), "the failed cleanup is remembered");

    const deleted = lost.slice(0, 40);
    for (const key of deleted) await cluster.delete(key, { context: (await cluster.get(key)).context });
    await sleep(1500);
    const purgedEarly = (await cluster.stats({ keys: true })).nodes.reduce((sum, node) => sum + node.antiEntropy.tombstonesPurged, 0);
    assert.is(purgedEarly, 0, "no tombstone is purged while a cleanup is owed");

    await cluster.faults.diskFault(victim, null);
    await cluster.faults.restart(victim);
    assert.equal((await cluster.stats()).cleanupsPending, [], "the restart finished the cleanup before the node served");
    await eventually(async () => {
      const stats = await cluster.stats();
      return stats.nodes.reduce((sum, node) => sum + node.antiEntropy.tombstonesPurged, 0) >= deleted.length;
    }, { timeoutMs: 30_000, what: "every replica purged the tombstones" });

    await cluster.configure({ n: 3, w: 2, r: 2 }); // the keys come back to the victim
    await sleep(1000); // anti-entropy rounds
    for (const key of deleted) {
      const values = (await cluster.get(key)).values.map((value) => decoder.decode(value));
      assert.equal(values, [], `${key} stays deleted`);
      for (const replica of await cluster.replicaValues(key)) assert.equal(replica.values ?? [], [], `${key} holds nothing on node ${replica.node}`);
    }
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test.run();
