/**
 * Lowers the scheduling priority of the calling thread alone (Linux: setpriority on the thread's
 * own id, read from /proc/thread-self; both Node and Deno expose it as os.setPriority). On any
 * other system, or where the call is refused, the thread keeps its priority: the result says which.
 */
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";

export function lowerThisThreadPriority(niceness: number): boolean {
  try {
    const threadId = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (!Number.isSafeInteger(threadId) || threadId <= 0) return false;
    setPriority(threadId, niceness);
    return true;
  } catch {
    return false;
  }
}
