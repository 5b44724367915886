/**
 * The storage-engine benchmark suite: one workload (16-byte keys, 100-byte values) loaded into one
 * system at a time, then gets of present and absent keys, single puts (awaited and pipelined) and
 * batches of 100, all measured with tinybench in this thread. `bench/run.ts` drives it for loomkv
 * and its peers and writes docs/benchmarks.md; this file knows nothing about the report's layout.
 *
 * Workload. Present keys are "key" + the 13-digit even number 2i (i < keys), absent keys the odd
 * number 2i + 1, so absent keys fall inside every table's key range and only Bloom filters (or
 * the index) can reject them. Values come from a pool of 1024 pseudo-random 100-byte values
 * (incompressible, so Snappy in LevelDB gains nothing). Everything is derived from one seed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bench, type Task } from "tinybench";
import type { BenchPeer, BenchRecord } from "./peers/peer.ts";
import { createPrng } from "../src/io/prng.ts";

export const KEY_BYTES = 16;
export const VALUE_BYTES = 100;
const KEY_PREFIX = [0x6b, 0x65, 0x79] as const; // "key"
const VALUE_POOL_SIZE = 1024;
/** Pre-built random keys cycled through by the measured tasks (a power of two). */
const SAMPLE_KEYS = 1 << 16;
const LOAD_BATCH_RECORDS = 1000;
const LOAD_BATCHES_IN_FLIGHT = 4;
/** Share of the keys written after the settle step, so they stay in the memtable. */
const MEMTABLE_TAIL_FRACTION = 0.05;
export const PIPELINED_PUTS_IN_FLIGHT = 256;
const PIPELINED_PUTS_PER_ITERATION = 2048;
export const BATCH_RECORDS = 100;
export const BATCHES_IN_FLIGHT = 16;
const BATCHES_PER_ITERATION = 64;
export const GETS_PER_ITERATION = 256;

export type MeasurementId = "put-single" | "put-pipelined" | "batch" | "get-present" | "get-absent";

export interface Measurement {
  readonly id: MeasurementId;
  /** Records (puts) or operations (gets) per second, from the mean iteration time. */
  readonly perSecond: number;
  /** tinybench's relative margin of error of the mean iteration time, in percent. */
  readonly rmePercent: number;
  /** Per-operation latency percentiles, in microseconds, where one iteration is one operation. */
  readonly p50Us: number | undefined;
  readonly p99Us: number | undefined;
  readonly iterations: number;
}

