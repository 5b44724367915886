/**
 * Node worker entry point, a thin shell around one node life (src/node/node_life.ts): it opens
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
import { getHeapStatistics } from "node:v8";
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { FaultyFileSystem, type DiskFault } from "../src/io/faulty_file_system.ts";
import { createPrng } from "../src/io/prng.ts";
import { RealClock } from "../src/io/real_clock.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { NodeLife } from "../src/node/node_life.ts";
import { MAIN_PEER, type NodeSettings, type RingSpec, type StreamPlan } from "../src/node/node_messages.ts";
import { RemoteStorageJobs } from "../src/runtime/remote_storage_jobs.ts";
import type { NodeWorkerControl, NodeWorkerData } from "../src/runtime/node_worker_api.ts";
import { serve } from "../src/runtime/typed_rpc.ts";
import { FaultyTransport } from "../src/transport/faulty_transport.ts";
import type { LinkFaults } from "../src/transport/link_faults.ts";
import { PortTransport } from "../src/transport/port_transport.ts";
import { encodeError } from "../src/util/error_codec.ts";
import { createContextSigner } from "../src/version/context_signer.ts";

const data = workerData as NodeWorkerData;
const port = parentPort!;
const jobs = new RemoteStorageJobs(data.jobsPort);
const disk = new FaultyFileSystem(new RealFileSystem());
disk.setFault(data.diskFault);
const clock = new RealClock();
const ports = new PortTransport({ self: data.nodeId, flush: "adaptive" });
// Link faults draw from their own generator: real threads need no replay, only independence.
const transport = new FaultyTransport({ inner: ports, clock, prng: createPrng(randomBytes(4).readUInt32LE(0)), client: MAIN_PEER });
transport.setFaults(data.linkFaults);

let life: NodeLife;
try {
  life = await NodeLife.open({
    nodeId: data.nodeId,
    directory: data.directory,
    fs: disk,
    clock,
    jobs,
    fsync: data.fsync,
    memtableBytes: data.memtableBytes,
    connect: () => transport,
    signer: createContextSigner(data.contextSecret),
    prng: createPrng(randomBytes(4).readUInt32LE(0)),
    generation: data.start.generation,
    settings: data.start,
    gossipTable: data.start.gossipTable,
    cleanup: data.start.cleanup,
    freshActor: data.freshActor,
    fallbackActors: data.fallbackActors,
    treeScansInPool: true,
  });
} catch (error) {
  // The main thread rebuilds the typed error (CorruptionError, IoError, LockedError, ...) from this.
  port.postMessage({ kind: "failed", error: encodeError(error) });
  await jobs.close();
  process.exit(1);
}
ports.connect(MAIN_PEER, data.mainPort);
const node = life.core;

const control: NodeWorkerControl = {
  stats: async (scan: boolean) => {
    const heap = getHeapStatistics();
    return { ...node.stats({ scan }), heap: { usedBytes: heap.used_heap_size, totalBytes: heap.total_heap_size, externalBytes: heap.external_memory ?? 0 } };
  },
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
    try {
      await life.close();
    } finally {
      ports.close();
      // The thread exits whatever happened above: the cluster waits for that exit.
      setImmediate(() => process.exit(0));
    }
  },
};
serve(control, data.controlPort);
port.postMessage({ kind: "ready" });
