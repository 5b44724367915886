/**
 * One piscina pool for every node of a cluster (docs/architecture.md): the main thread
 * owns it and serves each node worker's flush and compaction jobs over a MessagePort with comlink
 * (a control-plane call a few times a second per node, where an RPC library earns its cost). A
 * frozen memtable's SharedArrayBuffer crosses both hops, node to main to pool thread, uncopied.
 *
 * Thread contract: `serveStorageJobs` runs in the thread that owns the pool (main);
 * `RemoteStorageJobs` in the node worker, used by its Store.
 */
import { expose, wrap, type Remote } from "comlink/dist/esm/comlink.mjs";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import type { MessagePort } from "node:worker_threads";
import type { StorageJobs } from "../storage/storage_jobs.ts";
import type { CompactionRequest, FlushRequest, TableSummary } from "../storage/table_jobs.ts";
import { decodeError, encodeError, type PlainError } from "../util/error_codec.ts";
import { ClosedError } from "../util/errors.ts";

/**
 * A job's outcome as it crosses the port. Failures travel as data (the error codec) so that the
 * caller gets the typed error back (comlink's own error transfer keeps only name, message and stack).
 */
type Outcome = { readonly ok: true; readonly summary: TableSummary } | { readonly ok: false; readonly error: PlainError };

interface JobCalls {
  flush(request: FlushRequest): Promise<Outcome>;
  compact(request: CompactionRequest): Promise<Outcome>;
}

/** Serves `jobs` to the node worker holding the other end of `port`. Close the port to stop. */
export function serveStorageJobs(jobs: StorageJobs, port: MessagePort): void {
  const settle = (job: () => Promise<TableSummary>): Promise<Outcome> =>
    job().then(
      (summary): Outcome => ({ ok: true, summary }),
      (error: unknown): Outcome => ({ ok: false, error: encodeError(error) }),
    );
  const calls: JobCalls = {
    flush: (request) => settle(() => jobs.flush(request)),
    compact: (request) => settle(() => jobs.compact(request)),
  };
  expose(calls, nodeEndpoint(port));
}

/** StorageJobs run by the pool behind `port` (see serveStorageJobs). */
export class RemoteStorageJobs implements StorageJobs {
  readonly #port: MessagePort;
  readonly #remote: Remote<JobCalls>;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(port: MessagePort) {
    this.#port = port;
    this.#remote = wrap<JobCalls>(nodeEndpoint(port));
  }

  flush(request: FlushRequest): Promise<TableSummary> {
    return this.#track("flush", () => this.#remote.flush(request).then(unwrap));
  }

  compact(request: CompactionRequest): Promise<TableSummary> {
    return this.#track("compact", () => this.#remote.compact(request).then(unwrap));
  }

  /** Waits for the jobs in flight, then closes the port. The pool itself belongs to its owner. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    this.#port.close();
  }

  #track(action: string, call: () => Promise<TableSummary>): Promise<TableSummary> {
    if (this.#closed) return Promise.reject(new ClosedError(`${action} failed: storage jobs are closed`));
    const job = call();
    this.#inFlight.add(job);
    const forget = () => this.#inFlight.delete(job);
    job.then(forget, forget);
    return job;
  }
}

function unwrap(outcome: Outcome): TableSummary {
  if (outcome.ok) return outcome.summary;
  throw decodeError(outcome.error);
}
