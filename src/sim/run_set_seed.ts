/**
 * One seed of the set workload in the simulator, start to verdict: build a cluster from the seed,
 * run the adds under the drawn faults (partitions, crashes and restarts, pauses, wipes of one
 * node, message loss and delay), heal everything, let hints drain, then count anti-entropy rounds
 * until every pair of replicas holds equal Merkle roots (convergence). Then read every key with a
 * quorum read for the set checker, and every replica on its own: after convergence each one must
 * hold every acknowledged add (a wiped node included).
 */
import type { ClusterConfigChange } from "../cluster/cluster_config.ts";
import { parseSet, SetChecker, type SetReport } from "./set_checker.ts";
import { runSetWorkload } from "./set_workload.ts";
import type { FaultKind } from "./workload.ts";
import { createSeedCluster, settle } from "./settle.ts";

export interface SetSeedOptions {
  readonly seed: number;
  /** @default 200 */
  readonly adds?: number;
  /** @default 4 */
  readonly clients?: number;
  /** @default 3 */
  readonly keys?: number;
  /** @default setFaultKinds */
  readonly faults?: readonly FaultKind[];
  /** Mean virtual ms between faults. @default 100 */
  readonly faultEveryMs?: number;
  /** @default "union" */
  readonly merge?: "union" | "first";
  /** @default N=3 W=2 R=2 on 5 nodes, 16 vnodes each, 500 ms timeout, anti-entropy every 200 ms */
  readonly settings?: ClusterConfigChange;
  /**
   * Nodes wiped after the workload, before anti-entropy can run (its interval is then 10 s): with
   * W=1 a wiped replica may have held an acknowledged add alone. The negative control. @default 0
   */
  readonly wipeBeforeAntiEntropy?: number;
}

export interface SetSeedReport extends SetReport {
  readonly seed: number;
  readonly traceHash: string;
  readonly faults: Partial<Record<FaultKind, number>>;
  readonly virtualMs: number;
  /** Virtual ms from the heal until no node held a hint (-1: not within 30 s). */
  readonly hintDrainMs: number;
  /** Anti-entropy intervals from the hints draining until every pair of replicas had equal roots; null when not within the bound. */
  readonly convergenceRounds: number | null;
  /** Acknowledged adds some replica of their key did not hold on its own after convergence. */
  readonly replicaGaps: readonly string[];
}

/** The faults the set workload draws: every kind; wipes hit one node per seed. */
export const setFaultKinds: readonly FaultKind[] = ["crash", "restart", "pause", "partition", "heal", "drop", "delay", "wipe"];

const decoder = new TextDecoder();

export async function runSetSeed(options: SetSeedOptions): Promise<SetSeedReport> {
  const negative = (options.wipeBeforeAntiEntropy ?? 0) > 0;
  const sim = await createSeedCluster({ seed: options.seed, ...(options.settings === undefined ? {} : { settings: options.settings }), quietAntiEntropy: negative });
  const checker = new SetChecker();
  const members = [...sim.core.members];
  const workload = await sim.run(
    runSetWorkload(sim.workloadTarget(), checker, {
      clients: options.clients ?? 4,
      keys: options.keys ?? 3,
      adds: options.adds ?? 200,
      thinkMsMax: 20,
      faults: options.faults ?? setFaultKinds,
      faultEveryMs: options.faultEveryMs ?? 100,
      wipeVictim: sim.prng.pick(members),
      ...(options.merge === undefined ? {} : { merge: options.merge }),
    }, sim.prng),
  );
  await sim.healAll();
  for (let wiped = 0; wiped < (options.wipeBeforeAntiEntropy ?? 0); wiped++) await sim.run(sim.faults.wipe(members[wiped]!));
  const settled = await settle(sim, { convergence: !negative });
  for (const key of checker.keys()) {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const read = await sim.run(sim.core.get(key));
        const values = read.values.map((value) => decoder.decode(value));
        checker.finalRead(key, values);
        sim.trace.recordText(`final ${key} ${values.join("|")}`);
        break;
      } catch {
        await sim.runFor(200);
      }
    }
  }
  const report = checker.report();
  const replicaGaps: string[] = [];
  if (!negative) {
    const acknowledged = checker.acknowledgedByKey();
    for (const [key, elements] of acknowledged) {
      for (const { node, values } of await sim.run(sim.core.replicaValues(key))) {
        const held = new Set((values ?? []).flatMap((value) => parseSet(decoder.decode(value))));
        const missing = elements.filter((element) => !held.has(element));
        if (missing.length > 0) replicaGaps.push(`${key}: node ${node} lacks ${missing.length} acknowledged adds (${missing.slice(0, 3).join(", ")})`);
      }
    }
  }
  return {
    ...report,
    seed: options.seed,
    traceHash: sim.trace.hash(),
    faults: workload.faults,
    virtualMs: sim.clock.nowMs(),
    hintDrainMs: settled.hintDrainMs,
    convergenceRounds: settled.convergenceRounds,
    replicaGaps,
  };
}
