/**
 * The benchmarks, in this process, one system at a time, then docs/benchmarks.md. Five suites, run
 * in this order: "storage" (the storage engine against classic-level and lmdb-js on one workload),
 * "cluster" (YCSB-style workloads on the loomkv cluster with 3 and 5 node workers, the storage
 * engine alone and Redis through ioredis; bench/ycsb.bench.ts), "failure" (gossip detection, false
 * positives, hint drain; bench/failure.bench.ts), "antientropy" (wipe rebuild, divergence,
 * background cost of the Merkle trees; bench/antientropy.bench.ts) and "sustained" (minutes of
 * mixed load: throughput, put p99 and tables over time; bench/sustained.bench.ts). Each suite rewrites only its
 * own generated section of the report. Not part of `npm test`.
 *
 *   Node:  npm run bench                         (= tsc -p . && node --expose-gc dist/bench/run.js)
 *          node --expose-gc dist/bench/run.js --quick
 *          node --expose-gc dist/bench/run.js --suite cluster
 *   Deno:  npx deno run -A --v8-flags=--expose-gc bench/run.ts --quick
 *
 * Flags:
 *   --suite S           storage, cluster, failure, antientropy, sustained, datasize or all (default all)
 *   --quick             smoke run: 100k keys, 10k records, 300 ms per task; writes .tmp/benchmarks-quick.md
 *   --time-ms N         tinybench time budget per task (default 1000)
 *   --out PATH          report path (default docs/benchmarks.md; --quick: .tmp/benchmarks-quick.md);
 *                       the cluster suite also writes its chart as ycsb.svg next to it
 *   --no-report         print the results only
 *   --no-profile        skip the node:inspector profiles (loomkv storage; the cluster's main thread)
 *                       and the antientropy suite's workload A arm under --cpu-prof
 *
 * Storage suite flags:
 *   --keys N            keys to load (default 1,000,000; --quick: 100,000)
 *   --memtable-mib N    loomkv memtableBytes in MiB (default 16 per million keys, at least 1)
 *   --cache-mib N       block cache MiB of loomkv and of classic-level alike (default 16: the data
 *                       at 1M keys is about 7 times that)
 *   --systems a,b       subset of loomkv,classic-level,lmdb-js,loomkv-fsync-never
 *   --profile-dir DIR   also write the raw .cpuprofile of each profiled phase to DIR
 *
 * Cluster suite flags (Redis runs only where `redis-server` is on PATH: apt-get install redis-server):
 *   --records N         records to load (default 100,000; --quick: 10,000)
 *   --in-flight N       operations in flight per round, loomkv and the Redis pipeline alike (default 512)
 *   --cluster-systems a,b  subset of loomkv-3,loomkv-5,store-alone,redis,redis-aof
 *
 * Anti-entropy suite flags (its workload A arms also take --records and --in-flight):
 *   --ae-keys N         keys in the wipe and divergence cluster (default 100,000; --quick: 10,000);
 *                       1% of them are made divergent
 *   --ae-seconds N      seconds per workload A arm, anti-entropy on and off (default 20; --quick: 5)
 *   --ae-nodes a,b      node counts of the workload A arms (default 3; 3,5 runs both)
 *
 * Sustained suite flags (3 nodes, 50% puts / 50% gets, 256 in flight, 5 s windows; writes sustained.svg):
 *   --sustained-seconds N  length of the timed run (default 180; --quick: 30)
 *   --sustained-keys N     keys preloaded and then used (default 200,000; --quick: 20,000)
 *   --sustained-writes W   context (puts carry the client's last write context; default) or blind
 *
 * Data-size suite flags (3 nodes, uniformly random gets of loaded keys, --in-flight in flight):
 *   --datasize-keys a,b    key counts, each on a fresh cluster (default 100000,1000000; --quick: 10000,100000)
 *   --datasize-gets N      gets per timed round, 3 rounds (default 100,000; --quick: 20,000)
 */
