/**
 * The set checker (the workload Jepsen ran against Riak): clients add unique elements to a few
 * keys, each add a read of the key, the union of its siblings plus the new element, and a write
 * carrying the read's context. After the faults heal and anti-entropy settles, one final read of
 * every key gives its set, and the checker reports:
 *
 * - **lost**: an add acknowledged ("ok") missing from the final set of its key;
 * - **phantom**: an element in a final set that no add of that key attempted;
 * - **not-applied present**: an element whose add was refused as "not-applied" (nothing was
 *   sent, so it must never appear).
 *
 * Adds that ended "unknown" may or may not appear; they are counted, never required. Pure.
 */
import type { WriteOutcome } from "./register_checker.ts";

export interface SetReport {
  readonly keys: number;
  readonly adds: number;
  readonly acknowledged: number;
  readonly unknown: number;
  readonly notApplied: number;
  /** Unknown adds that the final sets show (they were applied after all). */
  readonly unknownPresent: number;
  readonly lost: readonly string[];
  readonly phantoms: readonly string[];
  readonly notAppliedPresent: readonly string[];
  /** Keys added to but never read at the end. */
  readonly unread: readonly string[];
}

interface Add {
  readonly key: string;
  readonly element: string;
  outcome: WriteOutcome | "pending";
}

/** The elements of a value written by the set workload ("" is the empty set). */
export function parseSet(value: string): string[] {
  return value === "" ? [] : value.split(",");
}

/** The value holding `elements`: sorted, comma-separated (an element holds no comma). */
export function formatSet(elements: Iterable<string>): string {
  return [...new Set(elements)].sort().join(",");
}

export class SetChecker {
  readonly #adds = new Map<string, Add>();
  readonly #finals = new Map<string, ReadonlySet<string>>();

  /** Records an add before it is sent; `element` must be unique across the run. */
  add(key: string, element: string): Add {
    if (this.#adds.has(element)) throw new Error(`set checker: element ${element} added twice`);
    if (element.includes(",") || element === "") throw new Error(`set checker: element ${JSON.stringify(element)} must be non-empty and hold no comma`);
    const add: Add = { key, element, outcome: "pending" };
    this.#adds.set(element, add);
    return add;
  }

  settle(add: Add, outcome: WriteOutcome): void {
    add.outcome = outcome;
  }

  /** The final read of `key`: its sibling values, merged by union here. */
  finalRead(key: string, values: readonly string[]): void {
    this.#finals.set(key, new Set(values.flatMap(parseSet)));
  }

  /** Acknowledged elements by key. */
  acknowledgedByKey(): Map<string, string[]> {
    const byKey = new Map<string, string[]>();
    for (const add of this.#adds.values()) {
      if (add.outcome !== "ok") continue;
      const list = byKey.get(add.key);
      if (list) list.push(add.element);
      else byKey.set(add.key, [add.element]);
    }
    return byKey;
  }

  keys(): string[] {
    return [...new Set([...this.#adds.values()].map((add) => add.key))].sort();
  }

  report(): SetReport {
    const adds = [...this.#adds.values()];
    const lost: string[] = [];
    const notAppliedPresent: string[] = [];
    let unknownPresent = 0;
    for (const add of adds) {
      const final = this.#finals.get(add.key);
      if (!final) continue;
      if (add.outcome === "ok" && !final.has(add.element)) lost.push(`${add.key}: acknowledged add ${add.element} is missing`);
      if (add.outcome === "not-applied" && final.has(add.element)) notAppliedPresent.push(`${add.key}: ${add.element} is present, but its add was refused as not-applied`);
      if ((add.outcome === "unknown" || add.outcome === "pending") && final.has(add.element)) unknownPresent++;
    }
    const phantoms: string[] = [];
    for (const [key, elements] of this.#finals) {
      for (const element of elements) {
        if (this.#adds.get(element)?.key !== key) phantoms.push(`${key}: ${element} was never added to this key`);
      }
    }
    const keys = this.keys();
    return {
      keys: keys.length,
      adds: adds.length,
      acknowledged: adds.filter((add) => add.outcome === "ok").length,
      unknown: adds.filter((add) => add.outcome === "unknown" || add.outcome === "pending").length,
      notApplied: adds.filter((add) => add.outcome === "not-applied").length,
      unknownPresent,
      lost,
      phantoms,
      notAppliedPresent,
      unread: keys.filter((key) => !this.#finals.has(key)),
    };
  }
}
