/**
 * After the faults of a run heal: wait until no node holds a hint (bounded), then count
 * anti-entropy rounds until every pair of replicas holds equal Merkle roots (convergence),
 * checking every 50 ms of virtual time. A hint handed back late changes one replica, so the count
 * restarts whenever one reappears.
 */
import type { ClusterConfigChange } from "../cluster/cluster_config.ts";
import type { FsyncPolicy } from "../storage/store_config.ts";
import { rootsAgree as rootsAgreeIn, type AntiEntropyStats } from "../antientropy/anti_entropy.ts";
import { SimCluster } from "./sim_cluster.ts";

/**
 * The cluster one seed of a workload runs on: 5 nodes, N=3 W=2 R=2, 16 virtual nodes each, a
 * 500 ms request timeout, anti-entropy every 200 virtual ms (or `quietAntiEntropy`: every 60 s,
 * for negative controls that must lose data before anti-entropy repairs it), then `settings`.
 */
export function createSeedCluster(options: { seed: number; settings?: ClusterConfigChange; fsync?: FsyncPolicy; quietAntiEntropy?: boolean }): Promise<SimCluster> {
  return SimCluster.create({
    seed: options.seed,
    settings: {
      nodes: 5,
      n: 3,
      w: 2,
      r: 2,
      vnodesPerNode: 16,
      requestTimeoutMs: 500,
      ...options.settings,
      antiEntropy: { intervalMs: options.quietAntiEntropy === true ? 60_000 : 200, ...options.settings?.antiEntropy },
    },
    ...(options.fsync === undefined ? {} : { fsync: options.fsync }),
  });
}

/** How long after the heal hints may take to drain (virtual ms). */
export const HINT_DRAIN_BOUND_MS = 30_000;

/**
 * Rounds (anti-entropy intervals) within which replicas agree once faults stop and hints have
 * drained: each node compares with one replica peer per round, in turn, so within P rounds (P =
 * the peers it shares ranges with, 4 on 5 nodes) every pair has compared at least once and, for
 * N=3, every replica holds the union. Twice that, plus two, covers repairs still in flight and
 * exchanges turned away because the peer was busy with another.
 */
export function convergenceBoundRounds(peers: number): number {
  return 2 * peers + 2;
}

export interface Settled {
  /** Virtual ms from the heal until no node held a hint; -1 when not within HINT_DRAIN_BOUND_MS. */
  readonly hintDrainMs: number;
  /** Hints still held when the wait ended. */
  readonly hintsHeld: number;
  /** Anti-entropy intervals from the drain until all roots agreed; null when not within the bound. */
  readonly convergenceRounds: number | null;
}

/** Whether every pair of running nodes holds equal roots for each other (and none is rebuilding). */
export async function rootsAgree(sim: SimCluster): Promise<boolean> {
  const nodes = new Map<number, AntiEntropyStats>();
  for (const node of sim.host.running) nodes.set(node, (await sim.host.control(node).stats(false)).antiEntropy);
  return rootsAgreeIn(nodes);
}

/** Waits for hints to drain and, unless `convergence` is false, for every root to agree. */
export async function settle(sim: SimCluster, options: { convergence?: boolean } = {}): Promise<Settled> {
  const convergence = options.convergence ?? true;
  const healedMs = sim.clock.nowMs();
  const intervalMs = sim.core.config.antiEntropy.intervalMs;
  const bound = convergenceBoundRounds(sim.core.members.length - 1);
  let drainedAtMs = -1;
  let convergedMs = -1;
  let held = 0;
  for (;;) {
    const nowMs = sim.clock.nowMs();
    held = await sim.run(sim.hintsHeld());
    if (held > 0) drainedAtMs = -1;
    else if (drainedAtMs < 0) drainedAtMs = nowMs;
    if (held === 0 && (!convergence || (await sim.run(rootsAgree(sim))))) {
      convergedMs = nowMs;
      break;
    }
    if (drainedAtMs < 0 && nowMs - healedMs > HINT_DRAIN_BOUND_MS) break;
    if (drainedAtMs >= 0 && nowMs - drainedAtMs > bound * intervalMs) break;
    await sim.runFor(50);
  }
  return {
    hintDrainMs: drainedAtMs < 0 ? -1 : drainedAtMs - healedMs,
    hintsHeld: held,
    convergenceRounds: convergedMs < 0 || !convergence ? null : Math.ceil((convergedMs - drainedAtMs) / intervalMs),
  };
}
