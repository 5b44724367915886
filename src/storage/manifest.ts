/**
 * The manifest: which files make up a store. Rewritten whole on every change and swapped in
 * atomically (write MANIFEST.tmp, sync it, rename over MANIFEST, sync the directory), so a crash
 * leaves either the old or the new set, never a mix. See docs/formats/manifest.md.
 *
 *   file := magic "LOOMMAN1" (8 bytes) bodyLength:u32 maskedCrc32c(body):u32 body
 *   body := UTF-8 JSON of ManifestState
 */
import { ByteReader, ByteWriter, utf8Decode, utf8Encode } from "../util/bytes.ts";
import { crc32c, maskCrc, unmaskCrc } from "../util/crc32c.ts";
import { CorruptionError } from "../util/errors.ts";
import { joinPath, replaceFileDurably, type FileSystem } from "../io/file_system.ts";

export const MANIFEST_NAME = "MANIFEST";
const MANIFEST_TEMPORARY_NAME = "MANIFEST.tmp";
const MAGIC = utf8Encode("LOOMMAN1");
const FORMAT_VERSION = 1;

export interface TableMeta {
  readonly fileNumber: number;
  readonly fileBytes: number;
  readonly recordCount: number;
  readonly sequenceMin: number;
  readonly sequenceMax: number;
  /** Smallest and largest key, hex-encoded. */
  readonly smallestKeyHex: string;
  readonly largestKeyHex: string;
}

export interface ManifestState {
  readonly formatVersion: number;
  /** Next number for a new log or table file. */
  readonly nextFileNumber: number;
  /** Highest sequence number stored in any table. */
  readonly lastSequence: number;
  /** Logs with a number >= this one hold writes not yet in a table and are replayed at open. */
  readonly logNumberMin: number;
  /** Live tables, newest first (sequence ranges are disjoint and descending). */
  readonly tables: readonly TableMeta[];
}

export function emptyManifest(): ManifestState {
  return { formatVersion: FORMAT_VERSION, nextFileNumber: 1, lastSequence: 0, logNumberMin: 0, tables: [] };
}

export function encodeManifest(state: ManifestState): Uint8Array {
  const body = utf8Encode(JSON.stringify(state));
  const writer = new ByteWriter(body.length + 16);
  writer.bytes(MAGIC);
  writer.u32(body.length);
  writer.u32(maskCrc(crc32c(body)));
  writer.bytes(body);
  return writer.finish();
}

export function decodeManifest(bytes: Uint8Array, path: string): ManifestState {
  const reader = new ByteReader(bytes);
  if (bytes.length < 16) throw new CorruptionError(`manifest is ${bytes.length} bytes, shorter than its header`, path, 0);
  const magic = reader.bytesView(8);
  if (utf8Decode(magic) !== "LOOMMAN1") throw new CorruptionError("manifest magic mismatch", path, 0);
  const length = reader.u32();
  const expected = unmaskCrc(reader.u32());
  if (reader.remaining !== length) {
    throw new CorruptionError(`manifest body is ${reader.remaining} bytes, header says ${length}`, path, 16);
  }
  const body = reader.bytesView(length);
  if (crc32c(body) !== expected) throw new CorruptionError("manifest checksum mismatch", path, 16);
  const state = JSON.parse(utf8Decode(body)) as ManifestState;
  if (state.formatVersion !== FORMAT_VERSION) {
    throw new CorruptionError(`manifest format version ${state.formatVersion} is not ${FORMAT_VERSION}`, path, 16);
  }
  return state;
}

/** Reads the manifest of `directory`, or returns undefined if there is none. */
export function readManifest(fs: FileSystem, directory: string): ManifestState | undefined {
  const path = joinPath(directory, MANIFEST_NAME);
  if (!fs.exists(path)) return undefined;
  return decodeManifest(fs.readFile(path), path);
}

/** Durably replaces the manifest of `directory` with `state`. Returns once it survives a crash. */
export function writeManifest(fs: FileSystem, directory: string, state: ManifestState): void {
  replaceFileDurably(fs, joinPath(directory, MANIFEST_NAME), joinPath(directory, MANIFEST_TEMPORARY_NAME), encodeManifest(state));
}

/** File names of a store directory. Numbers are zero-padded so names sort by age. */
export function logFileName(fileNumber: number): string {
  return `${String(fileNumber).padStart(6, "0")}.log`;
}

export function tableFileName(fileNumber: number): string {
  return `${String(fileNumber).padStart(6, "0")}.sst`;
}

export type StoreFileKind = "log" | "table" | "manifest" | "temporary" | "unknown";

export function parseFileName(name: string): { kind: StoreFileKind; fileNumber: number } {
  const match = /^(\d{6,})\.(log|sst)$/.exec(name);
  if (match) return { kind: match[2] === "log" ? "log" : "table", fileNumber: Number(match[1]) };
  if (name === MANIFEST_NAME) return { kind: "manifest", fileNumber: -1 };
  if (name.endsWith(".tmp")) return { kind: "temporary", fileNumber: -1 };
  return { kind: "unknown", fileNumber: -1 };
}