import { cpus, release, totalmem, type } from "node:os";
import { dirname, join } from "node:path";
import { writeFileSync, mkdirSync } from "node:fs";
import { limits } from "../src/util/limits.ts";
import { storageJobThreadsDefault } from "../src/runtime/piscina_storage_jobs.ts";
import { describeLoad, startLoadMeter, type MachineLoad } from "./machine_load.ts";
import { storeConfigDefaults } from "../src/storage/store_config.ts";
import type { BenchPeer } from "./peers/peer.ts";
import { renderResults, writeReport, type MachineInfo, type MemoryBudget } from "./report.ts";
import { createWorkload, removeLiveDirectories, runSystem, type SystemResult, type SystemSpec } from "./storage.bench.ts";
import { killLiveRedisServers } from "./peers/redis_server.ts";
import { runYcsbSuite, YCSB_SYSTEMS, type YcsbRunResult, type YcsbSystemId } from "./ycsb.bench.ts";
import { renderChart } from "./ycsb_chart.ts";
import { failureSection, renderFailureResults, runFailureSuite } from "./failure.bench.ts";
import { antiEntropySection, renderAntiEntropyResults, runAntiEntropySuite } from "./antientropy.bench.ts";
import { dataSizeSection, renderDataSizeResults, runDataSizeSuite } from "./data_size.bench.ts";
import { renderSustainedChart, renderSustainedResults, runSustainedSuite, sustainedSection } from "./sustained.bench.ts";
import { removeBenchDirectories } from "./temp_directories.ts";
import { renderYcsbResults, ycsbSection } from "./ycsb_report.ts";
import { createYcsbData, hottestRecordShare, WORKLOADS } from "./ycsb_workload.ts";

type Suite = "storage" | "cluster" | "failure" | "antientropy" | "sustained" | "datasize";
const SUITES: readonly Suite[] = ["storage", "cluster", "failure", "antientropy", "sustained", "datasize"];

interface RunOptions {
  readonly suites: readonly Suite[];
  readonly keys: number;
  readonly taskTimeMs: number;
  readonly memtableBytes: number;
  /** Block cache bytes of loomkv and classic-level (equal budgets). */
  readonly cacheBytes: number;
  readonly systems: readonly string[];
  readonly out: string | undefined;
  readonly profile: boolean;
  readonly profileDirectory: string | undefined;
  readonly records: number;
  readonly inFlight: number;
  readonly clusterSystems: readonly YcsbSystemId[];
  readonly detectionRuns: number;
  readonly falsePositiveSeconds: number;
  readonly quick: boolean;
  readonly antiEntropyKeys: number;
  readonly antiEntropySeconds: number;
  readonly antiEntropyNodes: readonly number[];
  readonly sustainedSeconds: number;
  readonly sustainedKeys: number;
  readonly sustainedWrites: "context" | "blind";
  readonly dataSizeKeys: readonly number[];
  readonly dataSizeGets: number;
}

const SYSTEMS = ["loomkv", "classic-level", "lmdb-js", "loomkv-fsync-never"] as const;
const SUBJECT = "loomkv";
const PEERS = ["classic-level", "lmdb-js"] as const;
const SEED = 20_240_601;
const YCSB_SEED = 20_240_602;
const ANTI_ENTROPY_SEED = 20_240_603;
const SUSTAINED_SEED = 20_240_604;
const DATA_SIZE_SEED = 20_240_605;
/** Rounds of --in-flight operations per tinybench iteration of a cluster throughput task. */
const ROUNDS_PER_ITERATION = 4;
const MiB = 2 ** 20;
/** A run that has not finished by then is stuck (a hung write or job): fail instead of waiting. */
const DEADLINE_MS = 20 * 60 * 1000;

function flagValue(args: readonly string[], name: string): string | undefined {
  const at = args.indexOf(name);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (value === undefined || value.startsWith("--")) throw new RangeError(`bench failed: ${name} needs a value`);
  return value;
}

function keyCounts(text: string | undefined, fallback: readonly number[]): readonly number[] {
  if (text === undefined) return fallback;
  const counts = text.split(",").map((part) => positiveInteger("--datasize-keys", part, 0));
  if (counts.some((count, index) => index > 0 && count <= counts[index - 1]!)) throw new RangeError(`bench failed: --datasize-keys is ${text}, must be increasing counts`);
  return counts;
}

function sustainedWrites(text: string | undefined): "context" | "blind" {
  if (text === undefined || text === "context" || text === "blind") return text ?? "context";
  throw new RangeError(`bench failed: --sustained-writes is ${text}, must be context or blind`);
}

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text.replaceAll("_", ""));
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`bench failed: ${name} must be a positive integer, got ${text}`);
  return value;
}

