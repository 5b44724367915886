/**
 * The simulator's workload and fault schedule for one seed. Several clients read and write a few
 * keys through the cluster core, as an application would: a write carries the context of the
 * client's last read (or last write) of the key, so it replaces what the client saw; some writes
 * are blind, some are deletes. Meanwhile the fault schedule draws faults from the seed: crashes
 * and restarts, pauses, partitions and heals, message loss and delay, disk faults (and wipes,
 * when allowed). Every operation and its outcome goes to the register checker. Pure apart from
 * the SimCluster it drives.
 */
import type { GetResult, WriteOptions, WriteResult } from "../cluster/cluster_core.ts";
import { IoError } from "../util/errors.ts";
import type { DiskFault } from "../io/faulty_file_system.ts";
import type { Prng } from "../io/prng.ts";
import type { RegisterChecker, WriteOutcome } from "./register_checker.ts";

/**
 * What the workload drives: the simulator's cluster, or a real one (worker threads) through a thin
 * adapter. The fault calls have the meaning of `Cluster.faults`.
 */
export interface WorkloadTarget {
  put(key: string, value: string, options: WriteOptions): Promise<WriteResult>;
  delete(key: string, options: WriteOptions): Promise<WriteResult>;
  get(key: string): Promise<GetResult>;
  /** Resolves after `ms` (virtual or real). */
  sleep(ms: number): Promise<void>;
  readonly members: readonly number[];
  isRunning(node: number): boolean;
  readonly faults: {
    crash(node: number): unknown;
    restart(node: number): unknown;
    wipe(node: number): unknown;
    pause(node: number, ms: number): unknown;
    partition(...groups: number[][]): unknown;
    heal(): unknown;
    dropRate(rate: number): unknown;
    delay(ms: number, jitterMs: number): unknown;
    diskFault(node: number, fault: DiskFault | null): unknown;
  };
  /** Feeds the run's trace (the simulator's determinism check). */
  record?(text: string): void;
}

export type FaultKind = "crash" | "restart" | "pause" | "partition" | "heal" | "drop" | "delay" | "disk" | "wipe";

export const faultKinds: readonly FaultKind[] = ["crash", "restart", "pause", "partition", "heal", "drop", "delay", "disk", "wipe"];

export interface WorkloadOptions extends FaultScheduleOptions {
  readonly clients: number;
  readonly keys: number;
  /** Operations in all (reads and writes), spread over the clients. */
  readonly operations: number;
  /** Longest pause between two operations of one client, in virtual ms. */
  readonly thinkMsMax: number;
  /** Prefix of every value written, to keep values unique across runs on one checker. @default "" */
  readonly valuePrefix?: string;
}

export interface WorkloadReport {
  readonly operations: number;
  readonly reads: number;
  readonly writes: number;
  /** Faults drawn, by kind. */
  readonly faults: Partial<Record<FaultKind, number>>;
}

const text = (values: readonly Uint8Array[]) => values.map((value) => new TextDecoder().decode(value));

/** What a client last saw of a key: the context to carry and the values that context covers. */
interface Seen {
  readonly context: string;
  readonly values: readonly string[];
}

/** The outcome a failed request reports (an error without one counts as "unknown"). */
export function outcomeOf(error: unknown): WriteOutcome {
  const outcome = (error as { outcome?: unknown }).outcome;
  return outcome === "not-applied" ? "not-applied" : "unknown";
}

