/**
 * A purged delete never comes back after a failed cleanup, in the simulator: keys move away from a
 * node that crashes or has its disk fail while it drops them; they are deleted and purged on their
 * new replicas; then they move back to it. The cleanup it owes is remembered durably and finished
 * before it serves again, and no purge goes ahead while one is owed (src/ringchange/ring_mover.ts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { replayCommand } from "../src/sim/run_seed.ts";
import { runRingBackSeed } from "../src/sim/run_ring_back_seed.ts";
import { recordFigures } from "./support/figures.ts";

const SEEDS = 120;

test(`${SEEDS} ring-back seeds: a node struck during its cleanup never brings a purged delete back`, async () => {
  const totals = { deleted: 0, purged: 0, resurrected: 0, lost: 0 };
  const faults: Record<string, number> = {};
  const findings: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const report = await runRingBackSeed({ seed });
    totals.deleted += report.deleted;
    totals.purged += report.purged;
    totals.resurrected += report.resurrected.length;
    totals.lost += report.lost.length;
    faults[report.fault] = (faults[report.fault] ?? 0) + 1;
    for (const detail of [...report.resurrected, ...report.lost]) findings.push(`seed ${seed} (${replayCommand(seed)} --workload ringback): ${detail}`);
  }
  recordFigures("ring-back-sim", { seeds: SEEDS, ...totals, faults });
  assert.ok(totals.purged > SEEDS * 5, `deletes were purged before the keys moved back: ${totals.purged} of ${totals.deleted}`);
  assert.ok((faults.crash ?? 0) > 20 && (faults.full ?? 0) + (faults.fsync ?? 0) > 40, `crashes and disk faults struck during cleanups: ${JSON.stringify(faults)}`);
  assert.equal(findings.slice(0, 3), [], `${totals.resurrected} resurrections, ${totals.lost} keys lost`);
});

test("the negative control, failed cleanups forgotten, is seen resurrecting purged deletes", async () => {
  let resurrected = 0;
  for (let seed = 1; seed <= 30 && resurrected === 0; seed++) resurrected += (await runRingBackSeed({ seed, forgetCleanups: true })).resurrected.length;
  assert.ok(resurrected > 0, "without the rule a purged delete comes back");
});

test("a ring-back seed replays to the same trace", async () => {
  const first = await runRingBackSeed({ seed: 9 });
  const again = await runRingBackSeed({ seed: 9 });
  assert.is(again.traceHash, first.traceHash);
  assert.equal(again, first);
});

test.run();
