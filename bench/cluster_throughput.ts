/**
 * The transport work's yardstick, run by hand: quorum throughput of a 3-node cluster
 * (n 3, w 2, r 2, fsync "batch") driven from the main thread.
 *   Node: npx tsc -p . && node dist/bench/cluster_throughput.js [options]
 *   Deno: npx deno run -A bench/cluster_throughput.ts [options]
 * Options:
 *   --ops N        puts, then gets of the same keys, per round (default 100000)
 *   --inflight N   requests kept in flight (default 512)
 *   --rounds N     rounds on one cluster; each prints a line (default 3)
 *   --value N      value bytes (default 100)
 *   --latency N    sequential gets timed one at a time after the rounds (default 2000)
 *   --gets-only    write the keys once, untimed, then time only gets (to profile the read path)
 *   --puts-only    time only puts (to profile the write path)
 *   --fsync P      the nodes' commit-log fsync policy: batch (default), always or never
 *   --profile DIR  (Node) rerun this script under --cpu-prof on every thread, profiles in DIR,
 *                  then print the top self-time functions of each thread
 * Prints one line per round: puts/s and gets/s, each with the CPU time of the whole process (all
 * threads) per operation; then the single-get median and p99 in microseconds.
 * The machine is shared: compare figures from one run, or repeat and take the range.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createCluster, type Cluster } from "../src/index.ts";
import type { FsyncPolicy } from "../src/storage/store_config.ts";
import type { TransportStats } from "../src/transport/transport.ts";

interface Options {
  readonly ops: number;
  readonly inflight: number;
  readonly rounds: number;
  readonly valueBytes: number;
  readonly latencyGets: number;
  readonly profileDir: string | undefined;
  readonly phases: { readonly puts: boolean; readonly gets: boolean };
  readonly fsync: FsyncPolicy;
}

function parseOptions(argv: readonly string[]): Options {
  const value = (name: string): string | undefined => {
    const index = argv.indexOf(`--${name}`);
    return index === -1 ? undefined : argv[index + 1];
  };
  const integer = (name: string, fallback: number): number => {
    const text = value(name);
    const parsed = text === undefined ? fallback : Number(text);
    if (!Number.isSafeInteger(parsed) || parsed < 0) throw new RangeError(`cluster throughput failed: --${name} is ${text}, must be a non-negative integer`);
    return parsed;
  };
  return {
    ops: integer("ops", 100_000),
    inflight: integer("inflight", 512),
    rounds: integer("rounds", 3),
    valueBytes: integer("value", 100),
    latencyGets: integer("latency", 2000),
    profileDir: value("profile"),
    phases: { puts: !argv.includes("--gets-only"), gets: !argv.includes("--puts-only") },
    fsync: (value("fsync") ?? "batch") as FsyncPolicy,
  };
}

interface LoopResult {
  /** Operations per wall-clock second. */
  readonly perSecond: number;
  /** CPU time of the whole process (every thread, user + system) per operation, in microseconds. */
  readonly cpuMicrosPerOp: number;
}

/**
 * Runs `operation(i)` for i in 0..count-1 with `inflight` outstanding. CPU per operation is the
 * steadier figure on a shared machine: other processes stretch wall time, not this process's CPU.
 */
async function closedLoop(count: number, inflight: number, operation: (index: number) => Promise<unknown>): Promise<LoopResult> {
  let next = 0;
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const lane = async (): Promise<void> => {
    while (next < count) await operation(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inflight, count) }, lane));
  const cpu = process.cpuUsage(cpuStarted);
  return { perSecond: count / ((performance.now() - started) / 1000), cpuMicrosPerOp: (cpu.user + cpu.system) / count };
}

function keyOf(index: number): string {
  return `key-${index.toString().padStart(10, "0")}`;
}

