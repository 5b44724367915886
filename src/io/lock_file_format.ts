/**
 * The content of a lock file (docs/formats/lock.md): who holds the lock, enough to tell whether
 * that holder still lives. Read and written only by real_file_lock.ts. Pure: no IO.
 */

/** The process holding a lock, as its lock file records it. */
export interface LockHolder {
  /** Process id: a positive integer. */
  readonly pid: number;
  /**
   * The process's start time (Linux: field 22 of /proc/<pid>/stat, clock ticks since boot), or
   * undefined where unknown. A live process with the same pid but another start time reused the pid.
   */
  readonly start: string | undefined;
  /** The kernel's boot id (Linux: /proc/sys/kernel/random/boot_id), or undefined where unknown. */
  readonly boot: string | undefined;
  /** Unique per acquisition: two locks taken by one process never have the same content. */
  readonly token: string;
}

export const LOCK_FORMAT = 1;

/** Largest lock file read back; anything longer is not a lock file this code wrote. */
export const LOCK_FILE_BYTES_MAX = 512;

export function encodeLockFile(holder: LockHolder): Uint8Array {
  const body: Record<string, unknown> = { format: LOCK_FORMAT, pid: holder.pid };
  if (holder.start !== undefined) body["start"] = holder.start;
  if (holder.boot !== undefined) body["boot"] = holder.boot;
  body["token"] = holder.token;
  return new TextEncoder().encode(`${JSON.stringify(body)}\n`);
}

/**
 * The holder `bytes` name, or undefined when they are not a complete lock file of this format
 * (empty or cut short by a power loss, written by something else): such a lock has no holder.
 */
export function decodeLockFile(bytes: Uint8Array): LockHolder | undefined {
  if (bytes.length === 0 || bytes.length > LOCK_FILE_BYTES_MAX || bytes[bytes.length - 1] !== 0x0a) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  const { format, pid, start, boot, token } = body as Record<string, unknown>;
  if (format !== LOCK_FORMAT || typeof token !== "string") return undefined;
  // kill(0) and kill(-1) address process groups: never take such a pid from a file.
  if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  if (start !== undefined && typeof start !== "string") return undefined;
  if (boot !== undefined && typeof boot !== "string") return undefined;
  return { pid, start, boot, token };
}