function parseOptions(args: readonly string[]): RunOptions {
  const known = new Set([
    "--suite",
    "--keys",
    "--quick",
    "--time-ms",
    "--memtable-mib",
    "--cache-mib",
    "--systems",
    "--out",
    "--no-report",
    "--no-profile",
    "--profile-dir",
    "--records",
    "--in-flight",
    "--cluster-systems",
    "--sustained-seconds",
    "--sustained-keys",
    "--sustained-writes",
    "--datasize-keys",
    "--datasize-gets",
    "--detection-runs",
    "--fp-seconds",
    "--ae-keys",
    "--ae-seconds",
    "--ae-nodes",
  ]);
  for (const arg of args) if (arg.startsWith("--") && !known.has(arg)) throw new RangeError(`bench failed: unknown flag ${arg}`);
  const quick = args.includes("--quick");
  const keys = positiveInteger("--keys", flagValue(args, "--keys"), quick ? 100_000 : 1_000_000);
  const memtableMiB = positiveInteger("--memtable-mib", flagValue(args, "--memtable-mib"), Math.max(1, Math.round((16 * keys) / 1_000_000)));
  const systems = (flagValue(args, "--systems") ?? SYSTEMS.join(",")).split(",").filter((name) => name !== "");
  for (const name of systems) {
    if (!(SYSTEMS as readonly string[]).includes(name)) throw new RangeError(`bench failed: unknown system ${name}, expected one of ${SYSTEMS.join(", ")}`);
  }
  const suite = flagValue(args, "--suite") ?? "all";
  if (suite !== "all" && !(SUITES as readonly string[]).includes(suite)) throw new RangeError(`bench failed: --suite must be ${SUITES.join(", ")} or all, got ${suite}`);
  const clusterSystems = (flagValue(args, "--cluster-systems") ?? YCSB_SYSTEMS.join(",")).split(",").filter((name) => name !== "");
  for (const name of clusterSystems) {
    if (!(YCSB_SYSTEMS as readonly string[]).includes(name)) throw new RangeError(`bench failed: unknown cluster system ${name}, expected one of ${YCSB_SYSTEMS.join(", ")}`);
  }
  const inFlight = positiveInteger("--in-flight", flagValue(args, "--in-flight"), 512);
  if (inFlight > 1000) throw new RangeError(`bench failed: --in-flight is ${inFlight}, at most 1000 (a turn's batch must fit the transport's outbox)`);
  const antiEntropyNodes = (flagValue(args, "--ae-nodes") ?? "3").split(",").filter((name) => name !== "").map((name) => positiveInteger("--ae-nodes", name, 3));
  for (const nodes of antiEntropyNodes) if (nodes < 3) throw new RangeError(`bench failed: --ae-nodes needs at least 3 nodes (N=3), got ${nodes}`);
  const out = args.includes("--no-report") ? undefined : (flagValue(args, "--out") ?? (quick ? ".tmp/benchmarks-quick.md" : "docs/benchmarks.md"));
  return {
    suites: suite === "all" ? SUITES : [suite as Suite],
    detectionRuns: positiveInteger("--detection-runs", flagValue(args, "--detection-runs"), quick ? 10 : 50),
    falsePositiveSeconds: positiveInteger("--fp-seconds", flagValue(args, "--fp-seconds"), quick ? 5 : 60),
    quick,
    keys,
    taskTimeMs: positiveInteger("--time-ms", flagValue(args, "--time-ms"), quick ? 300 : 1000),
    memtableBytes: memtableMiB * MiB,
    cacheBytes: positiveInteger("--cache-mib", flagValue(args, "--cache-mib"), 16) * MiB,
    systems: SYSTEMS.filter((name) => systems.includes(name)),
    out,
    profile: !args.includes("--no-profile"),
    profileDirectory: flagValue(args, "--profile-dir"),
    records: positiveInteger("--records", flagValue(args, "--records"), quick ? 10_000 : 100_000),
    inFlight,
    clusterSystems: YCSB_SYSTEMS.filter((name) => clusterSystems.includes(name)),
    antiEntropyKeys: positiveInteger("--ae-keys", flagValue(args, "--ae-keys"), quick ? 10_000 : 100_000),
    antiEntropySeconds: positiveInteger("--ae-seconds", flagValue(args, "--ae-seconds"), quick ? 5 : 20),
    antiEntropyNodes,
    sustainedSeconds: positiveInteger("--sustained-seconds", flagValue(args, "--sustained-seconds"), quick ? 30 : 180),
    sustainedKeys: positiveInteger("--sustained-keys", flagValue(args, "--sustained-keys"), quick ? 20_000 : 200_000),
    sustainedWrites: sustainedWrites(flagValue(args, "--sustained-writes")),
    dataSizeKeys: keyCounts(flagValue(args, "--datasize-keys"), quick ? [10_000, 100_000] : [100_000, 1_000_000]),
    dataSizeGets: positiveInteger("--datasize-gets", flagValue(args, "--datasize-gets"), quick ? 20_000 : 100_000),
  };
}

