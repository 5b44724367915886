/**
 * One seed of the simulator, start to verdict: build a cluster from the seed, run the workload
 * under the drawn faults, heal everything, let the cluster settle, read every key once more with
 * a quorum read, and hand it all to the register checker. The report carries the trace hash (a
 * seed run twice gives the same hash) and the checker's findings.
 */
import type { ClusterConfigChange } from "../cluster/cluster_config.ts";
import type { FsyncPolicy } from "../storage/store_config.ts";
import { RegisterChecker, type RegisterReport } from "./register_checker.ts";
import type { SimCluster } from "./sim_cluster.ts";
import { createSeedCluster, settle } from "./settle.ts";
import { faultKinds, runWorkload, type FaultKind } from "./workload.ts";

export interface SeedOptions {
  readonly seed: number;
  /** Client operations in the workload. @default 200 */
  readonly operations?: number;
  /** @default 4 */
  readonly clients?: number;
  /** @default 5 */
  readonly keys?: number;
  /** Faults the schedule may draw. @default every kind but wipe */
  readonly faults?: readonly FaultKind[];
  /** Mean virtual ms between faults. @default 100 */
  readonly faultEveryMs?: number;
  /** @default N=3 W=2 R=2 on 5 nodes, 16 virtual nodes each, 500 ms request timeout, anti-entropy every 200 ms */
  readonly settings?: ClusterConfigChange;
  /** @default "always" */
  readonly fsync?: FsyncPolicy;
  /**
   * Nodes wiped after the workload, before the final reads: a negative control (with W = 1 a
   * wiped replica may have been the only one holding an acknowledged write). @default 0
   */
  readonly wipeBeforeFinalRead?: number;
  /**
   * Workload phases. Between two, the faults heal, the cluster settles and stays quiet for the
   * tombstone grace and two anti-entropy rounds, so the deletes of a phase are purged before the
   * faults of the next strike. @default 1
   */
  readonly phases?: number;
}

export interface SeedReport extends RegisterReport {
  readonly seed: number;
  readonly traceHash: string;
  readonly traceEvents: number;
  readonly operations: number;
  readonly faults: Partial<Record<FaultKind, number>>;
  /** Virtual time the run took, in ms. */
  readonly virtualMs: number;
  /** Final reads that failed every attempt (the key is then listed in `unread`). */
  readonly finalReadFailures: number;
  /** Virtual ms from the heal until no node held a hint (-1: not within HINT_DRAIN_BOUND_MS). */
  readonly hintDrainMs: number;
  /** Hints still held when the wait ended (0: every hint was handed back). */
  readonly hintsUndrained: number;
  /** Anti-entropy rounds from the drain until every pair of replicas held equal roots (null: not within the bound). */
  readonly convergenceRounds: number | null;
  /** Tombstones purged on the nodes by the end of each quiet period between phases. */
  readonly tombstonesPurged: number;
}

/** Every kind the register workload draws by default: wipes lose data on purpose and wait for anti-entropy. */
export const registerFaultKinds: readonly FaultKind[] = faultKinds.filter((kind) => kind !== "wipe");

export async function runSeed(options: SeedOptions): Promise<SeedReport> {
  // The negative control wipes before the final reads: anti-entropy must not repair first.
  const sim = await createSeedCluster({
    seed: options.seed,
    ...(options.settings === undefined ? {} : { settings: options.settings }),
    ...(options.fsync === undefined ? {} : { fsync: options.fsync }),
    quietAntiEntropy: (options.wipeBeforeFinalRead ?? 0) > 0,
  });
  const checker = new RegisterChecker();
  const wipeVictim = (options.faults ?? []).includes("wipe") && options.wipeBeforeFinalRead === undefined ? sim.prng.pick([...sim.core.members]) : undefined;
  const workload = { operations: 0, faults: {} as Partial<Record<FaultKind, number>> };
  let tombstonesPurged = 0;
  for (let phase = 0; phase < (options.phases ?? 1); phase++) {
    if (phase > 0) {
      await sim.healAll();
      await settle(sim);
      const { tombstoneGraceMs, intervalMs } = sim.core.config.antiEntropy;
      await sim.runFor(tombstoneGraceMs + 2 * intervalMs);
      tombstonesPurged += await purgedNow(sim);
    }
    const report = await sim.run(
      runWorkload(sim.workloadTarget(), checker, {
        clients: options.clients ?? 4,
        keys: options.keys ?? 5,
        operations: options.operations ?? 200,
        thinkMsMax: 20,
        faults: options.faults ?? registerFaultKinds,
        faultEveryMs: options.faultEveryMs ?? 100,
        valuePrefix: phase === 0 ? "" : `p${phase}`,
        ...(wipeVictim === undefined ? {} : { wipeVictim }),
      }, sim.prng),
    );
    workload.operations += report.operations;
    for (const [kind, count] of Object.entries(report.faults)) workload.faults[kind as FaultKind] = (workload.faults[kind as FaultKind] ?? 0) + count;
  }
  await sim.healAll();
  for (let wiped = 0; wiped < (options.wipeBeforeFinalRead ?? 0); wiped++) {
    await sim.run(sim.faults.wipe(sim.prng.pick([...sim.core.members])));
  }
  // Hints drain to the primaries that came back, then anti-entropy brings every replica level
  // (settle.ts): the final reads see what a quiet cluster holds.
  const settled = await settle(sim, { convergence: (options.wipeBeforeFinalRead ?? 0) === 0 });
  let finalReadFailures = 0;
  for (const key of checker.keys()) {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const read = await sim.run(sim.core.get(key));
        const values = read.values.map((value) => new TextDecoder().decode(value));
        checker.finalRead(key, values);
        sim.trace.recordText(`final ${key} ${values.join(",")}`);
        break;
      } catch {
        if (attempt === 4) finalReadFailures++;
        await sim.runFor(200);
      }
    }
  }
  const report = checker.report();
  return {
    ...report,
    seed: options.seed,
    traceHash: sim.trace.hash(),
    traceEvents: sim.trace.events,
    operations: workload.operations,
    faults: workload.faults,
    virtualMs: sim.clock.nowMs(),
    finalReadFailures,
    hintDrainMs: settled.hintDrainMs,
    hintsUndrained: settled.hintsHeld,
    convergenceRounds: settled.convergenceRounds,
    tombstonesPurged,
  };
}

async function purgedNow(sim: SimCluster): Promise<number> {
  let purged = 0;
  for (const node of sim.host.running) purged += (await sim.run(sim.host.control(node).stats(false))).antiEntropy.tombstonesPurged;
  return purged;
}

/** A one-line command that replays `seed` (printed with every failing seed). */
export function replayCommand(seed: number): string {
  return `npm run sim -- --seed ${seed}`;
}
