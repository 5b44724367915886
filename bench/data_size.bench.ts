/**
 * The data-size suite: do cluster reads stay flat as the data grows? For each key count, a fresh
 * 3-node cluster (N=3 W=2 R=2, fsync batch, defaults otherwise) is loaded with that many 16-byte
 * keys of 100-byte values, left to finish its flushes and compactions, and then timed over
 * uniformly random gets of loaded keys (a prng, so every run asks the same keys), 512 in flight,
 * in several rounds: ops/s and CPU per get over all threads, counted until the stores are idle.
 * The process's RSS after the load, and the tables and block caches held, say what the data costs
 * in memory, with a breakdown of what the nodes report holding (memtables, block caches, Bloom
 * filters, table indexes, each node thread's V8 heap) beside the main thread's heap; the rest of the
 * RSS is what no counter names (the storage pool's threads, code, stacks, allocator slack). The
 * headline is gets at the largest count over gets at the smallest.
 */
import process from "node:process";
import { createCluster, type Cluster } from "../src/index.ts";
import { createPrng } from "../src/io/prng.ts";
import { median, untilIdle } from "./cluster_figures.ts";
import { temporaryDirectory } from "./temp_directories.ts";

export interface DataSizeOptions {
  /** Key counts, smallest first. */
  readonly keyCounts: readonly number[];
  /** Gets per timed round; rounds per key count (the median round is reported). */
  readonly gets: number;
  readonly rounds: number;
  readonly inFlight: number;
  readonly seed: number;
  readonly log: (line: string) => void;
}

export interface DataSizeRow {
  readonly keys: number;
  readonly loadSeconds: number;
  /** Medians over the rounds. */
  readonly getsPerSecond: number;
  readonly cpuMicrosPerGet: number;
  /** Every round's CPU per get, in run order. */
  readonly cpuSamples: readonly number[];
  readonly rssMiB: number;
  readonly tables: number;
  readonly tableMiB: number;
  /** MiB, summed over the nodes (and the main thread's heap), when the RSS was read. */
  readonly memory: {
    readonly nodeHeaps: number;
    readonly mainHeap: number;
    readonly memtables: number;
    readonly blockCaches: number;
    readonly filters: number;
    readonly indexes: number;
  };
}

export interface DataSizeResult {
  readonly options: Omit<DataSizeOptions, "log">;
  readonly rows: readonly DataSizeRow[];
}

function key(index: number): string {
  return `user${String(index).padStart(12, "0")}`; // 16 bytes
}

function sumMiB(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / 1048576;
}

async function measure(keys: number, options: DataSizeOptions): Promise<DataSizeRow> {
  const { directory, cleanup } = temporaryDirectory("datasize");
  const cluster = await createCluster({ nodes: 3, n: 3, w: 2, r: 2, fsync: "batch", dataDir: directory });
  try {
    const value = new Uint8Array(100).fill(0x64);
    const loadStarted = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 512 }, async () => {
      while (next < keys) await cluster.put(key(next++), value);
    }));
    await untilIdle(cluster, 50);
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const prng = createPrng(options.seed);
    const rates: number[] = [];
    const cpus: number[] = [];
    // One untimed round warms the code paths and the caches as the timed rounds will find them.
    for (let round = 0; round <= options.rounds; round++) {
      const asked = Array.from({ length: options.gets }, () => key(prng.nextInt(keys)));
      let at = 0;
      const cpuStarted = process.cpuUsage();
      const started = performance.now();
      await Promise.all(Array.from({ length: options.inFlight }, async () => {
        while (at < asked.length) {
          const { values } = await cluster.get(asked[at++]!);
          if (values.length !== 1) throw new Error(`bench failed: a loaded key read ${values.length} values`);
        }
      }));
      const seconds = (performance.now() - started) / 1000;
      await untilIdle(cluster, 50);
      const cpu = process.cpuUsage(cpuStarted);
      if (round === 0) continue;
      rates.push(options.gets / seconds);
      cpus.push((cpu.user + cpu.system) / options.gets);
    }
    const { nodes } = await cluster.stats();
    const row: DataSizeRow = {
      keys,
      loadSeconds,
      getsPerSecond: median(rates),
      cpuMicrosPerGet: median(cpus),
      cpuSamples: cpus,
      rssMiB: process.memoryUsage().rss / 1048576,
      tables: nodes.reduce((sum, node) => sum + node.store.tables, 0),
      tableMiB: nodes.reduce((sum, node) => sum + node.store.tableBytes, 0) / 1048576,
      memory: {
        nodeHeaps: sumMiB(nodes.map((node) => node.heap?.totalBytes ?? 0)),
        mainHeap: process.memoryUsage().heapTotal / 1048576,
        memtables: sumMiB(nodes.map((node) => node.store.memory.memtableBytes)),
        blockCaches: sumMiB(nodes.map((node) => node.store.memory.blockCacheBytes)),
        filters: sumMiB(nodes.map((node) => node.store.memory.filterBytes)),
        indexes: sumMiB(nodes.map((node) => node.store.memory.indexBytes)),
      },
    };
    options.log(`data size: ${keys.toLocaleString("en-US")} keys loaded in ${loadSeconds.toFixed(1)} s; ${Math.round(row.getsPerSecond)} gets/s, ${row.cpuMicrosPerGet.toFixed(1)} µs CPU per get; RSS ${row.rssMiB.toFixed(0)} MiB; ${row.tables} tables, ${row.tableMiB.toFixed(0)} MiB`);
    return row;
  } finally {
    await cluster.close();
    cleanup();
  }
}