/** Peers are imported only when they run, so loomkv's memory is measured without their addons. */
function systemSpec(name: string, options: RunOptions): SystemSpec {
  const open = async (directory: string): Promise<BenchPeer> => {
    switch (name) {
      case "loomkv":
      case "loomkv-fsync-never": {
        const { openLoomPeer } = await import("./peers/loomkv.ts");
        const fsync = name === "loomkv" ? "batch" : "never";
        return openLoomPeer({ directory, fsync, memtableBytes: options.memtableBytes, cacheBytes: options.cacheBytes, name });
      }
      case "classic-level":
        return (await import("./peers/classic_level.ts")).openClassicLevelPeer({ directory, cacheBytes: options.cacheBytes });
      case "lmdb-js":
        return (await import("./peers/lmdb.ts")).openLmdbPeer({ directory });
      default:
        throw new RangeError(`bench failed: unknown system ${name}`);
    }
  };
  return { name, open, profile: options.profile && name === SUBJECT };
}

function machineInfo(): MachineInfo {
  const deno = (process.versions as Record<string, string | undefined>)["deno"];
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown CPU",
    cores: cpus().length,
    memoryGiB: totalmem() / 2 ** 30,
    os: `${type()} ${release()}`,
    runtime: deno ? `Deno ${deno} (V8 ${process.versions.v8})` : `Node ${process.version} (V8 ${process.versions.v8})`,
  };
}

function memoryBudget(options: RunOptions): MemoryBudget {
  return {
    memtableBytes: options.memtableBytes,
    memtablesMax: 1 + limits.frozenMemtablesMax,
    blockCacheBytes: options.cacheBytes,
    bloomBytes: Math.ceil((options.keys * storeConfigDefaults.bloomBitsPerKey) / 8),
  };
}

function remarks(options: RunOptions, results: readonly SystemResult[]): string[] {
  const lines = [
    `loomkv configuration: memtableBytes ${options.memtableBytes / MiB} MiB, blockCacheBytes ${options.cacheBytes / MiB} MiB (classic-level's block cache the same), bloomBitsPerKey ${storeConfigDefaults.bloomBitsPerKey}, compaction defaults; flush and compaction run on the store's own piscina pool (${storageJobThreadsDefault} threads: one flush and one compaction can run side by side).`,
    "Each system is loaded with 95% of the keys in a shuffled order, settled, then given the last 5% (which stay in loomkv's memtable); puts overwrite uniformly random loaded keys.",
  ];
  if (results.some((result) => !result.load.gcAvailable)) lines.push("global.gc was not exposed: memory figures include uncollected garbage (run Node with --expose-gc, Deno with --v8-flags=--expose-gc).");
  if (options.profile && !results.some((result) => result.profile.length > 0) && results.some((result) => result.name === SUBJECT)) {
    lines.push("The node:inspector Profiler was unavailable on this runtime: no profile.");
  }
  return lines;
}

function isDeno(): boolean {
  return (process.versions as Record<string, string | undefined>)["deno"] !== undefined;
}

function commandLine(args: readonly string[]): string {
  const command = isDeno() ? `deno run -A bench/run.ts ${args.join(" ")}` : `node --expose-gc dist/bench/run.js ${args.join(" ")}`;
  return command.trim();
}

async function runStorageSuite(options: RunOptions, args: readonly string[], log: (line: string) => void): Promise<void> {
  log(`storage suite: ${options.keys.toLocaleString("en-US")} keys, systems ${options.systems.join(", ")}`);
  const workload = createWorkload(options.keys, SEED);
  const suite = { keys: options.keys, taskTimeMs: options.taskTimeMs, log, profileDirectory: options.profileDirectory };
  const results: SystemResult[] = [];
  for (const name of options.systems) results.push(await runSystem(systemSpec(name, options), workload, suite));
  const generated = renderResults({
    date: new Date().toISOString(),
    command: commandLine(args),
    machine: machineInfo(),
    keys: options.keys,
    taskTimeMs: options.taskTimeMs,
    subject: SUBJECT,
    peers: PEERS.filter((name) => options.systems.includes(name)),
    budget: memoryBudget(options),
    systems: results,
    remarks: remarks(options, results),
  });
  log(`\n${generated}\n`);
  if (options.out) {
    writeReport(options.out, generated);
    log(`report written to ${options.out}`);
  }
}

