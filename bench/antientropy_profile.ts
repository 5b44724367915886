/**
 * Where anti-entropy's CPU goes under load, on the node threads themselves: runs one workload A
 * arm (bench/antientropy_arm.ts) in a child process under `node --cpu-prof`, which writes a V8 CPU
 * profile for every thread, and sorts the busy samples of the arm's timed window into
 *
 * - tree upkeep, paid by every replica write whatever the interval: AntiEntropy.onWrite, and the
 *   Store.get that TrackedStore.write makes to learn the versions a write replaces;
 * - exchanges: every other anti-entropy frame (rounds, scans, hashes, pushes, merges of entries);
 * - the rest.
 *
 * A lower bound for anti-entropy: the garbage its calls leave is collected under "(garbage
 * collector)", counted in the rest. The storage pool's threads get --cpu-prof but not its
 * directory (the pool passes on only the flags a worker accepts), so the child runs in the profile
 * directory and their profiles land there too. Node only: Deno has no --cpu-prof.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { ArmReport } from "./antientropy_arm.ts";

export interface ProfileShares {
  readonly arm: ArmReport;
  /** Busy time of every profiled thread (main, nodes, storage pool) in the timed window, ms. */
  readonly busyMs: number;
  /** Shares of busy time, 0..1. */
  readonly onWrite: number;
  readonly extraGet: number;
  readonly exchanges: number;
  /** The functions with the most self time on the worker threads, share of their busy time. */
  readonly hottest: readonly { readonly name: string; readonly share: number }[];
}

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

type Category = "onWrite" | "extraGet" | "exchanges" | "rest";

const IDLE_FRAMES = new Set(["(idle)", "atomicsWaitLoop"]);

function isFrame(frame: CallFrame, file: RegExp, name: string | RegExp): boolean {
  return file.test(frame.url) && (typeof name === "string" ? frame.functionName === name : name.test(frame.functionName));
}

const ANTI_ENTROPY_FILE = /\/antientropy\/(anti_entropy|tree_build|segment_tree|item_hash)\.[jt]s$/;
const TRACKED_STORE_FILE = /\/node\/tracked_store\.[jt]s$/;
const STORE_FILE = /\/storage\/store\.[jt]s$/;

/** The category of one sample, from its stack (leaf first). */
function categorize(stack: readonly CallFrame[]): Category {
  if (stack.some((frame) => isFrame(frame, ANTI_ENTROPY_FILE, "onWrite"))) return "onWrite";
  const trackedWrite = stack.findIndex((frame) => isFrame(frame, TRACKED_STORE_FILE, "write"));
  // The observer's read: a Store.get below TrackedStore.write (the inner Store.write reads nothing).
  if (trackedWrite >= 0 && stack.slice(0, trackedWrite).some((frame) => isFrame(frame, STORE_FILE, "get"))) return "extraGet";
  if (stack.some((frame) => ANTI_ENTROPY_FILE.test(frame.url))) return "exchanges";
  return "rest";
}

interface Tally {
  busyUs: number;
  readonly byCategory: Map<Category, number>;
  /** Self time per function on worker threads (not the main thread). */
  readonly self: Map<string, number>;
  workerBusyUs: number;
}

function frameName(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(?=[^/]*\/[^/]*$)/, "").replace(/\.js$/, ".ts");
  return `${frame.functionName || "(anonymous)"} ${file}`.trim();
}

/** Adds the samples of `profile` inside [startUs, endUs] to `tally`. */
function tallyProfile(profile: CpuProfile, window: { startUs: number; endUs: number }, isWorker: boolean, tally: Tally): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const categoryOf = new Map<number, Category>();
  let timestampUs = profile.startTime;
  for (let index = 0; index < profile.samples.length; index++) {
    timestampUs += profile.timeDeltas[index] ?? 0;
    const weightUs = Math.max(0, profile.timeDeltas[index + 1] ?? 0);
    if (timestampUs < window.startUs || timestampUs > window.endUs) continue;
    const id = profile.samples[index]!;
    const leaf = byId.get(id)!.callFrame;
    if (IDLE_FRAMES.has(leaf.functionName)) continue;
    let category = categoryOf.get(id);
    if (category === undefined) {
      const stack: CallFrame[] = [];
      for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) stack.push(byId.get(at)!.callFrame);
      categoryOf.set(id, (category = categorize(stack)));
    }
    tally.busyUs += weightUs;
    tally.byCategory.set(category, (tally.byCategory.get(category) ?? 0) + weightUs);
    if (isWorker) {
      tally.workerBusyUs += weightUs;
      const name = frameName(leaf);
      tally.self.set(name, (tally.self.get(name) ?? 0) + weightUs);
    }
  }
}

/**
 * Runs the arm under --cpu-prof and sorts its timed window's samples; `{ skipped }` says why it
 * could not (Deno, or the compiled arm is missing because the suite runs from sources).
 */
export interface ProfiledArmOptions {
  readonly records: number;
  /** Seed of the YCSB data (the suite's, so the arm runs the same operations). */
  readonly seed: number;
  readonly seconds: number;
  readonly inFlight: number;
  readonly operationsPerIteration: number;
  readonly intervalMs: number;
}

export function profileArm(options: ProfiledArmOptions): ProfileShares | { skipped: string } {
  if ((process.versions as Record<string, string | undefined>)["deno"] !== undefined) return { skipped: "Deno has no --cpu-prof" };
  if (!import.meta.url.endsWith(".js")) return { skipped: "the profiled arm runs from the compiled bench (node dist/bench/run.js)" };
  const script = fileURLToPath(new URL("./antientropy_arm.js", import.meta.url));
  const directory = mkdtempSync(join(tmpdir(), "loomkv-bench-ae-profile-"));
  try {
    const args = Object.entries(options).flatMap(([name, value]) => [`--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`, String(value)]);
    const run = spawnSync(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${directory}`, script, ...args], { cwd: directory, encoding: "utf8", maxBuffer: 1 << 24 });
    if (run.status !== 0) throw new Error(`bench failed: the profiled arm exited with ${run.status}: ${run.stderr}`);
    const arm = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as ArmReport;
    const tally: Tally = { busyUs: 0, byCategory: new Map(), self: new Map(), workerBusyUs: 0 };
    // File names end in <pid>.<thread id>.<sequence>.cpuprofile; thread 0 is the main thread.
    for (const file of readdirSync(directory).filter((name) => name.endsWith(".cpuprofile"))) {
      const threadId = Number(file.split(".").at(-3));
      const profile = JSON.parse(readFileSync(join(directory, file), "utf8")) as CpuProfile;
      tallyProfile(profile, { startUs: arm.windowStartUs, endUs: arm.windowEndUs }, threadId !== 0, tally);
    }
    const share = (category: Category) => (tally.byCategory.get(category) ?? 0) / Math.max(1, tally.busyUs);
    const hottest = [...tally.self]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([name, us]) => ({ name, share: us / Math.max(1, tally.workerBusyUs) }));
    return { arm, busyMs: tally.busyUs / 1000, onWrite: share("onWrite"), extraGet: share("extraGet"), exchanges: share("exchanges"), hottest };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
