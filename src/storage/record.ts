/**
 * The unit every storage layer stores: a key, a sequence number, a kind and an opaque payload.
 * Memtable, commit log batches and SSTables all order records by key ascending (unsigned bytes),
 * then sequence descending (newest first). The payload encoding belongs to the engine
 * (version_set_format.ts); lower layers never look inside it.
 */

/** Append-only; 0 is reserved so that zeroed memory never parses as a record. */
export const RecordKind = {
  /** The payload is the key's complete version set: it supersedes every older record of the key. */
  put: 1,
  /** The payload adds versions to whatever older records hold; the merge rule resolves them. */
  merge: 2,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

export function isRecordKind(value: number): value is RecordKind {
  return value === RecordKind.put || value === RecordKind.merge;
}

/** Largest sequence number: sequences are stored as u64 but kept as JS numbers. */
export const SEQUENCE_MAX = Number.MAX_SAFE_INTEGER;

export interface StoredRecord {
  readonly key: Uint8Array;
  readonly sequence: number;
  readonly kind: RecordKind;
  readonly payload: Uint8Array;
}
