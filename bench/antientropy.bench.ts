/**
 * The anti-entropy suite (`npm run bench -- --suite antientropy`): what Merkle anti-entropy
 * (src/antientropy/) buys and costs on real worker threads. Three measurements, each timed directly
 * as a whole scenario (as the failure suite does) except the workload arms, which tinybench times:
 *
 * - Wipe rebuild: 3 nodes, N=3 (every node holds every key), `keys` keys of 100 bytes, a short
 *   antiEntropy.intervalMs so that the figure is the repair, not the wait. `faults.wipe(1)`, then
 *   the time until every pair of nodes holds equal roots and node 1 holds every key again; the
 *   bytes anti-entropy sent, against the bytes of a full copy. Once at the default keysPerSecond
 *   (the throttle) and once at a higher one (the machine).
 * - Divergence at random: on the same cluster, node 2 crashed while 1% of the keys (drawn with a
 *   seeded PRNG) are updated with W=2 on the other two (3 nodes: no fallback, so no hint), then
 *   restarted; the bytes anti-entropy sent until the roots agree, at several bucket counts.
 * - Background cost: YCSB workload A (bench/ycsb.bench.ts) with anti-entropy at its default interval
 *   against anti-entropy switched off (antiEntropy.enabled false: no trees, no exchanges), alternating
 *   arms on fresh clusters; one more arm runs under --cpu-prof (bench/antientropy_profile.ts) to
 *   say where the cost goes on the node threads, and AntiEntropy.onWrite is timed alone here.
 */
import { join } from "node:path";
import process from "node:process";
import { Bench } from "tinybench";
import { AntiEntropy, rootsAgree as rootsAgreeIn, type AntiEntropyStats } from "../src/antientropy/anti_entropy.ts";
import { clusterConfigDefaults, createCluster, openStore, type Cluster, type Store, type Version } from "../src/index.ts";
import type { MembershipChange } from "../src/runtime/cluster.ts";
import { createPrng, type Prng } from "../src/io/prng.ts";
import { placementOf } from "../src/ring/ring_spec.ts";
import { profileArm, type ProfileShares } from "./antientropy_profile.ts";
import { openLoomClusterPeer } from "./peers/loomkv_cluster.ts";
import { REPLICATION, REQUEST_TIMEOUT_MS, throughputTask } from "./ycsb.bench.ts";
import { recordKey, VALUE_BYTES, type YcsbData } from "./ycsb_workload.ts";
import { temporaryDirectory } from "./temp_directories.ts";
import { median } from "./cluster_figures.ts";

export interface AntiEntropySuiteOptions {
  /** Keys loaded into the wipe and divergence cluster (every node holds each one). */
  readonly keys: number;
  /** Keys made divergent on one node in the divergence measurement. */
  readonly divergentKeys: number;
  /** Divergence measurements per bucket count. */
  readonly divergenceRuns: number;
  /** One more divergence run at the default bucket count and the default interval (slower). */
  readonly divergenceAtDefaultInterval: boolean;
  readonly bucketCounts: readonly number[];
  /** antiEntropy.intervalMs of the wipe and divergence cluster. */
  readonly intervalMs: number;
  /** The higher keysPerSecond the wipe is also measured at. */
  readonly fastKeysPerSecond: number;
  /** YCSB data for the background-cost arms (workload A), and the seed it was made from. */
  readonly ycsb: YcsbData;
  readonly ycsbSeed: number;
  readonly background: { readonly nodes: readonly number[]; readonly seconds: number; readonly inFlight: number; readonly operationsPerIteration: number };
  readonly seed: number;
  /** Also run one arm under --cpu-prof (Node, compiled bench only). */
  readonly profile: boolean;
  readonly log: (line: string) => void;
}

/** What anti-entropy did over a measurement, summed over every node. */
export interface Traffic {
  readonly bytesSent: number;
  readonly keysSent: number;
  readonly keysReceived: number;
  readonly keysRepaired: number;
  readonly segmentsDiffering: number;
  readonly exchanges: number;
  readonly agreed: number;
  readonly busy: number;
}

export interface WipeResult {
  readonly keysPerSecond: number;
  /** From the wiped node's restart to equal roots and every key back; undefined: not within the limit. */
  readonly rebuildMs: number | undefined;
  /** CPU time of the whole process (every thread) over the rebuild. */
  readonly cpuMs: number;
  readonly keysHeld: number;
  readonly traffic: Traffic;
  /** Gossip "down" events at the main thread for nodes that were not the victim. */
  readonly falseDowns: number;
}

export interface DivergenceResult {
  readonly buckets: number;
  readonly intervalMs: number;
  readonly divergentKeys: number;
  /** From the stale node's restart to equal roots; undefined: not within the limit. */
  readonly agreeMs: number | undefined;
  /** Divergent keys whose value on the stale node was still not the new one afterwards. */
  readonly stillStale: number;
  readonly traffic: Traffic;
  readonly falseDowns: number;
}

