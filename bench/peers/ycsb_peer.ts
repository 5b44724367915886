/**
 * The one interface the cluster (YCSB) benchmark drives: the loomkv cluster, the storage engine
 * alone and Redis each get a thin adapter behind it, so every system runs the identical stream of
 * operations with the identical depth.
 *
 * Contract for adapters: `runRound` issues its operations together (one event-loop turn, or one
 * Redis pipeline) and resolves when every one has completed under the system's own durability
 * setting; a read that finds no value is a bench failure (every key was loaded) and rejects.
 * Streams and their key views belong to the suite: adapters neither mutate nor keep them.
 */
import type { OperationStream, YcsbData } from "../ycsb_workload.ts";

export interface YcsbPeer {
  /** Short name used in the report ("loomkv 3 nodes", "redis"). */
  readonly name: string;
  /** Library or server version, or "workspace" for loomkv. */
  readonly version: string;
  /** What an acknowledged update survives, and the settings that decide it. */
  readonly durability: string;
  /** How a round of requests travels (batched messages, pipeline, direct calls). */
  readonly requestPath: string;
  /** Writes records [0, data.recordCount) once each. */
  load(data: YcsbData): Promise<void>;
  /**
   * Runs stream operations start .. start + count - 1 (indexes taken modulo the stream length),
   * all in flight at once; resolves when all completed.
   */
  runRound(stream: OperationStream, start: number, count: number): Promise<void>;
  /** One read of `key`, awaited by the caller before the next (latency). */
  readOne(key: Uint8Array): Promise<void>;
  /**
   * CPU time (µs, cumulative) of a server process outside this one (Redis), read before and after
   * a task; absent for systems that run inside this process (their CPU is process.cpuUsage()).
   */
  serverCpuMicros?(): number | undefined;
  /** Facts worth printing next to the figures (siblings seen, records, memory). */
  describe(): Promise<Record<string, string | number>>;
  close(): Promise<void>;
}
