/**
 * The set workload: clients add unique elements to a few keys. Each add reads the key, merges its
 * siblings by union, and writes the union plus the new element with the read's context, so the
 * write supersedes exactly what it read and keeps every element of it. A failed read leaves a
 * blind add of the element alone, which becomes a sibling and is merged by the next add's read.
 * Meanwhile the fault schedule of workload.ts runs. Every add and its outcome goes to the set
 * checker. Pure apart from the target it drives.
 */
import type { Prng } from "../io/prng.ts";
import { formatSet, parseSet, type SetChecker } from "./set_checker.ts";
import { outcomeOf, runFaultSchedule, type FaultKind, type FaultScheduleOptions, type WorkloadTarget } from "./workload.ts";

export interface SetWorkloadOptions extends FaultScheduleOptions {
  readonly clients: number;
  readonly keys: number;
  /** Adds in all, spread over the clients. */
  readonly adds: number;
  /** Longest pause between two adds of one client, in ms. */
  readonly thinkMsMax: number;
  /**
   * How a client merges the siblings it reads: "union" (correct) or "first" (a deliberately broken
   * merge that keeps one sibling and drops the others' elements: the negative control). @default "union"
   */
  readonly merge?: "union" | "first";
}

export interface SetWorkloadReport {
  readonly adds: number;
  readonly faults: Partial<Record<FaultKind, number>>;
}

const decoder = new TextDecoder();

export async function runSetWorkload(target: WorkloadTarget, checker: SetChecker, options: SetWorkloadOptions, prng: Prng): Promise<SetWorkloadReport> {
  let remaining = options.adds;
  let finished = 0;
  const faults: Partial<Record<FaultKind, number>> = {};
  const keys = Array.from({ length: options.keys }, (_, index) => `set${index}`);

  const client = async (id: number, random: Prng): Promise<void> => {
    let added = 0;
    while (remaining > 0) {
      remaining--;
      await target.sleep(random.nextInt(options.thinkMsMax + 1));
      const key = random.pick(keys);
      const element = `c${id}.${++added}`;
      let base: string[] = [];
      let context: string | undefined;
      try {
        const read = await target.get(key);
        const siblings = read.values.map((value) => parseSet(decoder.decode(value)));
        base = options.merge === "first" ? (siblings[0] ?? []) : siblings.flat();
        context = read.context;
      } catch {
        // no read: a blind add, a sibling of whatever the key holds
      }
      const add = checker.add(key, element);
      try {
        await target.put(key, formatSet([...base, element]), context === undefined ? {} : { context });
        checker.settle(add, "ok");
        target.record?.(`add ${key} ${element} ok`);
      } catch (error) {
        checker.settle(add, outcomeOf(error));
        target.record?.(`add ${key} ${element} ${outcomeOf(error)}`);
      }
    }
    finished++;
  };

  const clients = Array.from({ length: options.clients }, (_, id) => client(id, prng.fork()));
  const faulting = runFaultSchedule(target, options, prng.fork(), () => finished >= options.clients, faults);
  await Promise.all([...clients, faulting]);
  return { adds: options.adds, faults };
}