export interface BackgroundArm {
  readonly nodes: number;
  readonly arm: "on" | "off";
  readonly intervalMs: number;
  readonly opsPerSecond: number;
  readonly rmePercent: number;
  readonly operations: number;
  readonly cpuUsPerOperation: number;
  /** Anti-entropy over the arm's measured window. */
  readonly traffic: Traffic;
}

export interface UpkeepResult {
  /** AntiEntropy.onWrite (two item hashes, the segment, the replicas, the tree flips), µs per call. */
  readonly onWriteUs: number;
  /** Replica writes per workload A operation (half are updates, each written on N replicas). */
  readonly replicaWritesPerOperation: number;
  /** Shares of the CPU under load, from the profiled arm, or why it did not run. */
  readonly profile: ProfileShares | { readonly skipped: string };
}

export interface FullCopy {
  readonly entries: number;
  readonly keyBytes: number;
  readonly versionBytes: number;
  readonly valueBytes: number;
  readonly bytes: number;
}

export interface AntiEntropySuiteResult {
  readonly keys: number;
  readonly intervalMs: number;
  readonly fullCopy: FullCopy;
  readonly wipe: readonly WipeResult[];
  readonly divergence: readonly DivergenceResult[];
  readonly background: readonly BackgroundArm[];
  readonly backgroundSeconds: number;
  readonly records: number;
  readonly inFlight: number;
  readonly upkeep: UpkeepResult;
}

/** A repair not finished by then is reported as not converged. */
const CONVERGE_LIMIT_MS = 180_000;
const POLL_MS = 25;
const LOAD_IN_FLIGHT = 512;
const VALUE_POOL_SIZE = 1024;
/** Entries sampled from a store for the per-write upkeep microbenchmark. */
const UPKEEP_SAMPLE = 1024;
/** Calls per tinybench iteration of the upkeep microbenchmark (amortises tinybench's own cost). */
const UPKEEP_CALLS_PER_ITERATION = 256;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


// ---- observing the cluster ---------------------------------------------------------------------

/** Whether every pair of nodes holds equal roots for each other, none of them rebuilding. */
async function rootsAgree(cluster: Cluster): Promise<boolean> {
  const stats = await cluster.stats();
  return stats.nodes.length === cluster.ring().nodes.length && rootsAgreeIn(new Map(stats.nodes.map((node) => [node.nodeId, node.antiEntropy])));
}

/**
 * Every node's anti-entropy counters, once each of `nodes` answers and `ready` holds for them all.
 * stats() leaves out a node the main thread's gossip holds down (a node whose event loop stalled
 * past gossip.failAfterMs looks down until its heartbeat rises again): a snapshot without it would
 * count nothing, or its whole history, for it.
 */
async function counters(source: { stats(): ReturnType<Cluster["stats"]> }, nodes: readonly number[], ready: (stats: AntiEntropyStats) => boolean = () => true): Promise<Map<number, AntiEntropyStats>> {
  let snapshot = new Map<number, AntiEntropyStats>();
  const complete = async () => {
    snapshot = new Map((await source.stats()).nodes.map((node) => [node.nodeId, node.antiEntropy] as const));
    return nodes.every((node) => snapshot.has(node) && ready(snapshot.get(node)!));
  };
  if ((await timeUntil(complete, CONVERGE_LIMIT_MS)) === undefined) throw new Error(`bench failed: no complete anti-entropy snapshot of nodes ${nodes.join(", ")} within ${CONVERGE_LIMIT_MS} ms`);
  return snapshot;
}

/**
 * The counters once every repair step has ended: a sender counts bytes when it sends, and its
 * session may still be pushing (keys the other side already got from elsewhere) after the roots agree.
 */
function settledCounters(cluster: Cluster): Promise<Map<number, AntiEntropyStats>> {
  return counters(cluster, cluster.ring().nodes, (stats) => stats.sessions.length === 0);
}

/** Counts gossip "down" events at the main thread for nodes other than `victim` until the returned function is called. */
function countFalseDowns(cluster: Cluster, victim: number): () => number {
  let downs = 0;
  const listener = (change: MembershipChange) => {
    if (change.status === "down" && change.source === "gossip" && change.node !== victim) downs++;
  };
  cluster.on("membership", listener);
  return () => {
    cluster.off("membership", listener);
    return downs;
  };
}

/** Polls `done` until it holds; resolves with the ms it took, or undefined after `limitMs`. */
async function timeUntil(done: () => Promise<boolean>, limitMs: number): Promise<number | undefined> {
  const started = performance.now();
  for (;;) {
    if (await done()) return performance.now() - started;
    if (performance.now() - started > limitMs) return undefined;
    await sleep(POLL_MS);
  }
}

const others = (cluster: Cluster, victim: number) => cluster.ring().nodes.filter((node) => node !== victim);

const TRAFFIC_FIELDS = ["bytesSent", "keysSent", "keysReceived", "keysRepaired", "segmentsDiffering", "exchanges", "agreed", "busy"] as const;

/**
 * What the nodes did between two snapshots. A node that restarted in between (`restarted`) starts
 * its counters from zero: its delta is its whole count.
 */
