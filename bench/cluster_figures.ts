/**
 * Small helpers the cluster benches share: the median of a set of samples, and waiting until no
 * node of a cluster runs or owes a flush or compaction (so that a phase's CPU includes the
 * background work it caused).
 */
import type { Cluster } from "../src/index.ts";

/** The middle value (the mean of the two middle ones for an even count): one slow sample does not move it. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Resolves once no node of `cluster` runs or owes a flush or compaction; polls every `pollMs`. */
export async function untilIdle(cluster: Cluster, pollMs = 20): Promise<void> {
  for (;;) {
    const { nodes } = await cluster.stats();
    if (nodes.every((node) => node.store.backgroundJobs === 0)) return;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
