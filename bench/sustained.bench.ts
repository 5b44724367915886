/**
 * The sustained suite: a 3-node cluster (N=3 W=2 R=2, defaults otherwise) preloaded with `keys`
 * keys of 100-byte values, then `seconds` of 50% puts and 50% gets over those keys, uniformly,
 * with `inFlight` requests in flight. Cut into windows of `windowSeconds`, it records each window's
 * completed operations, put and get latency (perf_hooks histograms, microseconds), errors and the
 * tables held over all nodes. The headline is the last 15 seconds' throughput over the first 15
 * seconds': it falls when reads and writes cost more as tables accumulate.
 *
 * Puts carry the context of the client's last completed write of the key (write_contexts.ts), as
 * a Dynamo client does, unless `writes` is "blind": blind puts of an existing key are kept as
 * siblings, so with blind writes every key gains a sibling per write and every read and write of
 * it costs more as the run goes on (a measure of sibling growth, not of tables).
 */
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";
import process from "node:process";
import { createCluster } from "../src/index.ts";
import { createPrng } from "../src/io/prng.ts";
import { temporaryDirectory } from "./temp_directories.ts";
import { WriteContexts } from "./write_contexts.ts";

export interface SustainedOptions {
  readonly keys: number;
  readonly seconds: number;
  readonly inFlight: number;
  readonly windowSeconds: number;
  readonly seed: number;
  /** Puts with the client's last write context of the key (default), or blind puts. */
  readonly writes?: "context" | "blind";
  readonly log: (line: string) => void;
}

export interface SustainedWindow {
  /** Seconds since the timed run started, at the window's end. */
  readonly endSeconds: number;
  readonly opsPerSecond: number;
  readonly putP50Ms: number;
  readonly putP99Ms: number;
  readonly getP99Ms: number;
  readonly errors: number;
  /** Tables over all nodes at the window's end. */
  readonly tables: number;
}

export interface SustainedResult {
  readonly options: Omit<SustainedOptions, "log">;
  readonly windows: readonly SustainedWindow[];
  readonly operations: number;
  readonly errors: number;
  /** CPU microseconds per operation over the whole timed run, all threads. */
  readonly cpuMicrosPerOp: number;
  readonly firstOpsPerSecond: number;
  readonly lastOpsPerSecond: number;
  readonly preloadSeconds: number;
  /** Gets that returned more than one value; the most values one get returned. */
  readonly readsWithSiblings: number;
  readonly siblingsMax: number;
}

const EDGE_SECONDS = 15;

function key(index: number): string {
  return `user${String(index).padStart(12, "0")}`; // 16 bytes
}

function newHistogram(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
}

