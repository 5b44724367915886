/**
 * The cluster's shared flush/compaction pool as a node sees it: jobs cross a real MessagePort with
 * comlink, results come back, and a job's typed error comes back typed.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MessageChannel } from "node:worker_threads";
import { RemoteStorageJobs, serveStorageJobs } from "../src/runtime/remote_storage_jobs.ts";
import type { StorageJobs } from "../src/storage/storage_jobs.ts";
import type { CompactionRequest, FlushRequest, TableSummary } from "../src/storage/table_jobs.ts";
import type { ScanRequest } from "../src/storage/scan_job.ts";
import { CorruptionError, IoError } from "../src/util/errors.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const summary = { path: "/data/000007.sst", records: 3, bytes: 512 } as unknown as TableSummary;

/** Flushes succeed; compactions fail the way the request's path asks. */
const fakeJobs: StorageJobs = {
  flush: () => Promise.resolve(summary),
  compact: (request: CompactionRequest) => {
    const path = request.outputPath;
    if (path.endsWith("io")) return Promise.reject(new IoError(`compaction failed: write ${path}: ENOSPC`, path));
    if (path.endsWith("corrupt")) return Promise.reject(new CorruptionError("block checksum mismatch", path, 4096));
    return Promise.reject(new RangeError("something else"));
  },
  scan: (request: ScanRequest) => Promise.resolve({ folded: request.params }),
  close: () => Promise.resolve(),
};

function connect(): { remote: RemoteStorageJobs; close: () => void } {
  const { port1, port2 } = new MessageChannel();
  serveStorageJobs(fakeJobs, port1);
  return { remote: new RemoteStorageJobs(port2), close: () => port1.close() };
}

const compaction = (outputPath: string) => ({ outputPath }) as unknown as CompactionRequest;

test("a job's result crosses the port", async () => {
  const { remote, close } = connect();
  try {
    assert.equal(await remote.flush({} as FlushRequest), summary);
  } finally {
    await remote.close();
    close();
  }
});

test("a job's IoError and CorruptionError come back as the same typed errors, with path and offset", async () => {
  const { remote, close } = connect();
  try {
    const io = await rejectsWithCode(() => remote.compact(compaction("/data/out-io")), "LOOM_IO");
    assert.is(io.path, "/data/out-io");
    assert.is(io.message, "compaction failed: write /data/out-io: ENOSPC");
    const corrupt = await rejectsWithCode(() => remote.compact(compaction("/data/out-corrupt")), "LOOM_CORRUPTION");
    assert.is(corrupt.offset, 4096);
    assert.is(corrupt.message, "corruption in /data/out-corrupt at offset 4096: block checksum mismatch");
    const other = await remote.compact(compaction("/data/out")).then(() => undefined, (error: unknown) => error);
    assert.is((other as Error).name, "RangeError");
    assert.is((other as Error).message, "something else");
  } finally {
    await remote.close();
    close();
  }
});

test("after close, jobs are refused with LOOM_CLOSED", async () => {
  const { remote, close } = connect();
  await remote.close();
  close();
  await rejectsWithCode(() => remote.flush({} as FlushRequest), "LOOM_CLOSED");
});

test.run();
