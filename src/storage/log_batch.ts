/**
 * The payload of one commit-log record: a group of writes applied atomically, with consecutive
 * sequence numbers starting at `firstSequence`. Framing, checksums and torn-tail handling belong to
 * the log layer (docs/formats/log.md); this is the layer above.
 *
 *   batch  := firstSequence:u64 count:varint entry{count}
 *   entry  := kind:u8 keyLength:varint keyBytes payloadLength:varint payloadBytes
 */
import { ByteReader, ByteWriter } from "../util/bytes.ts";
import { isRecordKind, type StoredRecord } from "./record.ts";

export interface BatchEntry {
  readonly key: Uint8Array;
  readonly kind: StoredRecord["kind"];
  readonly payload: Uint8Array;
}

export function encodeBatch(firstSequence: number, entries: readonly BatchEntry[], writer: ByteWriter): Uint8Array {
  writer.reset();
  writer.u64(firstSequence);
  writer.varint(entries.length);
  for (const entry of entries) {
    writer.u8(entry.kind);
    writer.varint(entry.key.length);
    writer.bytes(entry.key);
    writer.varint(entry.payload.length);
    writer.bytes(entry.payload);
  }
  return writer.view();
}

/** Decodes a batch into records. Throws RangeError on malformed input (the caller reports corruption). */
export function decodeBatch(bytes: Uint8Array): StoredRecord[] {
  const reader = new ByteReader(bytes);
  const firstSequence = reader.u64();
  const count = reader.varint();
  const records: StoredRecord[] = [];
  for (let i = 0; i < count; i++) {
    const kind = reader.u8();
    if (!isRecordKind(kind)) throw new RangeError(`unknown record kind ${kind}`);
    const key = reader.bytesView(reader.varint()).slice();
    const payload = reader.bytesView(reader.varint()).slice();
    records.push({ key, sequence: firstSequence + i, kind, payload });
  }
  if (reader.remaining !== 0) throw new RangeError(`${reader.remaining} trailing bytes after batch`);
  return records;
}
