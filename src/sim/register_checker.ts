/**
 * The register checker: what a Dynamo-style store owes its clients, checked from the outside.
 * Clients write unique values; each write names the values it replaces (those of the read whose
 * context it carried). Every read during the run and one final read of every key after the
 * faults heal are given to the checker, which reports:
 *
 * - **lost**: a write acknowledged ("ok") that the final read neither shows nor explains: it is
 *   "covered" when it is in the final sibling set, or when a write that replaced it is covered
 *   (a delete that replaced it covers it when acknowledged or possibly applied). Quorums
 *   intersect (W + R > N), so an acknowledged write must be covered.
 * - **phantom**: a read that returned a value no write attempted, or one whose write was refused
 *   as "not-applied" (which must be true: nothing was sent).
 * - **stale sibling**: a final sibling set holding a value next to one that replaced it.
 * - **resurrected**: a final read showing a value that an acknowledged write replaced (a put
 *   or a delete that carried its context): that write dominates it on W replicas, so a quorum
 *   read can never show it again. A deleted value coming back after a tombstone purge is one.
 *
 * Writes that ended "unknown" may or may not appear; they are counted, never required. Pure.
 */

export type WriteOutcome = "ok" | "not-applied" | "unknown";

export interface WriteRecord {
  readonly value: string;
  readonly key: string;
  readonly kind: "put" | "delete";
  /** Values this write replaces: those of the read whose context it carried. */
  readonly replaces: readonly string[];
  outcome: WriteOutcome | "pending";
}

export interface RegisterReport {
  readonly keys: number;
  readonly writes: number;
  readonly acknowledged: number;
  readonly unknown: number;
  readonly notApplied: number;
  readonly reads: number;
  /** Acknowledged writes the final reads do not cover. */
  readonly lost: readonly string[];
  /** Reads of values that were never attempted, or refused as not-applied. */
  readonly phantoms: readonly string[];
  /** Final sibling sets holding a value and a value that replaced it. */
  readonly staleSiblings: readonly string[];
  /** Final values that an acknowledged write replaced. */
  readonly resurrected: readonly string[];
  /** Keys written but never read at the end. */
  readonly unread: readonly string[];
}

export class RegisterChecker {
  readonly #writes = new Map<string, WriteRecord>();
  /** value -> the writes that replaced it. */
  readonly #replacedBy = new Map<string, WriteRecord[]>();
  readonly #finals = new Map<string, readonly string[]>();
  /** Every (key, value) a read returned; checked at report time, when every outcome is known. */
  readonly #seen = new Map<string, Set<string>>();
  #reads = 0;

  /** Records a write before it is sent. `value` must be unique across the run (a delete's too). */
  write(options: { key: string; value: string; kind?: "put" | "delete"; replaces?: readonly string[] }): WriteRecord {
    if (this.#writes.has(options.value)) throw new Error(`register checker: value ${options.value} written twice`);
    const record: WriteRecord = { key: options.key, value: options.value, kind: options.kind ?? "put", replaces: [...(options.replaces ?? [])], outcome: "pending" };
    this.#writes.set(record.value, record);
    for (const replaced of record.replaces) {
      const list = this.#replacedBy.get(replaced);
      if (list) list.push(record);
      else this.#replacedBy.set(replaced, [record]);
    }
    return record;
  }

  settle(record: WriteRecord, outcome: WriteOutcome): void {
    record.outcome = outcome;
  }

  /** A read during the run: every value it returned must have been attempted and not refused. */
  observe(key: string, values: readonly string[]): void {
    this.#reads++;
    let seen = this.#seen.get(key);
    if (!seen) this.#seen.set(key, (seen = new Set()));
    for (const value of values) seen.add(value);
  }

  /** The read of `key` after every fault healed and the cluster settled. */
  finalRead(key: string, values: readonly string[]): void {
    this.observe(key, values);
    this.#finals.set(key, [...values]);
  }

  /** Keys that some write touched: read each of them with `finalRead`. */
  keys(): string[] {
    return [...new Set([...this.#writes.values()].map((write) => write.key))].sort();
  }

  report(): RegisterReport {
    const writes = [...this.#writes.values()];
    const covered = new Map<string, boolean>();
    const isCovered = (write: WriteRecord): boolean => {
      const known = covered.get(write.value);
      if (known !== undefined) return known;
      covered.set(write.value, false); // replacement chains point back in time: no cycles
      let result = false;
      if (write.kind === "delete") result = write.outcome === "ok" || write.outcome === "unknown";
      else if (this.#finals.get(write.key)?.includes(write.value)) result = true;
      if (!result) {
        for (const later of this.#replacedBy.get(write.value) ?? []) {
          if (later.key === write.key && later.outcome !== "not-applied" && later.outcome !== "pending" && isCovered(later)) {
            result = true;
            break;
          }
        }
      }
      covered.set(write.value, result);
      return result;
    };
    const lost = writes
      .filter((write) => write.outcome === "ok" && this.#finals.has(write.key) && !isCovered(write))
      .map((write) => `${write.key}: acknowledged ${write.kind} ${write.value} is missing (final read ${JSON.stringify(this.#finals.get(write.key))})`);
    const staleSiblings: string[] = [];
    for (const [key, values] of this.#finals) {
      for (const value of values) {
        const replacer = (this.#replacedBy.get(value) ?? []).find((later) => values.includes(later.value));
        if (replacer) staleSiblings.push(`${key}: ${value} is a sibling of ${replacer.value}, which replaced it`);
      }
    }
    const resurrected: string[] = [];
    for (const [key, values] of this.#finals) {
      for (const value of values) {
        const replacer = (this.#replacedBy.get(value) ?? []).find((later) => later.key === key && later.outcome === "ok");
        if (replacer) resurrected.push(`${key}: ${value} is back although acknowledged ${replacer.kind} ${replacer.value} replaced it`);
      }
    }
    const phantoms: string[] = [];
    for (const [key, values] of this.#seen) {
      for (const value of values) {
        const write = this.#writes.get(value);
        if (!write || write.key !== key) phantoms.push(`${key}: read ${value}, which no write of this key attempted`);
        else if (write.outcome === "not-applied") phantoms.push(`${key}: read ${value}, whose write was refused as not-applied`);
      }
    }
    const keys = this.keys();
    return {
      keys: keys.length,
      writes: writes.length,
      acknowledged: writes.filter((write) => write.outcome === "ok").length,
      unknown: writes.filter((write) => write.outcome === "unknown" || write.outcome === "pending").length,
      notApplied: writes.filter((write) => write.outcome === "not-applied").length,
      reads: this.#reads,
      lost,
      phantoms,
      staleSiblings,
      resurrected,
      unread: keys.filter((key) => !this.#finals.has(key)),
    };
  }
}
