/**
 * One piscina pool for every node of a cluster (docs/architecture.md): the main thread
 * owns it and serves each node worker's flush and compaction jobs over a MessagePort with comlink
 * (a control-plane call a few times a second per node, where an RPC library earns its cost). A
 * frozen memtable's SharedArrayBuffer crosses both hops, node to main to pool thread, uncopied.
 * A job's failure comes back as its own error class (typed_rpc.ts).
 *
 * Thread contract: `serveStorageJobs` runs in the thread that owns the pool (main);
 * `RemoteStorageJobs` in the node worker, used by its Store.
 */
import type { MessagePort } from "node:worker_threads";
import type { StorageJobs } from "../storage/storage_jobs.ts";
import type { ScanRequest } from "../storage/scan_job.ts";
import type { CompactionRequest, FlushRequest, TableSummary } from "../storage/table_jobs.ts";
import { ClosedError } from "../util/errors.ts";
import { connect, serve } from "./typed_rpc.ts";

interface JobCalls {
  readonly [name: string]: (request: never) => Promise<unknown>;
  flush(request: FlushRequest): Promise<TableSummary>;
  compact(request: CompactionRequest): Promise<TableSummary>;
  scan(request: ScanRequest): Promise<unknown>;
}

/** Serves `jobs` to the node worker holding the other end of `port`. Close the port to stop. */
export function serveStorageJobs(jobs: StorageJobs, port: MessagePort): void {
  const calls: JobCalls = { flush: (request) => jobs.flush(request), compact: (request) => jobs.compact(request), scan: (request) => jobs.scan(request) };
  serve(calls, port);
}

/** StorageJobs run by the pool behind `port` (see serveStorageJobs). */
export class RemoteStorageJobs implements StorageJobs {
  readonly #port: MessagePort;
  readonly #remote: JobCalls;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(port: MessagePort) {
    this.#port = port;
    this.#remote = connect<JobCalls>(port);
  }

  flush(request: FlushRequest): Promise<TableSummary> {
    return this.#track("flush", () => this.#remote.flush(request));
  }

  compact(request: CompactionRequest): Promise<TableSummary> {
    return this.#track("compact", () => this.#remote.compact(request));
  }

  scan(request: ScanRequest): Promise<unknown> {
    return this.#track("scan", () => this.#remote.scan(request));
  }

  /** Waits for the jobs in flight, then closes the port. The pool itself belongs to its owner. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    this.#port.close();
  }

  #track<T>(action: string, call: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError(`${action} failed: storage jobs are closed`));
    const job = call();
    this.#inFlight.add(job);
    const forget = () => this.#inFlight.delete(job);
    job.then(forget, forget);
    return job;
  }
}
