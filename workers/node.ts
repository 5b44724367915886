/**
 * Node worker entry point: opens the node's store (its flushes and compactions go to the cluster's
 * shared pool through workerData.jobsPort), connects its transport to the main thread and (as the
 * main thread hands them over) to every peer, and runs a NodeRuntime. Control messages arrive on
 * parentPort (see Control below): connect, disconnect, sync, stats, stream, close.
 *
 * Start-up: posts `{ kind: "ready" }` once the store is open, or `{ kind: "failed", error }` (a
 * PlainError: LockedError, CorruptionError, IoError keep their class) and exits. The store holds
 * its directory's LOCK until `close`; a thread terminated without `close` leaves it held by this
 * process, and the cluster breaks it before it starts the node again.
 */
import process from "node:process";
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { RealClock } from "../src/io/real_clock.ts";
import { NodeRuntime, MAIN_PEER, type RingSpec, type StreamPlan } from "../src/runtime/node_runtime.ts";
import { openStore } from "../src/runtime/open_store.ts";
import { RemoteStorageJobs } from "../src/runtime/remote_storage_jobs.ts";
import type { FsyncPolicy } from "../src/storage/store_config.ts";
import { dominanceMergeRuleReference } from "../src/version/sibling_merge_rule.ts";
import { PortTransport } from "../src/transport/port_transport.ts";
import { encodeError } from "../src/util/error_codec.ts";
import type { Store } from "../src/storage/store.ts";

export interface NodeWorkerData {
  readonly nodeId: number;
  readonly directory: string;
  readonly fsync: FsyncPolicy;
  readonly memtableBytes: number;
  /** The data-plane port to the main thread. */
  readonly mainPort: MessagePort;
  /** Flush and compaction jobs go to the cluster's shared pool through this port. */
  readonly jobsPort: MessagePort;
}

/** Control messages; those that expect an answer carry an `id` the answer echoes. */
type Control =
  | { readonly kind: "connect"; readonly peer: number; readonly port: MessagePort }
  | { readonly kind: "disconnect"; readonly peer: number }
  | { readonly kind: "sync"; readonly id: number }
  | { readonly kind: "stats"; readonly id: number; readonly scan?: boolean }
  | { readonly kind: "stream"; readonly id: number; readonly plan: StreamPlan }
  | { readonly kind: "cleanup"; readonly id: number; readonly ring: RingSpec; readonly keysPerSecond: number }
  | { readonly kind: "abortStream"; readonly streamId: number }
  | { readonly kind: "close" };

const data = workerData as NodeWorkerData;
const port = parentPort!;
const jobs = new RemoteStorageJobs(data.jobsPort);
let store: Store;
try {
  store = await openStore({
    directory: data.directory,
    fsync: data.fsync,
    memtableBytes: data.memtableBytes,
    mergeRule: dominanceMergeRuleReference,
    jobs,
  });
} catch (error) {
  port.postMessage({ kind: "failed", error: encodeError(error) });
  process.exit(1);
}
const transport = new PortTransport({ self: data.nodeId, flush: "adaptive" });
transport.connect(MAIN_PEER, data.mainPort);
const runtime = new NodeRuntime({ nodeId: data.nodeId, store, transport, clock: new RealClock() });

async function onControl(message: Control): Promise<void> {
  if (message.kind === "connect") {
    transport.disconnect(message.peer); // a restarted peer comes back on a new port
    transport.connect(message.peer, message.port);
    return;
  }
  if (message.kind === "disconnect") {
    transport.disconnect(message.peer); // the peer left the cluster
    return;
  }
  if (message.kind === "stats") {
    port.postMessage({ kind: "stats", id: message.id, stats: runtime.stats({ scan: message.scan === true }) });
    return;
  }
  if (message.kind === "sync") {
    port.postMessage({ kind: "synced", id: message.id }); // every earlier control message has been applied
    return;
  }
  if (message.kind === "abortStream") {
    runtime.abortStream(message.streamId);
    return;
  }
  if (message.kind === "cleanup") {
    try {
      port.postMessage({ kind: "cleaned", id: message.id, report: await runtime.cleanup(message.ring, message.keysPerSecond) });
    } catch (error) {
      port.postMessage({ kind: "cleaned", id: message.id, error: error instanceof Error ? error.message : String(error) });
    }
    return;
  }
  if (message.kind === "stream") {
    try {
      port.postMessage({ kind: "streamed", id: message.id, report: await runtime.streamKeys(message.plan) });
    } catch (error) {
      port.postMessage({ kind: "streamed", id: message.id, error: error instanceof Error ? error.message : String(error) });
    }
    return;
  }
  runtime.stop();
  await store.close();
  await jobs.close();
  transport.close();
  port.postMessage({ kind: "closed" });
  port.off("message", onControl);
  process.exit(0);
}

port.on("message", onControl);
port.postMessage({ kind: "ready" });