function trafficBetween(before: ReadonlyMap<number, AntiEntropyStats>, after: ReadonlyMap<number, AntiEntropyStats>, restarted?: number): Traffic {
  const sums = Object.fromEntries(TRAFFIC_FIELDS.map((field) => [field, 0])) as Record<(typeof TRAFFIC_FIELDS)[number], number>;
  for (const [node, stats] of after) {
    const base = node === restarted ? undefined : before.get(node);
    for (const field of TRAFFIC_FIELDS) sums[field] += stats[field] - (base?.[field] ?? 0);
  }
  return sums;
}

// ---- wipe and divergence -------------------------------------------------------------------------

interface Loaded {
  readonly cluster: Cluster;
  readonly values: readonly Uint8Array[];
  /** Per key, the context its last acknowledged write returned. */
  readonly contexts: string[];
}

function valuePool(random: Prng): Uint8Array[] {
  return Array.from({ length: VALUE_POOL_SIZE }, () => Uint8Array.from({ length: VALUE_BYTES }, () => random.nextU32() & 0xff));
}

/** Writes keys 0..keys-1 (value `values[key % pool]`), `LOAD_IN_FLIGHT` at a time. */
async function load(cluster: Cluster, keys: number, values: readonly Uint8Array[]): Promise<string[]> {
  const contexts = new Array<string>(keys).fill("");
  for (let start = 0; start < keys; start += LOAD_IN_FLIGHT) {
    const end = Math.min(keys, start + LOAD_IN_FLIGHT);
    const writes: Promise<void>[] = [];
    for (let key = start; key < end; key++) {
      writes.push(cluster.put(recordKey(key), values[key % VALUE_POOL_SIZE]!).then(({ context }) => void (contexts[key] = context)));
    }
    await Promise.all(writes);
  }
  return contexts;
}

async function wipeOnce(loaded: Loaded, keysPerSecond: number, options: AntiEntropySuiteOptions): Promise<WipeResult> {
  const { cluster } = loaded;
  await cluster.configure({ antiEntropy: { keysPerSecond } });
  const before = await settledCounters(cluster);
  const falseDowns = countFalseDowns(cluster, 1);
  const cpuBefore = process.cpuUsage();
  await cluster.faults.wipe(1);
  let keysHeld = 0;
  const rebuildMs = await timeUntil(async () => {
    if (!(await rootsAgree(cluster))) return false;
    keysHeld = (await cluster.stats({ keys: true })).nodes.find((node) => node.nodeId === 1)?.keys?.live ?? 0;
    return keysHeld === options.keys;
  }, CONVERGE_LIMIT_MS);
  const cpu = process.cpuUsage(cpuBefore);
  const traffic = trafficBetween(before, await settledCounters(cluster), 1);
  const result = { keysPerSecond, rebuildMs, cpuMs: (cpu.user + cpu.system) / 1000, keysHeld, traffic, falseDowns: falseDowns() };
  options.log(`wipe at keysPerSecond ${keysPerSecond}: ${JSON.stringify(result)}`);
  return result;
}

/** Distinct key numbers in 0..keys-1, `count` of them, drawn with `random`. */
function drawKeys(random: Prng, keys: number, count: number): number[] {
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(random.nextInt(keys));
  return [...chosen];
}

interface DivergenceRun {
  readonly buckets: number;
  readonly intervalMs: number;
  /** Keys to update while node 2 is down. */
  readonly chosen: readonly number[];
  /** Which run this is: each writes values no earlier run wrote. */
  readonly round: number;
}

async function divergeOnce(loaded: Loaded, run: DivergenceRun, options: AntiEntropySuiteOptions): Promise<DivergenceResult> {
  const { cluster, values, contexts } = loaded;
  const { buckets, intervalMs, chosen, round } = run;
  await cluster.configure({ antiEntropy: { buckets, intervalMs } });
  if ((await timeUntil(() => rootsAgree(cluster), CONVERGE_LIMIT_MS)) === undefined) throw new Error(`bench failed: roots disagree after the rebuild for ${buckets} buckets`);
  await cluster.faults.crash(2);
  const valueOf = (key: number) => values[(key + round + 1) % VALUE_POOL_SIZE]!;
  for (let start = 0; start < chosen.length; start += LOAD_IN_FLIGHT) {
    await Promise.all(
      chosen.slice(start, start + LOAD_IN_FLIGHT).map(async (key) => {
        const { context } = await cluster.put(recordKey(key), valueOf(key), { context: contexts[key]!, w: 2 });
        contexts[key] = context;
      }),
    );
  }
  const before = await counters(cluster, others(cluster, 2), (stats) => stats.sessions.length === 0);
  const falseDowns = countFalseDowns(cluster, 2);
  await cluster.faults.restart(2);
  const agreeMs = await timeUntil(() => rootsAgree(cluster), CONVERGE_LIMIT_MS);
  const traffic = trafficBetween(before, await settledCounters(cluster), 2);
  const stillStale = await staleOn(cluster, 2, chosen, valueOf);
  const result = { buckets, intervalMs, divergentKeys: chosen.length, agreeMs, stillStale, traffic, falseDowns: falseDowns() };
  options.log(`divergence at ${buckets} buckets, intervalMs ${intervalMs}: ${JSON.stringify(result)}`);
  return result;
}