export interface MemorySnapshot {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

export interface LoadResult {
  readonly records: number;
  /** Wall time of the writes alone (both phases), in seconds. */
  readonly writeSeconds: number;
  /** Time spent in `settle()` between the phases, in seconds. */
  readonly settleSeconds: number;
  /** Before the system was opened, after gc(). */
  readonly memoryBefore: MemorySnapshot;
  /** Right after opening the empty system (its threads started), after gc(). */
  readonly memoryOpened: MemorySnapshot;
  /** After loading and settling, after gc(). */
  readonly memoryAfter: MemorySnapshot;
  /** Highest rss sampled (every 50 ms) while loading and settling. */
  readonly peakRss: number;
  readonly gcAvailable: boolean;
}

export interface ProfileLine {
  readonly functionName: string;
  readonly location: string;
  /** Share of all sampled time in this function's own code, in percent. */
  readonly selfPercent: number;
}

export interface ProfileResult {
  readonly phase: string;
  /** Share of sampled time the thread was idle (waiting on a timer, fsync done elsewhere, ...). */
  readonly idlePercent: number;
  readonly top: readonly ProfileLine[];
}

export interface SystemResult {
  readonly name: string;
  readonly version: string;
  readonly durability: string;
  readonly readPath: string;
  readonly load: LoadResult;
  readonly measurements: readonly Measurement[];
  readonly factsAfterLoad: Record<string, string | number>;
  readonly factsAtEnd: Record<string, string | number>;
  readonly profile: readonly ProfileResult[];
}

export interface SystemSpec {
  readonly name: string;
  /** Opens the system in `directory`, an empty directory it owns for the run. */
  open(directory: string): Promise<BenchPeer>;
  /** Profile this system's hot paths after measuring it (Node only). */
  readonly profile: boolean;
}

export interface SuiteOptions {
  readonly keys: number;
  /** tinybench time budget per task, in milliseconds. */
  readonly taskTimeMs: number;
  readonly log: (line: string) => void;
  /** Where raw .cpuprofile files of the profiled phases go; none are written when undefined. */
  readonly profileDirectory: string | undefined;
}

// ---- workload -----------------------------------------------------------------------------------

export interface Workload {
  readonly keys: number;
  readonly values: readonly Uint8Array[];
  /** Load order: a permutation of 0..keys-1. */
  readonly loadOrder: Uint32Array;
  /** SAMPLE_KEYS records of uniformly random present keys, each with its own value. */
  readonly presentSample: readonly BenchRecord[];
  /** SAMPLE_KEYS uniformly random absent keys. */
  readonly absentSample: readonly Uint8Array[];
}

/** Reproducible numbers from the project's seeded PRNG (uint32 per call). */
export function seededRandom(seed: number): () => number {
  const random = createPrng(seed >>> 0);
  return () => random.nextU32();
}

/** Writes the 16-byte key "key" + 13-digit zero-padded `keyNumber` into `target` at `offset`. */
export function writeKey(keyNumber: number, target: Uint8Array, offset: number): void {
  target[offset] = KEY_PREFIX[0];
  target[offset + 1] = KEY_PREFIX[1];
  target[offset + 2] = KEY_PREFIX[2];
  let rest = keyNumber;
  for (let position = offset + KEY_BYTES - 1; position >= offset + 3; position--) {
    target[position] = 0x30 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
}

function keyAt(keyNumber: number): Uint8Array {
  const key = new Uint8Array(KEY_BYTES);
  writeKey(keyNumber, key, 0);
  return key;
}

/** The value stored under present key index `index` (the same every time it is written). */
export function valueFor(workload: Workload, index: number): Uint8Array {
  return workload.values[index % VALUE_POOL_SIZE]!;
}

export function createWorkload(keys: number, seed: number): Workload {
  const random = seededRandom(seed);
  const values = Array.from({ length: VALUE_POOL_SIZE }, () => Uint8Array.from({ length: VALUE_BYTES }, () => random() & 0xff));
  const loadOrder = new Uint32Array(keys);
  for (let i = 0; i < keys; i++) loadOrder[i] = i;
  for (let i = keys - 1; i > 0; i--) {
    const j = random() % (i + 1);
    const swap = loadOrder[i]!;
    loadOrder[i] = loadOrder[j]!;
    loadOrder[j] = swap;
  }
  const presentSample: BenchRecord[] = [];
  const absentSample: Uint8Array[] = [];
  for (let i = 0; i < SAMPLE_KEYS; i++) {
    const index = random() % keys;
    presentSample.push({ key: keyAt(2 * index), value: values[index % VALUE_POOL_SIZE]! });
    absentSample.push(keyAt(2 * (random() % keys) + 1));
  }
  return { keys, values, loadOrder, presentSample, absentSample };
}

// ---- memory -------------------------------------------------------------------------------------

function collectGarbage(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") return false;
  gc();
  gc();
  return true;
}

function memorySnapshot(): MemorySnapshot {
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external, arrayBuffers: usage.arrayBuffers };
}

// ---- load ---------------------------------------------------------------------------------------

/** Keeps `depth` calls of `issue` in flight until `count` calls have completed. */
export async function keepInFlight(count: number, depth: number, issue: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await issue(next++);
  };
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < Math.min(depth, count); i++) lanes.push(lane());
  await Promise.all(lanes);
}

/** Writes load-order positions [from, to) in batches of LOAD_BATCH_RECORDS. */
async function loadRange(peer: BenchPeer, workload: Workload, from: number, to: number): Promise<void> {
  const batches = Math.ceil((to - from) / LOAD_BATCH_RECORDS);
  await keepInFlight(batches, LOAD_BATCHES_IN_FLIGHT, (batch) => {
    const start = from + batch * LOAD_BATCH_RECORDS;
    const end = Math.min(to, start + LOAD_BATCH_RECORDS);
    const keyBytes = new Uint8Array((end - start) * KEY_BYTES);
    const records: BenchRecord[] = [];
    for (let position = start; position < end; position++) {
      const index = workload.loadOrder[position]!;
      const offset = (position - start) * KEY_BYTES;
      writeKey(2 * index, keyBytes, offset);
      records.push({ key: keyBytes.subarray(offset, offset + KEY_BYTES), value: valueFor(workload, index) });
    }
    return peer.writeBatch(records);
  });
}

