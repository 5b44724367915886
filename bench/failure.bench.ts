/**
 * The failure-handling suite (`npm run bench -- --suite failure`): how fast gossip finds a dead or
 * hung node, whether it ever suspects a healthy one under load, and how fast hints drain.
 *
 * - Detection: with the default gossip settings, a node is crashed (its thread terminated) or
 *   paused (blocked for 3 s) at random; one tinybench iteration is the time from the fault to every
 *   live node (and the main thread) marking it down. A crash is seen through the thread's exit at
 *   once; a pause only through the heartbeat, after gossip.failAfterMs.
 * - False positives: 60 s (`--fp-seconds`) of puts and gets, 512 in flight, on a healthy
 *   cluster with the defaults; every node's and the main thread's suspicions are counted (goal 0).
 * - Hint drain: one owner down while 20,000 keys are written; the time its restart takes, then the
 *   time from the moment it is up again until every hint for it is back (no node holds one), against
 *   handoff.keysPerSecond. Until then every read of its keys also asks the hint holders.
 */
import { rmSync } from "node:fs";
import process from "node:process";
import { Bench } from "tinybench";
import { clusterConfigDefaults, createCluster, type Cluster } from "../src/index.ts";
import type { MembershipChange } from "../src/runtime/cluster.ts";

export interface FailureSuiteOptions {
  readonly runs: number;
  readonly falsePositiveSeconds: number;
  readonly hintKeys: number;
  readonly log: (line: string) => void;
}

export interface LatencySummary {
  readonly runs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
}

export interface FailureSuiteResult {
  readonly crash: LatencySummary;
  readonly pause: LatencySummary;
  readonly falsePositives: { readonly seconds: number; readonly operations: number; readonly suspicions: number; readonly membershipDownEvents: number; readonly cpuMsPerOperation: number };
  readonly hintDrain: { readonly keys: number; readonly hintsHeld: number; readonly restartMs: number; readonly drainMs: number; readonly keysPerSecond: number; readonly configuredKeysPerSecond: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when every live node and the main thread see `node` down; rejects after `limitMs`. */
async function everyoneSeesDown(cluster: Cluster, node: number, limitMs: number): Promise<void> {
  const started = performance.now();
  for (;;) {
    const mainSees = cluster.membership().find((member) => member.node === node)?.status === "down";
    if (mainSees) {
      const { nodes } = await cluster.stats();
      const seen = nodes.filter((stats) => stats.nodeId !== node).every((stats) => stats.gossip.members.find((member) => member.node === node)?.status === "down");
      if (seen) return;
    }
    if (performance.now() - started > limitMs) throw new Error(`bench failed: node ${node} not seen down by everyone within ${limitMs} ms`);
    await sleep(2);
  }
}

function summary(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (quantile: number) => sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))] ?? 0;
  return { runs: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), minMs: sorted[0] ?? 0, maxMs: sorted.at(-1) ?? 0 };
}