/** How many of `keys` `node` does not hold with exactly the value `valueOf(key)`. */
async function staleOn(cluster: Cluster, node: number, keys: readonly number[], valueOf: (key: number) => Uint8Array): Promise<number> {
  let stale = 0;
  for (let start = 0; start < keys.length; start += 256) {
    await Promise.all(
      keys.slice(start, start + 256).map(async (key) => {
        const held = (await cluster.replicaValues(recordKey(key))).find((replica) => replica.node === node)?.values;
        const expected = valueOf(key);
        if (held?.length !== 1 || !sameBytes(held[0]!, expected)) stale++;
      }),
    );
  }
  return stale;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}

/** Key, version and value bytes of every entry of a store, and a sample of its entries. */
function scanStore(store: Store): { fullCopy: FullCopy; sample: { key: Uint8Array; versions: Version[] }[] } {
  let entries = 0;
  let keyBytes = 0;
  let versionBytes = 0;
  let valueBytes = 0;
  const sample: { key: Uint8Array; versions: Version[] }[] = [];
  for (const entry of store.entries()) {
    entries++;
    keyBytes += entry.key.length;
    for (const version of entry.versions) {
      versionBytes += version.version.length;
      valueBytes += version.value?.length ?? 0;
    }
    // Copies: an entry's bytes may be views into the store's buffers.
    const versions = entry.versions.map((version) => ({ version: version.version.slice(), value: version.value?.slice() ?? null }));
    if (sample.length < UPKEEP_SAMPLE) sample.push({ key: entry.key.slice(), versions });
  }
  return { fullCopy: { entries, keyBytes, versionBytes, valueBytes, bytes: keyBytes + versionBytes + valueBytes }, sample };
}

// ---- per-write upkeep ----------------------------------------------------------------------------

function timeTask(bench: Bench, name: string): number {
  const task = bench.getTask(name);
  const result = task?.result;
  if (!result || result.state !== "completed") throw new Error(`bench failed: task "${name}" did not complete`);
  return result.latency.mean;
}

/**
 * Times AntiEntropy.onWrite, what every replica write pays for the trees whatever the interval, in
 * this thread on the real class (edges stubbed: no timer fires, no message is sent, the rebuild
 * finds an empty store). `sample` holds real keys and versions from a node's store; resolves with
 * µs per call.
 */
async function measureOnWrite(store: Store, sample: readonly { key: Uint8Array; versions: Version[] }[], taskTimeMs: number): Promise<number> {
  const ring = { nodes: [0, 1, 2], vnodesPerNode: clusterConfigDefaults.vnodesPerNode, n: 3 };
  const antiEntropy = new AntiEntropy({
    self: 0,
    store,
    transport: { self: 0, send: () => {}, onMessage: () => {}, close: () => {}, stats: () => { throw new Error("bench failed: unused") } },
    clock: { nowMs: () => performance.now(), wallMs: () => Date.now(), setTimer: () => ({ timerId: 0 }), clearTimer: () => {} },
    config: () => clusterConfigDefaults.antiEntropy,
    ring: () => ring,
    placement: () => placementOf(ring),
    scan: () => Promise.resolve({ peers: [], leaves: [], tombstones: [], keys: 0 }),
    merge: () => Promise.resolve(0),
    purge: () => Promise.resolve(false),
    isUp: () => true,
    generationOf: () => 1,
    purgeAllowed: () => false,
  });
  await sleep(0); // the stubbed rebuild ends
  let cursor = 0;
  const bench = new Bench({ time: taskTimeMs, warmupTime: 100, throws: true });
  bench.add("onWrite", () => {
    for (let call = 0; call < UPKEEP_CALLS_PER_ITERATION; call++) {
      const at = cursor++ % sample.length;
      // The key goes from its own versions to its neighbour's: a real-sized, different version set.
      antiEntropy.onWrite(sample[at]!.key, sample[at]!.versions, sample[(at + 1) % sample.length]!.versions);
    }
  });
  await bench.run();
  antiEntropy.stop();
  return (timeTask(bench, "onWrite") * 1000) / UPKEEP_CALLS_PER_ITERATION;
}

// ---- background cost -----------------------------------------------------------------------------

