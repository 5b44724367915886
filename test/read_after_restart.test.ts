/**
 * The quorum promise right after a restart: with W + R > N, a read returns every write
 * acknowledged before it, even one acknowledged by a stand-in while a primary was down and not
 * yet handed back. A read asks, beside each primary, the nodes gossip says hold hints for it, and
 * counts that primary only with their answers merged in.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { createCluster } from "../src/runtime/cluster.ts";
import { SimCluster } from "../src/sim/sim_cluster.ts";
import { recordFigures } from "./support/figures.ts";

const decoder = new TextDecoder();
const TRIALS = 50;

test("50 trials in the simulator: writes acknowledged while two primaries were down are read at once after their restart, under load", async () => {
  const sim = await SimCluster.create({ seed: 14, settings: { nodes: 5, n: 3, w: 2, r: 2, vnodesPerNode: 8, requestTimeoutMs: 2000 } });
  let stale = 0;
  let reads = 0;
  let failedReads = 0;
  const staleKeys: string[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    const down = [trial % 5, (trial + 2) % 5];
    const keys = Array.from({ length: 40 }, (_, index) => `t${trial}-k${index}`).filter((key) => sim.core.preferenceList(key).some((node) => down.includes(node)));
    // Load beside the trial: other keys written throughout.
    let stopped = false;
    const background = (async () => {
      for (let index = 0; !stopped; index++) await sim.core.put(`load-${trial}-${index % 50}`, `x${index}`).catch(() => {});
    })();
    for (const key of keys) await sim.run(sim.core.put(key, "old"));
    for (const node of down) sim.faults.crash(node);
    await sim.runFor(50);
    const acknowledged = new Map<string, string>();
    for (const key of keys) {
      const written = await sim.run(sim.core.put(key, `new-${trial}`).then(() => true, () => false));
      if (written) acknowledged.set(key, `new-${trial}`);
    }
    for (const node of down) await sim.run(sim.faults.restart(node));
    for (const [key, value] of acknowledged) {
      reads++;
      const read = await sim.run(sim.core.get(key).then((result) => result.values.map((bytes) => decoder.decode(bytes)), () => null));
      if (read === null) failedReads++;
      else if (!read.includes(value)) {
        stale++;
        if (staleKeys.length < 5) staleKeys.push(`${key}: read ${JSON.stringify(read)}, acknowledged ${value}`);
      }
    }
    stopped = true;
    await sim.run(background);
    await sim.runFor(3000); // hints go back before the next trial
  }
  recordFigures("read-after-restart-sim", { trials: TRIALS, reads, stale, failedReads });
  assert.ok(reads > 200, `the trials read ${reads} acknowledged keys`);
  assert.equal(staleKeys, [], `${stale} of ${reads} reads right after a restart missed an acknowledged write`);
});

test("on real threads: writes acknowledged while two primaries were down are read at once after their restart", async () => {
  const cluster = await createCluster({ nodes: 5, n: 3, w: 2, r: 2, vnodesPerNode: 16, requestTimeoutMs: 5000, memtableBytes: 1 << 20 });
  try {
    let stale = 0;
    let reads = 0;
    for (let trial = 0; trial < 4; trial++) {
      const down = [trial % 5, (trial + 2) % 5];
      const keys = Array.from({ length: 60 }, (_, index) => `t${trial}-k${index}`).filter((key) => cluster.preferenceList(key).some((node) => down.includes(node)));
      for (const key of keys) await cluster.put(key, "old");
      await Promise.all(down.map((node) => cluster.faults.crash(node)));
      const acknowledged = new Set<string>();
      await Promise.all(keys.map(async (key) => {
        if (await cluster.put(key, `new-${trial}`).then(() => true, () => false)) acknowledged.add(key);
      }));
      await Promise.all(down.map((node) => cluster.faults.restart(node)));
      await Promise.all([...acknowledged].map(async (key) => {
        reads++;
        const values = (await cluster.get(key)).values.map((bytes) => decoder.decode(bytes));
        if (!values.includes(`new-${trial}`)) stale++;
      }));
    }
    recordFigures("read-after-restart-threads", { reads, stale });
    assert.ok(reads > 50, `read ${reads} keys`);
    assert.is(stale, 0, `${stale} of ${reads} reads missed an acknowledged write`);
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
});

test.run();
