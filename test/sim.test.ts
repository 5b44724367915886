/**
 * The deterministic simulator: the cluster core and every node core in one thread, on the
 * simulated network, disks and clock, under faults drawn from a seed, checked by the register
 * checker. A failing seed names the command that replays it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readClusterFile } from "../src/cluster/cluster_file.ts";
import { registerFaultKinds, replayCommand, runSeed, type SeedReport } from "../src/sim/run_seed.ts";
import { SIM_CLUSTER_DIRECTORY, SimCluster } from "../src/sim/sim_cluster.ts";
import { RegisterChecker } from "../src/sim/register_checker.ts";
import { runWorkload } from "../src/sim/workload.ts";
import { recordFigures } from "./support/figures.ts";

const SEEDS = 120;

function findings(report: SeedReport): string[] {
  return [...report.lost, ...report.phantoms, ...report.staleSiblings, ...report.resurrected, ...report.unread.map((key) => `${key} was never read back`)];
}

test(`${SEEDS} seeds under every fault kind but wipes, N=3 W=2 R=2: no acknowledged write lost, no phantom read, no stale sibling`, async () => {
  const totals = { operations: 0, reads: 0, acknowledged: 0, unknown: 0, notApplied: 0, lost: 0, phantoms: 0 };
  const drawn = new Set<string>();
  const faults: Record<string, number> = {};
  const failed: string[] = [];
  const drains: number[] = [];
  const started = performance.now();
  for (let seed = 1; seed <= SEEDS; seed++) {
    const report = await runSeed({ seed });
    totals.operations += report.operations;
    totals.reads += report.reads;
    totals.acknowledged += report.acknowledged;
    totals.unknown += report.unknown;
    totals.notApplied += report.notApplied;
    totals.lost += report.lost.length;
    totals.phantoms += report.phantoms.length;
    drains.push(report.hintDrainMs);
    if (report.hintsUndrained > 0) failed.push(`seed ${seed} (replay: ${replayCommand(seed)}): ${report.hintsUndrained} hints not handed back within the bound`);
    for (const [kind, count] of Object.entries(report.faults)) {
      drawn.add(kind);
      faults[kind] = (faults[kind] ?? 0) + count;
    }
    const found = findings(report);
    if (found.length > 0) failed.push(`seed ${seed} (replay: ${replayCommand(seed)}): ${found.slice(0, 2).join("; ")}`);
  }
  drains.sort((a, b) => a - b);
  const hintDrainMs = { p50: drains[Math.floor(drains.length / 2)], p99: drains[Math.floor(drains.length * 0.99)], max: drains.at(-1) };
  recordFigures("sim-register", { seeds: `1..${SEEDS}`, seconds: Math.round((performance.now() - started) / 100) / 10, ...totals, faults, hintDrainMs });
  assert.equal(failed, []);
  assert.equal([...drawn].sort(), [...registerFaultKinds].sort(), "every fault kind was drawn");
  assert.ok(totals.acknowledged > SEEDS * 20, `writes were acknowledged: ${JSON.stringify(totals)}`);
  assert.ok(totals.unknown > 0 && totals.notApplied > 0, `both failure outcomes occurred: ${JSON.stringify(totals)}`);
});

test("50 seeds of partitions and heals with sloppy quorum, N=3 W=2 R=2: no acknowledged write lost", async () => {
  let acknowledged = 0;
  const failed: string[] = [];
  for (let seed = 1000; seed < 1050; seed++) {
    const report = await runSeed({ seed, faults: ["partition", "heal"], faultEveryMs: 60 });
    acknowledged += report.acknowledged;
    if (findings(report).length > 0) failed.push(`seed ${seed} (replay: ${replayCommand(seed)} --faults partition,heal): ${findings(report)[0]}`);
  }
  recordFigures("sim-partitions", { seeds: "1000..1049", faults: "partition, heal", acknowledged, lost: failed.length });
  assert.equal(failed, []);
  assert.ok(acknowledged > 1000, `${acknowledged} writes acknowledged across partitions`);
});

test("one owner down under load: after it returns, hints drain within 5 virtual seconds and every primary holds every acknowledged write on its own", async () => {
  const sim = await SimCluster.create({ seed: 31, settings: { nodes: 5, n: 3, w: 2, r: 2, vnodesPerNode: 16, requestTimeoutMs: 500 } });
  const checker = new RegisterChecker();
  sim.faults.crash(2);
  await sim.run(runWorkload(sim.workloadTarget(), checker, { clients: 4, keys: 8, operations: 300, thinkMsMax: 10, faults: [], faultEveryMs: 100 }, sim.prng));
  const heldBefore = await sim.run(sim.hintsHeld());
  const restartedMs = sim.clock.nowMs();
  await sim.run(sim.faults.restart(2));
  while ((await sim.run(sim.hintsHeld())) > 0 && sim.clock.nowMs() - restartedMs < 5000) await sim.runFor(50);
  const drainMs = sim.clock.nowMs() - restartedMs;
  assert.is(await sim.run(sim.hintsHeld()), 0, "every hint handed back within 5 s");
  await sim.runFor(500);
  for (let replica = 0; replica < 3; replica++) {
    for (const key of checker.keys()) {
      const held = (await sim.run(sim.core.replicaValues(key)))[replica]!;
      checker.finalRead(key, (held.values ?? []).map((value) => new TextDecoder().decode(value)));
    }
    const verdict = checker.report();
    assert.equal(verdict.lost, [], `replica ${replica} of each key, read on its own`);
  }
  recordFigures("sim-hint-drain", { seed: 31, hintsHeld: heldBefore, drainMs, acknowledged: checker.report().acknowledged });
  assert.ok(heldBefore > 0, "writes went to stand-ins while the owner was down");
});

test("a seed run twice gives the same trace hash; another seed gives another", async () => {
  const first = await runSeed({ seed: 4242 });
  const again = await runSeed({ seed: 4242 });
  const other = await runSeed({ seed: 4243 });
  assert.is(again.traceHash, first.traceHash);
  assert.equal(again, first, "the whole report replays");
  assert.is.not(other.traceHash, first.traceHash);
  recordFigures("sim-determinism", { seed: 4242, traceHash: first.traceHash, replayHash: again.traceHash, otherSeed: 4243, otherHash: other.traceHash, traceEvents: first.traceEvents });
  assert.ok(first.traceEvents > 300, `the trace saw the run: ${first.traceEvents} events`);
});

test("negative control: with W=1 and two replicas wiped before the final reads, the checker sees acknowledged writes lost", async () => {
  let lost = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const report = await runSeed({ seed, settings: { w: 1 }, faults: [...registerFaultKinds, "wipe"], wipeBeforeFinalRead: 2 });
    lost += report.lost.length;
  }
  recordFigures("sim-negative-wipe", { seeds: "1..20", settings: "W=1, two replicas wiped before the final reads", lost });
  assert.ok(lost > 0, "the checker must be able to see loss");
});

test("negative control: acknowledging writes that are not durable (fsync never) under crashes is seen losing writes", async () => {
  let lost = 0;
  for (let seed = 1; seed <= 20; seed++) lost += (await runSeed({ seed, fsync: "never", faults: ["crash", "restart"] })).lost.length;
  recordFigures("sim-negative-fsync", { seeds: "1..20", settings: "fsync never, crashes and restarts", lost });
  assert.ok(lost > 0, "crashes must lose some acknowledged but unsynced writes");
});

test("power lost at any point of a ring change: cluster.json holds the old or the new ring, whole, and no acknowledged write is lost", async () => {
  const keys = 120;
  const outcomes = { old: 0, new: 0 };
  for (let crashAtMs = 0; ; crashAtMs += 7) {
    const sim = await SimCluster.create({ seed: 77, settings: { nodes: 4, vnodesPerNode: 8, streamKeysPerSecond: 400 } });
    const written = new Map<string, string>();
    for (let index = 0; index < keys; index++) {
      await sim.run(sim.core.put(`key-${index}`, `value-${index}`));
      written.set(`key-${index}`, `value-${index}`);
    }
    const before = [...sim.core.members];
    let finished = false;
    const adding = sim.core.addNode().then(
      () => (finished = true),
      () => {},
    );
    await sim.runUntil(() => finished, sim.clock.nowMs() + crashAtMs);
    void adding;
    const disks = sim.powerLoss();
    const stored = readClusterFile(disks.main, SIM_CLUSTER_DIRECTORY);
    assert.ok(stored, "cluster.json exists");
    const members = stored!.members.join(",");
    assert.ok(members === before.join(",") || members === [...before, 4].join(","), `crash at +${crashAtMs} ms: members ${members}`);
    if (members === before.join(",")) outcomes.old++;
    else outcomes.new++;
    const reopened = await SimCluster.create({ seed: 78, disks });
    for (const [key, value] of written) {
      const read = await reopened.run(reopened.core.get(key));
      assert.equal(read.values.map((bytes) => new TextDecoder().decode(bytes)), [value], `crash at +${crashAtMs} ms: ${key}`);
    }
    if (finished) break;
  }
  recordFigures("sim-ring-change-power-loss", { crashPoints: outcomes.old + outcomes.new, oldRing: outcomes.old, newRing: outcomes.new, keys });
  assert.ok(outcomes.old > 0 && outcomes.new > 0, `crashes hit both before and after the switch: ${JSON.stringify(outcomes)}`);
});

test.run();