async function backgroundArm(nodes: number, arm: "on" | "off", options: AntiEntropySuiteOptions): Promise<BackgroundArm> {
  const { directory, cleanup } = temporaryDirectory(`ae-${arm}`);
  const { inFlight, operationsPerIteration, seconds } = options.background;
  const intervalMs = clusterConfigDefaults.antiEntropy.intervalMs;
  const peer = await openLoomClusterPeer({ nodes, ...REPLICATION, dataDir: directory, requestTimeoutMs: REQUEST_TIMEOUT_MS, loadInFlight: 2 * inFlight, antiEntropy: { intervalMs, enabled: arm === "on" } });
  try {
    await peer.load(options.ycsb);
    const stream = options.ycsb.streams.get("a")!;
    const task = throughputTask(peer, stream, { inFlight, operationsPerIteration });
    let operations = 0;
    const bench = new Bench({ time: seconds * 1000, warmupTime: 250, warmupIterations: 2, iterations: 8, throws: true });
    bench.add("a", async () => {
      await task();
      operations += operationsPerIteration;
    });
    const allNodes = Array.from({ length: nodes }, (_, node) => node);
    const before = await counters(peer, allNodes);
    const cpuBefore = process.cpuUsage();
    await bench.run();
    const cpu = process.cpuUsage(cpuBefore);
    const traffic = trafficBetween(before, await counters(peer, allNodes));
    const result = bench.getTask("a")!.result;
    if (result.state !== "completed") throw new Error(`bench failed: workload A ${arm} arm ended ${result.state}`);
    const measured = {
      nodes,
      arm,
      intervalMs,
      opsPerSecond: (operationsPerIteration * 1000) / result.latency.mean,
      rmePercent: result.latency.rme,
      operations,
      cpuUsPerOperation: (cpu.user + cpu.system) / operations,
      traffic,
    };
    options.log(`background ${nodes} nodes, anti-entropy ${arm}: ${Math.round(measured.opsPerSecond)} ops/s ±${measured.rmePercent.toFixed(1)}%, ${measured.cpuUsPerOperation.toFixed(1)} µs CPU/op; ${JSON.stringify(traffic)}`);
    return measured;
  } finally {
    await peer.close();
    cleanup();
  }
}

// ---- the suite -----------------------------------------------------------------------------------

export async function runAntiEntropySuite(options: AntiEntropySuiteOptions): Promise<AntiEntropySuiteResult> {
  const random = createPrng(options.seed >>> 0);
  const values = valuePool(random.fork());
  const { directory, cleanup } = temporaryDirectory("ae");
  const wipe: WipeResult[] = [];
  const divergence: DivergenceResult[] = [];
  try {
    const cluster = await createCluster({ dataDir: directory, nodes: 3, ...REPLICATION, requestTimeoutMs: REQUEST_TIMEOUT_MS, antiEntropy: { intervalMs: options.intervalMs } });
    try {
      options.log(`anti-entropy suite: loading ${options.keys.toLocaleString("en-US")} keys on 3 nodes, N=3`);
      const loaded = { cluster, values, contexts: await load(cluster, options.keys, values) };
      if ((await timeUntil(() => rootsAgree(cluster), CONVERGE_LIMIT_MS)) === undefined) throw new Error("bench failed: roots disagree after the load");
      for (const keysPerSecond of [clusterConfigDefaults.antiEntropy.keysPerSecond, options.fastKeysPerSecond]) wipe.push(await wipeOnce(loaded, keysPerSecond, options));
      await cluster.configure({ antiEntropy: { keysPerSecond: clusterConfigDefaults.antiEntropy.keysPerSecond } });
      const chosen = drawKeys(random.fork(), options.keys, options.divergentKeys);
      const runs = options.bucketCounts.flatMap((buckets) => Array.from({ length: options.divergenceRuns }, () => ({ buckets, intervalMs: options.intervalMs })));
      // Last: an interval change applies only after the pending round's timer fires.
      if (options.divergenceAtDefaultInterval) runs.push({ buckets: clusterConfigDefaults.antiEntropy.buckets, intervalMs: clusterConfigDefaults.antiEntropy.intervalMs });
      for (const [round, run] of runs.entries()) divergence.push(await divergeOnce(loaded, { ...run, chosen, round }, options));
    } finally {
      await cluster.close();
    }
    // A full copy: node 0's store as it is on disk, read in this thread once the cluster closed.
    const store = await openStore({ directory: join(directory, "node-0") });
    try {
      const { fullCopy, sample } = scanStore(store);
      options.log(`full copy: ${JSON.stringify(fullCopy)}`);
      const onWriteUs = await measureOnWrite(store, sample, 1000);
      options.log(`AntiEntropy.onWrite: ${onWriteUs.toFixed(2)} µs per call`);
      const background: BackgroundArm[] = [];
      for (const nodes of options.background.nodes) {
        for (const arm of backgroundOrder()) background.push(await backgroundArm(nodes, arm, options));
      }
      const { seconds, inFlight, operationsPerIteration } = options.background;
      const armOptions = { records: options.ycsb.recordCount, seed: options.ycsbSeed, seconds, inFlight, operationsPerIteration, intervalMs: clusterConfigDefaults.antiEntropy.intervalMs };
      const profile = options.profile ? profileArm(armOptions) : { skipped: "--no-profile" };
      options.log(`profiled arm: ${JSON.stringify(profile)}`);
      const upkeep = { onWriteUs, replicaWritesPerOperation: 0.5 * REPLICATION.n, profile };
      return {
        keys: options.keys,
        intervalMs: options.intervalMs,
        fullCopy,
        wipe,
        divergence,
        background,
        backgroundSeconds: options.background.seconds,
        records: options.ycsb.recordCount,
        inFlight: options.background.inFlight,
        upkeep,
      };
    } finally {
      await store.close();
    }
  } finally {
    cleanup();
  }
}

