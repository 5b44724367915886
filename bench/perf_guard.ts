/**
 * The CPU guard: CPU time per operation, summed over every thread of the process
 * (process.cpuUsage()), for quorum puts and gets on 3 nodes (N=3 W=2 R=2) and on 1 node (N=1), at
 * default settings, compared with bench/baseline.json. Not part of `npm test`.
 *
 *   npm run perf:guard                               (= tsc -p . && node dist/bench/perf_guard.js)
 *   node dist/bench/perf_guard.js --baseline-runs 5  (five guard runs; writes their median as the baseline)
 *
 * Each round runs, one after the other, puts then gets on the 3-node cluster, then puts then gets on
 * the 1-node cluster (both open for the whole run, so drift of the machine reaches every figure
 * alike). A phase's window opens before its first request and closes once every store is idle
 * again: the flushes and compactions the phase caused are part of its cost. A phase writes fresh
 * keys (16 bytes, 100-byte values, 512 requests in flight); gets read the keys the round just
 * wrote. The first round warms the code up and is not counted.
 *
 * Per figure it prints the median of the rounds, its spread (the median absolute deviation over the
 * median) and its ratio to the baseline; it exits 1 when a median exceeds its baseline by more than
 * max(15%, 3 x its own spread). The baseline changes only in a commit of its own that says why, and
 * never gets looser to let a change through.
 *
 * Flags: --rounds N (counted rounds, default 7), --ops N (requests per phase, default 20000),
 * --in-flight N (default 512), --baseline-runs N (write the baseline from N runs), --json (print the
 * figures as one JSON line too).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createCluster, type Cluster, type CreateClusterOptions } from "../src/index.ts";
import { median, untilIdle } from "./cluster_figures.ts";

const FIGURES = ["put, 3 nodes", "get, 3 nodes", "put, 1 node", "get, 1 node"] as const;
type Figure = (typeof FIGURES)[number];

interface Options {
  readonly rounds: number;
  readonly ops: number;
  readonly inFlight: number;
  readonly baselineRuns: number;
  readonly json: boolean;
}

interface Baseline {
  readonly note: string;
  readonly recorded: string;
  /** CPU microseconds per operation, by figure. */
  readonly cpuMicrosPerOp: Record<Figure, number>;
}

interface FigureResult {
  readonly median: number;
  /** Median absolute deviation over the median (0.03 = 3%). */
  readonly spread: number;
  readonly samples: readonly number[];
  readonly opsPerSecond: number;
}

const BASELINE_PATH = new URL(import.meta.url.endsWith(".ts") ? "./baseline.json" : "../../bench/baseline.json", import.meta.url);
const VALUE = new Uint8Array(100).fill(0x61);

function parseOptions(argv: readonly string[]): Options {
  const integer = (name: string, fallback: number, min: number): number => {
    const index = argv.indexOf(`--${name}`);
    if (index === -1) return fallback;
    const parsed = Number(argv[index + 1]);
    if (!Number.isSafeInteger(parsed) || parsed < min) throw new RangeError(`perf guard failed: --${name} is ${argv[index + 1]}, must be an integer of at least ${min}`);
    return parsed;
  };
  return {
    rounds: integer("rounds", 7, 1),
    ops: integer("ops", 20_000, 100),
    inFlight: integer("in-flight", 512, 1),
    baselineRuns: integer("baseline-runs", 0, 0),
    json: argv.includes("--json"),
  };
}

/** 16 bytes: a letter for the cluster, a round-unique number. */
function keyOf(tag: string, index: number): string {
  return `${tag}${index.toString().padStart(15, "0")}`;
}