/** Runs the clients and the fault schedule to the end of the workload. */
export async function runWorkload(sim: WorkloadTarget, checker: RegisterChecker, options: WorkloadOptions, prng: Prng): Promise<WorkloadReport> {
  let remaining = options.operations;
  let reads = 0;
  let writes = 0;
  let finished = 0;
  const faults: Partial<Record<FaultKind, number>> = {};
  const keys = Array.from({ length: options.keys }, (_, index) => `k${index}`);

  const client = async (id: number, random: Prng): Promise<void> => {
    const seen = new Map<string, Seen>();
    let written = 0;
    while (remaining > 0) {
      remaining--;
      await sim.sleep(random.nextInt(options.thinkMsMax + 1));
      const key = random.pick(keys);
      const roll = random.nextInt(100);
      if (roll < 35) {
        reads++;
        try {
          const read = await sim.get(key);
          const values = text(read.values);
          checker.observe(key, values);
          seen.set(key, { context: read.context, values });
          sim.record?.(`get ${key} ${values.join(",")}`);
        } catch (error) {
          sim.record?.(`get ${key} failed ${outcomeOf(error)}`);
        }
        continue;
      }
      writes++;
      const blind = roll >= 90;
      const last = blind ? undefined : seen.get(key);
      const kind = roll >= 85 && roll < 90 && last !== undefined ? "delete" : "put";
      const value = `${options.valuePrefix ?? ""}${kind === "delete" ? "d" : "v"}${id}.${++written}`;
      const record = checker.write({ key, value, kind, replaces: last?.values ?? [] });
      const request = last ? { context: last.context } : {};
      try {
        const result: WriteResult = kind === "delete" ? await sim.delete(key, request) : await sim.put(key, value, request);
        checker.settle(record, "ok");
        // The write's context covers the values it returns (itself and the siblings it kept).
        seen.set(key, { context: result.context, values: text(result.values) });
        sim.record?.(`${kind} ${key} ${value} ok`);
      } catch (error) {
        const outcome = outcomeOf(error);
        checker.settle(record, outcome);
        sim.record?.(`${kind} ${key} ${value} ${outcome}`);
      }
    }
    finished++;
  };

  const clients = Array.from({ length: options.clients }, (_, id) => client(id, prng.fork()));
  const faulting = runFaultSchedule(sim, options, prng.fork(), () => finished >= options.clients, faults);
  await Promise.all([...clients, faulting]);
  return { operations: reads + writes, reads, writes, faults };
}

export interface FaultScheduleOptions {
  /** Faults the schedule may draw. */
  readonly faults: readonly FaultKind[];
  /** Mean virtual ms between two faults. */
  readonly faultEveryMs: number;
  /** "random": each fault's kind is drawn; "cycle": kinds come in turn (every kind occurs). @default "random" */
  readonly faultOrder?: "random" | "cycle";
  /**
   * The one node wipes may hit (any member when absent). Wiping two replicas of a key before
   * anti-entropy repairs the first destroys two of its N copies, more than W=2 can survive.
   */
  readonly wipeVictim?: number;
}

/** Draws faults until `finished()`, tallying them by kind in `tally`. */
export async function runFaultSchedule(
  sim: WorkloadTarget,
  options: FaultScheduleOptions,
  random: Prng,
  finished: () => boolean,
  tally: Partial<Record<FaultKind, number>>,
): Promise<void> {
  if (options.faults.length === 0) return;
  let drawnCount = 0;
  while (!finished()) {
    await sim.sleep(1 + random.nextInt(options.faultEveryMs * 2));
    if (finished()) return;
    const kind = options.faultOrder === "cycle" ? options.faults[drawnCount % options.faults.length]! : random.pick(options.faults);
    drawnCount++;
    tally[kind] = (tally[kind] ?? 0) + 1;
    sim.record?.(`fault ${kind}`);
    await drawFault(sim, kind, random, options.wipeVictim);
  }
}

async function drawFault(sim: WorkloadTarget, kind: FaultKind, random: Prng, wipeVictim: number | undefined): Promise<void> {
  const members = [...sim.members];
  const running = members.filter((node) => sim.isRunning(node));
  const stopped = members.filter((node) => !sim.isRunning(node));
  switch (kind) {
    case "crash":
      if (running.length > 0) await sim.faults.crash(random.pick(running));
      return;
    case "restart":
      // A node whose disk still has its fault cannot start: the restart fails and it stays down.
      if (stopped.length > 0) await Promise.resolve(sim.faults.restart(random.pick(stopped))).catch((error: unknown) => {
        if (!(error instanceof IoError)) throw error;
      });
      return;
    case "wipe":
      await sim.faults.wipe(wipeVictim ?? random.pick(members));
      return;
    case "pause":
      if (running.length > 0) await sim.faults.pause(random.pick(running), 20 + random.nextInt(400));
      return;
    case "partition": {
      const shuffled = [...members];
      random.shuffle(shuffled);
      const cut = 1 + random.nextInt(shuffled.length - 1);
      await sim.faults.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      return;
    }
    case "heal":
      await sim.faults.heal();
      return;
    case "drop":
      await sim.faults.dropRate(random.chance(0.3) ? 0 : 0.02 + random.nextFloat() * 0.3);
      return;
    case "delay":
      await sim.faults.delay(random.nextInt(40), random.nextInt(40));
      return;
    case "disk": {
      const fault: DiskFault | null = random.chance(0.25) ? null : random.pick(["fsync", "full"] as const);
      await sim.faults.diskFault(random.pick(members), fault);
      return;
    }
  }
}