/**
 * Loads every key: the first 95% in load order, then `settle()` (for loomkv: flush and finish
 * compactions), then the last 5%, which stay in loomkv's memtable. Samples rss meanwhile.
 */
export async function loadPeer(
  peer: BenchPeer,
  workload: Workload,
  memory: { readonly before: MemorySnapshot; readonly opened: MemorySnapshot },
): Promise<LoadResult> {
  let peakRss = memory.opened.rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  try {
    const split = Math.floor(workload.keys * (1 - MEMTABLE_TAIL_FRACTION));
    const started = performance.now();
    await loadRange(peer, workload, 0, split);
    const settleStarted = performance.now();
    await peer.settle();
    const settleEnded = performance.now();
    await loadRange(peer, workload, split, workload.keys);
    const ended = performance.now();
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    const gcAvailable = collectGarbage();
    return {
      records: workload.keys,
      writeSeconds: (ended - started - (settleEnded - settleStarted)) / 1000,
      settleSeconds: (settleEnded - settleStarted) / 1000,
      memoryBefore: memory.before,
      memoryOpened: memory.opened,
      memoryAfter: memorySnapshot(),
      peakRss,
      gcAvailable,
    };
  } finally {
    clearInterval(sampler);
  }
}

/** Checks that the system returns what was loaded before anything is measured. */
export function verifyPeer(peer: BenchPeer, workload: Workload): void {
  for (let i = 0; i < 2000; i++) {
    const record = workload.presentSample[i]!;
    const value = peer.get(record.key);
    if (value === undefined || !sameBytes(value, record.value)) {
      throw new Error(`bench failed: ${peer.name} returned ${value === undefined ? "nothing" : "a wrong value"} for a loaded key`);
    }
    if (peer.get(workload.absentSample[i]!) !== undefined) throw new Error(`bench failed: ${peer.name} returned a value for an absent key`);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- measured tasks -----------------------------------------------------------------------------

interface TaskPlan {
  readonly id: MeasurementId;
  /** Operations per iteration of the throughput task. */
  readonly perIteration: number;
  /** Throughput task, then (optionally) a one-operation task for latency percentiles. */
  readonly throughput: () => unknown;
  readonly latency?: () => unknown;
}

function taskPlans(peer: BenchPeer, workload: Workload): TaskPlan[] {
  const mask = SAMPLE_KEYS - 1;
  const present = workload.presentSample;
  const absent = workload.absentSample;
  let cursor = 0;
  const getPresent = (): void => {
    if (peer.get(present[cursor++ & mask]!.key) === undefined) throw new Error(`bench failed: ${peer.name} lost a loaded key`);
  };
  const getAbsent = (): void => {
    if (peer.get(absent[cursor++ & mask]!) !== undefined) throw new Error(`bench failed: ${peer.name} found an absent key`);
  };
  const repeat = (body: () => void) => () => {
    for (let i = 0; i < GETS_PER_ITERATION; i++) body();
  };
  const putOne = (): Promise<void> => {
    const record = present[cursor++ & mask]!;
    return peer.put(record.key, record.value);
  };
  let batchStart = 0;
  const batchOne = (): Promise<void> => {
    batchStart = (batchStart + BATCH_RECORDS) % (SAMPLE_KEYS - BATCH_RECORDS);
    return peer.writeBatch(present.slice(batchStart, batchStart + BATCH_RECORDS));
  };
  return [
    { id: "get-present", perIteration: GETS_PER_ITERATION, throughput: repeat(getPresent), latency: getPresent },
    { id: "get-absent", perIteration: GETS_PER_ITERATION, throughput: repeat(getAbsent), latency: getAbsent },
    { id: "put-single", perIteration: 1, throughput: putOne },
    {
      id: "put-pipelined",
      perIteration: PIPELINED_PUTS_PER_ITERATION,
      throughput: () => keepInFlight(PIPELINED_PUTS_PER_ITERATION, PIPELINED_PUTS_IN_FLIGHT, putOne),
    },
    { id: "batch", perIteration: BATCH_RECORDS * BATCHES_PER_ITERATION, throughput: () => keepInFlight(BATCHES_PER_ITERATION, BATCHES_IN_FLIGHT, batchOne) },
  ];
}

function completed(task: Task): { latencyMs: { mean: number; p50: number; p99: number }; rme: number; runs: number } {
  const result = task.result;
  if (result.state !== "completed") {
    const detail = result.state === "errored" ? `: ${result.error.message}` : "";
    throw new Error(`bench failed: task "${task.name}" ended ${result.state}${detail}`);
  }
  return { latencyMs: result.latency, rme: result.latency.rme, runs: task.runs };
}

/**
 * Runs every task for `peer` with tinybench and converts the results to per-second figures. With
 * `profile`, each task is also run for another `taskTimeMs` under the CPU profiler right after its
 * measurement, so the profile sees the data in the state the figure was measured in.
 */
export async function measurePeer(
  peer: BenchPeer,
  workload: Workload,
  options: SuiteOptions,
  profile: boolean,
): Promise<{ measurements: Measurement[]; profiles: ProfileResult[] }> {
  const measurements: Measurement[] = [];
  const profiles: ProfileResult[] = [];
  for (const plan of taskPlans(peer, workload)) {
    measurements.push(await measurePlan(peer, plan, options));
    if (!profile || plan.id === "put-single") continue;
    const result = await profilePlan(peer, plan, options);
    if (result) profiles.push(result);
  }
  return { measurements, profiles };
}

async function measurePlan(peer: BenchPeer, plan: TaskPlan, options: SuiteOptions): Promise<Measurement> {
  const bench = new Bench({ time: options.taskTimeMs, warmupTime: Math.min(250, options.taskTimeMs / 4), iterations: 16, throws: true });
  bench.add(`${plan.id} throughput`, plan.throughput);
  if (plan.latency) bench.add(`${plan.id} latency`, plan.latency);
  await bench.run();
  const [throughputTask, latencyTask] = bench.tasks;
  const throughput = completed(throughputTask!);
  const latency = latencyTask ? completed(latencyTask) : plan.perIteration === 1 ? throughput : undefined;
  const measurement: Measurement = {
    id: plan.id,
    perSecond: (plan.perIteration * 1000) / throughput.latencyMs.mean,
    rmePercent: throughput.rme,
    p50Us: latency ? latency.latencyMs.p50 * 1000 : undefined,
    p99Us: latency ? latency.latencyMs.p99 * 1000 : undefined,
    iterations: throughput.runs,
  };
  options.log(`  ${peer.name} ${plan.id}: ${Math.round(measurement.perSecond).toLocaleString("en-US")}/s ±${measurement.rmePercent.toFixed(1)}%`);
  return measurement;
}

// ---- profile ------------------------------------------------------------------------------------

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[] | undefined;
  readonly timeDeltas?: readonly number[] | undefined;
}

/** Self time per function (name + file:line), largest first, from a V8 CPU profile. */
export function selfTimes(profile: CpuProfile, top: number): { idlePercent: number; top: ProfileLine[] } {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const totals = new Map<string, { functionName: string; location: string; micros: number }>();
  let all = 0;
  let idle = 0;
  for (let i = 0; i < samples.length; i++) {
    const frame = byNode.get(samples[i]!)?.callFrame;
    const micros = Math.max(0, deltas[i + 1] ?? deltas[i] ?? 0);
    if (!frame) continue;
    all += micros;
    if (frame.functionName === "(idle)") {
      idle += micros;
      continue;
    }
    const location = frameLocation(frame.url, frame.lineNumber);
    const name = frame.functionName || "(anonymous)";
    const key = `${name}@${location}`;
    const entry = totals.get(key) ?? { functionName: name, location, micros: 0 };
    entry.micros += micros;
    totals.set(key, entry);
  }
  const lines = [...totals.values()]
    .sort((a, b) => b.micros - a.micros)
    .slice(0, top)
    .map((entry) => ({ functionName: entry.functionName, location: entry.location, selfPercent: all === 0 ? 0 : (100 * entry.micros) / all }));
  return { idlePercent: all === 0 ? 0 : (100 * idle) / all, top: lines };
}

/**
 * "storage/memtable.ts" for compiled loomkv code (dist line numbers would not match the sources),
 * "dir/file.js:line" for other scripts, "native" for V8 and C++ frames.
 */
function frameLocation(url: string, lineNumber: number): string {
  if (url === "") return "native";
  const file = url.replace(/^.*\/(?=[^/]*\/[^/]*$)/, "");
  if (/\/dist\/(src|bench)\//.test(url)) return file.replace(/\.js$/, ".ts");
  return `${file}:${lineNumber + 1}`;
}

/**
 * Samples this thread's CPU profile while `body` runs, via node:inspector. Returns undefined where
 * the inspector's Profiler is unavailable (Deno). Worker threads (flush, compaction) are not seen.
 */
export async function profilePhase(phase: string, body: () => Promise<void> | void, saveTo?: string): Promise<ProfileResult | undefined> {
  let inspector: typeof import("node:inspector/promises");
  try {
    inspector = await import("node:inspector/promises");
  } catch {
    return undefined;
  }
  const session = new inspector.Session();
  try {
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 50 });
    await session.post("Profiler.start");
    await body();
    const { profile } = await session.post("Profiler.stop");
    if (saveTo !== undefined) writeFileSync(saveTo, JSON.stringify(profile));
    return { phase, ...selfTimes(profile, 5) };
  } catch {
    return undefined;
  } finally {
    session.disconnect();
  }
}

