/**
 * `npm run sim`: the deterministic simulator from the command line.
 *
 *   npm run sim -- --seed 42          replay one seed and print its report (the command a failing
 *                                     seed prints)
 *   npm run sim -- --seeds 10000      soak: seeds 1..10000 (or --from N), with a progress line and
 *                                     seeds per second; exits 1 if any seed lost a write
 *   --faults crash,pause,...          the fault kinds to draw (default: all but wipe)
 *   --operations N                    operations per seed (default 200)
 *   --negative                        the negative control: W=1 and two replicas wiped before the
 *                                     final reads; it must report lost writes
 *
 * Deno: npx deno run -A scripts/sim.ts --seeds 100
 */
import process from "node:process";
import { registerFaultKinds, replayCommand, runSeed, type SeedOptions, type SeedReport } from "../src/sim/run_seed.ts";
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

const faults = (flag("--faults")?.split(",") ?? registerFaultKinds) as FaultKind[];
for (const kind of faults) if (!faultKinds.includes(kind)) throw new RangeError(`sim failed: unknown fault ${kind}, expected some of ${faultKinds.join(",")}`);
const negative = process.argv.includes("--negative");
const base: Omit<SeedOptions, "seed"> = {
  operations: integer("--operations", 200),
  faults: negative ? [...faults, "wipe"] : faults,
  ...(negative ? { settings: { w: 1 }, wipeBeforeFinalRead: 2 } : {}),
};

function failed(report: SeedReport): boolean {
  return report.lost.length + report.phantoms.length + report.staleSiblings.length + report.resurrected.length + report.unread.length > 0;
}

const single = flag("--seed");
if (single !== undefined) {
  const report = await runSeed({ ...base, seed: integer("--seed", 0) });
  console.log(JSON.stringify(report, null, 2));
  console.log(`${failed(report) ? "FAILED" : "ok"}: seed ${report.seed}, trace ${report.traceHash}, ${report.operations} operations, ${report.acknowledged} writes acknowledged, ${report.unknown} unknown, ${report.notApplied} not applied, ${report.lost.length} lost`);
  process.exit(failed(report) && !negative ? 1 : 0);
}

const seeds = integer("--seeds", 100);
const from = integer("--from", 1);
const started = performance.now();
const totals = { acknowledged: 0, unknown: 0, notApplied: 0, lost: 0, operations: 0 };
const drawn: Partial<Record<FaultKind, number>> = {};
const failures: number[] = [];
const tty = process.stdout.isTTY === true;
for (let seed = from; seed < from + seeds; seed++) {
  const report = await runSeed({ ...base, seed });
  totals.acknowledged += report.acknowledged;
  totals.unknown += report.unknown;
  totals.notApplied += report.notApplied;
  totals.lost += report.lost.length;
  totals.operations += report.operations;
  for (const [kind, count] of Object.entries(report.faults)) drawn[kind as FaultKind] = (drawn[kind as FaultKind] ?? 0) + count;
  if (failed(report)) {
    failures.push(seed);
    if (!negative) console.log(`\nseed ${seed} FAILED (${report.lost.length} lost, ${report.phantoms.length} phantom reads): replay with ${replayCommand(seed)}\n  ${[...report.lost, ...report.phantoms].slice(0, 3).join("\n  ")}`);
  }
  const done = seed - from + 1;
  if (tty ? done % 10 === 0 || done === seeds : done % 1000 === 0 || done === seeds) {
    const seconds = (performance.now() - started) / 1000;
    const line = `${done}/${seeds} seeds, ${(done / seconds).toFixed(1)} seeds/s, ${totals.acknowledged} acknowledged, ${totals.lost} lost`;
    process.stdout.write(tty ? `\r${line}` : `${line}\n`);
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(`\n${seeds} seeds (${from}..${from + seeds - 1}) in ${seconds.toFixed(1)} s: ${(seeds / seconds).toFixed(1)} seeds/s`);
console.log(`operations ${totals.operations}; writes acknowledged ${totals.acknowledged}, unknown ${totals.unknown}, not applied ${totals.notApplied}; lost ${totals.lost}; seeds with a finding ${failures.length}`);
console.log(`faults drawn: ${JSON.stringify(drawn)}`);
if (negative) {
  console.log(totals.lost > 0 ? "negative control: loss seen, as it must be" : "negative control FAILED: the checker saw no loss");
  process.exit(totals.lost > 0 ? 0 : 1);
}
process.exit(failures.length > 0 ? 1 : 0);
