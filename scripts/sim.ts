/**
 * `npm run sim`: the deterministic simulator from the command line.
 *
 *   npm run sim -- --seed 42          replay one seed and print its report (the command a failing
 *                                     seed prints)
 *   npm run sim -- --seeds 10000      soak: seeds 1..10000 (or --from N), with a progress line and
 *                                     seeds per second; exits 1 if any seed has a finding
 *   --workload register|set|ringback  the register workload (reads, writes, deletes; default), the
 *                                     set workload (unique adds merged by union, with wipes), or
 *                                     ring-back (keys move away and back; the node losing them
 *                                     crashes or fails its disk during its cleanup; deletes purged
 *                                     between: no deleted value may come back)
 *   --faults crash,pause,...          the fault kinds to draw (default: every kind the workload
 *                                     draws: all but wipe for register, all for set)
 *   --operations N                    operations (register) or adds (set) per seed (default 200)
 *   --negative                        the negative control: register: W=1 and two replicas wiped
 *                                     before the final reads; set: a merge that keeps one sibling;
 *                                     ringback: failed cleanups forgotten. It must report lost
 *                                     writes (ringback: resurrections).
 *
 * Deno: npx deno run -A scripts/sim.ts --seeds 100
 */
import process from "node:process";
import { registerFaultKinds, replayCommand, runSeed } from "../src/sim/run_seed.ts";
import { runSetSeed, setFaultKinds } from "../src/sim/run_set_seed.ts";
import { runRingBackSeed } from "../src/sim/run_ring_back_seed.ts";
import { faultKinds, type FaultKind } from "../src/sim/workload.ts";

function flag(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

function integer(name: string, fallback: number): number {
  const text = flag(name);
  if (text === undefined) return fallback;
  const value = Number(text.replaceAll("_", ""));
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`sim failed: ${name} must be a non-negative integer, got ${text}`);
  return value;
}

const workload = flag("--workload") ?? "register";
if (workload !== "register" && workload !== "set" && workload !== "ringback") throw new RangeError(`sim failed: --workload must be register, set or ringback, got ${workload}`);
const faults = (flag("--faults")?.split(",") ?? (workload === "set" ? setFaultKinds : registerFaultKinds)) as FaultKind[];
for (const kind of faults) if (!faultKinds.includes(kind)) throw new RangeError(`sim failed: unknown fault ${kind}, expected some of ${faultKinds.join(",")}`);
const negative = process.argv.includes("--negative");
const operations = integer("--operations", 200);

/** One seed's verdict, whichever the workload. */
interface Outcome {
  readonly report: unknown;
  readonly operations: number;
  readonly acknowledged: number;
  readonly unknown: number;
  readonly notApplied: number;
  readonly lost: number;
  readonly findings: readonly string[];
  readonly faults: Partial<Record<FaultKind, number>>;
  readonly traceHash: string;
  readonly convergenceRounds: number | null;
}

async function runOne(seed: number): Promise<Outcome> {
  if (workload === "ringback") {
    const report = await runRingBackSeed({ seed, forgetCleanups: negative });
    const findings = [...report.resurrected.map((detail) => `resurrected ${detail}`), ...report.lost];
    // The verdict's "lost" column counts resurrections here: what the negative control must show.
    return { report, operations: report.deleted, acknowledged: report.purged, unknown: 0, notApplied: 0, lost: report.resurrected.length + report.lost.length, findings, faults: {}, traceHash: report.traceHash, convergenceRounds: null };
  }
  if (workload === "set") {
    const report = await runSetSeed({ seed, adds: operations, faults, ...(negative ? { merge: "first" as const } : {}) });
    const findings = [...report.lost, ...report.phantoms, ...report.notAppliedPresent, ...report.replicaGaps, ...report.unread.map((key) => `${key} never read back`)];
    if (!negative && report.convergenceRounds === null) findings.push("replicas did not converge within the bound");
    return { report, operations: report.adds, acknowledged: report.acknowledged, unknown: report.unknown, notApplied: report.notApplied, lost: report.lost.length, findings, faults: report.faults, traceHash: report.traceHash, convergenceRounds: report.convergenceRounds };
  }
  const report = await runSeed({
    seed,
    operations,
    faults: negative ? [...faults, "wipe"] : faults,
    ...(negative ? { settings: { w: 1 }, wipeBeforeFinalRead: 2 } : {}),
  });
  const findings = [...report.lost, ...report.phantoms, ...report.staleSiblings, ...report.resurrected, ...report.unread.map((key) => `${key} never read back`)];
  return { report, operations: report.operations, acknowledged: report.acknowledged, unknown: report.unknown, notApplied: report.notApplied, lost: report.lost.length, findings, faults: report.faults, traceHash: report.traceHash, convergenceRounds: report.convergenceRounds };
}

