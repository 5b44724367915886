/**
 * A write's operations → the entries of one commit-log batch: every key and version set checked
 * (store_input.ts) and encoded before anything is written, and the whole batch held to what an
 * empty memtable and one log record can take. Throws LoomRangeError or LoomTypeError; on a throw
 * nothing has changed but the contents of the payload writer.
 */
import type { ByteWriter } from "../util/bytes.ts";
import { LoomRangeError } from "../util/errors.ts";
import { limits } from "../util/limits.ts";
import type { BatchEntry } from "./log_batch.ts";
import { Memtable } from "./memtable.ts";
import { RecordKind } from "./record.ts";
import { toKeyBytes, toVersions, type KeyInput, type VersionInput } from "./store_input.ts";
import { encodeVersionSet, encodeVersionSetView } from "./version_set_format.ts";

export interface WriteOperation {
  readonly key: KeyInput;
  /** "put" replaces the key's version set; "merge" adds versions, resolved by the merge rule. */
  readonly kind: "put" | "merge";
  readonly versions: readonly VersionInput[];
}

/**
 * The batch entries of `operations`, payloads encoded with `payloadWriter`. A batch may need at
 * most half of a `memtableBytes` arena and one commit-log record.
 */
export function validateBatch(operations: readonly WriteOperation[], payloadWriter: ByteWriter, memtableBytes: number): BatchEntry[] {
  if (!Array.isArray(operations) || operations.length === 0) {
    throw new LoomRangeError("write failed: a batch needs at least one operation");
  }
  let needed = 0;
  // One operation (the hot path) keeps its payload as a view of the payload writer, valid until
  // the next write encodes: `write` copies it before it yields. Several operations each own a copy.
  const single = operations.length === 1;
  const entries = operations.map((operation): BatchEntry => {
    const key = toKeyBytes("write", operation?.key, limits.storeKeyBytesMax);
    if (operation.kind !== "put" && operation.kind !== "merge") {
      throw new LoomRangeError(`write failed: operation kind must be "put" or "merge", got ${String(operation.kind)}`);
    }
    const versions = toVersions("write", operation.versions);
    const payload = single ? encodeVersionSetView(versions, payloadWriter) : encodeVersionSet(versions, payloadWriter);
    needed += Memtable.recordBytesMax(key.length, payload.length);
    return { key, kind: operation.kind === "put" ? RecordKind.put : RecordKind.merge, payload };
  });
  // A batch must fit an empty memtable with room to spare, and one commit-log record.
  const limit = Math.min(memtableBytes / 2, limits.logBatchBytesMax);
  if (needed > limit) throw new LoomRangeError(`write failed: batch needs ${needed} bytes, limit is ${limit}`);
  return entries;
}
