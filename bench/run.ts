/**
 * The storage-engine benchmark: loomkv against classic-level and lmdb-js on one workload, in this
 * process, one system at a time, then docs/benchmarks.md. Not part of `npm test`.
 *
 *   Node:  npm run bench                         (1M keys; = tsc -p . && node --expose-gc dist/bench/run.js)
 *          node --expose-gc dist/bench/run.js --quick
 *   Deno:  npx deno run -A --v8-flags=--expose-gc bench/run.ts --quick
 *
 * Flags:
 *   --keys N            keys to load (default 1,000,000; --quick: 100,000)
 *   --quick             smoke run: 100k keys, 300 ms per task; writes .tmp/benchmarks-quick.md
 *   --time-ms N         tinybench time budget per task (default 1000)
 *   --memtable-mib N    loomkv memtableBytes in MiB (default 16 per million keys, at least 1)
 *   --systems a,b       subset of loomkv,classic-level,lmdb-js,loomkv-fsync-never
 *   --out PATH          report path (default docs/benchmarks.md; --quick: .tmp/benchmarks-quick.md)
 *   --no-report         print the results only
 *   --no-profile        skip the node:inspector profile of loomkv
 *   --profile-dir DIR   also write the raw .cpuprofile of each profiled phase to DIR
 */
import { cpus, release, totalmem, type } from "node:os";
import { limits } from "../src/util/limits.ts";
import { storeConfigDefaults } from "../src/storage/store_config.ts";
import type { BenchPeer } from "./peers/peer.ts";
import { renderResults, writeReport, type MachineInfo, type MemoryBudget } from "./report.ts";
import { createWorkload, removeLiveDirectories, runSystem, type SystemResult, type SystemSpec } from "./storage.bench.ts";

interface RunOptions {
  readonly keys: number;
  readonly taskTimeMs: number;
  readonly memtableBytes: number;
  readonly systems: readonly string[];
  readonly out: string | undefined;
  readonly profile: boolean;
  readonly profileDirectory: string | undefined;
}

const SYSTEMS = ["loomkv", "classic-level", "lmdb-js", "loomkv-fsync-never"] as const;
const SUBJECT = "loomkv";
const PEERS = ["classic-level", "lmdb-js"] as const;
const SEED = 20_240_601;
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

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text.replaceAll("_", ""));
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`bench failed: ${name} must be a positive integer, got ${text}`);
  return value;
}

function parseOptions(args: readonly string[]): RunOptions {
  const known = new Set(["--keys", "--quick", "--time-ms", "--memtable-mib", "--systems", "--out", "--no-report", "--no-profile", "--profile-dir"]);
  for (const arg of args) if (arg.startsWith("--") && !known.has(arg)) throw new RangeError(`bench failed: unknown flag ${arg}`);
  const quick = args.includes("--quick");
  const keys = positiveInteger("--keys", flagValue(args, "--keys"), quick ? 100_000 : 1_000_000);
  const memtableMiB = positiveInteger("--memtable-mib", flagValue(args, "--memtable-mib"), Math.max(1, Math.round((16 * keys) / 1_000_000)));
  const systems = (flagValue(args, "--systems") ?? SYSTEMS.join(",")).split(",").filter((name) => name !== "");
  for (const name of systems) {
    if (!(SYSTEMS as readonly string[]).includes(name)) throw new RangeError(`bench failed: unknown system ${name}, expected one of ${SYSTEMS.join(", ")}`);
  }
  const out = args.includes("--no-report") ? undefined : (flagValue(args, "--out") ?? (quick ? ".tmp/benchmarks-quick.md" : "docs/benchmarks.md"));
  return {
    keys,
    taskTimeMs: positiveInteger("--time-ms", flagValue(args, "--time-ms"), quick ? 300 : 1000),
    memtableBytes: memtableMiB * MiB,
    systems: SYSTEMS.filter((name) => systems.includes(name)),
    out,
    profile: !args.includes("--no-profile"),
    profileDirectory: flagValue(args, "--profile-dir"),
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
        return openLoomPeer({ directory, fsync, memtableBytes: options.memtableBytes, name });
      }
      case "classic-level":
        return (await import("./peers/classic_level.ts")).openClassicLevelPeer({ directory });
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
    blockCacheBytes: storeConfigDefaults.blockCacheBytes,
    bloomBytes: Math.ceil((options.keys * storeConfigDefaults.bloomBitsPerKey) / 8),
  };
}

function remarks(options: RunOptions, results: readonly SystemResult[]): string[] {
  const lines = [
    `loomkv configuration: memtableBytes ${options.memtableBytes / MiB} MiB, blockCacheBytes ${storeConfigDefaults.blockCacheBytes / MiB} MiB, bloomBitsPerKey ${storeConfigDefaults.bloomBitsPerKey}, compaction defaults; flush and compaction run on a one-thread piscina pool.`,
    "Each system is loaded with 95% of the keys in a shuffled order, settled, then given the last 5% (which stay in loomkv's memtable); puts overwrite uniformly random loaded keys.",
  ];
  if (results.some((result) => !result.load.gcAvailable)) lines.push("global.gc was not exposed: memory figures include uncollected garbage (run Node with --expose-gc, Deno with --v8-flags=--expose-gc).");
  if (options.profile && !results.some((result) => result.profile.length > 0) && results.some((result) => result.name === SUBJECT)) {
    lines.push("The node:inspector Profiler was unavailable on this runtime: no profile.");
  }
  return lines;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const options = parseOptions(args);
  const log = (line: string) => console.log(line);
  try {
    const started = performance.now();
    log(`workload: ${options.keys.toLocaleString("en-US")} keys, systems ${options.systems.join(", ")}`);
    const workload = createWorkload(options.keys, SEED);
    const suite = { keys: options.keys, taskTimeMs: options.taskTimeMs, log, profileDirectory: options.profileDirectory };
    const results: SystemResult[] = [];
    for (const name of options.systems) results.push(await runSystem(systemSpec(name, options), workload, suite));
    const isDeno = (process.versions as Record<string, string | undefined>)["deno"] !== undefined;
    const command = isDeno ? `deno run -A bench/run.ts ${args.join(" ")}` : `node --expose-gc dist/bench/run.js ${args.join(" ")}`;
    const generated = renderResults({
      date: new Date().toISOString(),
      command: command.trim(),
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
    log(`bench took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    
  }
}

function abort(reason: string, code: number): void {
  console.error(reason);
  removeLiveDirectories();
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
