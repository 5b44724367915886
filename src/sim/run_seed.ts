/**
 * One seed of the simulator, start to verdict: build a cluster from the seed, run the workload
 * under the drawn faults, heal everything, let the cluster settle, read every key once more with
 * a quorum read, and hand it all to the register checker. The report carries the trace hash (a
 * seed run twice gives the same hash) and the checker's findings.
 */
import type { ClusterConfig } from "../cluster/cluster_config.ts";
import type { FsyncPolicy } from "../storage/store_config.ts";
import { RegisterChecker, type RegisterReport } from "./register_checker.ts";
import { SimCluster } from "./sim_cluster.ts";
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
  /** @default N=3 W=2 R=2 on 5 nodes, 16 virtual nodes each, 500 ms request timeout */
  readonly settings?: Partial<Omit<ClusterConfig, "gossip" | "antiEntropy">>;
  /** @default "always" */
  readonly fsync?: FsyncPolicy;
  /**
   * Nodes wiped after the workload, before the final reads: a negative control (with W = 1 a
   * wiped replica may have been the only one holding an acknowledged write). @default 0
   */
  readonly wipeBeforeFinalRead?: number;
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
  /** Virtual ms from the heal until no node held a hint (or the bound passed). */
  readonly hintDrainMs: number;
  /** Hints still held when the bound passed (0: every hint was handed back). */
  readonly hintsUndrained: number;
}

/** How long after the heal hints may take to drain before the final reads (virtual ms). */
export const HINT_DRAIN_BOUND_MS = 30_000;

/** Every kind the register workload draws by default: wipes lose data on purpose and wait for anti-entropy. */
export const registerFaultKinds: readonly FaultKind[] = faultKinds.filter((kind) => kind !== "wipe");

export async function runSeed(options: SeedOptions): Promise<SeedReport> {
  const sim = await SimCluster.create({
    seed: options.seed,
    settings: { nodes: 5, n: 3, w: 2, r: 2, vnodesPerNode: 16, requestTimeoutMs: 500, ...options.settings },
    ...(options.fsync === undefined ? {} : { fsync: options.fsync }),
  });
  const checker = new RegisterChecker();
  const workload = await sim.run(
    runWorkload(sim.workloadTarget(), checker, {
      clients: options.clients ?? 4,
      keys: options.keys ?? 5,
      operations: options.operations ?? 200,
      thinkMsMax: 20,
      faults: options.faults ?? registerFaultKinds,
      faultEveryMs: options.faultEveryMs ?? 100,
    }, sim.prng),
  );
  await sim.healAll();
  for (let wiped = 0; wiped < (options.wipeBeforeFinalRead ?? 0); wiped++) {
    await sim.run(sim.faults.wipe(sim.prng.pick([...sim.core.members])));
  }
  // Hints drain to the primaries that came back (bounded), then replication and repairs settle.
  const healedMs = sim.clock.nowMs();
  let hintsHeld = await sim.run(sim.hintsHeld());
  while (hintsHeld > 0 && sim.clock.nowMs() - healedMs < HINT_DRAIN_BOUND_MS) {
    await sim.runFor(100);
    hintsHeld = await sim.run(sim.hintsHeld());
  }
  const hintDrainMs = sim.clock.nowMs() - healedMs;
  await sim.runFor(1_000);
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
    hintDrainMs,
    hintsUndrained: hintsHeld,
  };
}

/** A one-line command that replays `seed` (printed with every failing seed). */
export function replayCommand(seed: number): string {
  return `npm run sim -- --seed ${seed}`;
}