/** Runs `plan` for `taskTimeMs` under the profiler; saves the raw profile when a directory is set. */
async function profilePlan(peer: BenchPeer, plan: TaskPlan, options: SuiteOptions): Promise<ProfileResult | undefined> {
  const directory = options.profileDirectory;
  if (directory !== undefined) mkdirSync(directory, { recursive: true });
  const saveTo = directory === undefined ? undefined : join(directory, `${peer.name}-${plan.id}.cpuprofile`);
  return profilePhase(
    plan.id,
    async () => {
      const until = performance.now() + options.taskTimeMs;
      while (performance.now() < until) await plan.throughput();
    },
    saveTo,
  );
}

// ---- one system ---------------------------------------------------------------------------------

/** Temp directories of systems being measured; `removeLiveDirectories` cleans up after a signal. */
const liveDirectories = new Set<string>();

export function removeLiveDirectories(): void {
  for (const directory of liveDirectories) rmSync(directory, { recursive: true, force: true });
  liveDirectories.clear();
}

/** Opens, loads, verifies, measures, profiles and closes one system in its own temp directory. */
export async function runSystem(spec: SystemSpec, workload: Workload, options: SuiteOptions): Promise<SystemResult> {
  const directory = mkdtempSync(join(tmpdir(), `loomkv-bench-${spec.name}-`));
  liveDirectories.add(directory);
  try {
    collectGarbage();
    const memoryBefore = memorySnapshot();
    const peer = await spec.open(directory);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500)); // let worker threads (piscina) start
      collectGarbage();
      const memoryOpened = memorySnapshot();
      options.log(`${spec.name}: loading ${workload.keys.toLocaleString("en-US")} keys in ${directory}`);
      const load = await loadPeer(peer, workload, { before: memoryBefore, opened: memoryOpened });
      options.log(`  load: ${Math.round(load.records / load.writeSeconds).toLocaleString("en-US")} records/s, settle ${load.settleSeconds.toFixed(2)} s`);
      verifyPeer(peer, workload);
      const factsAfterLoad = peer.describe();
      options.log(`  after load: ${JSON.stringify(factsAfterLoad)}`);
      const { measurements, profiles: profile } = await measurePeer(peer, workload, options, spec.profile);
      const factsAtEnd = peer.describe();
      const { name, version, durability, readPath } = peer;
      return { name, version, durability, readPath, load, measurements, factsAfterLoad, factsAtEnd, profile };
    } finally {
      await peer.close();
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
    liveDirectories.delete(directory);
  }
}
