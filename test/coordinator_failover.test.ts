/**
 * Reads survive the death or stall of their coordinator, on real worker threads: a get whose
 * coordinator exits, or does not answer within its attempt deadline, goes on to the next live
 * coordinator of its key within the same deadline. Writes are never sent again silently: a put
 * whose coordinator dies fails as "unknown". 5 nodes, N=3 W=2 R=2, 64 requests in flight.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createCluster, type Cluster } from "../src/runtime/cluster.ts";
import { recordFigures } from "./support/figures.ts";

const KEYS = 400;
const R = 2;

interface Tally {
  gets: number;
  puts: number;
  /** Gets that failed although R replicas of their key were alive when they were issued. */
  getsFailedWithReplicas: string[];
  /** Puts that failed with an outcome other than "unknown". */
  putsFailedKnown: string[];
  putsUnknown: number;
}

/** Mixed gets and puts over KEYS keys with 64 in flight until `stop()`; `dead` names the crashed nodes. */
async function mixedLoad(cluster: Cluster, dead: ReadonlySet<number>, stop: () => boolean, tally: Tally): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (!stop()) {
      const key = `key-${next++ % KEYS}`;
      const live = cluster.preferenceList(key).filter((node) => !dead.has(node)).length;
      if (next % 2 === 0) {
        tally.gets++;
        try {
          await cluster.get(key);
        } catch (error) {
          if (live >= R) tally.getsFailedWithReplicas.push(`${key} (${live} live): ${String(error)}`);
        }
      } else {
        tally.puts++;
        try {
          await cluster.put(key, `v${next}`);
        } catch (error) {
          const outcome = (error as { outcome?: string }).outcome;
          if (outcome === "unknown") tally.putsUnknown++;
          else tally.putsFailedKnown.push(`${key}: ${outcome} ${String(error)}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 64 }, lane));
}

async function withCluster(run: (cluster: Cluster) => Promise<void>, requestTimeoutMs = 4000): Promise<void> {
  const cluster = await createCluster({ nodes: 5, n: 3, w: 2, r: R, vnodesPerNode: 16, requestTimeoutMs, memtableBytes: 1 << 20 });
  try {
    for (let index = 0; index < KEYS; index++) await cluster.put(`key-${index}`, "v");
    await run(cluster);
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
}

/** Runs the load, strikes with `fault` after 300 ms, lets it run on, and checks the tally. */
async function underLoad(cluster: Cluster, dead: Set<number>, fault: () => Promise<void>, name: string): Promise<Tally> {
  const tally: Tally = { gets: 0, puts: 0, getsFailedWithReplicas: [], putsFailedKnown: [], putsUnknown: 0 };
  let stopped = false;
  const load = mixedLoad(cluster, dead, () => stopped, tally);
  await sleep(300);
  await fault();
  await sleep(2000);
  stopped = true;
  await load;
  recordFigures(`failover-${name}`, { gets: tally.gets, puts: tally.puts, getsFailed: tally.getsFailedWithReplicas.length, putsUnknown: tally.putsUnknown, putsFailedOtherwise: tally.putsFailedKnown.length });
  assert.equal(tally.getsFailedWithReplicas.slice(0, 3), [], `no get failed whose key had R live replicas (${tally.getsFailedWithReplicas.length} of ${tally.gets})`);
  assert.equal(tally.putsFailedKnown.slice(0, 3), [], "every failed put says unknown");
  assert.ok(tally.gets > 100 && tally.puts > 100, `the load ran: ${tally.gets} gets, ${tally.puts} puts`);
  return tally;
}

test("crashing one coordinator under load fails no get whose key still has R live replicas; a put it coordinated fails as unknown", async () => {
  await withCluster(async (cluster) => {
    const dead = new Set<number>();
    await underLoad(cluster, dead, async () => {
      dead.add(2);
      await cluster.faults.crash(2);
    }, "crash-one");
  });
});

test("crashing two coordinators at once under load fails no get whose key still has R live replicas", async () => {
  await withCluster(async (cluster) => {
    const dead = new Set<number>();
    await underLoad(cluster, dead, async () => {
      dead.add(1);
      dead.add(3);
      await Promise.all([cluster.faults.crash(1), cluster.faults.crash(3)]);
    }, "crash-two");
  });
});

test("pausing one coordinator past the request timeout under load fails no get: they go on to the next coordinator after the attempt deadline", async () => {
  await withCluster(async (cluster) => {
    const dead = new Set<number>();
    const before = (await cluster.stats()).requests.retried;
    await underLoad(cluster, dead, () => cluster.faults.pause(4, 2500), "pause-one");
    const retried = (await cluster.stats()).requests.retried - before;
    assert.ok(retried > 0, "gets coordinated by the paused node went on to another coordinator");
  }, 2000);
});

test.run();
