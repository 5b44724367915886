/**
 * One seed of the ring-back workload: a ring change moves keys away from nodes, and one of them
 * crashes or has its disk fail while it drops the keys it lost (its cleanup); keys are deleted on
 * their new replicas, the node comes back, the tombstones are purged; then a second ring change
 * moves the keys back. A node that kept a stale copy of a deleted key, if it were allowed to serve
 * (and a purge allowed to go ahead) before finishing its cleanup, would bring the deleted value
 * back once it is a replica again. The verdict counts such resurrections: a deleted, purged key
 * that a quorum read or any node's store shows holding a value.
 *
 * The negative control (`forgetCleanups`) switches the rule off: a cleanup that failed is not
 * remembered, so the node serves with its stale copies; it must be seen resurrecting.
 */
import { SimCluster } from "./sim_cluster.ts";
import { settle } from "./settle.ts";

export interface RingBackSeedOptions {
  readonly seed: number;
  /** Keys written; about half are deleted. @default 24 */
  readonly keys?: number;
  /** The negative control: failed cleanups are forgotten. @default false */
  readonly forgetCleanups?: boolean;
}

export interface RingBackSeedReport {
  readonly seed: number;
  readonly traceHash: string;
  /** What struck the node while it dropped keys: crash, disk "full", disk "fsync", or nothing (the node finished first). */
  readonly fault: string;
  /** Deletes acknowledged, and of them the keys purged from every replica before the ring moved back. */
  readonly deleted: number;
  readonly purged: number;
  /** Deleted keys holding a value at the end: read back, or held by some node's store. */
  readonly resurrected: readonly string[];
  /** Keys written and never deleted that a quorum read no longer returned. */
  readonly lost: readonly string[];
  readonly virtualMs: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const VNODES_BEFORE = 4;
const VNODES_AFTER = 8;

export async function runRingBackSeed(options: RingBackSeedOptions): Promise<RingBackSeedReport> {
  const sim = await SimCluster.create({
    seed: options.seed,
    settings: {
      nodes: 4,
      n: 3,
      w: 2,
      r: 2,
      vnodesPerNode: VNODES_BEFORE,
      requestTimeoutMs: 1000,
      streamKeysPerSecond: 100_000,
      gossip: { intervalMs: 50, failAfterMs: 200, cleanupAfterMs: 2000 },
      antiEntropy: { intervalMs: 100, tombstoneGraceMs: 400, keysPerSecond: 100_000 },
    },
    ...(options.forgetCleanups ? { unsafeForgetCleanups: true } : {}),
  });
  const random = sim.prng.fork();
  const keyCount = options.keys ?? 24;
  const keys = Array.from({ length: keyCount }, (_, index) => `key-${index}`);
  for (const key of keys) await sim.run(sim.core.put(key, `value-${key}`));

  // The move away: a node that loses keys is struck as it starts dropping them, or a moment later.
  const before = new Map(keys.map((key) => [key, sim.core.preferenceList(key)]));
  const next = SimCluster.ringOf(sim.core.members, VNODES_AFTER);
  const losers = [...new Set(keys.flatMap((key) => before.get(key)!.filter((node) => !next.preferenceList(encoder.encode(key), 3).includes(node))))].sort((a, b) => a - b);
  const victim = losers.length > 0 ? random.pick(losers) : undefined;
  const kind = random.pick(["crash", "full", "fsync"] as const);
  const delayMs = random.chance(0.5) ? 0 : random.nextInt(3);
  let struck = false;
  sim.host.onCleanup = (node) => {
    if (node !== victim || struck) return;
    struck = true;
    const strike = () => {
      if (!sim.host.isRunning(node)) return;
      if (kind === "crash") sim.faults.crash(node);
      else sim.faults.diskFault(node, kind);
    };
    if (delayMs === 0) strike();
    else sim.clock.setTimer(delayMs, strike);
  };
  await sim.run(sim.core.configure({ vnodesPerNode: VNODES_AFTER }).then(() => undefined, () => undefined));
  sim.host.onCleanup = undefined;

  // Deletes on the new replicas, then the node comes back on a healthy disk.
  const deleted: string[] = [];
  for (const key of keys.filter(() => random.chance(0.5))) {
    try {
      const { context } = await sim.run(sim.core.get(key));
      await sim.run(sim.core.delete(key, { context }));
      deleted.push(key);
    } catch {
      // not deleted: it must then read as written
    }
  }
  if (struck && kind !== "crash") sim.faults.diskFault(victim!, null);
  if (struck) await sim.run(sim.faults.restart(victim!).catch(() => {}));

  // Until the tombstones are purged everywhere (bounded), then the move back.
  // Each key's bytes once: the wait below asks after every event of the run.
  const keyBytes = new Map(keys.map((key) => [key, encoder.encode(key)]));
  const holds = (node: number, key: string) => (sim.host.lifeOf(node)?.store.get(keyBytes.get(key)!) ?? []).length > 0;
  const heldAnywhere = (key: string) => sim.host.running.some((node) => holds(node, key));
  const replicasHold = (key: string) => sim.core.preferenceList(keyBytes.get(key)!).some((node) => holds(node, key));
  await sim.runUntil(() => deleted.every((key) => !replicasHold(key)), sim.clock.nowMs() + 5000);
  const purged = deleted.filter((key) => !replicasHold(key)).length;
  await sim.run(sim.core.configure({ vnodesPerNode: VNODES_BEFORE }).then(() => undefined, () => undefined));
  await settle(sim, { convergence: false });
  await sim.runFor(600); // anti-entropy rounds after the move back

  const resurrected: string[] = [];
  const lost: string[] = [];
  for (const key of keys) {
    let values: string[] | null = null;
    for (let attempt = 0; attempt < 5 && values === null; attempt++) {
      values = await sim.run(sim.core.get(key).then((result) => result.values.map((value) => decoder.decode(value)), () => null));
      if (values === null) await sim.runFor(200);
    }
    const live = sim.host.running.filter((node) => (sim.host.lifeOf(node)?.store.get(keyBytes.get(key)!) ?? []).some((version) => version.value !== null));
    if (deleted.includes(key)) {
      if ((values?.length ?? 0) > 0 || live.length > 0) resurrected.push(`${key}: read ${JSON.stringify(values)}, a value on node ${live.join(", ") || "-"}`);
    } else if (values !== null && !values.includes(`value-${key}`)) {
      lost.push(`${key}: read ${JSON.stringify(values)}`);
    }
    sim.trace.recordText(`final ${key} ${values?.join("|") ?? "unread"} ${heldAnywhere(key) ? "held" : "absent"}`);
  }
  return {
    seed: options.seed,
    traceHash: sim.trace.hash(),
    fault: struck ? kind : "none",
    deleted: deleted.length,
    purged,
    resurrected,
    lost,
    virtualMs: sim.clock.nowMs(),
  };
}
