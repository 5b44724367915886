/**
 * What live ring changes cost: a cluster under a steady load of quorum reads and writes has its
 * virtual nodes, N and membership changed; for each change, the keys scanned, sent and moved, how
 * long the move took, and the throughput and p99 latency of the load during the move as a ratio
 * to the same load with no move. Writes the measured section of docs/reconfiguration.md.
 *
 *   npx tsc -p . && node dist/bench/reconfigure.js [--keys 100000] [--no-report]
 *   npx deno run -A bench/reconfigure.ts --keys 20000 --no-report
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { clusterConfigDefaults, createCluster, type Cluster, type RingChangeReport } from "../src/index.ts";
import { createPrng } from "../src/io/prng.ts";

const args = process.argv.slice(2);
const keysFlag = args.indexOf("--keys");
const KEYS = keysFlag >= 0 ? Number(args[keysFlag + 1]) : 100_000;
const REPORT = !args.includes("--no-report");
const CLIENTS = 64;
const BASELINE_MS = 3000;
/** streamKeysPerSecond for the two passes: effectively unthrottled, then the default. */
const RATES = [10_000_000, clusterConfigDefaults.streamKeysPerSecond];

const key = (i: number) => `key-${String(i).padStart(12, "0")}`; // 16 bytes
const value = new Uint8Array(100).fill(120);

class Load {
  ops = 0;
  failed = 0;
  latencies: number[] = [];
  #running = false;
  #clients: Promise<void>[] = [];

  start(cluster: Cluster): void {
    this.#running = true;
    const prng = createPrng(7);
    const client = async () => {
      while (this.#running) {
        const k = key(prng.nextInt(KEYS));
        const started = performance.now();
        try {
          if (prng.nextInt(2) === 0) await cluster.get(k);
          else await cluster.put(k, value);
          this.ops++;
          this.latencies.push(performance.now() - started);
        } catch {
          this.failed++;
        }
      }
    };
    this.#clients = Array.from({ length: CLIENTS }, client);
  }

  /** Ops and latencies since the last window. */
  window(): { ops: number; failed: number; p99: number } {
    const sorted = this.latencies.sort((a, b) => a - b);
    const result = { ops: this.ops, failed: this.failed, p99: sorted[Math.floor(sorted.length * 0.99)] ?? 0 };
    this.ops = 0;
    this.failed = 0;
    this.latencies = [];
    return result;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#clients);
  }
}

interface Row {
  readonly label: string;
  readonly rate: number;
  readonly report: RingChangeReport;
  readonly opsPerSecond: number;
  readonly p99: number;
  readonly failed: number;
}

async function main(): Promise<void> {
  const cluster = await createCluster({ nodes: 4, n: 3, w: 2, r: 2, vnodesPerNode: 64, requestTimeoutMs: 10_000 });
  const load = new Load();
  const rows: Row[] = [];
  let baseline = { opsPerSecond: 0, p99: 0 };
  try {
    for (let i = 0; i < KEYS; i += 512) {
      await Promise.all(Array.from({ length: Math.min(512, KEYS - i) }, (_, j) => cluster.put(key(i + j), value)));
    }
    console.log(`loaded ${KEYS} keys`);
    load.start(cluster);
    await new Promise((resolve) => setTimeout(resolve, 500));
    load.window();
    await new Promise((resolve) => setTimeout(resolve, BASELINE_MS));
    const quiet = load.window();
    baseline = { opsPerSecond: (quiet.ops / BASELINE_MS) * 1000, p99: quiet.p99 };
    console.log(`baseline: ${baseline.opsPerSecond.toFixed(0)} ops/s, p99 ${baseline.p99.toFixed(1)} ms`);

    const changes: [string, () => Promise<unknown>][] = [
      ["vnodes 64 → 128", () => cluster.configure({ vnodesPerNode: 128 })],
      ["vnodes 128 → 64", () => cluster.configure({ vnodesPerNode: 64 })],
      ["N 3 → 2", () => cluster.configure({ n: 2 })],
      ["N 2 → 3", () => cluster.configure({ n: 3 })],
      ["add a node", () => cluster.addNode()],
      ["remove the lowest node", () => cluster.removeNode(cluster.ring().nodes[0]!)],
    ];
    for (const rate of RATES) {
      await cluster.configure({ streamKeysPerSecond: rate });
      for (const [label, change] of changes) {
        load.window();
        const started = performance.now();
        await change();
        const elapsed = performance.now() - started;
        const during = load.window();
        const report = (await cluster.stats()).ringChanges.at(-1)!;
        const row = { label, rate, report, opsPerSecond: (during.ops / elapsed) * 1000, p99: during.p99, failed: during.failed };
        rows.push(row);
        console.log(`${label} at ${rate} keys/s: ${JSON.stringify({ ...report, before: undefined, after: undefined })}, ${row.opsPerSecond.toFixed(0)} ops/s, p99 ${row.p99.toFixed(1)} ms, failed ${row.failed}`);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
  } finally {
    await load.stop();
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
  if (REPORT) writeReport(rows, baseline);
}

function writeReport(rows: readonly Row[], baseline: { opsPerSecond: number; p99: number }): void {
  const path = "docs/reconfiguration.md";
  const lines = [
    "<!-- measured:start (bench/reconfigure.ts writes this section) -->",
    `Measured by \`node dist/bench/reconfigure.js\` on ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (shared, noisy): 4 nodes,`,
    `N = 3, W = R = 2, fsync batch, ${KEYS.toLocaleString("en")} keys (16-byte keys, 100-byte values) loaded, then ${CLIENTS} clients doing`,
    `50 % gets and 50 % puts on random keys throughout. Baseline (no move): ${baseline.opsPerSecond.toFixed(0)} ops/s, p99 ${baseline.p99.toFixed(1)} ms.`,
    "",
    "| change | streamKeysPerSecond | keys scanned | keys sent | keys moved | keys dropped | chunks | move took | load during the move | p99 during | failed |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (row) =>
        `| ${row.label} | ${row.rate.toLocaleString("en")} | ${row.report.keysScanned.toLocaleString("en")} | ${row.report.keysSent.toLocaleString("en")} | ${row.report.keysMoved.toLocaleString("en")} | ${row.report.keysDropped.toLocaleString("en")} | ${row.report.chunks} | ${(row.report.durationMs / 1000).toFixed(2)} s | ${row.opsPerSecond.toFixed(0)} ops/s (${(row.opsPerSecond / baseline.opsPerSecond).toFixed(2)}x) | ${row.p99.toFixed(1)} ms | ${row.failed} |`,
    ),
    "<!-- measured:end -->",
  ];
  const doc = readFileSync(path, "utf8");
  const start = doc.indexOf("<!-- measured:start");
  const end = doc.indexOf("<!-- measured:end -->");
  if (start < 0 || end < 0) throw new Error(`${path} has no measured section markers`);
  writeFileSync(path, doc.slice(0, start) + lines.join("\n") + doc.slice(end + "<!-- measured:end -->".length));
  console.log(`wrote ${path}`);
}

await main();
