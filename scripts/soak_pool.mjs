#!/usr/bin/env node
// Soak for the job pool's start-up: runs the pool-heavy test file (store_model) again and again on
// Node and counts the runs that crash. A native crash in a pool thread's module loading kills the
// whole process about one run in eight when pools load their task file through require(esm); the
// pool factory (src/runtime/job_pool.ts) prevents it. Usage:
//   npm run build && node scripts/soak_pool.mjs [--runs 50] [--file store_model]
import { spawnSync } from "node:child_process";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index >= 0 && args[index + 1] !== undefined ? args[index + 1] : fallback;
};
const runs = Number(option("--runs", "50"));
const file = option("--file", "store_model");
const uvuBin = new URL("../node_modules/uvu/bin.js", import.meta.url).pathname;
let crashed = 0;
let failed = 0;
const started = Date.now();
for (let run = 1; run <= runs; run++) {
  const result = spawnSync(process.execPath, [uvuBin, "dist/test", `${file}\\.test\\.js$`], { encoding: "utf8" });
  const output = `${result.stdout}${result.stderr}`;
  if (/FATAL ERROR|Segmentation fault|core dumped/.test(output) || result.signal !== null) {
    crashed++;
    process.stdout.write(`\nrun ${run}: CRASH (${result.signal ?? `exit ${result.status}`})\n${output.split("\n").filter((line) => /FATAL|error/i.test(line)).slice(0, 3).join("\n")}\n`);
  } else if (result.status !== 0) {
    failed++;
    process.stdout.write(`\nrun ${run}: test failure (exit ${result.status})\n`);
  } else {
    process.stdout.write(".");
  }
}
console.log(`\n${runs} runs of ${file} in ${((Date.now() - started) / 1000).toFixed(0)} s: ${crashed} crashed, ${failed} failed, ${runs - crashed - failed} clean`);
process.exit(crashed + failed > 0 ? 1 : 0);