export async function runDataSizeSuite(options: DataSizeOptions): Promise<DataSizeResult> {
  const rows: DataSizeRow[] = [];
  for (const keys of options.keyCounts) rows.push(await measure(keys, options));
  const { log: _log, ...rest } = options;
  return { options: rest, rows };
}

export const dataSizeSection = {
  begin: "<!-- BEGIN GENERATED datasize by bench/run.ts --suite datasize: everything up to the END marker is rewritten on each run -->",
  end: "<!-- END GENERATED datasize -->",
  intro: () => "# Cluster reads as the data grows\n\nGenerated by `npm run bench -- --suite datasize`; see bench/data_size.bench.ts.\n\n",
};

export function renderDataSizeResults(result: DataSizeResult, context: { date: string; command: string; machine: string; load: string }): string {
  const { options, rows } = result;
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  return [
    `## Data size results of ${context.date}`,
    "",
    `Machine: ${context.machine}. ${context.load} Command: \`${context.command}\`.`,
    `3 nodes, N=3 W=2 R=2, fsync batch, defaults otherwise; each key count on a fresh cluster, loaded (16-byte keys, 100-byte values, 512 in flight) and left idle; then ${options.rounds} timed rounds (after one untimed) of ${options.gets.toLocaleString("en-US")} uniformly random gets of loaded keys, ${options.inFlight} in flight; medians of the rounds; CPU over all threads until the stores are idle.`,
    "",
    `- **gets at ${last.keys.toLocaleString("en-US")} keys over gets at ${first.keys.toLocaleString("en-US")} keys: ${(last.getsPerSecond / first.getsPerSecond).toFixed(2)}x** ops/s, ${(last.cpuMicrosPerGet / first.cpuMicrosPerGet).toFixed(2)}x CPU per get`,
    "",
    "| keys | load s | gets/s | CPU µs/get | CPU µs/get, each round | RSS after the gets MiB | tables (all nodes) | table MiB |",
    "|---:|---:|---:|---:|---|---:|---:|---:|",
    ...rows.map((row) => `| ${row.keys.toLocaleString("en-US")} | ${row.loadSeconds.toFixed(1)} | ${Math.round(row.getsPerSecond).toLocaleString("en-US")} | ${row.cpuMicrosPerGet.toFixed(1)} | ${row.cpuSamples.map((value) => value.toFixed(1)).join(", ")} | ${row.rssMiB.toFixed(0)} | ${row.tables} | ${row.tableMiB.toFixed(0)} |`),
    "",
    `Memory when the RSS was read (MiB; nodes summed; target at 1M keys: RSS ≤ 512 MiB). Node heaps and the main heap are V8's reserved heaps (\`v8.getHeapStatistics().total_heap_size\`, \`process.memoryUsage().heapTotal\`); memtables (arena bytes in use), block caches, Bloom filters and table indexes live outside the heaps; the rest is what no counter names: the storage pool's threads, code, stacks, untouched-then-touched arena pages and allocator slack.`,
    "",
    "| keys | RSS | node heaps | main heap | memtables | block caches | Bloom filters | table indexes | rest |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((row) => {
      const m = row.memory;
      const listed = m.nodeHeaps + m.mainHeap + m.memtables + m.blockCaches + m.filters + m.indexes;
      return `| ${row.keys.toLocaleString("en-US")} | ${row.rssMiB.toFixed(0)} | ${m.nodeHeaps.toFixed(0)} | ${m.mainHeap.toFixed(0)} | ${m.memtables.toFixed(0)} | ${m.blockCaches.toFixed(0)} | ${m.filters.toFixed(1)} | ${m.indexes.toFixed(1)} | ${(row.rssMiB - listed).toFixed(0)} |`;
    }),
  ].join("\n");
}
