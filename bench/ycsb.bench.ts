/**
 * The cluster benchmark suite (YCSB-style): each system is opened on its own, loaded with the same
 * records, then run through workloads A, B, C, pure gets and pure puts as throughput tasks (a fixed
 * number of operations per tinybench iteration, issued in rounds of `inFlight` operations in
 * flight together), plus single awaited reads for latency percentiles. `bench/run.ts --suite
 * cluster` drives it and writes the report; this file knows nothing about the report's layout.
 *
 * Systems: the loomkv cluster with 3 and with 5 node workers (N=3 W=2 R=2, fsync "batch"), the
 * storage engine alone (one Store in this thread: the cluster ÷ alone ratio is the replication
 * cost), and Redis through ioredis, pipelined, without persistence and with an append-only file
 * fsync'ed every second (skipped, with the reason, when redis-server is not installed or ioredis
 * cannot load).
 *
 * CPU per operation: for each throughput task, this process's CPU time (process.cpuUsage(): every
 * thread, so a loomkv cluster's node workers and storage pool included) over the operations the
 * task ran, warm-up included; for Redis also the server process's (from /proc), so that the
 * server's cost per operation can be set beside loomkv's whole cost.
 */
import process from "node:process";
import { Bench, type Task } from "tinybench";
import type { YcsbPeer } from "./peers/ycsb_peer.ts";
import { profilePhase, type ProfileResult } from "./storage.bench.ts";
import { STREAM_OPERATIONS, WORKLOADS, type OperationStream, type WorkloadId, type YcsbData } from "./ycsb_workload.ts";
import { temporaryDirectory } from "./temp_directories.ts";

export const YCSB_SYSTEMS = ["loomkv-3", "loomkv-5", "store-alone", "redis", "redis-aof"] as const;
export type YcsbSystemId = (typeof YCSB_SYSTEMS)[number];
/** Systems whose single-read latency is measured (the latency target compares these two). */
const LATENCY_SYSTEMS: readonly YcsbSystemId[] = ["loomkv-3", "redis"];
/** Workloads profiled on the main thread for the 3-node cluster (Node only). */
const PROFILED_WORKLOADS: readonly WorkloadId[] = ["get", "put"];
export const REPLICATION = { n: 3, w: 2, r: 2 } as const;
/** Per-request timeout of the cluster under test: generous, so that a busy shared machine does not fail the run. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Memtable of the store-alone system: the size each cluster node gets by default. */
const MEMTABLE_BYTES = 16 * 2 ** 20;

export interface YcsbSuiteOptions {
  readonly inFlight: number;
  /** Operations per tinybench iteration of a throughput task (a multiple of inFlight). */
  readonly operationsPerIteration: number;
  /** tinybench time budget per task, in milliseconds. */
  readonly taskTimeMs: number;
  readonly systems: readonly YcsbSystemId[];
  readonly profile: boolean;
  readonly log: (line: string) => void;
}

export interface WorkloadMeasurement {
  readonly workload: WorkloadId;
  /** Operations per second, from the mean iteration time. */
  readonly perSecond: number;
  /** tinybench's relative margin of error of the mean iteration time, in percent. */
  readonly rmePercent: number;
  readonly iterations: number;
  /** This process's CPU (all threads) per operation, µs. */
  readonly cpuUsPerOp: number;
  /** The server process's CPU per operation, µs (Redis only). */
  readonly serverCpuUsPerOp?: number;
}

export interface LatencyMeasurement {
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly samples: number;
}

export interface YcsbSystemResult {
  readonly id: YcsbSystemId;
  readonly name: string;
  readonly version: string;
  readonly durability: string;
  readonly requestPath: string;
  readonly loadPerSecond: number;
  readonly measurements: readonly WorkloadMeasurement[];
  readonly latency: LatencyMeasurement | undefined;
  readonly facts: Record<string, string | number>;
  readonly profile: readonly ProfileResult[];
}

export interface YcsbSkip {
  readonly id: YcsbSystemId;
  readonly reason: string;
}

export interface YcsbRunResult {
  readonly systems: readonly YcsbSystemResult[];
  readonly skipped: readonly YcsbSkip[];
}

interface Opened {
  readonly peer: YcsbPeer;
  /** Removes what the system left on disk. */
  readonly cleanup: () => void;
}