const replay = (seed: number) => `${replayCommand(seed)}${workload === "register" ? "" : ` --workload ${workload}`}`;

const single = flag("--seed");
if (single !== undefined) {
  const outcome = await runOne(integer("--seed", 0));
  console.log(JSON.stringify(outcome.report, null, 2));
  const failed = outcome.findings.length > 0;
  console.log(`${failed ? "FAILED" : "ok"}: ${workload} seed ${single}, trace ${outcome.traceHash}, ${outcome.operations} operations, ${outcome.acknowledged} acknowledged, ${outcome.unknown} unknown, ${outcome.notApplied} not applied, ${outcome.lost} lost, converged in ${outcome.convergenceRounds ?? "-"} rounds`);
  process.exit(failed && !negative ? 1 : 0);
}

const seeds = integer("--seeds", 100);
const from = integer("--from", 1);
const started = performance.now();
const totals = { acknowledged: 0, unknown: 0, notApplied: 0, lost: 0, operations: 0 };
const drawn: Partial<Record<FaultKind, number>> = {};
const failures: number[] = [];
let roundsMax = 0;
const tty = process.stdout.isTTY === true;
for (let seed = from; seed < from + seeds; seed++) {
  const outcome = await runOne(seed);
  totals.acknowledged += outcome.acknowledged;
  totals.unknown += outcome.unknown;
  totals.notApplied += outcome.notApplied;
  totals.lost += outcome.lost;
  totals.operations += outcome.operations;
  roundsMax = Math.max(roundsMax, outcome.convergenceRounds ?? 0);
  for (const [kind, count] of Object.entries(outcome.faults)) drawn[kind as FaultKind] = (drawn[kind as FaultKind] ?? 0) + count;
  if (outcome.findings.length > 0) {
    failures.push(seed);
    if (!negative) console.log(`\nseed ${seed} FAILED: replay with ${replay(seed)}\n  ${outcome.findings.slice(0, 3).join("\n  ")}`);
  }
  const done = seed - from + 1;
  if (tty ? done % 10 === 0 || done === seeds : done % 1000 === 0 || done === seeds) {
    const seconds = (performance.now() - started) / 1000;
    const line = `${done}/${seeds} seeds, ${(done / seconds).toFixed(1)} seeds/s, ${totals.acknowledged} acknowledged, ${totals.lost} lost`;
    process.stdout.write(tty ? `\r${line}` : `${line}\n`);
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(`\n${workload}: ${seeds} seeds (${from}..${from + seeds - 1}) in ${seconds.toFixed(1)} s: ${(seeds / seconds).toFixed(1)} seeds/s`);
console.log(`operations ${totals.operations}; acknowledged ${totals.acknowledged}, unknown ${totals.unknown}, not applied ${totals.notApplied}; lost ${totals.lost}; seeds with a finding ${failures.length}; convergence at most ${roundsMax} anti-entropy rounds`);
if (workload === "ringback") console.log(`ring-back: deletes acknowledged ${totals.operations}, purged before the move back ${totals.acknowledged}; resurrections (and lost keys) ${totals.lost}`);
else console.log(`faults drawn: ${JSON.stringify(drawn)}`);
if (negative) {
  console.log(totals.lost > 0 ? "negative control: loss seen, as it must be" : "negative control FAILED: the checker saw no loss");
  process.exit(totals.lost > 0 ? 0 : 1);
}
process.exit(failures.length > 0 ? 1 : 0);
