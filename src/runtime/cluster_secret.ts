/**
 * The cluster's context secret: the key of the tags that bind every causal context to its key and
 * cluster (src/version/context_signer.ts, docs/versioning.md). It lives in `dataDir/context.secret`.
 * The first open makes it from the runtime's cryptographic random source and stores it durably
 * (temporary file, sync, rename, directory sync) before any context is signed with it; every later
 * open reads it back, so a context handed out before a close still verifies after the reopen.
 *
 *   file := format:u8(=1) secret:u8[16] crc32c:u32le    (the CRC-32C of format and secret)
 *
 * Thread contract: the main thread, once per open, before the node workers start (they receive the
 * secret in their workerData).
 */
import { type FileSystem, joinPath, replaceFileDurably } from "../io/file_system.ts";
import { crc32c } from "../util/crc32c.ts";
import { CorruptionError, LoomRangeError } from "../util/errors.ts";
import { contextSecretBytes } from "../version/context_signer.ts";

export const CONTEXT_SECRET_FILE = "context.secret";
const TEMPORARY_FILE = `${CONTEXT_SECRET_FILE}.tmp`;
const FORMAT = 1;
const FILE_BYTES = 1 + contextSecretBytes + 4;

export interface LoadContextSecretOptions {
  readonly fs: FileSystem;
  /** The cluster's data directory; it must exist. */
  readonly directory: string;
  /** Fills its argument with cryptographically random bytes. @default crypto.getRandomValues */
  readonly random?: (bytes: Uint8Array) => void;
}

/**
 * The secret of `directory` (contextSecretBytes bytes), made and stored durably when the directory
 * has none. Returns once the secret survives a crash. Throws CorruptionError when the file is
 * damaged (delete it to make a new secret: contexts handed out before are then refused), IoError
 * when the disk refuses.
 */
export function loadContextSecret(options: LoadContextSecretOptions): Uint8Array {
  const { fs, directory } = options;
  const path = joinPath(directory, CONTEXT_SECRET_FILE);
  if (fs.exists(path)) return decodeSecretFile(fs.readFile(path), path);
  const secret = new Uint8Array(contextSecretBytes);
  (options.random ?? ((bytes: Uint8Array) => void crypto.getRandomValues(bytes)))(secret);
  if (secret.every((byte) => byte === 0)) throw new LoomRangeError("make context secret failed: the random source returned only zeros");
  replaceFileDurably(fs, path, joinPath(directory, TEMPORARY_FILE), encodeSecretFile(secret));
  return decodeSecretFile(fs.readFile(path), path); // what a reopen will read
}

function encodeSecretFile(secret: Uint8Array): Uint8Array {
  const file = new Uint8Array(FILE_BYTES);
  file[0] = FORMAT;
  file.set(secret, 1);
  new DataView(file.buffer).setUint32(1 + contextSecretBytes, crc32c(file.subarray(0, 1 + contextSecretBytes)), true);
  return file;
}

function decodeSecretFile(file: Uint8Array, path: string): Uint8Array {
  const remedy = "delete it to make a new secret (contexts handed out before are then refused)";
  if (file.length !== FILE_BYTES) throw new CorruptionError(`context secret is ${file.length} bytes, expected ${FILE_BYTES}; ${remedy}`, path, 0);
  if (file[0] !== FORMAT) throw new CorruptionError(`context secret format is ${file[0]}, expected ${FORMAT}; ${remedy}`, path, 0);
  const stored = new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(1 + contextSecretBytes, true);
  if (stored !== crc32c(file.subarray(0, 1 + contextSecretBytes))) {
    throw new CorruptionError(`context secret checksum does not match; ${remedy}`, path, 1 + contextSecretBytes);
  }
  return file.slice(1, 1 + contextSecretBytes);
}