async function detection(kind: "crash" | "pause", options: FailureSuiteOptions): Promise<LatencySummary> {
  const cluster = await createCluster({ nodes: 5, memtableBytes: 1 << 22 });
  const samples: number[] = [];
  let victim = 0;
  try {
    const bench = new Bench({ iterations: options.runs, time: 0, warmupIterations: 0, warmup: false });
    bench.add(`${kind} detection`, async () => {
      victim = (victim + 1) % 5;
      // Let the cluster settle (restart or resume) before the next fault.
      await sleep(kind === "pause" ? 100 : 20);
      const started = performance.now();
      if (kind === "crash") await cluster.faults.crash(victim);
      else await cluster.faults.pause(victim, 3000);
      await everyoneSeesDown(cluster, victim, 10_000);
      samples.push(performance.now() - started);
      if (samples.length % 10 === 0) options.log(`${kind}: ${samples.length} runs done`);
      if (kind === "crash") await cluster.faults.restart(victim);
      else await waitUp(cluster, victim);
    });
    await bench.run();
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
  options.log(`${kind}: ${samples.length} runs, p50 ${summary(samples).p50Ms.toFixed(1)} ms, p99 ${summary(samples).p99Ms.toFixed(1)} ms`);
  return summary(samples);
}

async function waitUp(cluster: Cluster, node: number): Promise<void> {
  while (cluster.membership().find((member) => member.node === node)?.status !== "up") await sleep(10);
  // ...and every node sees it up again (its heartbeat rose).
  for (;;) {
    const { nodes } = await cluster.stats();
    if (nodes.every((stats) => stats.gossip.members.find((member) => member.node === node)?.status === "up")) return;
    await sleep(10);
  }
}

async function falsePositives(options: FailureSuiteOptions): Promise<FailureSuiteResult["falsePositives"]> {
  const cluster = await createCluster({ nodes: 5, memtableBytes: 1 << 24 });
  const downs: MembershipChange[] = [];
  cluster.on("membership", (change) => {
    if (change.status === "down") downs.push(change);
  });
  let operations = 0;
  const cpuBefore = process.cpuUsage();
  try {
    const deadline = performance.now() + options.falsePositiveSeconds * 1000;
    const worker = async (id: number) => {
      let index = 0;
      while (performance.now() < deadline) {
        const key = `fp-${id}-${index++ % 2000}`;
        if (index % 2 === 0) await cluster.put(key, "value-".padEnd(100, "x"));
        else await cluster.get(key);
        operations++;
      }
    };
    await Promise.all(Array.from({ length: 512 }, (_, id) => worker(id)));
    const { nodes } = await cluster.stats();
    const suspicions = nodes.reduce((sum, node) => sum + node.gossip.markedDown, 0);
    const cpu = process.cpuUsage(cpuBefore);
    const result = {
      seconds: options.falsePositiveSeconds,
      operations,
      suspicions,
      membershipDownEvents: downs.length,
      cpuMsPerOperation: (cpu.user + cpu.system) / 1000 / Math.max(1, operations),
    };
    options.log(`false positives: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
}

async function hintDrain(options: FailureSuiteOptions): Promise<FailureSuiteResult["hintDrain"]> {
  const cluster = await createCluster({ nodes: 5, memtableBytes: 1 << 24 });
  try {
    await cluster.faults.crash(2);
    for (let start = 0; start < options.hintKeys; start += 500) {
      await Promise.all(Array.from({ length: Math.min(500, options.hintKeys - start) }, (_, index) => cluster.put(`hint-${start + index}`, "v".repeat(100))));
    }
    const held = async () => (await cluster.stats()).nodes.reduce((sum, node) => sum + node.hints.held.reduce((keys, target) => keys + target.keys, 0), 0);
    const hintsHeld = await held();
    const restarting = performance.now();
    await cluster.faults.restart(2);
    const started = performance.now();
    while ((await held()) > 0) await sleep(20);
    const drainMs = performance.now() - started;
    const result = {
      keys: options.hintKeys,
      hintsHeld,
      restartMs: Math.round(started - restarting),
      drainMs: Math.round(drainMs),
      keysPerSecond: Math.round(hintsHeld / (drainMs / 1000)),
      configuredKeysPerSecond: clusterConfigDefaults.handoff.keysPerSecond,
    };
    options.log(`hint drain: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await cluster.close();
    rmSync(cluster.dataDir, { recursive: true, force: true });
  }
}

export async function runFailureSuite(options: FailureSuiteOptions): Promise<FailureSuiteResult> {
  const crash = await detection("crash", options);
  const pause = await detection("pause", options);
  return { crash, pause, falsePositives: await falsePositives(options), hintDrain: await hintDrain(options) };
}

export const FAILURE_BEGIN = "<!-- BEGIN GENERATED failure by bench/run.ts --suite failure: everything up to the END marker is rewritten on each run -->";
export const FAILURE_END = "<!-- END GENERATED failure -->";

export const failureSection = {
  begin: FAILURE_BEGIN,
  end: FAILURE_END,
  intro: () => "# Failure handling (gossip detection, false positives, hint drain)\n\nGenerated by `npm run bench -- --suite failure`; see bench/failure.bench.ts.\n\n",
};

export function renderFailureResults(result: FailureSuiteResult, context: { date: string; command: string; machine: string }): string {
  const gossip = clusterConfigDefaults.gossip;
  const row = (name: string, summary: LatencySummary, bound: string) =>
    `| ${name} | ${summary.runs} | ${summary.p50Ms.toFixed(1)} | ${summary.p99Ms.toFixed(1)} | ${summary.minMs.toFixed(1)} | ${summary.maxMs.toFixed(1)} | ${bound} |`;
  return [
    `## Failure handling results of ${context.date}`,
    "",
    `Machine: ${context.machine}. Command: \`${context.command}\`. Defaults: gossip.intervalMs ${gossip.intervalMs}, failAfterMs ${gossip.failAfterMs}, cleanupAfterMs ${gossip.cleanupAfterMs}; 5 nodes, N=3 W=2 R=2.`,
    "",
    "### Detection: from the fault to every live node and the main thread marking the node down",
    "",
    "| fault | runs | p50 ms | p99 ms | min ms | max ms | what bounds it |",
    "|---|---|---|---|---|---|---|",
    row("crash (thread terminated)", result.crash, "the thread's exit, told to every peer"),
    row("pause (thread blocked 3 s)", result.pause, `failAfterMs (${gossip.failAfterMs}) + up to one interval (${gossip.intervalMs}) + a gossip hop`),
    "",
    "### False positives under load",
    "",
    `${result.falsePositives.seconds} s of puts and gets (512 in flight) on a healthy 5-node cluster: ${result.falsePositives.operations.toLocaleString("en-US")} operations, ` +
      `**${result.falsePositives.suspicions} suspicions by the nodes, ${result.falsePositives.membershipDownEvents} down events at the main thread** (goal 0); ` +
      `${result.falsePositives.cpuMsPerOperation.toFixed(3)} ms of CPU per operation, all threads.`,
    "",
    "### Hint drain",
    "",
    `One owner down while ${result.hintDrain.keys.toLocaleString("en-US")} keys were written: ${result.hintDrain.hintsHeld.toLocaleString("en-US")} hints held. Its restart took ${result.hintDrain.restartMs} ms; from the moment it was up, every hint for it was back in ` +
      `**${(result.hintDrain.drainMs / 1000).toFixed(1)} s** (${result.hintDrain.keysPerSecond.toLocaleString("en-US")} hints/s across the holders; handoff.keysPerSecond is ${result.hintDrain.configuredKeysPerSecond} per holder). ` +
      "Until then every read of its keys also asked the hint holders (the quorum promise right after a restart).",
  ].join("\n");
}
