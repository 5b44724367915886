import { runSetSeed } from "../src/sim/run_set_seed.ts";
const from = Number(process.argv[2] ?? 1), count = Number(process.argv[3] ?? 5);
const t = performance.now();
for (let seed = from; seed < from + count; seed++) {
  const r = await runSetSeed({ seed });
  console.log(seed, JSON.stringify({ acked: r.acknowledged, unknown: r.unknown, na: r.notApplied, lost: r.lost.length, ph: r.phantoms.length, nap: r.notAppliedPresent.length, conv: r.convergenceRounds, gaps: r.replicaGaps.length, drain: r.hintDrainMs, faults: r.faults }), r.lost.slice(0, 2), r.replicaGaps.slice(0, 2));
}
console.log(((performance.now() - t) / count).toFixed(0), "ms/seed");