function clusterRemarks(options: RunOptions, result: YcsbRunResult, load: MachineLoad | undefined): string[] {
  const lines = [
    describeLoad(load, cpus().length) + (result.systems.some((system) => system.id.startsWith("redis")) ? " (redis-server's own CPU counts as other work here.)" : ""),
    "Updates to the loomkv cluster carry the join of the contexts the bench received for that record (a Dynamo client's read-your-writes context), so each replaces what was acknowledged before it; concurrent updates of a hot record stay siblings until the next one.",
  ];
  if (result.systems.some((system) => system.id.startsWith("redis"))) {
    lines.push("Redis runs twice: with an append-only file fsync'ed once a second (`--appendonly yes --appendfsync everysec`, the durability Redis users choose; the reference of the throughput targets), and without persistence (`--save '' --appendonly no`), a SET acknowledged from memory: the harder baseline. loomkv acknowledges a put after W replicas fdatasync'ed it.");
  }
  for (const skip of result.skipped) lines.push(`**${skip.id} did not run**: ${skip.reason}. Its columns and the targets that need it are missing.`);
  if (options.profile && isDeno()) lines.push("The node:inspector Profiler is unavailable on Deno: no main-thread profile.");
  return lines;
}

async function runClusterSuite(options: RunOptions, args: readonly string[], log: (line: string) => void): Promise<void> {
  log(`cluster suite: ${options.records.toLocaleString("en-US")} records, ${options.inFlight} in flight, systems ${options.clusterSystems.join(", ")}`);
  const data = createYcsbData(options.records, YCSB_SEED);
  const operationsPerIteration = options.inFlight * ROUNDS_PER_ITERATION;
  const meter = startLoadMeter();
  const result = await runYcsbSuite(data, {
    inFlight: options.inFlight,
    operationsPerIteration,
    taskTimeMs: options.taskTimeMs,
    systems: options.clusterSystems,
    profile: options.profile,
    log,
  });
  const load = meter();
  const chartName = "ycsb.svg";
  const generated = renderYcsbResults({
    date: new Date().toISOString(),
    command: commandLine(args),
    machine: machineInfo(),
    recordCount: options.records,
    inFlight: options.inFlight,
    operationsPerIteration,
    taskTimeMs: options.taskTimeMs,
    result,
    hottestShare: hottestRecordShare(data.streams.get("a")!),
    chartLink: chartName,
    remarks: clusterRemarks(options, result, load),
  });
  log(`\n${generated}\n`);
  if (options.out) {
    writeReport(options.out, generated, ycsbSection);
    const chartPath = join(dirname(options.out), chartName);
    mkdirSync(dirname(chartPath), { recursive: true });
    const title = `YCSB-style throughput: ${options.records.toLocaleString("en-US")} records, ${options.inFlight} in flight, N=3 W=2 R=2`;
    writeFileSync(chartPath, renderChart({ title, workloads: WORKLOADS, systems: result.systems }));
    log(`report written to ${options.out}, chart to ${chartPath}`);
  }
}

async function runAntiEntropy(options: RunOptions, args: readonly string[], log: (line: string) => void): Promise<void> {
  const keys = options.antiEntropyKeys;
  log(`anti-entropy suite: ${keys.toLocaleString("en-US")} keys, workload A arms of ${options.antiEntropySeconds} s on ${options.antiEntropyNodes.join(" and ")} nodes`);
  const meter = startLoadMeter();
  const result = await runAntiEntropySuite({
    keys,
    divergentKeys: Math.max(1, Math.round(keys / 100)),
    divergenceRuns: 2,
    divergenceAtDefaultInterval: true,
    bucketCounts: [256, 1024, 4096, 16384],
    intervalMs: 200,
    fastKeysPerSecond: 50_000,
    ycsb: createYcsbData(options.records, YCSB_SEED),
    ycsbSeed: YCSB_SEED,
    background: { nodes: options.antiEntropyNodes, seconds: options.antiEntropySeconds, inFlight: options.inFlight, operationsPerIteration: options.inFlight * ROUNDS_PER_ITERATION },
    seed: ANTI_ENTROPY_SEED,
    profile: options.profile,
    log,
  });
  const generated = renderAntiEntropyResults(result, reportContext(args, meter()));
  log(`\n${generated}\n`);
  if (options.out) {
    writeReport(options.out, generated, antiEntropySection);
    log(`report written to ${options.out}`);
  }
}