/**
 * Opens one system, or says why it cannot run here. Peers are imported only when they run, so a
 * runtime that cannot load one (ioredis on Deno, say) skips it instead of failing the suite.
 */
async function openSystem(id: YcsbSystemId, inFlight: number): Promise<Opened | YcsbSkip> {
  if (id === "redis" || id === "redis-aof") return openRedis(id);
  const { directory, cleanup } = temporaryDirectory(id);
  try {
    if (id === "store-alone") {
      const { openLoomStorePeer } = await import("./peers/loomkv_store_ycsb.ts");
      return { peer: await openLoomStorePeer({ directory, memtableBytes: MEMTABLE_BYTES }), cleanup };
    }
    const { openLoomClusterPeer } = await import("./peers/loomkv_cluster.ts");
    const nodes = id === "loomkv-3" ? 3 : 5;
    const peer = await openLoomClusterPeer({ nodes, ...REPLICATION, dataDir: directory, requestTimeoutMs: REQUEST_TIMEOUT_MS, loadInFlight: 2 * inFlight });
    return { peer, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}

async function openRedis(id: "redis" | "redis-aof"): Promise<Opened | YcsbSkip> {
  const { findRedisServer, startRedisServer } = await import("./peers/redis_server.ts");
  const found = findRedisServer();
  if ("missing" in found) return { id, reason: found.missing };
  let redis: typeof import("./peers/redis.ts");
  try {
    redis = await import("./peers/redis.ts");
  } catch (error) {
    return { id, reason: `ioredis could not be loaded on this runtime: ${error instanceof Error ? error.message : String(error)}` };
  }
  const server = await startRedisServer(found.version, id === "redis" ? "none" : "aof-everysec");
  try {
    return { peer: await redis.openRedisPeer(server), cleanup: () => {} };
  } catch (error) {
    await server.stop();
    return { id, reason: `ioredis could not talk to redis-server on this runtime: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function completed(task: Task): { mean: number; p50: number; p99: number; rme: number; runs: number } {
  const result = task.result;
  if (result.state !== "completed") {
    const detail = result.state === "errored" ? `: ${result.error.message}` : "";
    throw new Error(`bench failed: task "${task.name}" ended ${result.state}${detail}`);
  }
  const { mean, p50, p99, rme } = result.latency;
  return { mean, p50, p99, rme, runs: task.runs };
}

/**
 * One iteration: `operationsPerIteration` stream operations in rounds of `inFlight`. `counter`
 * (optional) counts the operations run, for CPU per operation.
 */
export function throughputTask(
  peer: YcsbPeer,
  stream: OperationStream,
  options: Pick<YcsbSuiteOptions, "operationsPerIteration" | "inFlight">,
  counter?: { operations: number },
): () => Promise<void> {
  let cursor = 0;
  return async () => {
    for (let done = 0; done < options.operationsPerIteration; done += options.inFlight) {
      await peer.runRound(stream, cursor, options.inFlight);
      cursor = (cursor + options.inFlight) % STREAM_OPERATIONS;
      if (counter) counter.operations += options.inFlight;
    }
  };
}

async function measureWorkload(peer: YcsbPeer, stream: OperationStream, options: YcsbSuiteOptions): Promise<WorkloadMeasurement> {
  const bench = new Bench({ time: options.taskTimeMs, warmupTime: Math.min(250, options.taskTimeMs / 4), warmupIterations: 2, iterations: 8, throws: true });
  const counter = { operations: 0 };
  bench.add(`${peer.name} ${stream.workload.id}`, throughputTask(peer, stream, options, counter));
  const serverBefore = peer.serverCpuMicros?.();
  const cpuBefore = process.cpuUsage();
  await bench.run();
  const cpu = process.cpuUsage(cpuBefore);
  const serverAfter = peer.serverCpuMicros?.();
  const result = completed(bench.tasks[0]!);
  const operations = Math.max(1, counter.operations);
  const measurement: WorkloadMeasurement = {
    workload: stream.workload.id,
    perSecond: (options.operationsPerIteration * 1000) / result.mean,
    rmePercent: result.rme,
    iterations: result.runs,
    cpuUsPerOp: (cpu.user + cpu.system) / operations,
    ...(serverBefore !== undefined && serverAfter !== undefined ? { serverCpuUsPerOp: (serverAfter - serverBefore) / operations } : {}),
  };
  const server = measurement.serverCpuUsPerOp === undefined ? "" : `, server ${measurement.serverCpuUsPerOp.toFixed(1)} µs CPU/op`;
  options.log(`  ${peer.name} ${stream.workload.label}: ${Math.round(measurement.perSecond).toLocaleString("en-US")} ops/s ±${measurement.rmePercent.toFixed(1)}%, ${measurement.cpuUsPerOp.toFixed(1)} µs CPU/op in this process${server}`);
  return measurement;
}

/** Single reads, one awaited at a time, over the uniform get stream's keys. */
async function measureLatency(peer: YcsbPeer, stream: OperationStream, options: YcsbSuiteOptions): Promise<LatencyMeasurement> {
  const bench = new Bench({ time: options.taskTimeMs, warmupTime: Math.min(250, options.taskTimeMs / 4), iterations: 256, throws: true });
  let cursor = 0;
  bench.add(`${peer.name} single get`, () => peer.readOne(stream.keys[cursor++ & (STREAM_OPERATIONS - 1)]!));
  await bench.run();
  const result = completed(bench.tasks[0]!);
  const latency = { p50Us: result.p50 * 1000, p99Us: result.p99 * 1000, meanUs: result.mean * 1000, samples: result.runs };
  options.log(`  ${peer.name} single get: p50 ${latency.p50Us.toFixed(0)} µs, p99 ${latency.p99Us.toFixed(0)} µs (${latency.samples} samples)`);
  return latency;
}

function streamOf(data: YcsbData, id: WorkloadId): OperationStream {
  const stream = data.streams.get(id);
  if (!stream) throw new Error(`bench failed: no stream for workload ${id}`);
  return stream;
}

/** Loads, measures every workload (and latency where asked), profiles (3 nodes, Node), closes. */
async function runOne(id: YcsbSystemId, opened: Opened, data: YcsbData, options: YcsbSuiteOptions): Promise<YcsbSystemResult> {
  const { peer } = opened;
  options.log(`${peer.name}: loading ${data.recordCount.toLocaleString("en-US")} records`);
  const started = performance.now();
  await peer.load(data);
  const loadPerSecond = (data.recordCount * 1000) / (performance.now() - started);
  options.log(`  load: ${Math.round(loadPerSecond).toLocaleString("en-US")} records/s`);
  const measurements: WorkloadMeasurement[] = [];
  let latency: LatencyMeasurement | undefined;
  const profile: ProfileResult[] = [];
  for (const workload of WORKLOADS) {
    const stream = streamOf(data, workload.id);
    if (workload.id === "put" && LATENCY_SYSTEMS.includes(id)) latency = await measureLatency(peer, streamOf(data, "get"), options);
    measurements.push(await measureWorkload(peer, stream, options));
    if (options.profile && id === "loomkv-3" && PROFILED_WORKLOADS.includes(workload.id)) {
      const task = throughputTask(peer, stream, options);
      const result = await profilePhase(`main thread, ${workload.label}`, async () => {
        const until = performance.now() + options.taskTimeMs;
        while (performance.now() < until) await task();
      });
      if (result) profile.push(result);
    }
  }
  const facts = await peer.describe();
  options.log(`  facts: ${JSON.stringify(facts)}`);
  const { name, version, durability, requestPath } = peer;
  return { id, name, version, durability, requestPath, loadPerSecond, measurements, latency, facts, profile };
}

/** Runs every system in `options.systems`, one at a time, each closed before the next opens. */
export async function runYcsbSuite(data: YcsbData, options: YcsbSuiteOptions): Promise<YcsbRunResult> {
  const systems: YcsbSystemResult[] = [];
  const skipped: YcsbSkip[] = [];
  for (const id of options.systems) {
    const opened = await openSystem(id, options.inFlight);
    if ("reason" in opened) {
      options.log(`${id}: SKIPPED: ${opened.reason}`);
      skipped.push(opened);
      continue;
    }
    try {
      systems.push(await runOne(id, opened, data, options));
    } finally {
      await opened.peer.close();
      opened.cleanup();
    }
  }
  return { systems, skipped };
}
