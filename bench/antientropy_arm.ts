/**
 * One workload A arm of the anti-entropy suite, as a process of its own: the suite runs it under
 * `node --cpu-prof` (every thread writes a profile) to see where anti-entropy's CPU goes on the
 * node threads, which node:inspector in the main thread cannot see. Node only.
 *
 *   node dist/bench/antientropy_arm.js --records N --seed N --seconds S --in-flight N
 *     --operations-per-iteration N --interval-ms MS
 *
 * Loads a fresh 3-node cluster (N=3 W=2 R=2) with the YCSB records, runs workload A for S seconds,
 * prints one JSON line (ArmReport), and exits. The timed window's bounds are on the monotonic clock
 * V8's CPU profiles use (process.hrtime, in µs), so the suite counts only the samples inside it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { openLoomClusterPeer } from "./peers/loomkv_cluster.ts";
import { REPLICATION, REQUEST_TIMEOUT_MS, throughputTask } from "./ycsb.bench.ts";
import { createYcsbData } from "./ycsb_workload.ts";

export interface ArmReport {
  readonly operations: number;
  readonly opsPerSecond: number;
  readonly cpuUsPerOperation: number;
  /** The timed window on the profiles' clock (process.hrtime), µs. */
  readonly windowStartUs: number;
  readonly windowEndUs: number;
}

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

function flag(name: string): number {
  const at = process.argv.indexOf(name);
  const value = Number(at < 0 ? Number.NaN : process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`anti-entropy arm failed: ${name} must be a positive integer, got ${process.argv[at + 1]}`);
  return value;
}

async function main(): Promise<void> {
  const records = flag("--records");
  const seconds = flag("--seconds");
  const inFlight = flag("--in-flight");
  const intervalMs = flag("--interval-ms");
  const operationsPerIteration = flag("--operations-per-iteration");
  const data = createYcsbData(records, flag("--seed"));
  const directory = mkdtempSync(join(tmpdir(), "loomkv-bench-ae-arm-"));
  try {
    const peer = await openLoomClusterPeer({ nodes: 3, ...REPLICATION, dataDir: directory, requestTimeoutMs: REQUEST_TIMEOUT_MS, loadInFlight: 2 * inFlight, antiEntropy: { intervalMs } });
    try {
      await peer.load(data);
      const task = throughputTask(peer, data.streams.get("a")!, { inFlight, operationsPerIteration });
      let operations = 0;
      const windowStartUs = monotonicUs();
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      while (performance.now() - started < seconds * 1000) {
        await task();
        operations += operationsPerIteration;
      }
      const cpu = process.cpuUsage(cpuBefore);
      const opsPerSecond = (operations * 1000) / (performance.now() - started);
      const report: ArmReport = { operations, opsPerSecond, cpuUsPerOperation: (cpu.user + cpu.system) / operations, windowStartUs, windowEndUs: monotonicUs() };
      console.log(JSON.stringify(report));
    } finally {
      await peer.close();
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();