/** The date, command, machine and load lines every generated suite section opens with. */
function reportContext(args: readonly string[], load: MachineLoad | undefined): { date: string; command: string; machine: string; load: string } {
  const machine = machineInfo();
  return {
    date: new Date().toISOString(),
    command: commandLine(args),
    machine: `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB.toFixed(0)} GiB RAM, ${machine.os}; ${machine.runtime}`,
    load: describeLoad(load, cpus().length),
  };
}

async function runSustained(options: RunOptions, args: readonly string[], log: (line: string) => void): Promise<void> {
  log(`sustained suite: ${options.sustainedKeys.toLocaleString("en-US")} keys, ${options.sustainedSeconds} s of 50% puts / 50% gets, 256 in flight`);
  const meter = startLoadMeter();
  const result = await runSustainedSuite({ keys: options.sustainedKeys, seconds: options.sustainedSeconds, inFlight: 256, windowSeconds: 5, seed: SUSTAINED_SEED, writes: options.sustainedWrites, log });
  const chartName = "sustained.svg";
  const generated = renderSustainedResults(result, { ...reportContext(args, meter()), chart: chartName });
  log(`\n${generated}\n`);
  if (options.out) {
    writeReport(options.out, generated, sustainedSection);
    const chartPath = join(dirname(options.out), chartName);
    mkdirSync(dirname(chartPath), { recursive: true });
    writeFileSync(chartPath, renderSustainedChart(result, `Sustained 50/50 load: ${options.sustainedKeys.toLocaleString("en-US")} keys, 256 in flight, 3 nodes`));
    log(`report written to ${options.out}, chart to ${chartPath}`);
  }
}

async function runDataSize(options: RunOptions, args: readonly string[], log: (line: string) => void): Promise<void> {
  log(`data size suite: ${options.dataSizeKeys.map((count) => count.toLocaleString("en-US")).join(" and ")} keys, ${options.dataSizeGets.toLocaleString("en-US")} gets per round`);
  const meter = startLoadMeter();
  const result = await runDataSizeSuite({ keyCounts: options.dataSizeKeys, gets: options.dataSizeGets, rounds: 3, inFlight: options.inFlight, seed: DATA_SIZE_SEED, log });
  const generated = renderDataSizeResults(result, reportContext(args, meter()));
  log(`\n${generated}\n`);
  if (options.out) {
    writeReport(options.out, generated, dataSizeSection);
    log(`report written to ${options.out}`);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const options = parseOptions(args);
  const log = (line: string) => console.log(line);
  const started = performance.now();
  if (options.suites.includes("storage")) await runStorageSuite(options, args, log);
  if (options.suites.includes("cluster")) await runClusterSuite(options, args, log);
  if (options.suites.includes("failure")) {
    const result = await runFailureSuite({ runs: options.detectionRuns, falsePositiveSeconds: options.falsePositiveSeconds, hintKeys: options.quick ? 2000 : 20_000, log });
    const machine = machineInfo();
    const generated = renderFailureResults(result, {
      date: new Date().toISOString(),
      command: commandLine(args),
      machine: `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB.toFixed(0)} GiB RAM, ${machine.os}; ${machine.runtime}`,
    });
    log(`\n${generated}\n`);
    if (options.out) writeReport(options.out, generated, failureSection);
  }
  if (options.suites.includes("antientropy")) await runAntiEntropy(options, args, log);
  if (options.suites.includes("sustained")) await runSustained(options, args, log);
  if (options.suites.includes("datasize")) await runDataSize(options, args, log);
  log(`bench took ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

function abort(reason: string, code: number): void {
  console.error(reason);
  removeLiveDirectories();
  removeBenchDirectories();
  killLiveRedisServers();
  process.exit(code);
}

process.once("SIGINT", () => abort("bench interrupted", 130));
process.once("SIGTERM", () => abort("bench terminated", 143));
setTimeout(() => abort(`bench failed: not finished after ${DEADLINE_MS / 60_000} minutes`, 1), DEADLINE_MS).unref();
try {
  await main();
  process.exit(0);
} catch (error) {
  abort(error instanceof Error ? (error.stack ?? error.message) : String(error), 1);
}
