/**
 * The record payload the engine stores: the versions of one key. Each version is an opaque
 * version blob (the cluster layer stores a dotted version vector there) plus a value, or null
 * for a tombstone. Lower layers (log, memtable, SSTable) never look inside a payload.
 *
 * Grammar (see docs/formats/sstable.md, "Record payload"):
 *   payload  := count:varint version{count}
 *   version  := flags:u8 versionLength:varint versionBytes [valueLength:varint valueBytes]
 *   flags    := bit 0 set = tombstone (no value follows); other bits must be 0
 */
import { ByteReader, ByteWriter } from "../util/bytes.ts";

export interface Version {
  /** Opaque causal version (e.g. an encoded dotted version vector). */
  readonly version: Uint8Array;
  /** The value, or null for a tombstone. */
  readonly value: Uint8Array | null;
}

const FLAG_TOMBSTONE = 1;

/** Encodes a payload into a new Uint8Array the caller owns. */
export function encodeVersionSet(versions: readonly Version[], writer = new ByteWriter(256)): Uint8Array {
  return encodeVersionSetView(versions, writer).slice();
}

/**
 * Encodes a payload into `writer` and returns a view of it, valid until the next write to
 * `writer`: for a caller that copies the payload elsewhere before it writes again.
 */
export function encodeVersionSetView(versions: readonly Version[], writer: ByteWriter): Uint8Array {
  writer.reset();
  writer.varint(versions.length);
  for (const { version, value } of versions) {
    writer.u8(value === null ? FLAG_TOMBSTONE : 0);
    writer.varint(version.length);
    writer.bytes(version);
    if (value !== null) {
      writer.varint(value.length);
      writer.bytes(value);
    }
  }
  return writer.view();
}

/**
 * Decodes a payload. Returned blobs are copies (they outlive cache buffers and SAB arenas).
 * Throws RangeError on a malformed payload; callers that read from disk map it to CorruptionError.
 */
export function decodeVersionSet(payload: Uint8Array): Version[] {
  const reader = new ByteReader(payload);
  const count = reader.varint();
  const versions: Version[] = [];
  for (let i = 0; i < count; i++) {
    const flags = reader.u8();
    if ((flags & ~FLAG_TOMBSTONE) !== 0) throw new RangeError(`unknown version flags ${flags}`);
    const version = reader.bytesView(reader.varint()).slice();
    const value = flags & FLAG_TOMBSTONE ? null : reader.bytesView(reader.varint()).slice();
    versions.push({ version, value });
  }
  if (reader.remaining !== 0) throw new RangeError(`${reader.remaining} trailing bytes after version set`);
  return versions;
}