async function measure(options: Options): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "loomkv-throughput-"));
  let cluster: Cluster | undefined;
  try {
    cluster = await createCluster({ dataDir, nodes: 3, n: 3, w: 2, r: 2, fsync: options.fsync });
    const value = new Uint8Array(options.valueBytes).fill(120);
    const live = cluster;
    for (let round = 1; round <= options.rounds; round++) {
      const offset = (round - 1) * options.ops;
      const put = (i: number) => live.put(keyOf(offset + i), value);
      const puts = options.phases.puts ? await closedLoop(options.ops, options.inflight, put) : undefined;
      if (puts === undefined && round === 1) await closedLoop(options.ops * options.rounds, options.inflight, put);
      const gets = options.phases.gets
        ? await closedLoop(options.ops, options.inflight, async (i) => {
            const result = await live.get(keyOf(offset + i));
            if (result.values.length !== 1) throw new Error(`cluster throughput: ${keyOf(offset + i)} has ${result.values.length} values`);
          })
        : undefined;
      const line = (name: string, result: LoopResult | undefined) =>
        result === undefined ? "" : `${Math.round(result.perSecond)} ${name}/s (${result.cpuMicrosPerOp.toFixed(1)} cpu us/op) `;
      console.log(`round ${round}: ${line("puts", puts)}${line("gets", gets)}(${options.ops} ops, ${options.inflight} in flight)`);
    }
    for (const node of (await live.stats()).nodes) {
      const transport = (node as { transport?: TransportStats }).transport;
      if (transport === undefined) continue;
      console.log(
        `node ${node.nodeId} transport: ${transport.batchesSent} posts, ${transport.averageBatchSize.toFixed(1)} messages per post, ` +
          `${transport.messagesCloned} cloned, ${transport.framesMalformed} malformed frames`,
      );
    }
    const samples: number[] = [];
    for (let i = 0; i < options.latencyGets; i++) {
      const started = performance.now();
      await live.get(keyOf(i % options.ops));
      samples.push((performance.now() - started) * 1000);
    }
    samples.sort((a, b) => a - b);
    const at = (quantile: number) => Math.round(samples[Math.min(samples.length - 1, Math.floor(quantile * samples.length))] ?? 0);
    if (samples.length > 0) console.log(`single get: median ${at(0.5)} us, p99 ${at(0.99)} us (${samples.length} sequential gets)`);
  } finally {
    await cluster?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---- profile mode (Node) -------------------------------------------------------------------

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

/** Self-time shares of the hottest functions in one .cpuprofile. */
function summarize(path: string, top: number): string[] {
  const profile = JSON.parse(readFileSync(path, "utf8")) as { nodes: ProfileNode[]; samples: number[] };
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((node) => [node.id, node]));
  const hits = new Map<string, number>();
  for (const sample of profile.samples) {
    const frame = byNode.get(sample)?.callFrame;
    if (frame === undefined) continue;
    const file = frame.url.split("/").slice(-2).join("/");
    const name = `${frame.functionName || "(anonymous)"} ${file}${file ? `:${frame.lineNumber + 1}` : ""}`;
    hits.set(name, (hits.get(name) ?? 0) + 1);
  }
  const total = profile.samples.length;
  // A piscina pool thread parked in Atomics.wait shows as atomicsWaitLoop: idle too.
  let idle = 0;
  for (const [name, count] of hits) if (name.startsWith("(idle)") || name.startsWith("atomicsWaitLoop")) idle += count;
  const lines = [`${path.split("/").pop()}: ${total} samples, ${Math.round((100 * (total - idle)) / Math.max(1, total))}% busy`];
  for (const [name, count] of [...hits].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${((100 * count) / Math.max(1, total)).toFixed(1).padStart(5)}%  ${name}`);
  }
  return lines;
}

function profile(directory: string): void {
  const script = fileURLToPath(import.meta.url);
  const args = process.argv.slice(2).filter((arg, index, all) => arg !== "--profile" && all[index - 1] !== "--profile");
  rmSync(directory, { recursive: true, force: true });
  const run = spawnSync(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${directory}`, script, ...args], { stdio: "inherit" });
  if (run.status !== 0) throw new Error(`cluster throughput: profiled run exited with ${run.status}`);
  for (const file of readdirSync(directory).filter((name) => name.endsWith(".cpuprofile")).sort()) {
    console.log(summarize(join(directory, file), 25).join("\n"));
  }
}

const options = parseOptions(process.argv.slice(2));
if (options.profileDir !== undefined) profile(options.profileDir);
else await measure(options);