export async function runSustainedSuite(options: SustainedOptions): Promise<SustainedResult> {
  const { directory, cleanup } = temporaryDirectory("sustained");
  const cluster = await createCluster({ nodes: 3, n: 3, w: 2, r: 2, dataDir: directory });
  try {
    const value = new Uint8Array(100).fill(0x76);
    const preloadStarted = performance.now();
    const blind = options.writes === "blind";
    const contexts = new WriteContexts(cluster, options.keys);
    const put = (index: number) => (blind ? cluster.put(key(index), value) : contexts.put(index, key(index), value));
    let next = 0;
    await Promise.all(Array.from({ length: 512 }, async () => {
      while (next < options.keys) await put(next++);
    }));
    const preloadSeconds = (performance.now() - preloadStarted) / 1000;
    options.log(`sustained: ${options.keys.toLocaleString("en-US")} keys loaded in ${preloadSeconds.toFixed(1)} s`);

    const prng = createPrng(options.seed);
    let puts = newHistogram();
    let gets = newHistogram();
    let done = 0;
    let errors = 0;
    let windowErrors = 0;
    let readsWithSiblings = 0;
    let siblingsMax = 0;
    const windows: SustainedWindow[] = [];
    const started = performance.now();
    const endAt = started + options.seconds * 1000;
    const cpuBefore = process.cpuUsage();
    let windowStart = started;
    let windowDone = 0;
    let stopped = false;
    const windowTimer = setInterval(() => void closeWindow(), options.windowSeconds * 1000);
    let closing = Promise.resolve();
    const closeWindow = () => {
      const now = performance.now();
      const ops = done - windowDone;
      const put = puts;
      const get = gets;
      const errs = windowErrors;
      puts = newHistogram();
      gets = newHistogram();
      windowErrors = 0;
      windowDone = done;
      const seconds = (now - windowStart) / 1000;
      windowStart = now;
      closing = closing.then(async () => {
        const stats = await cluster.stats();
        const tables = stats.nodes.reduce((sum, node) => sum + (node.store?.tables ?? 0), 0);
        const window: SustainedWindow = {
          endSeconds: Math.round((now - started) / 100) / 10,
          opsPerSecond: ops / seconds,
          putP50Ms: put.count > 0 ? put.percentile(50) / 1000 : 0,
          putP99Ms: put.count > 0 ? put.percentile(99) / 1000 : 0,
          getP99Ms: get.count > 0 ? get.percentile(99) / 1000 : 0,
          errors: errs,
          tables,
        };
        windows.push(window);
        options.log(`  ${window.endSeconds.toFixed(0).padStart(4)} s  ${Math.round(window.opsPerSecond).toString().padStart(6)} ops/s  put p99 ${window.putP99Ms.toFixed(1)} ms  get p99 ${window.getP99Ms.toFixed(1)} ms  tables ${tables}  errors ${errs}`);
      });
    };
    await Promise.all(Array.from({ length: options.inFlight }, async () => {
      while (!stopped) {
        if (performance.now() >= endAt) {
          stopped = true;
          break;
        }
        const index = prng.nextInt(options.keys);
        const isPut = prng.chance(0.5);
        const t0 = performance.now();
        try {
          if (isPut) await put(index);
          else {
            const { values } = await cluster.get(key(index));
            if (values.length > 1) readsWithSiblings++;
            if (values.length > siblingsMax) siblingsMax = values.length;
          }
          const micros = Math.max(1, Math.round((performance.now() - t0) * 1000));
          (isPut ? puts : gets).record(micros);
        } catch {
          errors++;
          windowErrors++;
        }
        done++;
      }
    }));
    clearInterval(windowTimer);
    const cpu = process.cpuUsage(cpuBefore);
    // The tail after the last whole window counts only if it is a window's worth, give or take.
    if (performance.now() - windowStart >= options.windowSeconds * 500) closeWindow();
    await closing;
    const edge = (from: readonly SustainedWindow[]) => {
      const take = Math.max(1, Math.round(EDGE_SECONDS / options.windowSeconds));
      const chosen = from.slice(0, take);
      return chosen.reduce((sum, w) => sum + w.opsPerSecond, 0) / chosen.length;
    };
    const full = windows;
    return {
      options: { keys: options.keys, seconds: options.seconds, inFlight: options.inFlight, windowSeconds: options.windowSeconds, seed: options.seed, writes: blind ? "blind" : "context" },
      windows,
      operations: done,
      errors,
      cpuMicrosPerOp: (cpu.user + cpu.system) / Math.max(1, done),
      firstOpsPerSecond: edge(full),
      lastOpsPerSecond: edge([...full].reverse()),
      preloadSeconds,
      readsWithSiblings,
      siblingsMax,
    };
  } finally {
    await cluster.close();
    cleanup();
  }
}

export const SUSTAINED_BEGIN = "<!-- BEGIN GENERATED sustained by bench/run.ts --suite sustained: everything up to the END marker is rewritten on each run -->";
export const SUSTAINED_END = "<!-- END GENERATED sustained -->";

export const sustainedSection = {
  begin: SUSTAINED_BEGIN,
  end: SUSTAINED_END,
  intro: () => "# Sustained load (throughput, put p99 and tables over time)\n\nGenerated by `npm run bench -- --suite sustained`; see bench/sustained.bench.ts.\n\n",
};

