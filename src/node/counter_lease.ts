/**
 * The node's counter lease: every dot a node stamps needs a counter it never used before, across
 * restarts and crashes too, or a new version could take the dot of an acknowledged one held by
 * other replicas and be mistaken for it. The store's own sequence number does not survive what a
 * crash loses (a write acknowledged by other replicas while this node's local write failed or was
 * not yet synced), so the node leases counters: before it stamps a counter at or past the ceiling
 * written in `<store directory>/COUNTER`, it durably writes a new ceiling `step` higher. A node
 * starts above the stored ceiling, whatever it had used (Riak's vnode counter lease does the same).
 *
 *   file := magic "LOOMCTR1" (8 bytes) ceiling:u64le maskedCrc32c(ceiling bytes):u32le
 *
 * Pure over the FileSystem interface (real disk or simulated).
 */
import { joinPath, replaceFileDurably, type FileSystem } from "../io/file_system.ts";
import { crc32c, maskCrc, unmaskCrc } from "../util/crc32c.ts";
import { CorruptionError } from "../util/errors.ts";

export const COUNTER_LEASE_FILE = "COUNTER";
const MAGIC = new TextEncoder().encode("LOOMCTR1");
const FILE_BYTES = 8 + 8 + 4;
/** Counters leased per durable write: one fsync per million stamped writes. */
export const counterLeaseStep = 1 << 20;

export class CounterLease {
  readonly #fs: FileSystem;
  readonly #directory: string;
  #ceiling: number;
  /** Durable lease writes since the node started. */
  extensions = 0;

  private constructor(fs: FileSystem, directory: string, ceiling: number) {
    this.#fs = fs;
    this.#directory = directory;
    this.#ceiling = ceiling;
  }

  /** The lease of the store in `directory` (ceiling 0 when it has none). CorruptionError when damaged. */
  static open(fs: FileSystem, directory: string): CounterLease {
    const path = joinPath(directory, COUNTER_LEASE_FILE);
    return new CounterLease(fs, directory, fs.exists(path) ? decodeLease(fs.readFile(path), path) : 0);
  }

  /** Every counter below it may have been used: a restarted node starts here. */
  get ceiling(): number {
    return this.#ceiling;
  }

  /**
   * Makes sure `counter` is below the durable ceiling, extending the lease (an fsync) when it is
   * not. Throws IoError when the disk refuses: the caller must then not use the counter.
   */
  cover(counter: number): void {
    if (counter < this.#ceiling) return;
    const ceiling = counter + counterLeaseStep;
    replaceFileDurably(this.#fs, joinPath(this.#directory, COUNTER_LEASE_FILE), joinPath(this.#directory, `${COUNTER_LEASE_FILE}.tmp`), encodeLease(ceiling));
    this.#ceiling = ceiling;
    this.extensions++;
  }
}

function encodeLease(ceiling: number): Uint8Array {
  const bytes = new Uint8Array(FILE_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setBigUint64(8, BigInt(ceiling), true);
  view.setUint32(16, maskCrc(crc32c(bytes.subarray(8, 16))), true);
  return bytes;
}

function decodeLease(bytes: Uint8Array, path: string): number {
  if (bytes.length !== FILE_BYTES) throw new CorruptionError(`counter lease is ${bytes.length} bytes, expected ${FILE_BYTES}`, path, 0);
  for (let index = 0; index < MAGIC.length; index++) {
    if (bytes[index] !== MAGIC[index]) throw new CorruptionError("counter lease has a bad magic", path, 0);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (unmaskCrc(view.getUint32(16, true)) !== crc32c(bytes.subarray(8, 16))) throw new CorruptionError("counter lease checksum mismatch", path, 16);
  const ceiling = Number(view.getBigUint64(8, true));
  if (!Number.isSafeInteger(ceiling)) throw new CorruptionError(`counter lease ceiling ${ceiling} is past 2^53`, path, 8);
  return ceiling;
}