// ---- the report ----------------------------------------------------------------------------------

export const ANTI_ENTROPY_BEGIN = "<!-- BEGIN GENERATED antientropy by bench/run.ts --suite antientropy: everything up to the END marker is rewritten on each run -->";
export const ANTI_ENTROPY_END = "<!-- END GENERATED antientropy -->";

export const antiEntropySection = {
  begin: ANTI_ENTROPY_BEGIN,
  end: ANTI_ENTROPY_END,
  intro: () => "# Anti-entropy (wipe rebuild, divergence, background cost)\n\nGenerated by `npm run bench -- --suite antientropy`; see bench/antientropy.bench.ts.\n\n",
};

/** Divergence target: bytes exchanged at the default bucket count, as a share of a full copy. */
const DIVERGENCE_TARGET = 0.15;
/** Background target: throughput lost (and CPU per operation gained) with anti-entropy on. */
const BACKGROUND_TARGET = 0.05;

const count = (value: number) => Math.round(value).toLocaleString("en-US");
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
const percent = (share: number) => `${(100 * share).toFixed(Math.abs(share) < 0.001 ? 2 : 1)}%`;
const seconds = (ms: number | undefined) => (ms === undefined ? `not within ${CONVERGE_LIMIT_MS / 1000} s` : `${(ms / 1000).toFixed(2)} s`);


function renderWipe(result: AntiEntropySuiteResult): string[] {
  const full = result.fullCopy.bytes;
  const rows = result.wipe.map(
    (wipe) =>
      `| ${count(wipe.keysPerSecond)} | ${seconds(wipe.rebuildMs)} | ${wipe.rebuildMs === undefined ? "–" : count(wipe.keysHeld / (wipe.rebuildMs / 1000))} | ${count(wipe.keysHeld)} | ${count(wipe.traffic.keysRepaired)} | ${count(wipe.traffic.keysSent)} | ${mib(wipe.traffic.bytesSent)} | **${(wipe.traffic.bytesSent / full).toFixed(2)}×** | ${(wipe.cpuMs / 1000).toFixed(1)} s | ${wipe.falseDowns} |`,
  );
  return [
    "### Wipe rebuild: one node of three loses its disk",
    "",
    `\`faults.wipe(1)\` on a 3-node cluster with N=3 holding ${count(result.keys)} keys (16-byte keys, 100-byte values), antiEntropy.intervalMs ${result.intervalMs}. Rebuild time runs from the wiped node's restart until every pair of nodes holds equal roots and node 1 holds all ${count(result.keys)} keys again (stats({ keys: true })); CPU is the whole process's (every thread) over that time. Bytes and keys are the sums of every node's counters from before the wipe until every repair step has ended (which can be after the roots agree: a sender may still be pushing keys the wiped node already has); bytesSent counts trees, item hashes and entries; the wiped node's counters restart with it, so its whole count is its delta. "False downs" counts gossip marking a node other than the wiped one down at the main thread meanwhile.`,
    "",
    "| keysPerSecond | rebuild time | keys/s | keys held after | keys repaired | keys sent (all nodes) | anti-entropy bytes sent | ÷ full copy | CPU, all threads | false downs |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `A full copy of one node is ${mib(full)}: the sum over node 0's ${count(result.fullCopy.entries)} entries of key (${mib(result.fullCopy.keyBytes)}), version blob (${mib(result.fullCopy.versionBytes)}, ${(result.fullCopy.versionBytes / Math.max(1, result.fullCopy.entries)).toFixed(1)} bytes per key on average) and value bytes (${mib(result.fullCopy.valueBytes)}), from a scan of node 0's store opened in the bench's thread after the cluster closed (after the divergence runs, so the divergent keys carry their updated versions).`,
    "",
    `keysPerSecond paces the pushing side. A node takes part in one repair at a time, so the wiped node is refilled by one peer (its other peer finds it busy, then finds the trees equal), and a push ends only once the receiver has merged it: each key travels once, and "÷ full copy" above 1× is the tree levels and the 8-byte item hash of every key the full peer sends first. At the default the rebuild takes about keys ÷ keysPerSecond (${(result.keys / clusterConfigDefaults.antiEntropy.keysPerSecond).toFixed(1)} s here); at the higher setting the throttle no longer binds and the keys/s column is what the machine merges (one batch write per message of 128 keys, four messages in flight).`,
  ];
}

