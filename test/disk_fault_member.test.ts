/**
 * A replica whose disk fails, on real worker threads: it says so at once, serves nothing, the
 * others take its place (sloppy quorum), and no put fails whose key still has W healthy replicas.
 * A restart on a healthy disk makes it a full member again; a restart with the fault still on
 * keeps it out. 4 nodes, N=3 W=2 R=2: every key keeps at least two healthy primaries.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createCluster, type Cluster } from "../src/runtime/cluster.ts";
import { SimCluster } from "../src/sim/sim_cluster.ts";
import type { DiskFault } from "../src/io/faulty_file_system.ts";
import type { MembershipChange } from "../src/cluster/cluster_core.ts";
import { rejectsWithCode } from "./support/assertions.ts";
import { eventually } from "./support/eventually.ts";
import { recordFigures } from "./support/figures.ts";

const text = (values: readonly Uint8Array[]) => values.map((value) => new TextDecoder().decode(value));

/** Puts (and gets of what was put) with `inFlight` outstanding until `stop()` is true; the failures. */
async function load(cluster: Cluster, prefix: string, inFlight: number, stop: () => boolean): Promise<{ puts: number; gets: number; failures: string[]; coordinators: Set<number> }> {
  let next = 0;
  const failures: string[] = [];
  const coordinators = new Set<number>();
  let gets = 0;
  const lane = async () => {
    while (!stop()) {
      const key = `${prefix}-${next++}`;
      try {
        const written = await cluster.put(key, "v");
        coordinators.add(written.coordinator);
        const read = await cluster.get(key);
        gets++;
        if (text(read.values).join() !== "v") failures.push(`${key} read ${JSON.stringify(text(read.values))}`);
      } catch (error) {
        failures.push(`${key}: ${String(error)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return { puts: next, gets, failures, coordinators };
}

async function withCluster(run: (cluster: Cluster) => Promise<void>): Promise<void> {
  // Generous deadlines: a busy 2-core machine must not turn a slow fsync into a failure here.
  const cluster = await createCluster({ nodes: 4, n: 3, w: 2, r: 2, vnodesPerNode: 16, requestTimeoutMs: 10_000, memtableBytes: 1 << 20 });
  try {
    await run(cluster);
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
}

async function faultUnderLoad(fault: DiskFault): Promise<void> {
  await withCluster(async (cluster) => {
    const events: MembershipChange[] = [];
    cluster.on("membership", (change) => events.push(change));
    let stopped = false;
    const running = load(cluster, "before", 32, () => stopped);
    await sleep(300);
    const faultedAt = performance.now();
    await cluster.faults.diskFault(1, fault);
    const event = await eventually(() => events.find((change) => change.node === 1 && change.source === "store") ?? false, { what: "node 1 reported down for its store" });
    const detectedMs = event.atMs - faultedAt;
    await sleep(700);
    stopped = true;
    const during = await running;
    assert.equal(during.failures.slice(0, 5), [], `no put or get failed while node 1's disk failed (${during.failures.length} of ${during.puts})`);
    const stats = await cluster.stats();
    const failed = stats.nodes.find((node) => node.nodeId === 1);
    assert.ok(failed?.store.failure, "node 1's stats say why it serves nothing");
    assert.ok(stats.membership.find((member) => member.node === 1)?.status === "down", "membership shows node 1 down");
    assert.equal((await cluster.replicaValues("before-0")).find((replica) => replica.node === 1)?.values ?? null, null, "node 1 answers no read");

    await cluster.faults.diskFault(1, null);
    await cluster.faults.restart(1);
    assert.ok(cluster.membership().find((member) => member.node === 1)?.status === "up", "node 1 up after its restart");
    let stoppedAgain = false;
    const after = load(cluster, "after", 32, () => stoppedAgain);
    await sleep(800);
    stoppedAgain = true;
    const healed = await after;
    assert.equal(healed.failures.slice(0, 5), [], `no failure after the restart (${healed.failures.length} of ${healed.puts})`);
    assert.ok(healed.coordinators.has(1), "node 1 coordinates writes again");
    assert.is((await cluster.stats()).nodes.find((node) => node.nodeId === 1)?.store.failure, null);
    recordFigures(`disk-fault-${fault}`, { putsDuringFault: during.puts, getsDuringFault: during.gets, failedDuringFault: during.failures.length, putsAfterRestart: healed.puts, failedAfterRestart: healed.failures.length, detectedAfterMs: Math.round(detectedMs) });
  });
}

test("a replica whose disk fills up under load fails no put whose key has W healthy replicas, and a restart on a healthy disk makes it a full member again", async () => {
  await faultUnderLoad("full");
});

test("a replica whose fsyncs fail under load fails no put whose key has W healthy replicas, and a restart on a healthy disk makes it a full member again", async () => {
  await faultUnderLoad("fsync");
});

test("a restart with the disk fault still on fails with the store's IoError and keeps the node out; the others serve every request", async () => {
  await withCluster(async (cluster) => {
    await cluster.faults.diskFault(2, "full");
    for (let index = 0; index < 30; index++) await cluster.put(`k${index}`, "v"); // node 2's store fails on one of them
    await eventually(() => cluster.membership().find((member) => member.node === 2)?.status === "down", { what: "node 2 down" });
    await rejectsWithCode(() => cluster.faults.restart(2), "LOOM_IO");
    const stats = await cluster.stats();
    assert.ok(stats.faults.crashed.includes(2), "node 2 is not running");
    assert.equal(stats.faults.disk, [{ node: 2, fault: "full" }], "the fault stays in force until cleared");
    for (let index = 0; index < 30; index++) assert.equal(text((await cluster.get(`k${index}`)).values), ["v"]);
    for (let index = 0; index < 30; index++) await cluster.put(`m${index}`, "w");
    await cluster.faults.diskFault(2, null);
    await cluster.faults.restart(2);
    assert.ok(cluster.membership().find((member) => member.node === 2)?.status === "up");
  });
});

test("a wipe gives the node a new disk: the fault is gone with the old one", async () => {
  await withCluster(async (cluster) => {
    await cluster.faults.diskFault(3, "fsync");
    await cluster.faults.wipe(3);
    assert.equal((await cluster.stats()).faults.disk, []);
    for (let index = 0; index < 20; index++) await cluster.put(`w${index}`, "v");
    assert.is((await cluster.stats()).nodes.find((node) => node.nodeId === 3)?.store.failure, null);
  });
});

/** In the simulator: `lanes` clients putting (and reading back) until `stop()`; the failures. */
async function simLoad(sim: SimCluster, prefix: string, lanes: number, stop: () => boolean): Promise<{ puts: number; failures: string[] }> {
  let next = 0;
  const failures: string[] = [];
  const lane = async () => {
    while (!stop()) {
      const key = `${prefix}-${next++}`;
      try {
        await sim.core.put(key, "v");
        const read = await sim.core.get(key);
        if (text(read.values).join() !== "v") failures.push(`${key} read ${JSON.stringify(text(read.values))}`);
      } catch (error) {
        failures.push(`${key}: ${String(error)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return { puts: next, failures };
}

for (const fault of ["full", "fsync"] as const) {
  test(`in the simulator, a replica whose disk ${fault === "full" ? "fills up" : "fails its fsyncs"} under load fails no put, and heals on restart`, async () => {
    const sim = await SimCluster.create({ seed: fault === "full" ? 3 : 4, settings: { nodes: 4, n: 3, w: 2, r: 2, vnodesPerNode: 8, requestTimeoutMs: 2000 } });
    let stopped = false;
    const during = simLoad(sim, "before", 16, () => stopped);
    await sim.runFor(200);
    sim.faults.diskFault(1, fault);
    await sim.runFor(1500);
    stopped = true;
    const before = await sim.run(during);
    assert.equal(before.failures.slice(0, 3), [], `no failure while node 1's disk failed (${before.failures.length} of ${before.puts})`);
    assert.ok((await sim.run(sim.host.control(1).stats(false))).store.failure !== null, "node 1 knows its store failed");
    sim.faults.diskFault(1, null);
    await sim.run(sim.faults.restart(1));
    stopped = false;
    const after = simLoad(sim, "after", 16, () => stopped);
    await sim.runFor(1000);
    stopped = true;
    const healed = await sim.run(after);
    assert.equal(healed.failures.slice(0, 3), [], `no failure after the restart (${healed.failures.length} of ${healed.puts})`);
    assert.is((await sim.run(sim.host.control(1).stats(false))).store.failure, null);
  });
}

test.run();