export function renderSustainedResults(result: SustainedResult, context: { date: string; command: string; machine: string; load: string; chart: string }): string {
  const { options } = result;
  const ratio = result.lastOpsPerSecond / result.firstOpsPerSecond;
  const worstPutP99 = Math.max(...result.windows.map((w) => w.putP99Ms));
  return [
    `## Sustained results of ${context.date}`,
    "",
    `Machine: ${context.machine}. ${context.load} Command: \`${context.command}\`.`,
    `3 nodes, N=3 W=2 R=2, fsync batch, defaults otherwise; ${options.keys.toLocaleString("en-US")} keys of 16 bytes with 100-byte values preloaded in ${result.preloadSeconds.toFixed(1)} s; then ${options.seconds} s of 50% puts / 50% gets, keys uniform, ${options.inFlight} in flight; windows of ${options.windowSeconds} s; ${options.writes === "blind" ? "blind puts (no context: each adds a sibling)" : "each put carries the context of the client's last completed write of the key"}.`,
    "",
    `- **last ${EDGE_SECONDS} s over first ${EDGE_SECONDS} s: ${ratio.toFixed(2)}x** (${Math.round(result.lastOpsPerSecond)} against ${Math.round(result.firstOpsPerSecond)} ops/s)`,
    `- gets that returned siblings: ${result.readsWithSiblings.toLocaleString("en-US")}; the most values one get returned: ${result.siblingsMax}`,
    `- worst put p99 of a window: ${worstPutP99.toFixed(1)} ms`,
    `- ${result.operations.toLocaleString("en-US")} operations, ${result.errors} errors, ${result.cpuMicrosPerOp.toFixed(1)} µs of CPU per operation (all threads)`,
    "",
    `![throughput, put p99 and tables over time](${context.chart})`,
    "",
    "| end s | ops/s | put p50 ms | put p99 ms | get p99 ms | tables | errors |",
    "|---|---|---|---|---|---|---|",
    ...result.windows.map((w) => `| ${w.endSeconds.toFixed(0)} | ${Math.round(w.opsPerSecond)} | ${w.putP50Ms.toFixed(2)} | ${w.putP99Ms.toFixed(1)} | ${w.getP99Ms.toFixed(1)} | ${w.tables} | ${w.errors} |`),
  ].join("\n");
}

/** Three stacked line plots over time (ops/s, put p99, tables) as a hand-written SVG. Pure. */
export function renderSustainedChart(result: SustainedResult, title: string): string {
  const width = 820;
  const panelHeight = 150;
  const margin = { left: 70, right: 16, top: 40, gap: 34 };
  const height = margin.top + 3 * (panelHeight + margin.gap);
  const plotWidth = width - margin.left - margin.right;
  const maxSeconds = Math.max(1, ...result.windows.map((w) => w.endSeconds));
  const x = (seconds: number) => margin.left + (plotWidth * seconds) / maxSeconds;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${title.replaceAll("&", "&amp;").replaceAll("<", "&lt;")}</text>`,
  ];
  const panels: { label: string; value: (w: SustainedWindow) => number; color: string }[] = [
    { label: "ops/s", value: (w) => w.opsPerSecond, color: "#1f5fa8" },
    { label: "put p99 ms", value: (w) => w.putP99Ms, color: "#c8372d" },
    { label: "tables (all nodes)", value: (w) => w.tables, color: "#3a9a4b" },
  ];
  panels.forEach((panel, index) => {
    const top = margin.top + index * (panelHeight + margin.gap);
    const high = Math.max(1e-9, ...result.windows.map(panel.value)) * 1.1;
    const y = (value: number) => top + panelHeight * (1 - value / high);
    parts.push(`<rect x="${margin.left}" y="${top}" width="${plotWidth}" height="${panelHeight}" fill="none" stroke="#cccccc"/>`);
    for (const fraction of [0, 0.5, 1]) {
      const at = y(high * fraction).toFixed(1);
      const label = high * fraction >= 100 ? Math.round(high * fraction).toString() : (high * fraction).toFixed(1);
      parts.push(`<text x="${margin.left - 6}" y="${at}" text-anchor="end" dominant-baseline="middle">${label}</text>`);
    }
    parts.push(`<text x="${margin.left + 6}" y="${top + 14}" fill="${panel.color}">${panel.label}</text>`);
    const points = result.windows.map((w) => `${x(w.endSeconds).toFixed(1)},${y(panel.value(w)).toFixed(1)}`).join(" ");
    parts.push(`<polyline fill="none" stroke="${panel.color}" stroke-width="2" points="${points}"/>`);
    parts.push(`<text x="${margin.left + plotWidth / 2}" y="${top + panelHeight + 16}" text-anchor="middle">seconds</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}