function renderDivergence(result: AntiEntropySuiteResult): string[] {
  const full = result.fullCopy.bytes;
  const divergent = result.divergence[0]?.divergentKeys ?? 0;
  const defaultBuckets = clusterConfigDefaults.antiEntropy.buckets;
  const rows = result.divergence.map((run) => {
    const isDefault = run.buckets === defaultBuckets;
    return `| ${count(run.buckets)}${isDefault ? " (default)" : ""} | ${count(run.intervalMs)} | ${seconds(run.agreeMs)} | ${count(run.traffic.segmentsDiffering)} | ${count(run.traffic.keysSent)} | ${count(run.traffic.keysRepaired)} | ${count(run.stillStale)} | ${run.falseDowns} | ${mib(run.traffic.bytesSent)} | **${percent(run.traffic.bytesSent / full)}** |`;
  });
  const atDefault = result.divergence.filter((run) => run.buckets === defaultBuckets).map((run) => run.traffic.bytesSent / full);
  const shortRuns = result.divergence.filter((run) => run.buckets === defaultBuckets && run.intervalMs === result.intervalMs).length;
  const target =
    atDefault.length === 0
      ? []
      : [
          "",
          `Target ≤ 15% of a full copy at the default ${count(defaultBuckets)} buckets: ${atDefault.map(percent).join(" and ")} → **${atDefault.every((share) => share <= DIVERGENCE_TARGET) ? "met" : atDefault.some((share) => share <= DIVERGENCE_TARGET) ? "met in some runs only" : "missed"}**.`,
        ];
  return [
    "### Divergence at random: 1% of the keys stale on one node",
    "",
    `Same cluster. Node 2 is crashed, ${count(divergent)} of the ${count(result.keys)} keys (drawn once with a seeded PRNG, the same keys in every run) are updated with W=2 on nodes 0 and 1 (three nodes: no fallback, so no hint), then node 2 restarts. Time runs from the restart until every pair of nodes holds equal roots; bytes and keys are every node's counters from the restart until every repair step has ended. The bucket count is set with \`configure\` (every tree rebuilt, roots agreeing) before the runs at that count; ${shortRuns} runs per count at intervalMs ${result.intervalMs}, and one last run at the default bucket count and the default interval, where a repair has time to land before the next exchange.`,
    "",
    "| buckets | intervalMs | time to agree | segments found differing (all exchanges) | keys sent | keys repaired | divergent keys still stale on node 2 | false downs | anti-entropy bytes sent | ÷ full copy |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    ...target,
    "",
    "An exchange sends the tree's branches, then the leaves of the branches that differ, then 8 bytes per key of each differing segment from each side, then the entries the other side lacks. Few buckets: most segments hold a divergent key, so nearly every key's 8-byte hash travels. Many buckets: fewer keys per differing segment, but the branch and leaf levels grow (sqrt(buckets) branches, each with sqrt(buckets) leaves, 8 bytes each). An item hash does not say which side is newer, so each side pushes its version of every key whose hash the other lacks: 2 keys sent per divergent key (the new version to the stale node, its old one back, which the receiver finds dominated and drops). A node takes part in one repair at a time, so the stale node is repaired by one peer, and a push ends only when the receiver has merged it, so no exchange finds a key missing that is on its way.",
  ];
}

/** Arms per setting (on, off) in the background-cost comparison. */
const BACKGROUND_ARMS = 5;

/** on, off, off, on, on, off, …: each setting goes first as often as second, so drift cancels. */
function backgroundOrder(): ("on" | "off")[] {
  const order: ("on" | "off")[] = [];
  for (let pair = 0; pair < BACKGROUND_ARMS; pair++) order.push(...(pair % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const)));
  return order;
}

/** "4.0% more" or "4.0% less". */
const change = (share: number, more: string, less: string) => `${percent(Math.abs(share))} ${share >= 0 ? more : less}`;
const verdict = (cost: number) => (cost <= BACKGROUND_TARGET ? "**met**" : "**missed**");

