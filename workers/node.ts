/**
 * Node worker entry point, a thin shell around the node core (src/node/node_core.ts): it opens
 * the node's store on the real disk (through a fault-injecting wrapper that passes everything
 * through until `setDiskFault`), connects the data-plane transport to the main thread and, as the
 * main thread hands them over, to every peer (through a wrapper that applies the cluster's link
 * faults), and serves the control API below on workerData.controlPort (typed RPC over comlink).
 * Flushes and compactions go to the cluster's shared pool through workerData.jobsPort.
 *
 * Start-up: posts { kind: "ready" } on parentPort once the store is open, or { kind: "failed",
 * error } (the error codec's form: LockedError, CorruptionError, IoError keep their class) and
 * exits. The store holds its directory's LOCK until `close`; a thread terminated without `close`
 * leaves it held by this process, and the cluster breaks it before it starts the node again.
 */
import { randomBytes } from "node:crypto";
import process from "node:process";
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { FaultyFileSystem, type DiskFault } from "../src/io/faulty_file_system.ts";
import { createPrng } from "../src/io/prng.ts";
import { RealClock } from "../src/io/real_clock.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { HINTS_DIRECTORY, hintMemtableBytes, HintStore } from "../src/handoff/hint_store.ts";
import { joinPath } from "../src/io/file_system.ts";
import { CounterLease } from "../src/node/counter_lease.ts";
import { NodeActor } from "../src/node/node_actor.ts";
import { NodeCore } from "../src/node/node_core.ts";
import { MAIN_PEER, type NodeSettings, type RingSpec, type StreamPlan } from "../src/node/node_messages.ts";
import { buildTrees, treeBuildFolderReference, type TreeBuild } from "../src/antientropy/tree_build.ts";
import { RemoteStorageJobs } from "../src/runtime/remote_storage_jobs.ts";
import type { NodeWorkerControl, NodeWorkerData } from "../src/runtime/node_worker_api.ts";
import { serve } from "../src/runtime/typed_rpc.ts";
import { Store } from "../src/storage/store.ts";
import { FaultyTransport } from "../src/transport/faulty_transport.ts";
import type { LinkFaults } from "../src/transport/link_faults.ts";
import { PortTransport } from "../src/transport/port_transport.ts";
import { encodeError } from "../src/util/error_codec.ts";
import { createContextSigner } from "../src/version/context_signer.ts";
import { dominanceMergeRuleReference } from "../src/version/sibling_merge_rule.ts";

const data = workerData as NodeWorkerData;
const port = parentPort!;
const jobs = new RemoteStorageJobs(data.jobsPort);
const disk = new FaultyFileSystem(new RealFileSystem());
const clock = new RealClock();
/** Opens the node's store, its hint store beside it, its counter lease and its actor. */
async function openNode(): Promise<{ store: Store; hintStore: Store; lease: CounterLease; actor: NodeActor }> {
  const options = { fs: disk, clock, fsync: data.fsync, mergeRule: dominanceMergeRuleReference };
  const store = await Store.open({ ...options, directory: data.directory, jobs, ownsJobs: true, memtableBytes: data.memtableBytes });
  try {
    const hintsDirectory = joinPath(data.directory, HINTS_DIRECTORY);
    disk.makeDirectory(hintsDirectory);
    // Hints are few and short-lived: a quarter of the node's memtable is plenty.
    const hintStore = await Store.open({ ...options, directory: hintsDirectory, jobs, ownsJobs: false, memtableBytes: hintMemtableBytes(data.memtableBytes) });
    return { store, hintStore, lease: CounterLease.open(disk, data.directory), actor: NodeActor.start(disk, data.directory, () => data.freshActor) };
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}

let opened: Awaited<ReturnType<typeof openNode>>;
try {
  opened = await openNode();
} catch (error) {
  // The main thread rebuilds the typed error (CorruptionError, IoError, LockedError, ...) from this.
  port.postMessage({ kind: "failed", error: encodeError(error) });
  await jobs.close();
  process.exit(1);
}
const { store, hintStore, lease, actor } = opened;
const ports = new PortTransport({ self: data.nodeId, flush: "adaptive" });
ports.connect(MAIN_PEER, data.mainPort);
// Link faults draw from their own generator: real threads need no replay, only independence.
const seed = randomBytes(4).readUInt32LE(0);
const transport = new FaultyTransport({ inner: ports, clock, prng: createPrng(seed), client: MAIN_PEER });
transport.setFaults(data.linkFaults);
const node = new NodeCore({ nodeId: data.nodeId, store, transport, clock, signer: createContextSigner(data.contextSecret),
  lease,
  actor: actor.actor,
  fallbackActors: data.fallbackActors,
  recordActor: (replacement: number) => actor.replace(replacement),
  prng: createPrng(randomBytes(4).readUInt32LE(0)),
  generation: data.start.generation,
  settings: data.start,
  hints: new HintStore(hintStore),
  // Tree rebuilds read a pinned snapshot in the cluster's pool; a failed store (read-only, so
  // unchanging) is folded here instead, as it can no longer freeze its memtable.
  scanTrees: (params) => (store.failure ? Promise.resolve(buildTrees(params, store.entries())) : (store.scan(treeBuildFolderReference, params) as Promise<TreeBuild>)),
});

const control: NodeWorkerControl = {
  stats: async (scan: boolean) => node.stats({ scan }),
  stream: (plan: StreamPlan) => node.streams.streamKeys(plan),
  cleanup: (ring: RingSpec, keysPerSecond: number, freshActor: number) => node.cleanup(ring, keysPerSecond, freshActor),
  abortStream: async (streamId: number) => node.streams.abortStream(streamId),
  configure: async (settings: NodeSettings) => node.configure(settings),
  peerExited: async (peer: number, generation: number) => node.peerExited(peer, generation),
  compact: () => node.compact(),
  connect: async (peer: number, peerPort: MessagePort) => {
    ports.disconnect(peer);
    ports.connect(peer, peerPort);
  },
  disconnect: async (peer: number) => ports.disconnect(peer),
  setLinkFaults: async (faults: LinkFaults) => transport.setFaults(faults),
  setDiskFault: async (fault: DiskFault | null) => disk.setFault(fault),
  pause: async (ms: number) => {
    // Block after this answer has left: a SharedArrayBuffer wait stops the thread's event loop.
    setImmediate(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms));
  },
  close: async () => {
    node.stop();
    try {
      await hintStore.close().catch(() => {});
      // A store that cannot close cleanly (a disk fault) ends the life unclean: no markClean.
      const closed = await store.close().then(() => true, () => false);
      if (closed && !store.failure) actor.markClean(); // a clean end: the next life keeps the actor
    } finally {
      ports.close();
      // The thread exits whatever happened above: the cluster waits for that exit.
      setImmediate(() => process.exit(0));
    }
  },
};
serve(control, data.controlPort);
port.postMessage({ kind: "ready" });