/** Runs `operation(i)` for i in 0..count-1 with `inFlight` outstanding; CPU per op until the stores are idle. */
async function phase(cluster: Cluster, count: number, inFlight: number, operation: (index: number) => Promise<unknown>): Promise<{ cpuMicrosPerOp: number; opsPerSecond: number }> {
  let next = 0;
  const cpuStarted = process.cpuUsage();
  const started = performance.now();
  const lane = async (): Promise<void> => {
    while (next < count) await operation(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  const opsPerSecond = count / ((performance.now() - started) / 1000);
  await untilIdle(cluster);
  const cpu = process.cpuUsage(cpuStarted);
  return { cpuMicrosPerOp: (cpu.user + cpu.system) / count, opsPerSecond };
}

interface Arm {
  readonly tag: string;
  readonly cluster: Cluster;
  readonly put: Figure;
  readonly get: Figure;
}

async function round(arms: readonly Arm[], ops: number, inFlight: number, roundIndex: number, record: (figure: Figure, result: { cpuMicrosPerOp: number; opsPerSecond: number }) => void): Promise<void> {
  for (const arm of arms) {
    const offset = roundIndex * ops;
    const puts = await phase(arm.cluster, ops, inFlight, (i) => arm.cluster.put(keyOf(arm.tag, offset + i), VALUE));
    const gets = await phase(arm.cluster, ops, inFlight, async (i) => {
      const { values } = await arm.cluster.get(keyOf(arm.tag, offset + i));
      if (values.length !== 1) throw new Error(`perf guard: ${keyOf(arm.tag, offset + i)} read ${values.length} values, wrote 1`);
    });
    record(arm.put, puts);
    record(arm.get, gets);
  }
}

function summarize(samples: readonly number[], rates: readonly number[]): FigureResult {
  const mid = median(samples);
  const deviation = median(samples.map((value) => Math.abs(value - mid)));
  return { median: mid, spread: mid === 0 ? 0 : deviation / mid, samples, opsPerSecond: median(rates) };
}

/** One guard run: both clusters, a warm-up round, `rounds` counted rounds. */
async function runGuard(options: Options): Promise<Record<Figure, FigureResult>> {
  const directories: string[] = [];
  const open = (settings: CreateClusterOptions) => {
    const dataDir = mkdtempSync(join(tmpdir(), "loomkv-perf-guard-"));
    directories.push(dataDir);
    return createCluster({ ...settings, dataDir });
  };
  const clusters: Cluster[] = [];
  try {
    clusters.push(await open({ nodes: 3, n: 3, w: 2, r: 2 }));
    clusters.push(await open({ nodes: 1, n: 1, w: 1, r: 1 }));
    const arms: Arm[] = [
      { tag: "a", cluster: clusters[0]!, put: "put, 3 nodes", get: "get, 3 nodes" },
      { tag: "b", cluster: clusters[1]!, put: "put, 1 node", get: "get, 1 node" },
    ];
    await round(arms, Math.ceil(options.ops / 2), options.inFlight, 1_000_000, () => {}); // warm-up
    const samples = new Map<Figure, { cpu: number[]; rate: number[] }>(FIGURES.map((figure) => [figure, { cpu: [], rate: [] }]));
    for (let index = 0; index < options.rounds; index++) {
      await round(arms, options.ops, options.inFlight, index, (figure, result) => {
        samples.get(figure)!.cpu.push(result.cpuMicrosPerOp);
        samples.get(figure)!.rate.push(result.opsPerSecond);
      });
    }
    return Object.fromEntries(FIGURES.map((figure) => [figure, summarize(samples.get(figure)!.cpu, samples.get(figure)!.rate)])) as Record<Figure, FigureResult>;
  } finally {
    await Promise.allSettled(clusters.map((cluster) => cluster.close()));
    for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  }
}

function readBaseline(): Baseline | undefined {
  try {
    return JSON.parse(readFileSync(BASELINE_PATH, "utf8")) as Baseline;
  } catch {
    return undefined;
  }
}

function report(results: Record<Figure, FigureResult>, baseline: Baseline | undefined): boolean {
  let passed = true;
  for (const figure of FIGURES) {
    const result = results[figure];
    const base = baseline?.cpuMicrosPerOp[figure];
    const allowed = Math.max(0.15, 3 * result.spread);
    const ratio = base === undefined ? undefined : result.median / base;
    const verdict = ratio === undefined ? "no baseline" : ratio > 1 + allowed ? `FAILED (allowed up to ${(1 + allowed).toFixed(2)})` : "ok";
    if (ratio !== undefined && ratio > 1 + allowed) passed = false;
    console.log(
      `${figure.padEnd(13)} ${result.median.toFixed(1).padStart(7)} us/op cpu  spread ${(100 * result.spread).toFixed(1).padStart(4)}%  ` +
        `${Math.round(result.opsPerSecond).toString().padStart(6)} ops/s  ` +
        `baseline ${base === undefined ? "-" : base.toFixed(1)}  ratio ${ratio === undefined ? "-" : ratio.toFixed(2)}  ${verdict}`,
    );
  }
  return passed;
}

async function writeBaseline(options: Options): Promise<void> {
  const runs: Record<Figure, FigureResult>[] = [];
  for (let run = 1; run <= options.baselineRuns; run++) {
    console.log(`baseline run ${run} of ${options.baselineRuns}`);
    const results = await runGuard(options);
    report(results, undefined);
    runs.push(results);
  }
  const cpuMicrosPerOp = Object.fromEntries(FIGURES.map((figure) => [figure, Number(median(runs.map((results) => results[figure].median)).toFixed(1))])) as Record<Figure, number>;
  const baseline: Baseline = {
    note: `median of ${options.baselineRuns} runs of the guard (${options.rounds} rounds of ${options.ops} operations, ${options.inFlight} in flight); CPU microseconds per operation over all threads`,
    recorded: new Date().toISOString().slice(0, 10),
    cpuMicrosPerOp,
  };
  writeFileSync(BASELINE_PATH, `${JSON.stringify(baseline, null, 2)}\n`);
  console.log(`wrote ${BASELINE_PATH.pathname}: ${JSON.stringify(cpuMicrosPerOp)}`);
}

const options = parseOptions(process.argv.slice(2));
if (options.baselineRuns > 0) {
  await writeBaseline(options);
} else {
  const started = performance.now();
  const results = await runGuard(options);
  const baseline = readBaseline();
  console.log(`perf guard: ${options.rounds} rounds of ${options.ops} operations per phase, ${options.inFlight} in flight, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const passed = report(results, baseline);
  if (options.json) console.log(JSON.stringify(Object.fromEntries(FIGURES.map((figure) => [figure, results[figure].median]))));
  if (baseline === undefined) console.log("perf guard: no bench/baseline.json: write one with --baseline-runs 5");
  console.log(passed ? "perf guard: passed" : "perf guard: FAILED: a median exceeds its baseline by more than max(15%, 3x its spread)");
  process.exitCode = passed ? 0 : 1;
}