function renderBackground(result: AntiEntropySuiteResult): string[] {
  const lines = [
    "### Background cost: YCSB workload A with anti-entropy on and off",
    "",
    `Workload A (50% reads, 50% updates, zipfian; bench/ycsb.bench.ts) on ${count(result.records)} records, ${result.inFlight} operations in flight, N=3 W=2 R=2; each arm a fresh cluster, loaded, then timed for ${result.backgroundSeconds} s by tinybench; arms run in the order on, off, off, on, on, off, …, ${BACKGROUND_ARMS} of each, so each setting runs first as often as second and drift cancels, and each setting is summarised by the median of its ${BACKGROUND_ARMS} arms (an arm or two slowed by the shared machine do not move it). The on arm runs anti-entropy at its defaults; the off arm switches it off (\`antiEntropy.enabled: false\`: no trees kept, no exchanges), so the difference is the whole cost: the per-write tree upkeep and the exchanges. CPU is process.cpuUsage() (every thread of the process) over the timed window, per operation; on a shared machine it is steadier than ops/s, though a slower arm still spreads fixed costs (timers, group commits) over fewer operations.`,
    "",
    "| nodes | arm | antiEntropy.intervalMs | ops/s | CPU µs/op | exchanges | segments differing | keys sent | anti-entropy bytes |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ...result.background.map(
      (arm) =>
        `| ${arm.nodes} | ${arm.arm} | ${count(arm.intervalMs)} | ${count(arm.opsPerSecond)} ±${arm.rmePercent.toFixed(0)}% | ${arm.cpuUsPerOperation.toFixed(1)} | ${count(arm.traffic.exchanges)} | ${count(arm.traffic.segmentsDiffering)} | ${count(arm.traffic.keysSent)} | ${mib(arm.traffic.bytesSent)} |`,
    ),
    "",
  ];
  for (const nodes of new Set(result.background.map((arm) => arm.nodes))) {
    const arms = (kind: "on" | "off") => result.background.filter((arm) => arm.nodes === nodes && arm.arm === kind);
    const on = { ops: median(arms("on").map((arm) => arm.opsPerSecond)), cpu: median(arms("on").map((arm) => arm.cpuUsPerOperation)) };
    const off = { ops: median(arms("off").map((arm) => arm.opsPerSecond)), cpu: median(arms("off").map((arm) => arm.cpuUsPerOperation)) };
    const throughputCost = 1 - on.ops / off.ops;
    const cpuCost = on.cpu / off.cpu - 1;
    const cpus = [...arms("on"), ...arms("off")].map((arm) => arm.cpuUsPerOperation);
    const spread = (kind: "on" | "off") => {
      const values = arms(kind).map((arm) => arm.cpuUsPerOperation);
      return Math.max(...values) / Math.min(...values) - 1;
    };
    const noise = Math.max(spread("on"), spread("off"));
    lines.push(
      `- **Anti-entropy on vs off, ${nodes} nodes**: on vs off, medians of the ${BACKGROUND_ARMS} arms each: ${count(on.ops)} vs ${count(off.ops)} ops/s (${change(throughputCost, "less", "more")} throughput), ${on.cpu.toFixed(1)} vs ${off.cpu.toFixed(1)} µs CPU per operation (${change(cpuCost, "more", "less")}); ` +
        `two arms of one setting differ by up to ${percent(noise)} in CPU per operation (${Math.min(...cpus).toFixed(1)}–${Math.max(...cpus).toFixed(1)} µs over all arms)${Math.abs(cpuCost) < noise ? ", so the difference is within the noise" : ""}. Target ≤ ${percent(BACKGROUND_TARGET)}: ${verdict(Math.max(throughputCost, cpuCost))}.`,
    );
  }
  lines.push(...renderUpkeep(result.upkeep));
  return lines;
}

function renderUpkeep(upkeep: UpkeepResult): string[] {
  const perOperationUs = upkeep.onWriteUs * upkeep.replicaWritesPerOperation;
  const lines: string[] = [];
  const profile = upkeep.profile;
  if ("skipped" in profile) {
    lines.push(`- **Per-write tree upkeep**: not profiled in this run (${profile.skipped}).`);
  } else {
    const upkeepShare = profile.onWrite + profile.extraGet;
    lines.push(
      `- **Per-write tree upkeep, ${percent(upkeepShare)} of the CPU under load** (target ≤ ${percent(BACKGROUND_TARGET)}: ${verdict(upkeepShare)}): one more workload A arm with anti-entropy on (3 nodes, ${count(profile.arm.opsPerSecond)} ops/s, ${profile.arm.cpuUsPerOperation.toFixed(1)} µs CPU per operation) ran under \`node --cpu-prof\`; of the busy time of every thread (main, nodes, storage pool) in its timed window (${(profile.busyMs / 1000).toFixed(1)} s), ` +
        `AntiEntropy.onWrite took ${percent(profile.onWrite)} and any Store.get that TrackedStore.write still makes to learn the versions a write replaces (the write paths hand it the versions they just read) ${percent(profile.extraGet)}; the exchanges took ${percent(profile.exchanges)}. ` +
        `A lower bound: the garbage these calls leave is collected under "(garbage collector)", counted elsewhere.`,
      `  Hottest functions on the worker threads (nodes and storage pool; self time, share of their busy time): ${profile.hottest.map((entry) => `${entry.name} ${percent(entry.share)}`).join(", ")}.`,
    );
  }
  lines.push(
    `- AntiEntropy.onWrite timed alone in the bench's thread (tinybench, ${UPKEEP_CALLS_PER_ITERATION} calls per iteration over ${UPKEEP_SAMPLE} real keys and versions from node 0's store): **${upkeep.onWriteUs.toFixed(2)} µs per replica write** (two SipHash item hashes of the key and its sorted version blobs, the key's ring position (which also gives its segment) and its replicas, two tree flips); workload A makes ${upkeep.replicaWritesPerOperation} replica writes per operation (half the operations are updates, each written on N=3 replicas): ${perOperationUs.toFixed(1)} µs per operation.`,
  );
  return lines;
}

export function renderAntiEntropyResults(result: AntiEntropySuiteResult, context: { date: string; command: string; machine: string; load: string }): string {
  const defaults = clusterConfigDefaults.antiEntropy;
  return [
    `## Anti-entropy results of ${context.date}`,
    "",
    `Machine: ${context.machine}. Command: \`${context.command}\`. ${context.load} Defaults: antiEntropy.buckets ${defaults.buckets}, intervalMs ${defaults.intervalMs}, keysPerSecond ${defaults.keysPerSecond}.`,
    "",
    ...renderWipe(result),
    "",
    ...renderDivergence(result),
    "",
    ...renderBackground(result),
  ].join("\n");
}
