/**
 * A real cluster (worker threads) as the simulator's workloads drive it (src/sim/workload.ts):
 * every fault goes through the public `cluster.faults`, and `healAll` undoes them all, as the
 * simulator's does: the network heals, disk faults are cleared and a node whose store saw one is
 * restarted (its store stays failed until then), and every node not running starts again.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { DiskFault } from "../../src/io/faulty_file_system.ts";
import type { Cluster } from "../../src/runtime/cluster.ts";
import type { WorkloadTarget } from "../../src/sim/workload.ts";

export function clusterTarget(cluster: Cluster): { target: WorkloadTarget; healAll: () => Promise<void> } {
  const crashed = new Set<number>();
  const diskFaulted = new Set<number>();
  const target: WorkloadTarget = {
    put: (key, value, options) => cluster.put(key, value, options),
    delete: (key, options) => cluster.delete(key, options),
    get: (key) => cluster.get(key),
    sleep: (ms) => sleep(ms),
    get members() {
      return cluster.ring().nodes;
    },
    isRunning: (node) => !crashed.has(node),
    faults: {
      crash: async (node: number) => {
        crashed.add(node);
        await cluster.faults.crash(node);
      },
      restart: async (node: number) => {
        await cluster.faults.restart(node);
        crashed.delete(node);
        diskFaulted.delete(node);
      },
      wipe: async (node: number) => {
        await cluster.faults.wipe(node);
        crashed.delete(node);
        diskFaulted.delete(node);
      },
      pause: (node: number, ms: number) => cluster.faults.pause(node, ms),
      partition: (...groups: number[][]) => cluster.faults.partition(...groups),
      heal: () => cluster.faults.heal(),
      dropRate: (rate: number) => cluster.faults.dropRate(rate),
      delay: (ms: number, jitterMs: number) => cluster.faults.delay(ms, jitterMs),
      diskFault: async (node: number, fault: DiskFault | null) => {
        if (fault !== null) diskFaulted.add(node);
        await cluster.faults.diskFault(node, fault);
      },
    },
  };
  const healAll = async () => {
    await cluster.faults.heal();
    for (const node of diskFaulted) await cluster.faults.diskFault(node, null);
    for (const node of [...new Set([...diskFaulted, ...crashed])]) await target.faults.restart(node);
    await sleep(500); // pauses end, replication and repairs in flight land
  };
  return { target, healAll };
}
